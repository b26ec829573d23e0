package lab

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
)

// External hosts are served by an independent TLS stack run as a child
// process, for what Go's TLS server cannot do: finite-field DHE, here with
// a 1024-bit group. The lab relays the host's 443 to the process. They
// exist only with Config.External and gnutls-serv on PATH (Debian package
// gnutls-bin), so nothing else depends on them.

// gnutlsPriority: TLS 1.2 and 1.3 with GnuTLS's normal suites plus DHE-RSA,
// whose group is the 1024-bit one of --dhparams.
const gnutlsPriority = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+DHE-RSA"

// external is the gnutls-serv process and the hosts it serves.
type external struct {
	bin string

	mu    sync.Mutex
	names []string // host names its certificate must cover

	addr string // 127.0.0.1:port, set by start before the lab accepts
	cmd  *exec.Cmd
	done chan struct{}
	dir  string
}

// newExternal finds gnutls-serv; nil when it is not installed.
func newExternal() *external {
	bin, err := exec.LookPath("gnutls-serv")
	if err != nil {
		return nil
	}
	return &external{bin: bin}
}

// externalCases are the TLS cases served by the external process.
func externalCases(x *external) []Case {
	return []Case{
		// DHE with a 1024-bit group (RFC 2409 Oakley group 2) beside ECDHE:
		// tls.dh-group fails; gnutls-serv staples nothing, so revocation
		// is the lab CRL's.
		{Name: "tls-dh1024", Family: "tls", Build: func(d string) Domain {
			www := "www." + d
			x.add(www)
			return Domain{Name: d, Hosts: []Host{{Name: www, Web: &WebSpec{Raw: x.relay}}},
				Expect: webExpect(www, want{"tls.dh-group": check.Fail})}
		}},
	}
}

func (x *external) add(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !slices.Contains(x.names, name) {
		x.names = append(x.names, name)
	}
}

// start issues the process's certificate (from the lab intermediate, for
// every name it serves), writes its files and runs it.
func (x *external) start(p *pki) error {
	dir, err := os.MkdirTemp("", "posture-lab-ext-")
	if err != nil {
		return fmt.Errorf("lab: external: %w", err)
	}
	x.dir = dir
	x.mu.Lock()
	names := slices.Clone(x.names)
	x.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	c, err := p.issue(CertSpec{Key: KeyRSA2048, Staple: StapleNone}, names)
	if err != nil {
		return err
	}
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return fmt.Errorf("lab: external: %w", err)
	}
	certFile, keyFile, dhFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "dh1024.pem")
	if err := errors.Join(os.WriteFile(certFile, chain, 0o600),
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600),
		tlstest.WriteDHParams(dhFile, tlstest.DH1024())); err != nil {
		return fmt.Errorf("lab: external: %w", err)
	}
	var last error
	for range 3 { // a free port may be taken before the process binds it
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("lab: external: %w", err)
		}
		cmd := exec.Command(x.bin, "--port", strconv.Itoa(port), "--x509certfile", certFile, "--x509keyfile", keyFile,
			"--dhparams", dhFile, "--priority", gnutlsPriority, "-a", "-q")
		out := &capped{max: 4 << 10}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("lab: external: %w", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := waitListening(addr, done, 10*time.Second); err != nil {
			_ = cmd.Process.Kill()
			<-done
			last = fmt.Errorf("lab: external: %s: %w: %s", x.bin, err, out.String())
			continue
		}
		x.addr, x.cmd, x.done = addr, cmd, done
		return nil
	}
	return last
}

// stop ends the process and removes its files.
func (x *external) stop() {
	if x.cmd != nil {
		_ = x.cmd.Process.Kill()
		<-x.done
	}
	if x.dir != "" {
		os.RemoveAll(x.dir)
	}
}

// relay carries a lab host's connection to the process and back.
func (x *external) relay(c *RawConn) {
	up, err := net.DialTimeout("tcp", x.addr, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	in := make(chan struct{})
	go func() {
		defer close(in)
		_, _ = io.Copy(up, c)
		up.Close()
	}()
	_, _ = io.Copy(c, up)
	c.Close() // ends the copy above
	<-in
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitListening(addr string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("exited before listening")
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not listening after %v", limit)
}

// capped keeps the first max bytes written (a child's output, for errors).
type capped struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *capped) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.max - len(w.b); n > 0 {
		w.b = append(w.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (w *capped) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
