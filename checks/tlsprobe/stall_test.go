package tlsprobe_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlsprobe"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

// TestScanOfServerThatStallsOnOneHelloReportsTheRest puts a middlebox in
// front of a Go TLS 1.0–1.3 server that hangs on hellos of one shape (a
// version, a size, TLS 1.3's supported_versions, the very first
// connection) and passes the rest through. One stalled hello must not
// make the address look dead: every other version and suite is reported,
// and the stalled one is unknown with Stalled set and class timeout, never
// refused. Two different stalls do mark the address stalled: what was not
// yet tried is unknown, not sent, and not Stalled.
func TestScanOfServerThatStallsOnOneHelloReportsTheRest(t *testing.T) {
	const sni = "www.lab.nhs.uk"
	ca := newCA(t)
	cert := issue(t, ca, tlstest.Leaf{RSABits: 2048})
	suites := []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert.Cert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS13,
		CipherSuites: suites, PreferServerCipherSuites: true}
	// What the server accepts, with no middlebox.
	full := map[tlsprobe.Version][]string{tlsprobe.TLS13: goSuitesAt([]uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}, tls.VersionTLS13, false)}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12} {
		full[tlsprobe.Version(v)] = goSuitesAt(suites, v, false)
	}
	// The size of the second TLS 1.2 hello of the elimination: the whole
	// TLS 1.2 list less the suite the server chose first.
	second, err := tlsprobe.Hello{Version: tlsprobe.TLS12, ServerName: sni, Suites: suiteIDs(tlsprobe.SuitesAt(tlsprobe.TLS12))[1:]}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	offers13 := func(h tlstest.ClientHello, _ []byte, _ int64) bool { return slices.Contains(h.Extensions, 43) }
	version := func(vs ...uint16) func(tlstest.ClientHello, []byte, int64) bool {
		return func(h tlstest.ClientHello, _ []byte, _ int64) bool { return !h.SSLv2 && slices.Contains(vs, h.Version) }
	}
	cases := []struct {
		name  string
		stall func(h tlstest.ClientHello, rec []byte, conn int64) bool
		// The middlebox hangs on exactly this many hellos.
		stalls int64
		// Versions whose hello stalled (Unknown), versions left unknown
		// and not tried after the address was taken as stalled, versions
		// accepted but stalled midway (Accepted, not Complete, Stalled).
		stalled, notTried, midway []tlsprobe.Version
	}{
		{"tls13-hellos", offers13, 1, []tlsprobe.Version{tlsprobe.TLS13}, nil, nil},
		{"tls11-hellos", version(tls.VersionTLS11), 1, []tlsprobe.Version{tlsprobe.TLS11}, nil, nil},
		{"one-suite-list-size", func(_ tlstest.ClientHello, rec []byte, _ int64) bool { return len(rec) == len(second) },
			1, nil, nil, []tlsprobe.Version{tlsprobe.TLS12}},
		{"first-connection-only", func(_ tlstest.ClientHello, _ []byte, conn int64) bool { return conn == 1 }, 1, nil, nil, nil},
		{"tls11-and-tls10-hellos", version(tls.VersionTLS11, tls.VersionTLS10), 2,
			[]tlsprobe.Version{tlsprobe.TLS11, tlsprobe.TLS10}, []tlsprobe.Version{tlsprobe.SSL30}, nil},
	}
	const timeout = 300 * time.Millisecond
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			var conns, stalls atomic.Int64
			srv := tlsmust.Start(t, tlstest.ByHello(func(rec []byte) func(net.Conn) {
				n := conns.Add(1)
				h, err := tlstest.ParseClientHello(rec)
				if err != nil {
					t.Errorf("connection %d: %v", n, err)
					return nil
				}
				if tc.stall(h, rec, n) {
					stalls.Add(1)
					return tlstest.Stall
				}
				// SSLv3 and SSLv2 hellos get what Go's server says to them.
				return tlstest.TLSHandler(cfg)
			}))
			p := &tlsprobe.Prober{Dial: tlstest.DialLoopback, Timeout: timeout}
			start := time.Now()
			rep, err := p.Scan(context.Background(), srv.Addr, sni)
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			if got := stalls.Load(); got != tc.stalls {
				t.Errorf("the middlebox hung on %d hellos, want %d: the case does not test what it says", got, tc.stalls)
			}
			if limit := time.Duration(tc.stalls)*timeout + time.Second; elapsed > limit {
				t.Errorf("scan took %v for %d stalls of %v", elapsed, tc.stalls, timeout)
			}
			for _, v := range tlsprobe.Versions {
				r := rep.Version(v)
				var want string
				switch {
				case slices.Contains(tc.stalled, v):
					want = "stalled"
					if r.State != tlsprobe.Unknown || !r.Stalled || r.ErrorClass != check.ErrTimeout {
						t.Errorf("%v: %s stalled=%v class %q (%s); want unknown, stalled, timeout", v, r.State, r.Stalled, r.ErrorClass, r.Error)
					}
				case slices.Contains(tc.notTried, v):
					want = "not tried"
					if r.State != tlsprobe.Unknown || r.Stalled || r.ErrorClass != check.ErrTimeout {
						t.Errorf("%v: %s stalled=%v class %q (%s); want unknown, not stalled (never sent), timeout", v, r.State, r.Stalled, r.ErrorClass, r.Error)
					}
				case slices.Contains(tc.midway, v):
					want = "accepted, stalled midway"
					if r.State != tlsprobe.Accepted || r.Complete || !r.Stalled || r.ErrorClass != check.ErrTimeout || len(r.Suites) != 1 {
						t.Errorf("%v: %s complete=%v stalled=%v class %q suites %v; want accepted, incomplete, stalled, timeout, the first suite",
							v, r.State, r.Complete, r.Stalled, r.ErrorClass, r.Suites)
					}
				case v == tlsprobe.SSL20 || v == tlsprobe.SSL30:
					want = "refused"
					if r.State != tlsprobe.Refused || r.Stalled {
						t.Errorf("%v: %s stalled=%v (%s), want refused", v, r.State, r.Stalled, r.Error)
					}
				default:
					want = fmt.Sprint(full[v])
					var names []string
					for _, s := range r.Suites {
						names = append(names, s.String())
					}
					slices.Sort(names)
					if r.State != tlsprobe.Accepted || !r.Complete || r.Stalled || fmt.Sprint(names) != want {
						t.Errorf("%v: %s complete=%v stalled=%v suites %v (%s); want accepted, complete: %s", v, r.State, r.Complete, r.Stalled, names, r.Error, want)
					}
				}
				t.Logf("%v: want %s, got %s %v complete=%v stalled=%v %s", v, want, r.State, r.Suites, r.Complete, r.Stalled, r.Error)
			}
			t.Logf("%d connections, %d stalled, %v", rep.Connections, stalls.Load(), elapsed.Round(time.Millisecond))
		})
	}
}
