package webfetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

// lab maps "host:port" (as the fetcher dials it) to a loopback address;
// any other address is refused with class scope, as the scope guard does.
type lab struct {
	mu     sync.Mutex
	routes map[string]string
	dials  map[string]int
}

func newLab() *lab { return &lab{routes: map[string]string{}, dials: map[string]int{}} }

func (l *lab) route(hostport, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.routes[hostport] = addr
}

func (l *lab) dialed(hostport string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dials[hostport]
}

func (l *lab) env() *check.Env {
	return &check.Env{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		l.mu.Lock()
		to, ok := l.routes[addr]
		l.dials[addr]++
		l.mu.Unlock()
		if !ok {
			return nil, check.WithClass(check.ErrScope, fmt.Errorf("scope: %s is not in the estate", addr))
		}
		var d net.Dialer
		return d.DialContext(ctx, network, to)
	}}
}

// serveHTTP starts an HTTP server for host on :80 of the lab.
func (l *lab) serveHTTP(t *testing.T, host string, h http.Handler) {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	l.route(host+":80", s.Listener.Addr().String())
}

// serveHTTPS starts an HTTPS server for host on :443 of the lab.
func (l *lab) serveHTTPS(t *testing.T, host string, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewTLSServer(h)
	t.Cleanup(s.Close)
	l.route(host+":443", s.Listener.Addr().String())
	return s
}

// serveRaw starts a raw TCP server for host:port of the lab: handle gets
// each connection after its request head was read.
func (l *lab) serveRaw(t *testing.T, hostport string, handle func(net.Conn)) {
	t.Helper()
	s := tlsmust.Start(t, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 4096)
		var got []byte
		for !strings.Contains(string(got), "\r\n\r\n") {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			got = append(got, buf[:n]...)
		}
		handle(c)
	})
	l.route(hostport, s.Addr)
}

func redirectTo(status int, loc string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", loc)
		w.WriteHeader(status)
	})
}

func ok(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, body)
	})
}

func isClass(err error, c check.ErrClass) bool {
	var ce *check.ClassError
	return errors.As(err, &ce) && ce.Kind == c
}
