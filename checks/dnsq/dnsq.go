// Package dnsq is the DNS resolver every check and the discovery use: a stub
// resolver on miekg/dns with a configurable upstream, per-attempt timeouts,
// retries, TCP on truncation and a per-run cache. NXDOMAIN and empty answers
// are results, not errors: only "could not tell" (timeout, SERVFAIL,
// REFUSED, a malformed reply) is an error, and it says so through Class().
package dnsq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Resolver sends queries to recursive resolvers. The zero value uses the
// servers of /etc/resolv.conf, a 2 s timeout, 2 retries and a cache.
type Resolver struct {
	Servers []string      // "ip:port"; empty: /etc/resolv.conf
	Timeout time.Duration // per attempt; 0: 2 s
	Retries int           // extra attempts after the first; 0: 2, <0: none
	NoCache bool
	// Dial, if set, opens the connection to the resolver (tests, proxies).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	once    sync.Once
	servers []string
	initErr error
	mu      sync.Mutex
	cache   map[key]*entry
	queries int64
}

type key struct {
	name  string
	qtype uint16
	do    bool // asked with the DNSSEC OK bit (ExchangeDNSSEC)
}

type entry struct {
	done chan struct{}
	resp *Response
	err  error
}

// Response is one answer, as evidence: rcode, records, and the wire size.
type Response struct {
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Rcode         string   `json:"rcode"` // NOERROR, NXDOMAIN, …
	Answer        []dns.RR `json:"-"`
	Records       []string `json:"records,omitempty"` // Answer in zone-file form, for storage
	Authenticated bool     `json:"ad,omitempty"`
	Size          int      `json:"size"` // bytes on the wire
	rcode         int
	msg           *dns.Msg
}

// NXDomain reports an NXDOMAIN answer.
func (r *Response) NXDomain() bool { return r.rcode == dns.RcodeNameError }

// Void reports an answer with no records of the asked type (NXDOMAIN or
// NOERROR/NODATA), which is what RFC 7208 counts as a void lookup.
func (r *Response) Void() bool {
	return r.rcode == dns.RcodeNameError || (r.rcode == dns.RcodeSuccess && len(r.Of(r.qtype())) == 0)
}

func (r *Response) qtype() uint16 { return dns.StringToType[r.Type] }

// Of returns the answer records of one type.
func (r *Response) Of(t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == t {
			out = append(out, rr)
		}
	}
	return out
}

// Error is a resolution that could not tell.
type Error struct {
	Name string
	Type string
	Kind string // timeout, servfail, refused, malformed, network
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("dns %s %s: %s: %v", e.Type, e.Name, e.Kind, e.Err)
	}
	return fmt.Sprintf("dns %s %s: %s", e.Type, e.Name, e.Kind)
}
func (e *Error) Unwrap() error { return e.Err }

// Class maps to the check error classes (timeout or dns).
func (e *Error) Class() string {
	if e.Kind == "timeout" {
		return "timeout"
	}
	if e.Kind == "canceled" {
		return "canceled"
	}
	return "dns"
}

// Bounds against hostile answers.
const (
	maxAnswer = 512
	maxCNAME  = 8
)

func (r *Resolver) init() {
	r.once.Do(func() {
		r.servers = r.Servers
		if len(r.servers) == 0 {
			cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
			if err != nil {
				r.initErr = fmt.Errorf("dnsq: read resolv.conf: %w", err)
				return
			}
			for _, s := range cfg.Servers {
				r.servers = append(r.servers, net.JoinHostPort(s, cfg.Port))
			}
		}
		r.cache = map[key]*entry{}
	})
}

// Fresh returns a resolver with the same settings and an empty cache: the
// cache lives for one run, so the next run sees what DNS says then.
func (r *Resolver) Fresh() *Resolver {
	if r == nil {
		return &Resolver{}
	}
	return &Resolver{Servers: r.Servers, Timeout: r.Timeout, Retries: r.Retries, NoCache: r.NoCache, Dial: r.Dial}
}

// Queries reports how many queries went on the wire (cache misses × attempts).
func (r *Resolver) Queries() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queries
}

// Query resolves name/qtype. Concurrent identical queries share one lookup;
// answers (including NXDOMAIN) are cached for the Resolver's life, which is
// one run. Errors are not cached, so a later retry can succeed.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) (*Response, error) {
	return r.lookup(ctx, name, qtype, false)
}

// DNSSECExchanger is implemented by resolvers that can ask with the DNSSEC
// OK bit (RFC 3225) and checking disabled (RFC 4035 §3.2.2), so that the
// answer carries the RRSIGs and a validating upstream passes on even data
// it finds bogus, for the check to judge itself. It is optional: the
// check.Resolver contract does not require it, and a check that needs it
// says unknown when env.DNS lacks it.
type DNSSECExchanger interface {
	ExchangeDNSSEC(ctx context.Context, name string, qtype uint16) (*dns.Msg, error)
}

// ExchangeDNSSEC asks one question with DO=1 and CD=1, through a cache
// kept apart from plain queries (whose sizes the SPF rules judge).
func (r *Resolver) ExchangeDNSSEC(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	resp, err := r.lookup(ctx, name, qtype, true)
	if err != nil {
		return nil, err
	}
	return resp.msg, nil
}

func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16, do bool) (*Response, error) {
	r.init()
	name = dns.CanonicalName(name)
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 254 {
		return nil, &Error{Name: name, Type: dns.TypeToString[qtype], Kind: "malformed", Err: errors.New("not a domain name")}
	}
	if r.initErr != nil {
		return nil, &Error{Name: name, Type: dns.TypeToString[qtype], Kind: "network", Err: r.initErr}
	}
	if r.NoCache {
		return r.query(ctx, name, qtype, do)
	}
	k := key{name, qtype, do}
	r.mu.Lock()
	if e, ok := r.cache[k]; ok {
		r.mu.Unlock()
		select {
		case <-e.done:
			if e.err == nil {
				return e.resp, nil
			}
			// A failed shared lookup is retried by this caller.
		case <-ctx.Done():
			return nil, &Error{Name: name, Type: dns.TypeToString[qtype], Kind: "canceled", Err: ctx.Err()}
		}
		r.mu.Lock()
	}
	e := &entry{done: make(chan struct{})}
	r.cache[k] = e
	r.mu.Unlock()
	e.resp, e.err = r.query(ctx, name, qtype, do)
	if e.err != nil {
		r.mu.Lock()
		if r.cache[k] == e {
			delete(r.cache, k)
		}
		r.mu.Unlock()
	}
	close(e.done)
	return e.resp, e.err
}

func (r *Resolver) query(ctx context.Context, name string, qtype uint16, do bool) (*Response, error) {
	tname := dns.TypeToString[qtype]
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, do)
	m.AuthenticatedData = true // ask for the AD bit from a validating upstream
	m.CheckingDisabled = do    // DNSSEC queries: bogus data too, to judge it ourselves

	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	attempts := 1 + r.Retries
	if r.Retries == 0 {
		attempts = 3
	} else if r.Retries < 0 {
		attempts = 1
	}
	var last error
	for i := 0; i < attempts; i++ {
		if err := ctx.Err(); err != nil {
			return nil, &Error{Name: name, Type: tname, Kind: "canceled", Err: err}
		}
		server := r.servers[i%len(r.servers)]
		in, err := r.exchange(ctx, m, server, "udp", timeout)
		if err == nil && in.Truncated {
			in, err = r.exchange(ctx, m, server, "tcp", timeout)
		}
		if err != nil {
			last = err
			continue
		}
		switch in.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return r.response(name, tname, in)
		case dns.RcodeServerFailure:
			last = &Error{Name: name, Type: tname, Kind: "servfail"}
		case dns.RcodeRefused:
			last = &Error{Name: name, Type: tname, Kind: "refused"}
		default:
			last = &Error{Name: name, Type: tname, Kind: "rcode " + dns.RcodeToString[in.Rcode]}
		}
	}
	var de *Error
	if errors.As(last, &de) {
		return nil, de
	}
	var ne net.Error
	if errors.As(last, &ne) && ne.Timeout() || errors.Is(last, context.DeadlineExceeded) {
		return nil, &Error{Name: name, Type: tname, Kind: "timeout", Err: last}
	}
	return nil, &Error{Name: name, Type: tname, Kind: "network", Err: last}
}

func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, server, network string, timeout time.Duration) (*dns.Msg, error) {
	r.mu.Lock()
	r.queries++
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: timeout, UDPSize: 1232}
	if r.Dial != nil {
		conn, err := r.Dial(ctx, network, server)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		co := &dns.Conn{Conn: conn, UDPSize: 1232}
		if err := co.WriteMsg(m); err != nil {
			return nil, err
		}
		for {
			in, err := co.ReadMsg()
			if err != nil {
				return nil, err
			}
			if in.Id == m.Id {
				return in, nil
			}
		}
	}
	in, _, err := c.ExchangeContext(ctx, m, server)
	return in, err
}

func (r *Resolver) response(name, tname string, in *dns.Msg) (*Response, error) {
	if len(in.Answer) > maxAnswer {
		return nil, &Error{Name: name, Type: tname, Kind: "malformed", Err: fmt.Errorf("%d answer records (limit %d)", len(in.Answer), maxAnswer)}
	}
	resp := &Response{Name: strings.TrimSuffix(name, "."), Type: tname, Rcode: dns.RcodeToString[in.Rcode],
		Answer: in.Answer, Authenticated: in.AuthenticatedData, rcode: in.Rcode, Size: in.Len(), msg: in}
	for _, rr := range in.Answer {
		resp.Records = append(resp.Records, rr.String())
	}
	return resp, nil
}

// Exchange implements check.Resolver: the answer message to one question,
// through the cache.
func (r *Resolver) Exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	resp, err := r.Query(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	return resp.msg, nil
}

// Exchanger is any resolver that answers one question with a message: a
// check's view of DNS (check.Resolver).
type Exchanger interface {
	Exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error)
}

// Client gives any Exchanger the helpers checks use (Query, TXT, MX,
// Addrs) with the same bounds as Resolver's own.
type Client struct{ x Exchanger }

// Over wraps x; a nil x is a Resolver on /etc/resolv.conf.
func Over(x Exchanger) *Client {
	if x == nil {
		x = defaultResolver
	}
	return &Client{x}
}

var defaultResolver = &Resolver{}

// Query resolves name/qtype through the exchanger.
func (c *Client) Query(ctx context.Context, name string, qtype uint16) (*Response, error) {
	if r, ok := c.x.(*Resolver); ok {
		return r.Query(ctx, name, qtype)
	}
	name = dns.CanonicalName(name)
	in, err := c.x.Exchange(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	return (&Resolver{}).response(name, dns.TypeToString[qtype], in)
}

// TXT is Client.TXT on this resolver.
func (r *Resolver) TXT(ctx context.Context, name string) ([]string, *Response, error) {
	return Over(r).TXT(ctx, name)
}

// MX is Client.MX on this resolver.
func (r *Resolver) MX(ctx context.Context, name string) ([]*dns.MX, *Response, error) {
	return Over(r).MX(ctx, name)
}

// Addrs is Client.Addrs on this resolver.
func (r *Resolver) Addrs(ctx context.Context, name string) ([]netip.Addr, []string, error) {
	return Over(r).Addrs(ctx, name)
}

// TXT returns the TXT strings at name, each RR's character-strings joined
// (RFC 7208 §3.3), with the response for its rcode and size.
func (r *Client) TXT(ctx context.Context, name string) ([]string, *Response, error) {
	resp, err := r.Query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, nil, err
	}
	var out []string
	for _, rr := range resp.Of(dns.TypeTXT) {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, resp, nil
}

// MX returns the MX records at name, sorted as served.
func (r *Client) MX(ctx context.Context, name string) ([]*dns.MX, *Response, error) {
	resp, err := r.Query(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, nil, err
	}
	var out []*dns.MX
	for _, rr := range resp.Of(dns.TypeMX) {
		out = append(out, rr.(*dns.MX))
	}
	return out, resp, nil
}

// Addrs resolves A and AAAA for name and returns the CNAME chain that led to
// them (without name itself). An NXDOMAIN or empty answer gives no addresses
// and no error.
func (r *Client) Addrs(ctx context.Context, name string) (addrs []netip.Addr, chain []string, err error) {
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		cur := dns.CanonicalName(name)
		var c []string
		// An upstream that does not chase CNAMEs across zones leaves the
		// chain open: query its end ourselves, within the same bound.
		for len(c) <= maxCNAME {
			resp, err := r.Query(ctx, cur, t)
			if err != nil {
				return nil, nil, err
			}
			more, as := follow(resp, cur, t)
			c = append(c, more...)
			addrs = append(addrs, as...)
			if len(as) > 0 || len(more) == 0 {
				break
			}
			cur = dns.CanonicalName(more[len(more)-1])
		}
		if len(c) > len(chain) {
			chain = c
		}
	}
	return addrs, chain, nil
}

// follow walks the CNAME chain from name within one answer and returns the
// chain and the addresses at its end.
func follow(resp *Response, name string, t uint16) (chain []string, addrs []netip.Addr) {
	cur := name
	for i := 0; i <= maxCNAME; i++ {
		next := ""
		for _, rr := range resp.Answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, cur) {
				continue
			}
			switch v := rr.(type) {
			case *dns.CNAME:
				next = dns.CanonicalName(v.Target)
			case *dns.A:
				if t == dns.TypeA {
					if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
						addrs = append(addrs, a)
					}
				}
			case *dns.AAAA:
				if t == dns.TypeAAAA {
					if a, ok := netip.AddrFromSlice(v.AAAA); ok {
						addrs = append(addrs, a)
					}
				}
			}
		}
		if next == "" || len(addrs) > 0 {
			return chain, addrs
		}
		chain = append(chain, strings.TrimSuffix(next, "."))
		cur = next
	}
	return chain, addrs
}
