package smtptls_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/smtptls"
	"github.com/nhsx/posture/checks/tlscheck"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
)

// twoMX serves mx on 127.0.0.1 and 127.0.0.2 (a nil config: no STARTTLS;
// refuse: nothing listens) and returns an Env that resolves mx to both.
func twoMX(t *testing.T, roots *x509.CertPool, cfgs [2]*tls.Config, refuse [2]bool) *check.Env {
	t.Helper()
	ips := []string{"127.0.0.1", "127.0.0.2"}
	to := map[string]string{}
	for i, ip := range ips {
		if refuse[i] {
			ln, err := net.Listen("tcp", ip+":0")
			if err != nil {
				t.Skipf("cannot listen on %s: %v", ip, err)
			}
			to[ip+":25"] = ln.Addr().String()
			ln.Close()
			continue
		}
		to[ip+":25"] = startSMTPOn(t, ip, cfgs[i])
	}
	a := &tlstest.Addrs{IPs: []netip.Addr{netip.MustParseAddr(ips[0]), netip.MustParseAddr(ips[1])}, To: to}
	return &check.Env{Lookup: a.Lookup, Dial: a.Dial, Roots: roots}
}

// TestMailTLSJudgesEveryAddress: each address of the MX is probed; the
// worst verdict stands and names the address; one that refuses while
// another answers is not a fault.
func TestMailTLSJudgesEveryAddress(t *testing.T) {
	ca, err := tlstest.NewCA("Posture Lab")
	if err != nil {
		t.Fatal(err)
	}
	good, _ := ca.Issue(tlstest.Leaf{Names: []string{mx}})
	cfg := &tls.Config{Certificates: []tls.Certificate{good.Cert}}
	legacy := &tls.Config{Certificates: []tls.Certificate{good.Cert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}
	tests := []struct {
		name   string
		cfgs   [2]*tls.Config
		refuse [2]bool
		want   want
		say    map[string]string
	}{
		{"both good", [2]*tls.Config{cfg, cfg}, [2]bool{},
			want{smtptls.MXStartTLS: check.Pass, smtptls.MXTLS12: check.Pass, smtptls.MXCert: check.Pass, tlscheck.NoSSL: check.Pass}, nil},
		{"the second offers no STARTTLS", [2]*tls.Config{cfg, nil}, [2]bool{},
			want{smtptls.MXStartTLS: check.Fail, smtptls.MXTLS12: check.Pass, smtptls.MXCert: check.Pass},
			map[string]string{smtptls.MXStartTLS: "(at 127.0.0.2:25)", smtptls.MXCert: "(at 127.0.0.1:25)"}},
		{"the second speaks TLS 1.0 only", [2]*tls.Config{cfg, legacy}, [2]bool{},
			want{smtptls.MXTLS12: check.Fail, smtptls.MXStartTLS: check.Pass}, map[string]string{smtptls.MXTLS12: "(at 127.0.0.2:25)"}},
		{"the first refuses connections", [2]*tls.Config{nil, cfg}, [2]bool{true, false},
			want{smtptls.MXStartTLS: check.Pass, smtptls.MXTLS12: check.Pass, smtptls.MXCert: check.Pass}, nil},
		{"both refuse connections", [2]*tls.Config{}, [2]bool{true, true},
			want{smtptls.MXStartTLS: check.Unknown, smtptls.MXCert: check.Unknown}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := run(t, smtptls.CheckWith(smtptls.Options{Timeout: 5 * time.Second}), twoMX(t, ca.Pool(), tt.cfgs, tt.refuse))
			for id, o := range tt.want {
				if got[id].Outcome != o {
					t.Errorf("%s: %s (%s), want %s", id, got[id].Outcome, got[id].Message, o)
				}
			}
			for id, s := range tt.say {
				if !strings.Contains(got[id].Message, s) {
					t.Errorf("%s: %q does not say %q", id, got[id].Message, s)
				}
			}
		})
	}
}

// TestNoStartTLSIsToldByTheTypedField: the verdict reads the session's
// NoStartTLS, never the words of its failure.
func TestNoStartTLSIsToldByTheTypedField(t *testing.T) {
	c := smtptls.Check()
	tests := []struct {
		name    string
		session smtptls.Session
		want    check.Outcome
	}{
		{"flagged, whatever the words", smtptls.Session{Banner: "mx", EHLO: []string{"PIPELINING"}, NoStartTLS: true, Failure: "no TLS here"}, check.Fail},
		{"the words without the flag", smtptls.Session{Banner: "mx", Failure: smtptls.ErrNoStartTLS.Error(), Class: string(check.ErrBlocked)}, check.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(smtptls.Evidence{Host: mx, Port: 25, Addrs: []smtptls.MXAddr{{Addr: "192.0.2.1:25", Session: &tt.session}}})
			if err != nil {
				t.Fatal(err)
			}
			ev := check.Evidence{CheckID: c.ID(), Asset: check.Asset{Kind: check.KindMail, Name: mx}, CollectedAt: time.Now(), Version: 2, Data: data}
			for _, f := range c.Evaluate(ev, check.DefaultPolicy()) {
				if f.CheckID == smtptls.MXStartTLS && f.Outcome != tt.want {
					t.Errorf("%s: %s (%s), want %s", f.CheckID, f.Outcome, f.Message, tt.want)
				}
			}
		})
	}
}

// TestMailTLSOfClientAuthOnlyCertificateFails: an MX certificate that may
// not authenticate a server fails email.mx.cert, saying so.
func TestMailTLSOfClientAuthOnlyCertificateFails(t *testing.T) {
	ca, err := tlstest.NewCA("Posture Lab")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject: pkix.Name{CommonName: mx}, DNSNames: []string{mx}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(0, 0, 90),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		ca.Intermediate, key.Public(), ca.InterKey)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der, ca.Intermediate.Raw}, PrivateKey: key}
	addr := startSMTP(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	_, got := run(t, smtptls.CheckWith(smtptls.Options{Timeout: 5 * time.Second}), labEnv(t, addr, ca.Pool()))
	if f := got[smtptls.MXCert]; f.Outcome != check.Fail || !strings.Contains(f.Message, "server authentication") {
		t.Errorf("%s: %s (%s), want fail about server authentication", smtptls.MXCert, f.Outcome, f.Message)
	}
	if f := got[smtptls.MXStartTLS]; f.Outcome != check.Pass {
		t.Errorf("%s: %s (%s)", smtptls.MXStartTLS, f.Outcome, f.Message)
	}
}
