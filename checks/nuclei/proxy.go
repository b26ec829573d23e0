package nuclei

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
)

// guardProxy is the only way out of a worker. It listens on loopback and
// speaks SOCKS5 (nuclei's own dialer, DNS over TCP) and HTTP (CONNECT for
// https, absolute-form requests for http) on one port; every connection it
// makes to a target goes through env.DialContext — the scope guard on a
// scan — so nuclei cannot reach anything the guard refuses. Names travel
// to the proxy (HTTP CONNECT) and are resolved by the guard, not by the
// worker. It also relays DNS (UDP and TCP) to env.DNS for the worker's
// resolver and dns templates.
//
// Per host it applies a connection rate limit, a deadline (the per-host
// budget) and a byte cap, and counts what happened (dials, refusals, the
// class of the last failure) for the evidence.
type guardProxy struct {
	env      *check.Env
	ln       net.Listener
	dnsUDP   net.PacketConn
	dnsTCP   net.Listener
	dnsSrv   []*dns.Server
	httpLn   *connQueue
	srv      *http.Server
	self     map[string]bool // our own addresses: dialled directly
	hostRate float64         // new connections per second per host (0: none)
	budget   time.Duration   // per host, from the first connection
	maxBytes int64           // per host, downstream

	// ctx ends with Close: dials in flight give up.
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	hosts map[string]*hostNet
	wg    sync.WaitGroup
}

// hostNet is what the proxy saw of one host.
//
// Schema (JSON): {"dials", "refused", "failed", "scope" (refused by the
// guard), "last_class", "bytes"}.
type hostNet struct {
	Dials     int            `json:"dials"`
	Refused   int            `json:"refused,omitempty"`
	Failed    int            `json:"failed,omitempty"`
	Scope     int            `json:"scope,omitempty"`
	LastClass check.ErrClass `json:"last_class,omitempty"`
	Bytes     int64          `json:"bytes,omitempty"`
	first     time.Time
	next      time.Time
	conns     map[net.Conn]bool
}

func startProxy(env *check.Env, hostRate float64, budget time.Duration, maxBytes int64) (*guardProxy, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &guardProxy{env: env, ln: ln, hostRate: hostRate, budget: budget, maxBytes: maxBytes,
		hosts: map[string]*hostNet{}, self: map[string]bool{ln.Addr().String(): true}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if err := p.startDNS(); err != nil {
		ln.Close()
		return nil, err
	}
	p.httpLn = &connQueue{addr: ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serveHTTP), ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes: 64 << 10, ErrorLog: nil}
	p.wg.Add(2)
	go func() { defer p.wg.Done(); _ = p.srv.Serve(p.httpLn) }()
	go func() { defer p.wg.Done(); p.accept() }()
	return p, nil
}

// Addr is the proxy's host:port; DNSAddr the relay's.
func (p *guardProxy) Addr() string    { return p.ln.Addr().String() }
func (p *guardProxy) DNSAddr() string { return p.dnsUDP.LocalAddr().String() }

func (p *guardProxy) Close() {
	if p.cancel != nil {
		p.cancel()
	}
	p.ln.Close()
	p.httpLn.Close()
	p.srv.Close()
	for _, s := range p.dnsSrv {
		_ = s.Shutdown()
	}
	p.mu.Lock()
	for _, h := range p.hosts {
		for c := range h.conns {
			c.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// ScopeRefused counts the connections the guard refused, to any host.
func (p *guardProxy) ScopeRefused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, h := range p.hosts {
		n += h.Scope
	}
	return n
}

// Host returns a copy of what the proxy saw of host (lower case).
func (p *guardProxy) Host(host string) hostNet {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h := p.hosts[strings.ToLower(host)]; h != nil {
		c := *h
		c.conns = nil
		return c
	}
	return hostNet{}
}

func (p *guardProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			br := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, err := br.Peek(1)
			if err != nil {
				c.Close()
				return
			}
			c.SetReadDeadline(time.Time{})
			bc := &bufConn{Conn: c, r: br}
			if b[0] == 0x05 {
				p.serveSOCKS(bc)
				return
			}
			p.httpLn.push(bc)
		}()
	}
}

// dial connects to host:port for the worker: through env (the guard),
// within the host's rate, budget and byte cap. Our own addresses (the DNS
// relay, the proxy itself) are dialled directly.
func (p *guardProxy) dial(ctx context.Context, addr string) (net.Conn, error) {
	if p.ctx != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(p.ctx, cancel)
		defer stop()
	}
	if p.self[addr] {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, check.WithClass(check.ErrScope, fmt.Errorf("bad address %q", addr))
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	p.mu.Lock()
	h := p.hosts[host]
	if h == nil {
		h = &hostNet{conns: map[net.Conn]bool{}}
		p.hosts[host] = h
	}
	now := time.Now()
	if h.first.IsZero() {
		h.first = now
	}
	deadline := h.first.Add(p.budget)
	if p.budget > 0 && now.After(deadline) {
		h.Failed++
		h.LastClass = check.ErrTimeout
		p.mu.Unlock()
		return nil, check.WithClass(check.ErrTimeout, fmt.Errorf("%s: the per-host budget of %s is spent", host, p.budget))
	}
	wait := time.Duration(0)
	if p.hostRate > 0 {
		if h.next.After(now) {
			wait = h.next.Sub(now)
		}
		h.next = now.Add(wait + time.Duration(float64(time.Second)/p.hostRate))
	}
	h.Dials++
	p.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	dctx := ctx
	if p.budget > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	c, err := p.env.DialContext(dctx, "tcp", addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		cl := check.Classify(err)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			h.Refused++
		case cl == check.ErrScope:
			h.Scope++
		default:
			h.Failed++
		}
		h.LastClass = cl
		return nil, err
	}
	if p.budget > 0 {
		c.SetDeadline(deadline)
	}
	mc := &meteredConn{Conn: c, p: p, h: h}
	h.conns[mc] = true
	return mc, nil
}

// connByteCap bounds one connection's bytes from the host: nuclei reads
// at most respReadSize of a response body, so a connection that sends
// more (headers of hundreds of kilobytes, an endless body the worker is
// slow to drop) is hostile and cut.
const connByteCap = 384 << 10

// meteredConn counts the bytes a host sends and cuts the connection at
// its cap, and the host at the host's.
type meteredConn struct {
	net.Conn
	p    *guardProxy
	h    *hostNet
	n    int64
	once sync.Once
}

func (c *meteredConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.n += int64(n)
		c.p.mu.Lock()
		c.h.Bytes += int64(n)
		over := (c.p.maxBytes > 0 && c.h.Bytes > c.p.maxBytes) || c.n > connByteCap
		if over {
			c.h.LastClass = check.ErrTooLarge
		}
		c.p.mu.Unlock()
		if over {
			c.Conn.Close()
			return n, check.WithClass(check.ErrTooLarge, errors.New("the per-host byte cap is reached"))
		}
	}
	return n, err
}

func (c *meteredConn) Close() error {
	c.once.Do(func() {
		c.p.mu.Lock()
		delete(c.h.conns, c)
		c.p.mu.Unlock()
	})
	return c.Conn.Close()
}

// serveHTTP: CONNECT tunnels, and absolute-form requests forwarded.
func (p *guardProxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		up, err := p.dial(r.Context(), r.Host)
		if err != nil {
			http.Error(w, "posture proxy: "+err.Error(), http.StatusBadGateway)
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			up.Close()
			return
		}
		c, brw, err := hj.Hijack()
		if err != nil {
			up.Close()
			return
		}
		_, _ = c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		var down net.Conn = c
		if brw != nil && brw.Reader.Buffered() > 0 {
			down = &bufConn{Conn: c, r: brw.Reader}
		}
		splice(down, up)
		return
	}
	if r.URL == nil || r.URL.Host == "" || r.URL.Scheme != "http" {
		http.Error(w, "posture proxy: only CONNECT and http:// requests", http.StatusBadRequest)
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.Out.URL = pr.In.URL; pr.Out.Host = pr.In.Host },
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return p.dial(ctx, addr)
			},
			DisableCompression: true, DisableKeepAlives: true,
			ResponseHeaderTimeout: 15 * time.Second, MaxResponseHeaderBytes: 64 << 10,
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "posture proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	rp.ServeHTTP(w, r)
}

// serveSOCKS serves one SOCKS5 CONNECT (RFC 1928), no authentication.
func (p *guardProxy) serveSOCKS(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 || hdr[1] == 0 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[0] != 5 {
		return
	}
	reply := func(code byte) { _, _ = c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0}) }
	if req[1] != 1 { // CONNECT only
		reply(7)
		return
	}
	var host string
	switch req[3] {
	case 1:
		var a [4]byte
		if _, err := io.ReadFull(c, a[:]); err != nil {
			return
		}
		host = net.IP(a[:]).String()
	case 4:
		var a [16]byte
		if _, err := io.ReadFull(c, a[:]); err != nil {
			return
		}
		host = net.IP(a[:]).String()
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		b := make([]byte, l[0])
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		host = string(b)
	default:
		reply(8)
		return
	}
	var pb [2]byte
	if _, err := io.ReadFull(c, pb[:]); err != nil {
		return
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb[:]))))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	up, err := p.dial(ctx, addr)
	cancel()
	if err != nil {
		code := byte(5) // connection refused
		if check.Classify(err) == check.ErrScope {
			code = 2 // not allowed by ruleset
		}
		reply(code)
		return
	}
	c.SetDeadline(time.Time{})
	reply(0)
	splice(c, up)
}

// splice copies both ways until either side ends or stays idle for 10 s.
func splice(a, b net.Conn) {
	defer a.Close()
	defer b.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			src.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
}

// bufConn is a conn whose first bytes were read ahead into r.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// connQueue is a listener fed with conns the proxy has sniffed as HTTP.
type connQueue struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (q *connQueue) push(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.done:
		c.Close()
	}
}
func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}
func (q *connQueue) Close() error   { q.once.Do(func() { close(q.done) }); return nil }
func (q *connQueue) Addr() net.Addr { return q.addr }

// startDNS relays the worker's DNS (UDP and TCP, one port) to env.DNS.
func (p *guardProxy) startDNS() error {
	var err error
	for range 10 {
		if p.dnsUDP, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			return err
		}
		if p.dnsTCP, err = net.Listen("tcp4", p.dnsUDP.LocalAddr().String()); err == nil {
			break
		}
		p.dnsUDP.Close()
	}
	if err != nil {
		return err
	}
	p.self[p.dnsTCP.Addr().String()] = true
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if len(q.Question) != 1 || p.env == nil || p.env.DNS == nil {
			m.Rcode = dns.RcodeRefused
			_ = w.WriteMsg(m)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		qq := q.Question[0]
		r, err := p.env.DNS.Exchange(ctx, qq.Name, qq.Qtype)
		if err != nil || r == nil {
			m.Rcode = dns.RcodeServerFailure
			_ = w.WriteMsg(m)
			return
		}
		r = r.Copy()
		r.Id = q.Id
		r.Question = q.Question
		r.Response = true
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			r.Truncate(dns.MinMsgSize)
		}
		_ = w.WriteMsg(r)
	})
	for _, s := range []*dns.Server{{PacketConn: p.dnsUDP, Handler: h}, {Listener: p.dnsTCP, Handler: h}} {
		p.dnsSrv = append(p.dnsSrv, s)
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		p.wg.Add(1)
		go func() { defer p.wg.Done(); _ = s.ActivateAndServe() }()
		<-started
	}
	return nil
}
