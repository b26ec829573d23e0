package scope

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
)

// world is a loopback stand-in for the internet: names resolve through a
// real DNS server; every address dials one counting listener per address.
type world struct {
	dns   *dnstest.Server
	hits  map[string]*atomic.Int64
	ln    net.Listener
	block map[string]bool // addresses whose connects hang (dead hosts)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	srv, err := dnstest.Start([]string{"lab.nhs.uk", "outside.example"},
		`www.lab.nhs.uk. 60 IN A 127.0.0.1`,
		`alias.lab.nhs.uk. 60 IN CNAME web.outside.example.`,
		`web.outside.example. 60 IN A 203.0.113.7`,
		`meta.lab.nhs.uk. 60 IN A 169.254.169.254`,
		`dead.lab.nhs.uk. 60 IN A 127.0.0.2`,
	)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{dns: srv, ln: ln, hits: map[string]*atomic.Int64{}, block: map[string]bool{"127.0.0.2": true}}
	for _, a := range []string{"127.0.0.1", "203.0.113.7", "169.254.169.254", "127.0.0.2"} {
		w.hits[a] = new(atomic.Int64)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { srv.Close(); ln.Close() })
	return w
}

func (w *world) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	if w.block[host] {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if h, ok := w.hits[host]; ok {
		h.Add(1)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, w.ln.Addr().String())
}

func (w *world) guard(allowPrivate bool) *Guard {
	return &Guard{
		InScope:      func(n string) bool { return n == "lab.nhs.uk" || strings.HasSuffix(n, ".lab.nhs.uk") },
		AllowPrivate: allowPrivate,
		DNS:          &dnsq.Resolver{Servers: []string{w.dns.Addr}, Timeout: 300 * time.Millisecond},
		Dial:         w.dial,
	}
}

func TestGuardDial(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name         string
		addr         string
		allowPrivate bool
		wantErr      bool
		counted      string // the address whose listener must (not) be reached
	}{
		{"in-scope loopback name with allow-private connects", "www.lab.nhs.uk:443", true, false, "127.0.0.1"},
		{"loopback refused without allow-private", "www.lab.nhs.uk:443", false, true, "127.0.0.1"},
		{"name outside the scope refused", "web.outside.example:443", true, true, "203.0.113.7"},
		{"cname leaving the scope refused", "alias.lab.nhs.uk:443", true, true, "203.0.113.7"},
		{"metadata address refused even with allow-private", "meta.lab.nhs.uk:80", true, true, "169.254.169.254"},
		{"metadata ip literal refused", "169.254.169.254:80", true, true, "169.254.169.254"},
		{"ip literal no in-scope name resolved to refused", "203.0.113.7:443", true, true, "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := w.guard(tt.allowPrivate)
			before := w.hits[tt.counted].Load()
			c, err := g.DialContext(context.Background(), "tcp", tt.addr)
			if c != nil {
				c.Close()
			}
			got := w.hits[tt.counted].Load() - before
			if tt.wantErr {
				if err == nil || check.Classify(err) != check.ErrScope {
					t.Fatalf("err = %v, want a scope refusal", err)
				}
				if got != 0 {
					t.Fatalf("%d connections reached %s, want 0", got, tt.counted)
				}
				return
			}
			if err != nil || got != 1 {
				t.Fatalf("err = %v, connections = %d; want one connection", err, got)
			}
		})
	}
}

func TestGuardVouchedAddressMayBeDialledAsLiteral(t *testing.T) {
	w := newWorld(t)
	g := w.guard(true)
	addrs, err := g.Resolve(context.Background(), "www.lab.nhs.uk")
	if err != nil || len(addrs) != 1 {
		t.Fatalf("Resolve = %v, %v", addrs, err)
	}
	c, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort(addrs[0].String(), "443"))
	if err != nil {
		t.Fatalf("dial of a vouched address: %v", err)
	}
	c.Close()
}

func TestGuardDeadAddressCostsOneTimeout(t *testing.T) {
	w := newWorld(t)
	g := w.guard(true)
	g.ConnectTimeout = 100 * time.Millisecond
	start := time.Now()
	_, err := g.DialContext(context.Background(), "tcp", "dead.lab.nhs.uk:443")
	if check.Classify(err) != check.ErrTimeout {
		t.Fatalf("first dial: %v, want a timeout", err)
	}
	first := time.Since(start)
	start = time.Now()
	_, err = g.DialContext(context.Background(), "tcp", "dead.lab.nhs.uk:25")
	second := time.Since(start)
	if check.Classify(err) != check.ErrUnreachable {
		t.Fatalf("second dial: %v, want unreachable (known dead)", err)
	}
	if second > first/2 {
		t.Fatalf("second dial took %v after a first of %v: the dead address was waited out again", second, first)
	}
}

func TestGuardCapsConnectionsPerIP(t *testing.T) {
	w := newWorld(t)
	g := w.guard(true)
	g.PerIP = 1
	c1, err := g.DialContext(context.Background(), "tcp", "www.lab.nhs.uk:443")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := g.DialContext(ctx, "tcp", "www.lab.nhs.uk:443"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second concurrent dial: %v, want to wait for the slot", err)
	}
	c1.Close()
	c2, err := g.DialContext(context.Background(), "tcp", "www.lab.nhs.uk:443")
	if err != nil {
		t.Fatalf("dial after the slot was freed: %v", err)
	}
	c2.Close()
}

func TestHTTPClientDoesNotFollowRedirectOutOfScope(t *testing.T) {
	var outside atomic.Int64
	out := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { outside.Add(1) }))
	defer out.Close()
	in := httptest.NewServer(http.RedirectHandler("http://web.outside.example/", http.StatusFound))
	defer in.Close()
	srv, err := dnstest.Start([]string{"lab.nhs.uk", "outside.example"},
		`www.lab.nhs.uk. 60 IN A 127.0.0.1`, `web.outside.example. 60 IN A 127.0.0.2`)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g := &Guard{
		InScope:      func(n string) bool { return strings.HasSuffix(n, ".lab.nhs.uk") },
		AllowPrivate: true,
		DNS:          &dnsq.Resolver{Servers: []string{srv.Addr}},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			target := in.Listener.Addr().String()
			if strings.HasPrefix(addr, "127.0.0.2:") {
				target = out.Listener.Addr().String()
			}
			return (&net.Dialer{}).DialContext(ctx, network, target)
		},
	}
	resp, err := g.HTTPClient(nil).Get("http://www.lab.nhs.uk/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://web.outside.example/" {
		t.Fatalf("got %d %q, want the redirect response itself", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := outside.Load(); n != 0 {
		t.Fatalf("%d requests reached the out-of-scope server", n)
	}
}
