package check

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/nhsx/posture/checks/crl"
	"github.com/nhsx/posture/checks/dnsq"
)

// DialFunc opens a connection. The scanner hands checks one that goes through
// the scope guard; tests hand them one that reaches the lab.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Env is the network a check may use. Checks reach the network only through
// it, so that tests and `posture demo` swap in the lab.
type Env struct {
	DNS  *dnsq.Resolver // nil: a resolver on /etc/resolv.conf
	Dial DialFunc       // nil: no connections (ErrScope)
	// Lookup resolves a name to the addresses Dial will accept as IP
	// literals (the scope guard vouches for them). nil: DNS.Addrs.
	Lookup func(ctx context.Context, name string) ([]netip.Addr, error)
	// HTTP is built over Dial by the scanner; nil: a client over Dial.
	HTTP *http.Client
	// Roots are the trust anchors for certificate checks: system roots plus
	// --ca-file. nil: the system roots.
	Roots *x509.CertPool
	// PortMap rewrites well-known ports (443, 80, 25) for labs that cannot
	// bind them. Empty on real scans.
	PortMap map[int]int
	Log     *slog.Logger
	Now     func() time.Time
	// EHLOName is the name SMTP probes greet with: the scanner host's FQDN,
	// so a mail server's operator can see who is calling.
	EHLOName string
	// Services reaches CA infrastructure (CRLs) the way the scanner reaches
	// its configured services: not through the scope guard, since the CA's
	// host is not in the estate. nil: no CRL is fetched.
	Services *http.Client
	// CRLs is the run's CRL cache, shared by every host (many certificates
	// share one CRL). nil: each fetch is made afresh.
	CRLs *crl.Cache
}

var defaultResolver = &dnsq.Resolver{}

// Resolver returns the DNS resolver, never nil.
func (e *Env) Resolver() *dnsq.Resolver {
	if e == nil || e.DNS == nil {
		return defaultResolver
	}
	return e.DNS
}

// ErrNoNetwork is returned by DialContext on an Env without a dialer.
var ErrNoNetwork = WithClass(ErrScope, errors.New("no network: the environment has no dialer"))

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

// Addrs resolves name through Lookup (scope-checked on a scan) or the
// resolver. Checks that connect per address (one handshake per IP) use it.
func (e *Env) Addrs(ctx context.Context, name string) ([]netip.Addr, error) {
	if e != nil && e.Lookup != nil {
		return e.Lookup(ctx, name)
	}
	addrs, _, err := e.Resolver().Addrs(ctx, name)
	return addrs, err
}
