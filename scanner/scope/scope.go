// Package scope is the guard every connection of a scan goes through. It
// refuses names outside the estate's scope (including an in-scope name whose
// CNAME chain leaves the scope), addresses that are private, loopback,
// link-local or cloud metadata (unless AllowPrivate, and metadata never), and
// IP literals that no in-scope name resolved to. It also keeps scans polite:
// a cap on concurrent connections per IP, a short connect timeout, and a memo
// of dead addresses so a dead host costs one timeout, not one per probe.
package scope

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// Guard dials on behalf of checks. Its zero value refuses everything (no
// scope); set InScope.
type Guard struct {
	InScope func(name string) bool
	// Excluded is the operator's "never touch" list (scope.exclude). It
	// beats every allowance: a name it covers is refused whatever led to
	// it (an MX record, a CNAME, a CRL URL, a redirect).
	Excluded     func(name string) bool
	AllowPrivate bool // loopback, RFC 1918, link-local, ULA: for labs only
	DNS          *dnsq.Resolver
	// Dial is the network underneath: net.Dialer on a real scan, the lab's
	// network in tests and the demo.
	Dial           check.DialFunc
	PerIP          int           // concurrent connections per IP; 0: 4
	ConnectTimeout time.Duration // 0: 5 s
	DeadFor        time.Duration // how long a dead address stays dead; 0: 10 min

	mu      sync.Mutex
	skipped map[string]int // excluded names refused, with how often
	sems    map[netip.Addr]chan struct{}
	vouched map[netip.Addr]bool      // addresses in-scope names resolved to
	dead    map[netip.Addr]time.Time // connect timeouts
}

// Error is a refusal by the guard; its class is "scope".
type Error struct{ Msg string }

func (e *Error) Error() string { return "scope: " + e.Msg }
func (e *Error) Class() string { return string(check.ErrScope) }

func (g *Guard) refuse(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// metadata are cloud instance-metadata endpoints: never dialled, whatever
// the flags (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba).
var metadata = []netip.Prefix{
	netip.MustParsePrefix("169.254.169.254/32"),
	netip.MustParsePrefix("169.254.170.2/32"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
	netip.MustParsePrefix("100.100.100.200/32"),
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// AddrAllowed says whether an address may be dialled, and why not.
func AddrAllowed(a netip.Addr, allowPrivate bool) error {
	a = a.Unmap()
	for _, p := range metadata {
		if p.Contains(a) {
			return fmt.Errorf("%s is a cloud metadata address", a)
		}
	}
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return fmt.Errorf("%s is not a unicast address", a)
	case a.IsLoopback(), a.IsPrivate(), a.IsLinkLocalUnicast(), cgnat.Contains(a):
		if !allowPrivate {
			return fmt.Errorf("%s is a private, loopback or link-local address (--allow-private permits it, for labs only)", a)
		}
	}
	return nil
}

// excluded reports (and counts) a name the operator excluded.
func (g *Guard) excluded(name string) bool {
	if g.Excluded == nil || !g.Excluded(name) {
		return false
	}
	g.mu.Lock()
	if g.skipped == nil {
		g.skipped = map[string]int{}
	}
	g.skipped[name]++
	g.mu.Unlock()
	return true
}

// Skipped returns the excluded names the guard refused, with how many
// connections or lookups each would have had.
func (g *Guard) Skipped() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int, len(g.skipped))
	for k, v := range g.skipped {
		out[k] = v
	}
	return out
}

// Resolve resolves an in-scope name to the addresses the guard will dial,
// and vouches for them so that a later dial of an IP literal is allowed.
func (g *Guard) Resolve(ctx context.Context, name string) ([]netip.Addr, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if g.excluded(name) {
		return nil, g.refuse("%s is excluded from the scan (scope.exclude)", name)
	}
	if g.InScope == nil || !g.InScope(name) {
		return nil, g.refuse("%s is outside the estate's scope", name)
	}
	r := g.DNS
	if r == nil {
		r = &dnsq.Resolver{}
	}
	addrs, chain, err := r.Addrs(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("scope: resolve %s: %w", name, err)
	}
	for _, c := range chain {
		if g.excluded(c) {
			return nil, g.refuse("%s is an alias (CNAME) of %s, which is excluded from the scan (scope.exclude)", name, c)
		}
		if !g.InScope(c) {
			return nil, g.refuse("%s is an alias (CNAME) of %s, which is outside the estate's scope", name, c)
		}
	}
	var ok []netip.Addr
	var why error
	for _, a := range addrs {
		if err := AddrAllowed(a, g.AllowPrivate); err != nil {
			why = err
			continue
		}
		ok = append(ok, a)
	}
	if len(ok) == 0 {
		if why != nil {
			return nil, g.refuse("%s: %v", name, why)
		}
		return nil, check.WithClass(check.ErrUnreachable, fmt.Errorf("scope: %s has no address", name))
	}
	g.mu.Lock()
	if g.vouched == nil {
		g.vouched = map[netip.Addr]bool{}
	}
	for _, a := range ok {
		g.vouched[a] = true
	}
	g.mu.Unlock()
	return ok, nil
}

// DialContext dials "host:port" where host is an in-scope name or an address
// an in-scope name resolved to.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, g.refuse("bad address %q: %v", addr, err)
	}
	if _, err := strconv.Atoi(port); err != nil {
		return nil, g.refuse("bad port in %q", addr)
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := AddrAllowed(ip, g.AllowPrivate); err != nil {
			return nil, g.refuse("%v", err)
		}
		g.mu.Lock()
		ok := g.vouched[ip.Unmap()]
		g.mu.Unlock()
		if !ok {
			return nil, g.refuse("%s: no in-scope name resolves to this address", ip)
		}
		addrs = []netip.Addr{ip.Unmap()}
	} else {
		addrs, err = g.Resolve(ctx, host)
		if err != nil {
			return nil, err
		}
	}
	var last error
	for _, a := range addrs {
		c, err := g.dialAddr(ctx, network, a, port)
		if err == nil {
			return c, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// deadError marks an address found dead earlier in this run.
type deadError struct{ addr netip.Addr }

func (e *deadError) Error() string {
	return fmt.Sprintf("%s did not answer an earlier connection attempt in this run; not retried", e.addr)
}
func (e *deadError) Class() string { return string(check.ErrUnreachable) }

func (g *Guard) dialAddr(ctx context.Context, network string, a netip.Addr, port string) (net.Conn, error) {
	deadFor := g.DeadFor
	if deadFor <= 0 {
		deadFor = 10 * time.Minute
	}
	g.mu.Lock()
	if t, ok := g.dead[a]; ok && time.Since(t) < deadFor {
		g.mu.Unlock()
		return nil, &deadError{a}
	}
	if g.sems == nil {
		g.sems = map[netip.Addr]chan struct{}{}
	}
	sem, ok := g.sems[a]
	if !ok {
		n := g.PerIP
		if n <= 0 {
			n = 4
		}
		sem = make(chan struct{}, n)
		g.sems[a] = sem
	}
	g.mu.Unlock()

	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("scope: waiting for a connection slot to %s: %w", a, ctx.Err())
	}
	timeout := g.ConnectTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := g.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	c, err := dial(dctx, network, net.JoinHostPort(a.String(), port))
	if err != nil {
		<-sem
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)) {
			g.mu.Lock()
			if g.dead == nil {
				g.dead = map[netip.Addr]time.Time{}
			}
			g.dead[a] = time.Now()
			g.mu.Unlock()
		}
		return nil, err
	}
	return &slotConn{Conn: c, release: func() { <-sem }}, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// slotConn gives its per-IP slot back when closed.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
