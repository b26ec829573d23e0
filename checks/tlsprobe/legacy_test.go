package tlsprobe_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"

	"github.com/nhsx/posture/checks/tlsprobe"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

// No TLS stack serves SSLv2 or SSLv3 any more: these hand-built servers
// prove the prober detects them.

func TestScanDetectsSSLv3OnlyServerAndItsSuites(t *testing.T) {
	tlsmust.NoLeak(t)
	is := issue(t, newCA(t), tlstest.Leaf{RSABits: 2048})
	suites := []uint16{0x0005, 0x000A, 0x0004} // RC4-SHA, 3DES, RC4-MD5
	srv := tlsmust.Start(t, tlstest.SSLv3Handler(suites, is.Cert.Certificate, nil))
	rep, err := prober().Scan(context.Background(), srv.Addr, "www.lab.nhs.uk")
	if err != nil {
		t.Fatal(err)
	}
	want := map[tlsprobe.Version][]string{tlsprobe.SSL30: {
		"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_RC4_128_MD5", "TLS_RSA_WITH_RC4_128_SHA"}}
	if got := accepted(rep); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("accepted %v, want %v", got, want)
	}
	for _, v := range []tlsprobe.Version{tlsprobe.SSL20, tlsprobe.TLS10, tlsprobe.TLS11, tlsprobe.TLS12, tlsprobe.TLS13} {
		if st := rep.Version(v).State; st != tlsprobe.Refused {
			t.Errorf("%v: %s, want refused (%s)", v, st, rep.Version(v).Error)
		}
	}
	if len(rep.Certificates) != len(is.Cert.Certificate) {
		t.Errorf("%d certificates kept from the SSLv3 answer, want the %d served", len(rep.Certificates), len(is.Cert.Certificate))
	}
	if k := rep.AcceptedSuites(); rep.Connections > k+rep.AcceptedVersions()+3 {
		t.Errorf("%d connections for K=%d", rep.Connections, k)
	}
}

func TestScanDetectsSSLv3AlongsideTLS(t *testing.T) {
	tlsmust.NoLeak(t)
	is := issue(t, newCA(t), tlstest.Leaf{RSABits: 2048})
	cfg := &tls.Config{Certificates: []tls.Certificate{is.Cert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA}}
	srv := tlsmust.Start(t, tlstest.SSLv3Handler([]uint16{0x002F}, is.Cert.Certificate, tlstest.TLSHandler(cfg)))
	rep, err := prober().Scan(context.Background(), srv.Addr, "www.lab.nhs.uk")
	if err != nil {
		t.Fatal(err)
	}
	both := []string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"}
	want := map[tlsprobe.Version][]string{tlsprobe.SSL30: {"TLS_RSA_WITH_AES_128_CBC_SHA"},
		tlsprobe.TLS10: both, tlsprobe.TLS11: both, tlsprobe.TLS12: both}
	if got := accepted(rep); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("accepted %v, want %v", got, want)
	}
}

func TestScanDetectsSSLv2(t *testing.T) {
	tlsmust.NoLeak(t)
	is := issue(t, newCA(t), tlstest.Leaf{RSABits: 2048})
	cfg := &tls.Config{Certificates: []tls.Certificate{is.Cert}}
	srv := tlsmust.Start(t, tlstest.SSLv2Handler(is.Cert.Certificate[0], tlstest.TLSHandler(cfg)))
	rep, err := prober().Scan(context.Background(), srv.Addr, "www.lab.nhs.uk")
	if err != nil {
		t.Fatal(err)
	}
	v2 := rep.Version(tlsprobe.SSL20)
	if v2.State != tlsprobe.Accepted || fmt.Sprint(v2.SSLv2Ciphers) != "[65664]" {
		t.Errorf("SSLv2: %s ciphers %v, want accepted [0x010080]", v2.State, v2.SSLv2Ciphers)
	}
	if !rep.Accepts(tlsprobe.TLS13) || !rep.Accepts(tlsprobe.TLS12) {
		t.Errorf("TLS 1.2/1.3 not seen alongside SSLv2: %+v", rep.Versions)
	}
}

func TestScanSeesSSLv2RefusedByModernServer(t *testing.T) {
	is := issue(t, newCA(t), tlstest.Leaf{})
	srv := tlsmust.StartTLS(t, &tls.Config{Certificates: []tls.Certificate{is.Cert}})
	rep, err := prober().Scan(context.Background(), srv.Addr, "www.lab.nhs.uk")
	if err != nil {
		t.Fatal(err)
	}
	if v := rep.Version(tlsprobe.SSL20); v.State != tlsprobe.Refused {
		t.Errorf("SSLv2 %s (%s), want refused", v.State, v.Error)
	}
}
