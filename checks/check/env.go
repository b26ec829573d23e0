package check

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DialFunc opens a connection. The scanner hands checks one that goes through
// the scope guard; tests hand them one that reaches the lab.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Resolver answers DNS questions for checks. Exchange asks one question and
// returns the answer as received, after the resolver's retries, TCP
// fallback and per-run cache. NXDOMAIN and NODATA are answers (rcode in the
// message); a timeout, SERVFAIL or REFUSED is an error that knows its class.
// checks/dnsq implements it (and wraps any Resolver with the helpers checks
// use: TXT, MX, Addrs).
type Resolver interface {
	Exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error)
}

// CRLSource fetches certificate revocation lists. CRLs are CA
// infrastructure, outside the estate's scope; the scanner's source still
// refuses private and metadata addresses, and fetches each URL once a run.
type CRLSource interface {
	CRL(ctx context.Context, url string) (CRL, error)
}

// CRL is a fetched and parsed revocation list.
type CRL interface {
	// Revoked says whether serial is listed, and when it was revoked.
	Revoked(serial *big.Int) (at time.Time, listed bool)
	// CheckSignatureFrom verifies the list's signature with issuer's key.
	CheckSignatureFrom(issuer *x509.Certificate) error
	// Updates are the list's thisUpdate and nextUpdate (zero if absent).
	Updates() (this, next time.Time)
	// Bytes is the size fetched.
	Bytes() int
}

// Env is the network a check may use. Checks reach the network only through
// it, so that tests and `posture demo` swap in the lab. It names only small
// interfaces and standard types: the scanner provides the implementations.
type Env struct {
	DNS  Resolver // nil: no DNS (every lookup fails with class scope)
	Dial DialFunc // nil: no connections (ErrScope)
	// Lookup resolves a name to the addresses Dial will accept as IP
	// literals (the scope guard vouches for them). nil: A and AAAA
	// through DNS.
	Lookup func(ctx context.Context, name string) ([]netip.Addr, error)
	// HTTP is built over Dial by the scanner; nil: no HTTP.
	HTTP *http.Client
	// Roots are the trust anchors a collector needs while it collects (an
	// HTTPS fetch that must verify). Verdicts on certificates use
	// Policy.Roots instead, in Evaluate. nil: the system roots.
	Roots *x509.CertPool
	// PortMap rewrites well-known ports (443, 80, 25) for labs that cannot
	// bind them. Empty on real scans.
	PortMap map[int]int
	Log     *slog.Logger
	Now     func() time.Time
	// EHLOName is the name SMTP probes greet with: the scanner host's FQDN,
	// so a mail server's operator can see who is calling.
	EHLOName string
	// CRLs fetches revocation lists (nil: none is fetched, and revocation
	// by CRL is unknown).
	CRLs CRLSource
	// Hints are what the estate file says of an asset that DNS cannot tell
	// (key "dkim_selectors": the selectors its organisation signs with).
	// nil: none.
	Hints func(a Asset, key string) []string
	// Services are configured services a check may call by name ("rdap"):
	// not scan targets, so not behind the scope guard. A service that
	// times out or refuses is not asked again in the run (one timeout per
	// run, not one per domain). Absent: the check says unknown.
	Services map[string]Service
	// Lists are dated reference lists a check consults while it collects,
	// by name ("hsts-preload": Chromium's HSTS preload list), when the
	// operator supplies a newer copy than the one the check embeds. A
	// check records what the list said, and its date, as evidence.
	// Absent: the check's own copy.
	Lists map[string]List
	// Settings are the operator's options of a run that a collector reads
	// by key ("nuclei.templates"): how to collect, not how to judge (the
	// policy holds thresholds). nil: none.
	Settings map[string]string
}

// Setting returns an operator setting ("" when unset).
func (e *Env) Setting(key string) string {
	if e == nil {
		return ""
	}
	return e.Settings[key]
}

// List is a dated reference list: public data published on a date, in
// which a check looks names up while it collects.
type List interface {
	// Date is the list's publication date, YYYY-MM-DD.
	Date() string
	// Lookup returns the entry stored under key exactly (no climbing:
	// the check decides what a parent's entry means).
	Lookup(key string) (value string, ok bool)
}

// List returns a configured reference list by name.
func (e *Env) List(name string) (List, bool) {
	if e == nil || e.Lists == nil {
		return nil, false
	}
	l, ok := e.Lists[name]
	return l, ok && l != nil
}

// Service is a configured service: its base URL and the client to reach it.
type Service struct {
	URL    *url.URL
	Client *http.Client
}

// Hint returns an estate hint for a (nil when there is none).
func (e *Env) Hint(a Asset, key string) []string {
	if e == nil || e.Hints == nil {
		return nil
	}
	return e.Hints(a, key)
}

// Service returns a configured service by name.
func (e *Env) Service(name string) (Service, bool) {
	if e == nil {
		return Service{}, false
	}
	s, ok := e.Services[name]
	return s, ok && s.URL != nil && s.Client != nil
}

// ErrNoNetwork is returned by DialContext on an Env without a dialer.
var ErrNoNetwork = WithClass(ErrScope, errors.New("no network: the environment has no dialer"))

// ErrNoResolver is returned by lookups on an Env without a resolver.
var ErrNoResolver = WithClass(ErrScope, errors.New("no network: the environment has no DNS resolver"))

// DialContext dials through the injected dialer.
func (e *Env) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if e == nil || e.Dial == nil {
		return nil, ErrNoNetwork
	}
	return e.Dial(ctx, network, addr)
}

// Clock returns the current time from the injected clock.
func (e *Env) Clock() time.Time {
	if e == nil || e.Now == nil {
		return time.Now().UTC()
	}
	return e.Now().UTC()
}

// Logger never returns nil.
func (e *Env) Logger() *slog.Logger {
	if e == nil || e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// Port maps a well-known port through PortMap.
func (e *Env) Port(p int) int {
	if e != nil {
		if q, ok := e.PortMap[p]; ok {
			return q
		}
	}
	return p
}

// Addrs resolves name through Lookup (scope-checked on a scan) or, without
// one, A and AAAA through DNS. Checks that connect per address (one
// handshake per IP) use it.
func (e *Env) Addrs(ctx context.Context, name string) ([]netip.Addr, error) {
	if e != nil && e.Lookup != nil {
		return e.Lookup(ctx, name)
	}
	if e == nil || e.DNS == nil {
		return nil, ErrNoResolver
	}
	var out []netip.Addr
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m, err := e.DNS.Exchange(ctx, name, t)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", name, err)
		}
		// Follow the CNAME chain within the answer.
		cur := dns.CanonicalName(name)
		for range 9 {
			next := ""
			for _, rr := range m.Answer {
				if !strings.EqualFold(rr.Header().Name, cur) {
					continue
				}
				switch v := rr.(type) {
				case *dns.CNAME:
					next = dns.CanonicalName(v.Target)
				case *dns.A:
					if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
						out = append(out, a)
					}
				case *dns.AAAA:
					if a, ok := netip.AddrFromSlice(v.AAAA); ok {
						out = append(out, a)
					}
				}
			}
			if next == "" {
				break
			}
			cur = next
		}
	}
	return out, nil
}
