package dnscheck

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// Helpers the DNS hygiene collectors share (dns.delegation, dns.axfr,
// dns.wildcard, dns.dangling-cname, dns.rdap): the zone a domain is in and
// its name servers as the resolver sees them, and questions put straight
// to one name server through env.Dial (the scope guard lets DNS checks
// reach the estate's name servers).

// Bounds against hostile name servers and zones.
const (
	delegationMaxClimb   = 8  // names asked for NS above the domain
	delegationMaxServers = 16 // name servers probed per zone
	delegationMaxReads   = 4  // messages read while waiting for the matching id
)

// delegationAskTimeout bounds one question to a name server (a variable
// for tests).
var delegationAskTimeout = 2 * time.Second

// DelegationLookup is one question to the resolver, as evidence.
type DelegationLookup struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Rcode   string   `json:"rcode,omitempty"`
	Records []string `json:"records,omitempty"` // the answer's data of the type asked
	Error   string   `json:"error,omitempty"`
	Class   string   `json:"class,omitempty"`
}

// failed reports a lookup that could not tell.
func (l DelegationLookup) failed() bool { return l.Error != "" }

// hygieneLookup asks the resolver name/qtype and records the rcode and the
// data of the records of that type owned by name (RFC 6604: the rcode is
// about the last name of a CNAME chain; callers that follow chains do so
// themselves).
func hygieneLookup(ctx context.Context, r *dnsq.Client, name string, qtype uint16) (DelegationLookup, *dnsq.Response) {
	l := DelegationLookup{Name: strings.TrimSuffix(dns.CanonicalName(name), "."), Type: dns.TypeToString[qtype]}
	resp, err := r.Query(ctx, name, qtype)
	if err != nil {
		l.Error, l.Class = err.Error(), string(check.Classify(err))
		return l, nil
	}
	l.Rcode = resp.Rcode
	owner := dns.CanonicalName(name)
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == qtype && strings.EqualFold(rr.Header().Name, owner) {
			l.Records = append(l.Records, hygieneRData(rr))
		}
	}
	return l, resp
}

// hygieneRData is a record's data in presentation form, without its header
// (TXT: the character-strings joined, as SPF and DKIM read them).
func hygieneRData(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.TXT:
		return strings.Join(v.Txt, "")
	case *dns.NS:
		return strings.ToLower(strings.TrimSuffix(v.Ns, "."))
	case *dns.CNAME:
		return strings.ToLower(strings.TrimSuffix(v.Target, "."))
	case *dns.A:
		return v.A.String()
	case *dns.AAAA:
		return v.AAAA.String()
	}
	s := rr.String()
	return strings.TrimPrefix(s, rr.Header().String())
}

// hygieneNoDomain is the error for an asset that does not exist in DNS.
func hygieneNoDomain(id, name string) error {
	return check.WithClass(check.ErrNoDomain, fmt.Errorf("%s: %s does not exist in DNS (NXDOMAIN): check the estate file and the domain's registration", id, name))
}

// hygieneExists asks TXT at the asset (an answer the SPF collector has
// usually put in the run's cache): NXDOMAIN is ErrNoDomain, a lookup that
// could not tell is returned as it is.
func hygieneExists(ctx context.Context, r *dnsq.Client, id, name string) error {
	resp, err := r.Query(ctx, name, dns.TypeTXT)
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	if resp.NXDomain() {
		return hygieneNoDomain(id, name)
	}
	return nil
}

// DelegationZone is the zone that holds a domain and its name servers as
// the resolver answers: NS asked at the domain, then at each parent, until
// a name owns NS records (the zone's apex).
type DelegationZone struct {
	Zone    string             `json:"zone,omitempty"`
	NS      []string           `json:"ns,omitempty"` // the resolver's NS set at Zone, sorted
	Lookups []DelegationLookup `json:"lookups"`
}

// delegationFindZone climbs from name to the zone apex. It returns
// ErrNoDomain when the asset itself does not exist, and the lookup's error
// when one could not tell; a climb that finds no NS below the top-level
// domain leaves Zone empty.
func delegationFindZone(ctx context.Context, r *dnsq.Client, id, name string) (DelegationZone, error) {
	var z DelegationZone
	cur := strings.TrimSuffix(dns.CanonicalName(name), ".")
	for range delegationMaxClimb {
		l, _ := hygieneLookup(ctx, r, cur, dns.TypeNS)
		z.Lookups = append(z.Lookups, l)
		if l.failed() {
			return z, fmt.Errorf("%s: %s", id, l.Error)
		}
		if len(z.Lookups) == 1 && l.Rcode == "NXDOMAIN" {
			return z, hygieneNoDomain(id, name)
		}
		if len(l.Records) > 0 {
			z.Zone, z.NS = cur, hygieneSorted(l.Records)
			return z, nil
		}
		_, parent, ok := strings.Cut(cur, ".")
		if !ok || !strings.Contains(parent, ".") {
			return z, nil // the top-level domain is not asked
		}
		cur = parent
	}
	return z, nil
}

// hygieneSorted returns the distinct names of ss, lower case, sorted.
func hygieneSorted(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		s = strings.ToLower(strings.TrimSuffix(s, "."))
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// Registrable returns the registrable domain of name by the public suffix
// list (x.nhs.uk for www.x.nhs.uk: nhs.uk is a public suffix). A name that
// is itself a public suffix below a top-level domain (nhs.uk) is its own;
// "" for a top-level domain or a name the list cannot place.
func Registrable(name string) string {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if r, err := publicsuffix.EffectiveTLDPlusOne(name); err == nil {
		return r
	}
	if strings.Contains(name, ".") {
		if s, _ := publicsuffix.PublicSuffix(name); s == name {
			return name
		}
	}
	return ""
}

// hygieneOperators are the registrable domains of name servers, sorted:
// who operates a zone's DNS (checks.md §3.3 decision 17: a finding on a
// zone hosted by NHS England's HSCN DNS goes to its DNS team).
func hygieneOperators(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if r := Registrable(h); r != "" {
			out = append(out, r)
		}
	}
	return hygieneSorted(out)
}

// DelegationReply is what one name server said to one question asked
// directly (RD=0), or why it said nothing.
type DelegationReply struct {
	Rcode  string `json:"rcode,omitempty"`
	AA     bool   `json:"aa,omitempty"`
	Serial uint32 `json:"serial,omitempty"` // SOA questions: the serial of the apex SOA
	// HasSOA says the answer carried the zone's SOA record.
	HasSOA bool `json:"has_soa,omitempty"`
	// NS is the NS set the server gave for the zone (answer, or the
	// authority section of a referral), sorted.
	NS    []string `json:"ns,omitempty"`
	Error string   `json:"error,omitempty"`
	Class string   `json:"class,omitempty"`
	// Refused says the connection was refused (nothing listens).
	Refused bool `json:"refused,omitempty"`
}

// Answered reports whether the server sent a DNS message.
func (r *DelegationReply) Answered() bool { return r != nil && r.Error == "" }

// delegationRead turns a server's message about zone into a reply: the
// rcode, the AA bit, the apex SOA serial and the NS set for the zone
// (from the answer, or from the authority section of a referral). Records
// owned by other names are ignored; counts are bounded by the message.
func delegationRead(m *dns.Msg, zone string) DelegationReply {
	rep := DelegationReply{Rcode: dns.RcodeToString[m.Rcode], AA: m.Authoritative}
	if rep.Rcode == "" {
		rep.Rcode = strconv.Itoa(m.Rcode)
	}
	apex := dns.CanonicalName(zone)
	var ns []string
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			if !strings.EqualFold(rr.Header().Name, apex) {
				continue
			}
			switch v := rr.(type) {
			case *dns.SOA:
				if !rep.HasSOA {
					rep.HasSOA, rep.Serial = true, v.Serial
				}
			case *dns.NS:
				ns = append(ns, v.Ns)
			}
		}
	}
	rep.NS = hygieneSorted(ns)
	return rep
}

// delegationAsk puts one question to a name server directly: UDP to port
// 53 (mapped by env.Port for labs) through env.Dial, without recursion,
// and over TCP when the answer is truncated. One retry after a timeout.
// The reply is checked to be an answer to the question (same id, QR set,
// same question) and then read by delegationRead.
func delegationAsk(ctx context.Context, env *check.Env, server, zone string, qtype uint16) DelegationReply {
	var m *dns.Msg
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		m, err = delegationExchange(ctx, env, "udp", server, zone, qtype)
		if err == nil && m.Truncated {
			m, err = delegationExchange(ctx, env, "tcp", server, zone, qtype)
		}
		if err == nil || check.Classify(err) != check.ErrTimeout || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return DelegationReply{Error: err.Error(), Class: string(check.Classify(err)), Refused: errors.Is(err, errConnRefused)}
	}
	return delegationRead(m, zone)
}

// errConnRefused marks a dial that was refused (ECONNREFUSED).
var errConnRefused = errors.New("connection refused")

func delegationExchange(ctx context.Context, env *check.Env, network, server, zone string, qtype uint16) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, delegationAskTimeout)
	defer cancel()
	addr := net.JoinHostPort(server, strconv.Itoa(env.Port(53)))
	conn, err := env.DialContext(ctx, network, addr)
	if err != nil {
		if hygieneRefused(err) {
			return nil, fmt.Errorf("%s %s: %w: %w", network, addr, errConnRefused, err)
		}
		return nil, fmt.Errorf("%s %s: %w", network, addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.CanonicalName(zone), qtype)
	q.RecursionDesired = false
	q.SetEdns0(1232, false)
	if err := hygieneWriteMsg(conn, network, q); err != nil {
		return nil, fmt.Errorf("%s %s: write: %w", network, addr, err)
	}
	for range delegationMaxReads {
		in, err := hygieneReadMsg(conn, network)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, check.WithClass(check.ErrBlocked, fmt.Errorf("%s %s: closed without an answer: %w", network, addr, err))
		default:
			return nil, fmt.Errorf("%s %s: %w", network, addr, err)
		}
		if in.Id != q.Id || !in.Response {
			continue // a stray datagram: keep waiting for ours
		}
		if len(in.Question) != 1 || !strings.EqualFold(in.Question[0].Name, q.Question[0].Name) || in.Question[0].Qtype != qtype {
			return nil, check.WithClass(check.ErrMalformed, fmt.Errorf("%s %s: the answer is for another question", network, addr))
		}
		return in, nil
	}
	return nil, check.WithClass(check.ErrMalformed, fmt.Errorf("%s %s: no answer with our id", network, addr))
}

// hygieneRefused reports a connection refused by the peer (nothing
// listens), by its errno.
func hygieneRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// hygieneWriteMsg sends m on conn, framed for network: a datagram for
// udp, a length-prefixed message for tcp (RFC 1035 §4.2.2). The framing
// follows the network asked for, not the connection's type: the scope
// guard hands out wrapped connections, which miekg/dns's Conn would take
// for streams.
func hygieneWriteMsg(conn net.Conn, network string, m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	if network != "udp" {
		b = append(binary.BigEndian.AppendUint16(make([]byte, 0, len(b)+2), uint16(len(b))), b...)
	}
	_, err = conn.Write(b)
	return err
}

// hygieneReadMsg reads one message from conn, framed for network. Bytes
// that do not unpack as DNS are an error of class malformed.
func hygieneReadMsg(conn net.Conn, network string) (*dns.Msg, error) {
	var b []byte
	if network == "udp" {
		buf := make([]byte, dns.MaxMsgSize)
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		b = buf[:n]
	} else {
		var l [2]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return nil, err
		}
		b = make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(conn, b); err != nil {
			return nil, err
		}
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return nil, check.WithClass(check.ErrMalformed, fmt.Errorf("the answer does not parse: %w", err))
	}
	return m, nil
}
