package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// AXFROpen is the catalogue id.
const AXFROpen = "dns.axfr-open"

const ruleAXFR = "zone-transfer-refused"

// Bounds of a transfer attempt: it only has to show that the server
// transfers, so the reader stops after the first records.
const (
	axfrMaxRecords  = 20
	axfrMaxMessages = 3
)

// axfrTimeout bounds one transfer attempt (a variable for tests).
var axfrTimeout = 5 * time.Second

// AXFREvidence is what each of the zone's name servers did when asked for
// a zone transfer.
type AXFREvidence struct {
	Domain string `json:"domain"`
	DelegationZone
	Servers []AXFRServer `json:"servers,omitempty"`
}

// AXFRServer is one transfer attempt (AXFR over TCP to port 53).
type AXFRServer struct {
	Host string `json:"host"`
	// Rcode is the rcode of the first message ("" when none came).
	Rcode string `json:"rcode,omitempty"`
	// Records counts the answer records read before the reader stopped;
	// Types are the types of the first few, SOAFirst says the first was
	// the zone's SOA (how a transfer starts, RFC 5936 §2.2).
	Records  int      `json:"records,omitempty"`
	Types    []string `json:"types,omitempty"`
	SOAFirst bool     `json:"soa_first,omitempty"`
	Messages int      `json:"messages,omitempty"`
	// Stopped says the reader stopped at its bound with the transfer
	// still going.
	Stopped bool `json:"stopped,omitempty"`
	// Refused: the connection was refused; Closed: the server closed it
	// without a message.
	Refused bool   `json:"refused,omitempty"`
	Closed  bool   `json:"closed,omitempty"`
	Error   string `json:"error,omitempty"`
	Class   string `json:"class,omitempty"`
}

// AXFRCheck returns the dns.axfr-open collector.
func AXFRCheck() check.Check {
	return check.New(check.Spec[AXFREvidence]{
		ID: AXFROpen, Family: "dns", Targets: []check.Kind{check.KindDomain, check.KindZone},
		Rules: []check.Meta{{
			ID: AXFROpen, Rule: ruleAXFR, Title: "Name servers refuse zone transfers", Severity: check.High,
			Description: "Each of the zone's name servers is asked for a zone transfer (AXFR over TCP): REFUSED, NOTAUTH, an empty answer, or a refused or closed connection passes; any zone data fails. The scanner stops reading after the first records.",
			Remediation: "Allow zone transfers (AXFR and IXFR) only to your secondary name servers, by address or TSIG key (BIND: allow-transfer { none; }; or a key; Windows DNS: zone properties, Zone Transfers, only to listed servers).",
			Standards: []check.Ref{
				withSection(refHSCNDelegation, `Off-infrastructure delegation: they "permit anonymous remote download of the entire delegation"`),
				{Standard: "RFC 5936 (DNS Zone Transfer Protocol (AXFR))", Section: "§6 zone transfer access control", URL: "https://www.rfc-editor.org/rfc/rfc5936", Status: "unverified"},
			},
		}},
		Collect:  collectAXFR,
		Evaluate: evaluateAXFR,
		Timeout:  30 * time.Second,
	})
}

func collectAXFR(ctx context.Context, env *check.Env, a check.Asset) (AXFREvidence, error) {
	ev := AXFREvidence{Domain: a.Name}
	z, err := delegationFindZone(ctx, dnsq.Over(env.DNS), AXFROpen, a.Name)
	ev.DelegationZone = z
	if err != nil || z.Zone == "" {
		return ev, err
	}
	hosts := z.NS[:min(len(z.NS), delegationMaxServers)]
	ev.Servers = make([]AXFRServer, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev.Servers[i] = axfrTry(ctx, env, h, z.Zone)
		}()
	}
	wg.Wait()
	return ev, nil
}

// axfrTry asks one server for the zone.
func axfrTry(ctx context.Context, env *check.Env, host, zone string) AXFRServer {
	s := AXFRServer{Host: host}
	ctx, cancel := context.WithTimeout(ctx, axfrTimeout)
	defer cancel()
	addr := net.JoinHostPort(host, strconv.Itoa(env.Port(53)))
	conn, err := env.DialContext(ctx, "tcp", addr)
	if err != nil {
		s.Refused = hygieneRefused(err)
		s.Error, s.Class = fmt.Sprintf("tcp %s: %v", addr, err), string(check.Classify(err))
		return s
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	return axfrRead(conn, s, zone)
}

// axfrRead sends the AXFR question on conn and reads the answer, up to the
// bounds.
func axfrRead(conn net.Conn, s AXFRServer, zone string) AXFRServer {
	return axfrReadWithID(conn, s, zone, dns.Id())
}

// axfrReadWithID is axfrRead with the question's id given: the parser of
// what the server sends (fuzzed).
func axfrReadWithID(conn net.Conn, s AXFRServer, zone string, id uint16) AXFRServer {
	q := new(dns.Msg)
	q.SetAxfr(dns.CanonicalName(zone))
	q.Id = id
	if err := hygieneWriteMsg(conn, "tcp", q); err != nil {
		s.Error, s.Class = "write: "+err.Error(), string(check.Classify(err))
		return s
	}
	apex := dns.CanonicalName(zone)
	for s.Messages < axfrMaxMessages {
		m, err := hygieneReadMsg(conn, "tcp")
		if err != nil {
			switch {
			case s.Messages > 0:
				// The server ended (or broke) the stream after it sent
				// something: what it sent is the evidence.
			case check.Classify(err) == check.ErrMalformed:
				s.Error, s.Class = err.Error(), string(check.ErrMalformed)
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
				check.Classify(err) == check.ErrUnreachable:
				s.Closed = true
			default:
				s.Error, s.Class = err.Error(), string(check.Classify(err))
			}
			return s
		}
		if m.Id != q.Id || !m.Response {
			if s.Messages == 0 {
				s.Error, s.Class = "the answer does not match the question", string(check.ErrMalformed)
			}
			return s
		}
		s.Messages++
		if s.Messages == 1 {
			s.Rcode = dns.RcodeToString[m.Rcode]
			if s.Rcode == "" {
				s.Rcode = strconv.Itoa(m.Rcode)
			}
			if m.Rcode != dns.RcodeSuccess {
				return s
			}
		}
		for _, rr := range m.Answer {
			if s.Records == 0 {
				_, isSOA := rr.(*dns.SOA)
				s.SOAFirst = isSOA && strings.EqualFold(rr.Header().Name, apex)
			}
			s.Records++
			if len(s.Types) < 8 {
				s.Types = append(s.Types, dns.TypeToString[rr.Header().Rrtype])
			}
		}
		if len(m.Answer) == 0 {
			return s // an empty answer: no transfer
		}
		if s.Records >= axfrMaxRecords {
			s.Stopped = true
			return s
		}
		// The transfer is over when its closing SOA came (a lone SOA
		// answer opens and closes an empty zone).
		if last, ok := m.Answer[len(m.Answer)-1].(*dns.SOA); ok && s.Records > 1 && strings.EqualFold(last.Hdr.Name, apex) {
			return s
		}
	}
	s.Stopped = true
	return s
}

func evaluateAXFR(in check.In[AXFREvidence]) []check.Finding {
	ev := in.Evidence
	f := check.Finding{CheckID: AXFROpen, Rule: ruleAXFR}
	if ev.Zone == "" {
		f.Outcome, f.Reason = check.Unknown, string(check.ErrDNS)
		f.Message = fmt.Sprintf("no NS records at %s or the names above it: which servers to ask cannot be told", ev.Domain)
		return []check.Finding{f}
	}
	var hosts []string
	for _, s := range ev.Servers {
		hosts = append(hosts, s.Host)
	}
	where := hygieneZoneOf(ev.Domain, ev.Zone, hosts)
	var open, refused, silent []string
	reason := ""
	for _, s := range ev.Servers {
		switch {
		case s.Records > 0:
			more := ""
			if s.Stopped {
				more = " before the scanner stopped reading"
			}
			open = append(open, fmt.Sprintf("%s (%d records%s: %s)", s.Host, s.Records, more, strings.Join(s.Types, " ")))
		case s.Refused:
			refused = append(refused, s.Host+" (connection refused)")
		case s.Closed:
			refused = append(refused, s.Host+" (closed the connection)")
		case s.Error != "":
			silent = append(silent, fmt.Sprintf("%s (%s)", s.Host, s.Error))
			if reason == "" {
				reason = s.Class
			}
		case s.Rcode != "" && s.Rcode != "NOERROR":
			refused = append(refused, s.Host+" ("+s.Rcode+")")
		default:
			refused = append(refused, s.Host+" (empty answer)")
		}
	}
	switch {
	case len(open) > 0:
		f.Outcome = check.Fail
		f.Message = fmt.Sprintf("%s: name servers transfer the whole zone to anyone who asks: %s", where, strings.Join(open, "; "))
	case len(refused) > 0:
		f.Outcome = check.Pass
		f.Message = fmt.Sprintf("%s: zone transfers refused by %s", where, strings.Join(refused, ", "))
		if len(silent) > 0 {
			f.Message += "; not answered: " + strings.Join(silent, "; ")
		}
	default:
		f.Outcome, f.Reason = check.Unknown, reason
		f.Message = fmt.Sprintf("%s: no name server answered the transfer request: %s", where, strings.Join(silent, "; "))
	}
	return []check.Finding{f}
}
