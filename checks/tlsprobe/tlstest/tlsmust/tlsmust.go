// Package tlsmust is the testing side of tlstest: helpers that take a
// testing.TB, fail the test instead of returning an error, and undo what
// they started when the test ends (servers, child processes), plus the
// rule for external TLS stacks (gnutls-serv, openssl): a test skips loudly
// when one is missing, and fails when the environment variable CI is set,
// so that CI proves the interoperability tests ran.
//
// It imports "testing", so only _test.go files may import it; code that
// ships in the posture binary (the lab) uses tlstest.
package tlsmust

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
)

// NewCA is tlstest.NewCA that fails the test on error.
func NewCA(t testing.TB, name string) *tlstest.CA {
	t.Helper()
	ca, err := tlstest.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// Issue issues a leaf for the test, naming it host unless the leaf names
// itself (or is deliberately malformed).
func Issue(t testing.TB, ca *tlstest.CA, l tlstest.Leaf, host string) *tlstest.Issued {
	t.Helper()
	if l.Names == nil && !l.BadExtension {
		l.Names = []string{host}
	}
	is, err := ca.Issue(l)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// PeerFiles writes what an external TLS server (gnutls-serv, openssl
// s_server) needs into dir: an RSA-2048 leaf for host and its key, and
// 1024-bit DH parameters.
func PeerFiles(t testing.TB, ca *tlstest.CA, dir, host string) (certFile, keyFile, dh1024 string) {
	t.Helper()
	certFile, keyFile, err := Issue(t, ca, tlstest.Leaf{RSABits: 2048}, host).WritePEM(dir, "rsa")
	if err != nil {
		t.Fatal(err)
	}
	dh1024 = filepath.Join(dir, "dh1024.pem")
	if err := tlstest.WriteDHParams(dh1024, tlstest.DH1024()); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, dh1024
}

// NoLeak fails the test if, when it ends, more goroutines run than when
// NoLeak was called (after a grace period for connections to wind down):
// a probe of a hostile server must leave nothing behind.
func NoLeak(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines left behind (before %d, after %d)\n%s", n-before, before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// Start is tlstest.Serve for tests: it fails the test on error and closes
// the server at cleanup.
func Start(t testing.TB, handle func(net.Conn)) *tlstest.Server {
	t.Helper()
	s, err := tlstest.Serve(handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartTLS starts a crypto/tls server.
func StartTLS(t testing.TB, cfg *tls.Config) *tlstest.Server {
	t.Helper()
	return Start(t, tlstest.TLSHandler(cfg))
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

// InCI reports whether the tests run in CI: the environment variable CI
// is set and not empty (GitHub Actions, GitLab CI and most others set it;
// .ci/run, which installs the stacks, then refuses to go on without them).
func InCI() bool { return os.Getenv("CI") != "" }

// missing is the loud message for an external program that is not
// installed; without says what the test cannot do without it.
func missing(name, without string) string {
	return fmt.Sprintf("%s is not installed (apt-get install -y gnutls-bin openssl); %s", name, without)
}

// Binary returns the path of an external TLS stack's program. When it is
// not installed the test skips loudly, or, under CI (InCI), fails with
// the same message: CI installs gnutls-bin and openssl, so a missing one
// there means the interoperability tests did not run.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := missing(name, "this test compares the prober with an independent TLS stack")
		if InCI() {
			t.Fatalf("FAILED LOUDLY (CI is set, so a missing TLS stack fails the test): %s", msg)
		}
		t.Skipf("SKIPPED LOUDLY: %s", msg)
	}
	return p
}

// Without is for a test that carries on, with less coverage, when an
// external program it would use is missing: it logs so loudly, or, under
// CI (InCI), fails the test with the same message. without says what goes
// untested.
func Without(t testing.TB, name, without string) {
	t.Helper()
	msg := missing(name, without)
	if InCI() {
		t.Fatalf("FAILED LOUDLY (CI is set, so a missing TLS stack fails the test): %s", msg)
	}
	t.Logf("SKIPPED LOUDLY: %s", msg)
}

// Process runs an external server until the test ends.
type Process struct {
	Addr string
	out  *syncBuffer
}

// Output is what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// StartProcess runs name (found with Binary: skipped or, under CI, failed
// when missing) with args (where "{port}" is replaced by a free port) and
// waits until the port accepts connections. The process is killed when
// the test ends.
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
		return &Process{Addr: addr, out: out}
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
