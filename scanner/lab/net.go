package lab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The lab's network. Every lab host has its own loopback address
// (127.1.x.y: Linux routes all of 127/8 to lo, no root needed). Unprivileged
// code cannot bind 443, 80 or 25, so one listener per service on a high port
// of 0.0.0.0 serves every host, and tells them apart by the local address of
// the connection, which is the address the client dialled. Dial maps
// host:443/80/25 to those listeners, so DNS-only domains cost no listener.

// Well-known addresses outside the lab's scope. Dial maps them to counting
// listeners so a test can prove that nothing reached them.
const (
	OutsideZone = "outside.example"
	OutsideName = "web.outside.example" // resolves to OutsideIP
	OutsideIP   = "203.0.113.10"        // TEST-NET-3: a public-looking address
	MetadataIP  = "169.254.169.254"     // the cloud metadata service

	// The lab CA's CRL, at a CA host outside the estate (fetched as a
	// configured service, not a scan target), and a distribution point
	// whose host does not resolve.
	CRLHost    = "crl.lab-ca." + OutsideZone
	CRLIP      = "203.0.113.20"
	CRLURL     = "http://" + CRLHost + "/lab.crl"  // the intermediate's: leaves
	RootCRLURL = "http://" + CRLHost + "/root.crl" // the root's: intermediates
	DeadCRLURL = "http://gone.lab-ca." + OutsideZone + "/lab.crl"
)

type service int

const (
	svcHTTPS service = iota
	svcHTTP
	svcSMTP
	nServices
)

var wellKnown = [nServices]int{svcHTTPS: 443, svcHTTP: 80, svcSMTP: 25}

func (s service) String() string { return [...]string{"https", "http", "smtp"}[s] }

// hostIP is the n-th lab host address: 127.1.0.1, 127.1.0.2, … skipping .0
// and .255 in the last octet.
func hostIP(n int) netip.Addr {
	const per = 254
	a := 1 + n/(256*per)
	b := (n / per) % 256
	c := n%per + 1
	return netip.AddrFrom4([4]byte{127, byte(a), byte(b), byte(c)})
}

// chanListener hands connections accepted elsewhere to a server's Serve.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// push hands c to the server, or closes it if the server has gone.
func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// countingListener counts accepted connections (outside addresses).
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// listen opens one service listener; run starts its accept loop.
func (l *Lab) listen(s service) error {
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		return fmt.Errorf("lab: listen %s: %w", s, err)
	}
	l.svc[s] = ln
	l.Ports[wellKnown[s]] = ln.Addr().(*net.TCPAddr).Port
	return nil
}

// run starts the accept loops, once everything they read is in place.
func (l *Lab) run() {
	for s, ln := range l.svc {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue
					}
					time.Sleep(10 * time.Millisecond) // e.g. EMFILE: back off
					continue
				}
				l.dispatch(service(s), c)
			}
		}()
	}
}

func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(t.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// dispatch routes one accepted connection to the server of the host that was
// dialled. Peers from off the machine are refused: the listeners are on
// 0.0.0.0 only because a socket cannot bind a /8.
func (l *Lab) dispatch(s service, c net.Conn) {
	if !addrOf(c.RemoteAddr()).IsLoopback() {
		c.Close()
		return
	}
	h := l.hosts[addrOf(c.LocalAddr())]
	if h == nil || !h.serves(s) {
		c.Close()
		return
	}
	h.conns.Add(1)
	if h.Dead {
		l.hold(c)
		return
	}
	switch s {
	case svcHTTPS:
		cfg := h.webTLS(l.pki)
		serve := func(c net.Conn) { l.web[svcHTTPS].push(tls.Server(c, cfg)) }
		if h.Web.Raw != nil {
			l.raw(c, h.Name, h.Web.Raw, cfg, serve)
			return
		}
		serve(c)
	case svcHTTP:
		l.web[svcHTTP].push(c)
	case svcSMTP:
		if h.SMTP.Raw != nil {
			l.raw(c, h.Name, h.SMTP.Raw, h.smtpTLS(l.pki), func(c net.Conn) { h.smtpListener(l).push(c) })
			return
		}
		h.smtpListener(l).push(c)
	}
}

// hold keeps a connection open and silent until the lab closes (a dead host
// reached directly rather than through Dial).
func (l *Lab) hold(c net.Conn) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		<-l.done
		c.Close()
	}()
}

// Dial is the lab's network: it reaches lab hosts (by name, resolved through
// the lab DNS, or by address; ports 443, 80 and 25 or the lab's own ports),
// the lab's own services (DNS, GitHub, CT, the SMTP sink), and the counting
// listeners of the outside addresses. Everything else is unreachable: the
// lab has no internet. Config.Latency is added before each connection.
func (l *Lab) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: labAddr(addr), Err: err}
	}
	switch network {
	case "tcp", "tcp4", "udp", "udp4":
	default:
		return nil, opErr(fmt.Errorf("lab: network %q not supported", network))
	}
	hostPart, portPart, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, opErr(err)
	}
	port, err := strconv.Atoi(portPart)
	if err != nil || port <= 0 || port > 65535 {
		return nil, opErr(fmt.Errorf("lab: bad port %q", portPart))
	}
	ip, err := netip.ParseAddr(hostPart)
	if err != nil {
		if ip, err = l.lookup(ctx, hostPart); err != nil {
			return nil, opErr(err)
		}
	}
	ip = ip.Unmap()
	if err := sleep(ctx, l.cfg.Latency); err != nil {
		return nil, opErr(err)
	}
	udp := network == "udp" || network == "udp4"
	var d net.Dialer
	target := ""
	switch {
	case ip == netip.AddrFrom4([4]byte{127, 0, 0, 1}) && l.infra[port]:
		target = netip.AddrPortFrom(ip, uint16(port)).String()
	case l.nameservers[ip] && port == 53:
		target = l.DNSAddr
	case port == 53 && l.hygiene.server(ip) != "":
		target = l.hygiene.server(ip) // a name server with a behaviour (dnshygiene.go)
	case l.outside[ip] != nil:
		if udp {
			return nil, opErr(refused())
		}
		target = l.outside[ip].Addr().String()
	case l.hosts[ip] != nil:
		h := l.hosts[ip]
		if h.Dead {
			return nil, opErr(l.blackhole(ctx))
		}
		s, ok := l.serviceAt(port)
		if udp || !ok || !h.serves(s) {
			return nil, opErr(refused())
		}
		target = netip.AddrPortFrom(ip, uint16(l.Ports[wellKnown[s]])).String()
	default:
		return nil, opErr(&os.SyscallError{Syscall: "connect", Err: syscall.ENETUNREACH})
	}
	if udp {
		return d.DialContext(ctx, "udp4", target)
	}
	return d.DialContext(ctx, "tcp4", target)
}

// serviceAt maps a port (well-known or the lab's own) to a service.
func (l *Lab) serviceAt(port int) (service, bool) {
	for s := service(0); s < nServices; s++ {
		if port == wellKnown[s] || port == l.Ports[wellKnown[s]] {
			return s, true
		}
	}
	return 0, false
}

func refused() error { return &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED} }

// blackhole waits like a SYN to a dropping firewall: until the caller gives
// up (or the lab closes).
func (l *Lab) blackhole(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return net.ErrClosed
	}
}

// lookup resolves a name to its first IPv4 address through the lab DNS.
func (l *Lab) lookup(ctx context.Context, name string) (netip.Addr, error) {
	addrs, _, err := l.resolver.Addrs(ctx, name)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// labAddr is the net.Addr of an OpError: the address as dialled.
type labAddr string

func (a labAddr) Network() string { return "tcp" }
func (a labAddr) String() string  { return string(a) }

// Conns returns how many connections reached an address: a lab host's (at
// its listeners) or an outside one's (at its counting listener).
func (l *Lab) Conns(ip string) int {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return 0
	}
	if o := l.outside[a]; o != nil {
		return int(o.n.Load())
	}
	if h := l.hosts[a]; h != nil {
		return int(h.conns.Load())
	}
	return 0
}
