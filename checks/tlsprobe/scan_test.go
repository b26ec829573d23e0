package tlsprobe_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/tlsprobe"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

func newCA(t testing.TB) *tlstest.CA { return tlsmust.NewCA(t, "Posture Test") }

func issue(t testing.TB, ca *tlstest.CA, l tlstest.Leaf) *tlstest.Issued {
	return tlsmust.Issue(t, ca, l, "www.lab.nhs.uk")
}

func prober() *tlsprobe.Prober {
	return &tlsprobe.Prober{Dial: tlstest.DialLoopback, Timeout: 3 * time.Second}
}

// accepted maps each accepted version to its suite names, sorted.
func accepted(rep *tlsprobe.Report) map[tlsprobe.Version][]string {
	out := map[tlsprobe.Version][]string{}
	for _, v := range rep.Versions {
		if v.State == tlsprobe.Accepted {
			var names []string
			for _, s := range v.Suites {
				names = append(names, s.String())
			}
			sort.Strings(names)
			out[v.Version] = names
		}
	}
	return out
}

// goSuitesAt is what a crypto/tls server configured with suites (and an
// RSA or ECDSA certificate) accepts at version v, by Go's own metadata.
func goSuitesAt(suites []uint16, v uint16, ecdsa bool) []string {
	var out []string
	all := append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
	for _, cs := range all {
		if !slices.Contains(suites, cs.ID) || !slices.Contains(cs.SupportedVersions, v) {
			continue
		}
		if strings.Contains(cs.Name, "_ECDSA_") != ecdsa {
			continue
		}
		out = append(out, cs.Name)
	}
	sort.Strings(out)
	return out
}

func TestScanGoServerReportsExactlyItsVersionsAndSuites(t *testing.T) {
	ca := newCA(t)
	rsaCert := issue(t, ca, tlstest.Leaf{RSABits: 2048})
	ecCert := issue(t, ca, tlstest.Leaf{})
	legacySuites := []uint16{
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA,
	}
	cases := []struct {
		name     string
		cert     *tlstest.Issued
		min, max uint16
		suites   []uint16
		ecdsa    bool
	}{
		{"tls13-only", ecCert, tls.VersionTLS13, tls.VersionTLS13, nil, true},
		{"tls12-chosen-suites", rsaCert, tls.VersionTLS12, tls.VersionTLS12,
			[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256}, false},
		{"tls10-to-12-legacy-suites", rsaCert, tls.VersionTLS10, tls.VersionTLS12, legacySuites, false},
		{"tls11-only", rsaCert, tls.VersionTLS11, tls.VersionTLS11, legacySuites, false},
		{"tls12-and-13-ecdsa", ecCert, tls.VersionTLS12, tls.VersionTLS13,
			[]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			srv := tlsmust.StartTLS(t, &tls.Config{
				Certificates: []tls.Certificate{tc.cert.Cert}, MinVersion: tc.min, MaxVersion: tc.max, CipherSuites: tc.suites,
			})
			rep, err := prober().Scan(context.Background(), srv.Addr, "www.lab.nhs.uk")
			if err != nil {
				t.Fatal(err)
			}
			want := map[tlsprobe.Version][]string{}
			for v := tc.min; v <= tc.max; v++ {
				if v == tls.VersionTLS13 {
					want[tlsprobe.TLS13] = goSuitesAt([]uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}, v, false)
					continue
				}
				want[tlsprobe.Version(v)] = goSuitesAt(tc.suites, v, tc.ecdsa)
			}
			got := accepted(rep)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("accepted:\n got  %v\n want %v", got, want)
			}
			for _, v := range rep.Versions {
				if v.State == tlsprobe.Unknown || (v.State == tlsprobe.Accepted && !v.Complete) {
					t.Errorf("%v: state %s complete %v error %q", v.Version, v.State, v.Complete, v.Error)
				}
			}
			// The connection budget of the issue: K + V + 3.
			k, vv := rep.AcceptedSuites(), rep.AcceptedVersions()
			if rep.Connections > k+vv+3 {
				t.Errorf("used %d connections for K=%d suites over V=%d versions; budget K+V+3 = %d", rep.Connections, k, vv, k+vv+3)
			}
			if srv.Conns() != rep.Connections {
				t.Errorf("server saw %d connections, report says %d", srv.Conns(), rep.Connections)
			}
			t.Logf("K=%d V=%d connections=%d preference=%q elapsed=%v", k, vv, rep.Connections, rep.Preference, time.Duration(rep.Elapsed))
		})
	}
}
