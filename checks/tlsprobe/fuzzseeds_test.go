//go:build seeds

// Regenerates the FuzzReadResponse seed corpus from real servers:
// go test -tags seeds -run TestWriteFuzzSeeds ./checks/tlsprobe/

package tlsprobe

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

// TestWriteFuzzSeeds records real servers' answers to our hellos as the
// committed seed corpus. Build tag seeds: see the top of the file.
func TestWriteFuzzSeeds(t *testing.T) {
	ca, err := tlstest.NewCA("Seed")
	if err != nil {
		t.Fatal(err)
	}
	rsaLeaf, _ := ca.Issue(tlstest.Leaf{Names: []string{"seed.lab"}, RSABits: 2048})
	ecLeaf, _ := ca.Issue(tlstest.Leaf{Names: []string{"seed.lab"}})
	dir := filepath.Join("testdata", "fuzz", "FuzzReadResponse")
	_ = os.MkdirAll(dir, 0o755)
	captureAt := func(name, addr string, vi int, h Hello) {
		msg := sslv2Hello()
		if h.Version != SSL20 {
			var err error
			if msg, err = h.Marshal(); err != nil {
				t.Fatal(err)
			}
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write(msg)
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(c)
		data := append([]byte{byte(vi)}, buf.Bytes()...)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	capture := func(name string, handle func(net.Conn), vi int, h Hello) {
		captureAt(name, tlsmust.Start(t, handle).Addr, vi, h)
	}
	all12 := ids(SuitesAt(TLS12))
	rsa12 := &tls.Config{Certificates: []tls.Certificate{rsaLeaf.Cert}, MaxVersion: tls.VersionTLS12}
	capture("go-tls12-ecdhe-rsa", tlstest.TLSHandler(rsa12), 0, Hello{Version: TLS12, Suites: all12})
	capture("go-tls13", tlstest.TLSHandler(&tls.Config{Certificates: []tls.Certificate{ecLeaf.Cert}}), 1,
		Hello{Version: TLS13, Suites: ids(SuitesAt(TLS13))})
	capture("go-tls13-hrr", tlstest.TLSHandler(&tls.Config{Certificates: []tls.Certificate{ecLeaf.Cert},
		CurvePreferences: []tls.CurveID{tls.CurveP384}}), 1, Hello{Version: TLS13, Suites: ids(SuitesAt(TLS13))})
	capture("go-refuses-tls10", tlstest.TLSHandler(rsa12), 3, Hello{Version: TLS10, Suites: ids(SuitesAt(TLS10))})
	capture("sslv3", tlstest.SSLv3Handler([]uint16{0x000A}, rsaLeaf.Cert.Certificate, nil), 2,
		Hello{Version: SSL30, Suites: ids(SuitesAt(SSL30))})
	capture("sslv2-server-hello", tlstest.SSLv2Handler(rsaLeaf.Cert.Certificate[0], nil), 0, Hello{Version: SSL20})

	// GnuTLS with DHE: a ServerKeyExchange with finite-field parameters.
	tmp := t.TempDir()
	certFile, keyFile, _ := rsaLeaf.WritePEM(tmp, "rsa")
	dh := filepath.Join(tmp, "dh.pem")
	_ = tlstest.WriteDHParams(dh, tlstest.DH1024())
	srv := tlsmust.StartProcess(t, "gnutls-serv", "--port", "{port}", "--x509certfile", certFile, "--x509keyfile", keyFile,
		"--priority", "NONE:+VERS-TLS1.2:+DHE-RSA:+AES-128-CBC:+SHA1:+COMP-NULL:+SIGN-ALL:+GROUP-ALL", "--dhparams", dh, "-a", "-q")
	captureAt("gnutls-dhe-1024", srv.Addr, 0, Hello{Version: TLS12, Suites: all12})
	_ = context.Background
}
