package tlstest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a loopback TCP server that runs handle on every connection.
// Close stops it and waits for every handler to return.
type Server struct {
	Addr string
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]bool
	n    int
}

// Serve starts handle on a loopback port (127.0.0.1).
func Serve(handle func(net.Conn)) (*Server, error) { return ServeOn("127.0.0.1:0", handle) }

// ServeOn starts handle on addr ("127.0.0.5:0" for a lab address).
func ServeOn(addr string, handle func(net.Conn)) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln, open: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.open[c] = true
			s.n++
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					s.mu.Lock()
					delete(s.open, c)
					s.mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	return s, nil
}

// Conns is the number of connections accepted so far.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Close stops accepting, closes open connections and waits for handlers.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Start is Serve for tests: it fails the test on error and closes the
// server at cleanup.
func Start(t testing.TB, handle func(net.Conn)) *Server {
	t.Helper()
	s, err := Serve(handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TLSHandler answers each connection with a crypto/tls server handshake
// (and then closes it).
func TLSHandler(cfg *tls.Config) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(tc, 1)) // wait for the client to hang up
		}
	}
}

// StartTLS starts a crypto/tls server.
func StartTLS(t testing.TB, cfg *tls.Config) *Server {
	t.Helper()
	return Start(t, TLSHandler(cfg))
}

// Stall accepts and never answers, until the client or Close hangs up.
func Stall(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// Respond reads one ClientHello record and writes reply, then waits for the
// client to hang up.
func Respond(reply []byte) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := ReadHello(c); err != nil {
			return
		}
		_, _ = c.Write(reply)
		_, _ = io.Copy(io.Discard, c)
	}
}

// RespondAndClose is Respond that hangs up right after the reply.
func RespondAndClose(reply []byte) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := ReadHello(c); err == nil {
			_, _ = c.Write(reply)
		}
	}
}

// ReadHello reads one TLS record (or SSLv2 message) and returns it whole.
func ReadHello(r io.Reader) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return nil, err
	}
	if hdr[0]&0x80 != 0 { // SSLv2
		n := int(hdr[0]&0x7f)<<8 | int(hdr[1])
		body := make([]byte, n)
		_, err := io.ReadFull(r, body)
		return append(hdr[:2:2], body...), err
	}
	if _, err := io.ReadFull(r, hdr[2:]); err != nil {
		return nil, err
	}
	n := int(hdr[3])<<8 | int(hdr[4])
	body := make([]byte, n)
	_, err := io.ReadFull(r, body)
	return append(hdr[:], body...), err
}

// Record frames body as one TLS record.
func Record(typ byte, version uint16, body []byte) []byte {
	return append([]byte{typ, byte(version >> 8), byte(version), byte(len(body) >> 8), byte(len(body))}, body...)
}

// Handshake frames a handshake message.
func Handshake(typ byte, body []byte) []byte {
	n := len(body)
	return append([]byte{typ, byte(n >> 16), byte(n >> 8), byte(n)}, body...)
}

// ServerHello builds a ServerHello body choosing version and suite.
func ServerHello(version, suite uint16) []byte {
	b := []byte{byte(version >> 8), byte(version)}
	b = append(b, make([]byte, 32)...) // random
	b[2] = 1                           // not the HelloRetryRequest random
	b = append(b, 0)                   // session id
	b = append(b, byte(suite>>8), byte(suite), 0)
	return b
}

// Binary reports whether an external TLS stack is installed; tests skip
// loudly when it is not (CI installs gnutls-bin and openssl).
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIPPED LOUDLY: %s is not installed (apt-get install -y gnutls-bin openssl); this test compares the prober with an independent TLS stack", name)
	}
	return p
}

// FreePort returns a loopback address with a port free at the time.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Process runs an external server until the test ends.
type Process struct {
	Addr string
	cmd  *exec.Cmd
	out  *syncBuffer
}

// Output is what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// StartProcess runs name with args (where "{port}" is replaced by a free
// port) and waits until the port accepts connections.
func StartProcess(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	bin := Binary(t, name)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr := FreePort(t)
		_, port, _ := net.SplitHostPort(addr)
		a := make([]string, len(args))
		for i, x := range args {
			a[i] = strings.ReplaceAll(x, "{port}", port)
		}
		out := &syncBuffer{}
		cmd := exec.Command(bin, a...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Stdin = strings.NewReader("") // s_server reads commands from stdin
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		p := &Process{Addr: addr, cmd: cmd, out: out}
		if err := waitPort(addr, done, 10*time.Second); err != nil {
			_ = cmd.Process.Kill()
			<-done
			lastErr = fmt.Errorf("%s %v: %v\n%s", name, a, err, out.String())
			continue
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-done
		})
		return p
	}
	t.Fatal(lastErr)
	return nil
}

func waitPort(addr string, done <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return errors.New("exited before listening")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not listening after " + limit.String())
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() < 1<<20 {
		s.b.Write(p)
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines runs a command and returns its output lines (for listing what a
// stack was configured to accept).
func Lines(ctx context.Context, name string, args ...string) ([]string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("%s %v: %w", name, args, err)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, nil
}

// DialLoopback is a DialFunc over the real loopback network.
func DialLoopback(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
