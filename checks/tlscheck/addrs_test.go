package tlscheck_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlscheck"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

// twoAddrs serves host on 127.0.0.1 and 127.0.0.2 with a config each (nil:
// nothing listens there, so connections are refused), and returns an Env
// whose Lookup gives both and whose Dial maps port 443 on each to its
// server.
func twoAddrs(t *testing.T, roots *x509.CertPool, cfgs [2]*tls.Config) *check.Env {
	t.Helper()
	ips := []string{"127.0.0.1", "127.0.0.2"}
	to := map[string]string{}
	for i, cfg := range cfgs {
		if cfg == nil {
			ln, err := net.Listen("tcp", ips[i]+":0")
			if err != nil {
				t.Fatal(err)
			}
			to[ips[i]+":443"] = ln.Addr().String()
			ln.Close() // a port nobody listens on: refused
			continue
		}
		srv, err := tlstest.ServeOn(ips[i]+":0", tlstest.TLSHandler(cfg))
		if err != nil {
			t.Skipf("cannot listen on %s: %v", ips[i], err)
		}
		t.Cleanup(srv.Close)
		to[ips[i]+":443"] = srv.Addr
	}
	a := &tlstest.Addrs{IPs: []netip.Addr{netip.MustParseAddr(ips[0]), netip.MustParseAddr(ips[1])}, To: to}
	return &check.Env{Lookup: a.Lookup, Dial: a.Dial, Roots: roots}
}

type addrCase struct {
	name string
	cfgs [2]*tls.Config
	want map[string]check.Outcome
	// say: what a finding's message must contain (the address that
	// disagrees, or that alone was judged).
	say map[string]string
	// not: what it must not contain.
	not map[string]string
}

func runAddrCases(t *testing.T, c func() check.Check, roots *x509.CertPool, cases []addrCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			_, got := run(t, c(), twoAddrs(t, roots, tc.cfgs))
			for id, o := range tc.want {
				if got[id].Outcome != o {
					t.Errorf("%s: %s (%s), want %s", id, got[id].Outcome, got[id].Message, o)
				}
			}
			for id, s := range tc.say {
				if !strings.Contains(got[id].Message, s) {
					t.Errorf("%s: %q does not say %q", id, got[id].Message, s)
				}
			}
			for id, s := range tc.not {
				if strings.Contains(got[id].Message, s) {
					t.Errorf("%s: %q says %q", id, got[id].Message, s)
				}
			}
		})
	}
}

// TestProtocolsJudgeEveryAddress: each address of a name is scanned; the
// worst verdict stands and names the address that disagrees; an address
// merely refusing while another answers is not a fault.
func TestProtocolsJudgeEveryAddress(t *testing.T) {
	ca := newCA(t)
	ec, rsa := issue(t, ca, tlstest.Leaf{}), issue(t, ca, tlstest.Leaf{RSABits: 2048})
	modern := &tls.Config{Certificates: []tls.Certificate{ec.Cert}}
	legacy := &tls.Config{Certificates: []tls.Certificate{rsa.Cert}, MinVersion: tls.VersionTLS10}
	runAddrCases(t, tlscheck.Protocols, ca.Pool(), []addrCase{
		{"both modern", [2]*tls.Config{modern, modern},
			map[string]check.Outcome{tlscheck.MinVersion: check.Pass, tlscheck.NoSSL: check.Pass, tlscheck.TLS13: check.Pass},
			nil, map[string]string{tlscheck.MinVersion: "(at "}},
		{"the second accepts TLS 1.0", [2]*tls.Config{modern, legacy},
			map[string]check.Outcome{tlscheck.MinVersion: check.Fail, tlscheck.NoSSL: check.Pass},
			map[string]string{tlscheck.MinVersion: "(at 127.0.0.2:443)"}, map[string]string{tlscheck.MinVersion: "127.0.0.1"}},
		{"the first refuses connections", [2]*tls.Config{nil, modern},
			map[string]check.Outcome{tlscheck.MinVersion: check.Pass, tlscheck.NoSSL: check.Pass, tlscheck.TLS13: check.Pass},
			map[string]string{tlscheck.MinVersion: "(at 127.0.0.2:443)"}, nil},
		{"both refuse connections", [2]*tls.Config{nil, nil},
			map[string]check.Outcome{tlscheck.MinVersion: check.NA, tlscheck.NoSSL: check.NA}, nil, nil},
	})
}

// TestCertificatesJudgeEveryAddress: the same over certificate handshakes.
func TestCertificatesJudgeEveryAddress(t *testing.T) {
	ca := newCA(t)
	good := issue(t, ca, tlstest.Leaf{})
	expired := issue(t, ca, tlstest.Leaf{NotBefore: time.Now().AddDate(0, 0, -100), NotAfter: time.Now().AddDate(0, 0, -1)})
	cfg := func(is *tlstest.Issued) *tls.Config { return &tls.Config{Certificates: []tls.Certificate{is.Cert}} }
	runAddrCases(t, tlscheck.Certificate, ca.Pool(), []addrCase{
		{"the second serves an expired certificate", [2]*tls.Config{cfg(good), cfg(expired)},
			map[string]check.Outcome{tlscheck.CertExpiry: check.Fail, tlscheck.CertChain: check.Pass, tlscheck.CertName: check.Pass},
			map[string]string{tlscheck.CertExpiry: "(at 127.0.0.2:443)"}, nil},
		{"the second refuses connections", [2]*tls.Config{cfg(good), nil},
			map[string]check.Outcome{tlscheck.CertExpiry: check.Pass, tlscheck.CertChain: check.Pass},
			map[string]string{tlscheck.CertChain: "(at 127.0.0.1:443)"}, nil},
	})
}
