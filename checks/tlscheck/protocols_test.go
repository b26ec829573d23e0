package tlscheck_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlscheck"
	"github.com/nhsx/posture/checks/tlsprobe"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

func TestProtocolVerdictsForLabServers(t *testing.T) {
	ca := newCA(t)
	ec := issue(t, ca, tlstest.Leaf{})
	rsa := issue(t, ca, tlstest.Leaf{RSABits: 2048})
	goServer := func(cfg *tls.Config) func(t *testing.T) string {
		return func(t *testing.T) string { return tlsmust.StartTLS(t, cfg).Addr }
	}
	cases := []struct {
		name  string
		start func(t *testing.T) string
		want  want
	}{
		{"modern-tls12-13", goServer(&tls.Config{Certificates: []tls.Certificate{ec.Cert}}),
			want{tlscheck.NoSSL: check.Pass, tlscheck.MinVersion: check.Pass, tlscheck.TLS13: check.Pass,
				tlscheck.WeakCipher: check.Pass, tlscheck.CipherPref: check.Pass, tlscheck.DHGroup: check.NA}},
		{"tls13-only", goServer(&tls.Config{Certificates: []tls.Certificate{ec.Cert}, MinVersion: tls.VersionTLS13}),
			want{tlscheck.NoSSL: check.Pass, tlscheck.MinVersion: check.Pass, tlscheck.TLS13: check.Pass,
				tlscheck.WeakCipher: check.Pass, tlscheck.CipherPref: check.NA, tlscheck.DHGroup: check.NA}},
		{"tls12-only-no-13", goServer(&tls.Config{Certificates: []tls.Certificate{ec.Cert}, MaxVersion: tls.VersionTLS12}),
			want{tlscheck.TLS13: check.Warn, tlscheck.MinVersion: check.Pass}},
		{"tls10-enabled", goServer(&tls.Config{Certificates: []tls.Certificate{rsa.Cert}, MinVersion: tls.VersionTLS10}),
			want{tlscheck.MinVersion: check.Fail, tlscheck.NoSSL: check.Pass}},
		{"3des", goServer(&tls.Config{Certificates: []tls.Certificate{rsa.Cert}, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}}),
			want{tlscheck.WeakCipher: check.Fail, tlscheck.CipherPref: check.Pass}},
		{"cbc-only", goServer(&tls.Config{Certificates: []tls.Certificate{rsa.Cert}, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA}}),
			want{tlscheck.WeakCipher: check.Pass, tlscheck.CipherPref: check.Warn}},
		{"sslv3-and-tls", func(t *testing.T) string {
			cfg := &tls.Config{Certificates: []tls.Certificate{rsa.Cert}, MinVersion: tls.VersionTLS10}
			return tlsmust.Start(t, tlstest.SSLv3Handler([]uint16{0x000A}, rsa.Cert.Certificate, tlstest.TLSHandler(cfg))).Addr
		}, want{tlscheck.NoSSL: check.Fail, tlscheck.MinVersion: check.Fail, tlscheck.WeakCipher: check.Fail}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			_, got := run(t, tlscheck.Protocols(), labEnv(t, tc.start(t), ca.Pool()))
			for id, o := range tc.want {
				if got[id].Outcome != o {
					t.Errorf("%s: %s (%s), want %s", id, got[id].Outcome, got[id].Message, o)
				}
			}
		})
	}
}

func TestProtocolVerdictsForIndependentStacks(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	certFile, keyFile, dh1024 := tlsmust.PeerFiles(t, ca, dir, host)
	gnutls := func(priority string, extra ...string) func(t *testing.T) string {
		return func(t *testing.T) string {
			args := append([]string{"--port", "{port}", "--x509certfile", certFile, "--x509keyfile", keyFile, "--priority", priority, "-a", "-q"}, extra...)
			return tlsmust.StartProcess(t, "gnutls-serv", args...).Addr
		}
	}
	openssl := func(args ...string) func(t *testing.T) string {
		return func(t *testing.T) string {
			base := []string{"s_server", "-accept", "127.0.0.1:{port}", "-cert", certFile, "-key", keyFile, "-quiet"}
			return tlsmust.StartProcess(t, "openssl", append(base, args...)...).Addr
		}
	}
	cases := []struct {
		name  string
		start func(t *testing.T) string
		want  want
		msg   map[string]string
	}{
		{"gnutls-rc4-3des-tls10-11", gnutls("NORMAL:+ARCFOUR-128:+3DES-CBC:+VERS-TLS1.0:+VERS-TLS1.1"),
			want{tlscheck.MinVersion: check.Fail, tlscheck.WeakCipher: check.Fail, tlscheck.TLS13: check.Pass,
				tlscheck.DHGroup: check.Pass, tlscheck.NoSSL: check.Pass, tlscheck.CipherPref: check.Pass},
			map[string]string{tlscheck.WeakCipher: "RC4", tlscheck.MinVersion: "TLS1.0"}},
		{"gnutls-dhe-1024", gnutls("NONE:+VERS-TLS1.2:+DHE-RSA:+AES-128-GCM:+AEAD:+COMP-NULL:+SIGN-ALL:+GROUP-ALL", "--dhparams", dh1024),
			want{tlscheck.DHGroup: check.Fail, tlscheck.CipherPref: check.Pass, tlscheck.WeakCipher: check.Pass},
			map[string]string{tlscheck.DHGroup: "1024-bit"}},
		{"openssl-null-anon", openssl("-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:NULL-SHA:ADH-AES128-SHA:@SECLEVEL=0"),
			want{tlscheck.WeakCipher: check.Fail, tlscheck.MinVersion: check.Pass},
			map[string]string{tlscheck.WeakCipher: "TLS_RSA_WITH_NULL_SHA"}},
		{"openssl-static-rsa-preferred", openssl("-tls1_2", "-serverpref", "-cipher", "AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
			want{tlscheck.CipherPref: check.Warn}, map[string]string{tlscheck.CipherPref: "TLS_RSA_WITH_AES_128_GCM_SHA256"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, got := run(t, tlscheck.Protocols(), labEnv(t, tc.start(t), ca.Pool()))
			for id, o := range tc.want {
				if got[id].Outcome != o {
					t.Errorf("%s: %s (%s), want %s", id, got[id].Outcome, got[id].Message, o)
				}
			}
			for id, m := range tc.msg {
				if !strings.Contains(got[id].Message, m) {
					t.Errorf("%s message %q does not say %q", id, got[id].Message, m)
				}
			}
		})
	}
}

func TestProtocolsOfClosedPortIsNotApplicable(t *testing.T) {
	srv := tlsmust.Start(t, tlstest.Stall)
	addr := srv.Addr
	srv.Close()
	_, got := run(t, tlscheck.Protocols(), labEnv(t, addr, nil))
	if len(got) != 6 {
		t.Fatalf("%d findings", len(got))
	}
	for id, f := range got {
		if f.Outcome != check.NA {
			t.Errorf("%s: %s (%s), want n/a", id, f.Outcome, f.Message)
		}
	}
}

func TestProtocolsOfTarpitIsUnknownWithinTimeout(t *testing.T) {
	tlsmust.NoLeak(t)
	srv := tlsmust.Start(t, tlstest.Stall)
	_, got := run(t, tlscheck.ProtocolsWith(tlscheck.Options{Timeout: 300 * 1e6}), labEnv(t, srv.Addr, nil))
	for id, f := range got {
		if f.Outcome != check.Unknown || f.Reason != string(check.ErrTimeout) {
			t.Errorf("%s: %s reason %q, want unknown/timeout", id, f.Outcome, f.Reason)
		}
	}
	// The prober gives a stalled address a second hello (a server may
	// hang on one hello and answer another), then counts it dead.
	if srv.Conns() > 2 {
		t.Errorf("%d connections to a tarpit; a stalled address should be found dead at its second stall", srv.Conns())
	}
}

// report builds a synthetic scan result for the pure evaluators.
func report(vs ...tlsprobe.VersionResult) *tlsprobe.Report {
	r := &tlsprobe.Report{}
	for _, v := range tlsprobe.Versions {
		vr := tlsprobe.VersionResult{Version: v, State: tlsprobe.Refused, Complete: true}
		for _, x := range vs {
			if x.Version == v {
				vr = x
			}
		}
		r.Versions = append(r.Versions, vr)
	}
	return r
}

func acc(v tlsprobe.Version, names ...string) tlsprobe.VersionResult {
	vr := tlsprobe.VersionResult{Version: v, State: tlsprobe.Accepted, Complete: true}
	for _, n := range names {
		s, ok := tlsprobe.SuiteByName(n)
		if !ok {
			panic(n)
		}
		vr.Suites = append(vr.Suites, tlsprobe.SuiteID(s.ID))
	}
	return vr
}

func unk(v tlsprobe.Version) tlsprobe.VersionResult {
	return tlsprobe.VersionResult{Version: v, State: tlsprobe.Unknown, Error: "read answer: no answer in time", ErrorClass: check.ErrTimeout}
}

func TestWeakCipherThresholdsDifferForWebAndSMTP(t *testing.T) {
	good := "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
	cases := []struct {
		name      string
		r         *tlsprobe.Report
		web, smtp check.Outcome
	}{
		{"none", report(acc(tlsprobe.TLS12, good)), check.Pass, check.Pass},
		{"3des", report(acc(tlsprobe.TLS12, good, "TLS_RSA_WITH_3DES_EDE_CBC_SHA")), check.Fail, check.Warn},
		{"rc4-sha", report(acc(tlsprobe.TLS10, "TLS_RSA_WITH_RC4_128_SHA")), check.Fail, check.Warn},
		{"rc4-md5", report(acc(tlsprobe.TLS10, "TLS_RSA_WITH_RC4_128_MD5")), check.Fail, check.Fail},
		{"anon", report(acc(tlsprobe.TLS12, good, "TLS_DH_anon_WITH_AES_128_CBC_SHA")), check.Fail, check.Warn},
		{"null", report(acc(tlsprobe.TLS12, good, "TLS_RSA_WITH_NULL_SHA256")), check.Fail, check.Fail},
		{"export", report(acc(tlsprobe.SSL30, "TLS_RSA_EXPORT_WITH_RC4_40_MD5")), check.Fail, check.Fail},
		{"des", report(acc(tlsprobe.TLS10, "TLS_RSA_WITH_DES_CBC_SHA")), check.Fail, check.Fail},
		{"unknown-version-no-weak-seen", report(acc(tlsprobe.TLS12, good), unk(tlsprobe.TLS10)), check.Unknown, check.Unknown},
		{"weak-seen-despite-unknown", report(acc(tlsprobe.TLS12, good, "TLS_RSA_WITH_NULL_SHA"), unk(tlsprobe.TLS10)), check.Fail, check.Fail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if v := tlscheck.EvalWeakCiphers(tc.r, false); v.Outcome != tc.web {
				t.Errorf("web: %s (%s), want %s", v.Outcome, v.Message, tc.web)
			}
			if v := tlscheck.EvalWeakCiphers(tc.r, true); v.Outcome != tc.smtp {
				t.Errorf("smtp: %s (%s), want %s", v.Outcome, v.Message, tc.smtp)
			}
		})
	}
}

func TestVersionVerdicts(t *testing.T) {
	g := "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
	t13 := acc(tlsprobe.TLS13, "TLS_AES_128_GCM_SHA256")
	cases := []struct {
		name                 string
		r                    *tlsprobe.Report
		noSSL, minVer, tls13 check.Outcome
	}{
		{"modern", report(acc(tlsprobe.TLS12, g), t13), check.Pass, check.Pass, check.Pass},
		{"tls12-only", report(acc(tlsprobe.TLS12, g)), check.Pass, check.Pass, check.Warn},
		{"tls11", report(acc(tlsprobe.TLS12, g), acc(tlsprobe.TLS11, "TLS_RSA_WITH_AES_128_CBC_SHA")), check.Pass, check.Fail, check.Warn},
		{"sslv3", report(acc(tlsprobe.TLS12, g), acc(tlsprobe.SSL30, "TLS_RSA_WITH_AES_128_CBC_SHA")), check.Fail, check.Fail, check.Warn},
		{"sslv2", report(acc(tlsprobe.TLS12, g), tlsprobe.VersionResult{Version: tlsprobe.SSL20, State: tlsprobe.Accepted}), check.Fail, check.Fail, check.Warn},
		{"tls10-unknown", report(acc(tlsprobe.TLS12, g), t13, unk(tlsprobe.TLS10)), check.Pass, check.Unknown, check.Pass},
		{"sslv3-unknown", report(acc(tlsprobe.TLS12, g), t13, unk(tlsprobe.SSL30)), check.Unknown, check.Pass, check.Pass},
		{"nothing-accepted", report(), check.Pass, check.Fail, check.Warn},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				id   string
				v    tlscheck.Verdict
				want check.Outcome
			}{
				{tlscheck.NoSSL, tlscheck.EvalNoSSL(tc.r), tc.noSSL},
				{tlscheck.MinVersion, tlscheck.EvalMinVersion(tc.r), tc.minVer},
				{tlscheck.TLS13, tlscheck.EvalTLS13(tc.r), tc.tls13},
			} {
				if c.v.Outcome != c.want {
					t.Errorf("%s: %s (%s), want %s", c.id, c.v.Outcome, c.v.Message, c.want)
				}
			}
		})
	}
	closed := func(v tlsprobe.Version) tlsprobe.VersionResult {
		return tlsprobe.VersionResult{Version: v, State: tlsprobe.Refused, Complete: true, Refusal: "connection closed"}
	}
	// As a scan records it: below a refused TLS 1.2 hello, inferred.
	inferred := func(vs ...tlsprobe.VersionResult) *tlsprobe.Report {
		for _, v := range []tlsprobe.Version{tlsprobe.TLS11, tlsprobe.TLS10, tlsprobe.SSL30} {
			vs = append(vs, tlsprobe.VersionResult{Version: v, State: tlsprobe.Refused, Complete: true, Inferred: true,
				Refusal: "inferred: a TLS1.2 hello was refused (connection closed)"})
		}
		return report(vs...)
	}
	silent := []struct {
		name string
		r    *tlsprobe.Report
		want bool
	}{
		{"every hello closed", inferred(closed(tlsprobe.SSL20), closed(tlsprobe.TLS12), closed(tlsprobe.TLS13)), true},
		{"closed, one probe reset", inferred(unk(tlsprobe.SSL20), closed(tlsprobe.TLS12), closed(tlsprobe.TLS13)), true},
		{"TLS 1.3 refused with an alert", inferred(closed(tlsprobe.SSL20), closed(tlsprobe.TLS12),
			tlsprobe.VersionResult{Version: tlsprobe.TLS13, State: tlsprobe.Refused, Refusal: "alert fatal protocol_version"}), false},
		{"SSLv2 closed, TLS accepted", report(closed(tlsprobe.SSL20), acc(tlsprobe.TLS12, g)), false},
		{"nothing accepted, refusals unrecorded", report(), false},
	}
	for _, tc := range silent {
		if got := tlscheck.Silent(tc.r); got != tc.want {
			t.Errorf("Silent(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if v := tlscheck.EvalTLS13(report()); v.Severity != check.Info {
		t.Errorf("TLS 1.3 absent: severity %q, want info (never counts as a fail)", v.Severity)
	}
}

func TestCipherPreferenceFollowsServerOrderWhenImposed(t *testing.T) {
	// The server imposes RSA first: a modern client gets static RSA.
	r := report(acc(tlsprobe.TLS12, "TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"))
	r.Preference, r.PreferenceVersion = "server", tlsprobe.TLS12
	if v := tlscheck.EvalCipherPreference(r); v.Outcome != check.Warn {
		t.Errorf("server order RSA first: %s (%s), want warn", v.Outcome, v.Message)
	}
	// Same suites, client order: the client's ECDHE-GCM wins.
	r.Preference = "client"
	if v := tlscheck.EvalCipherPreference(r); v.Outcome != check.Pass {
		t.Errorf("client order: %s (%s), want pass", v.Outcome, v.Message)
	}
}

func TestDHGroupVerdicts(t *testing.T) {
	dhe := acc(tlsprobe.TLS12, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256")
	cases := []struct {
		name string
		r    *tlsprobe.Report
		bits []int
		want check.Outcome
	}{
		{"no-dhe", report(acc(tlsprobe.TLS12, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")), nil, check.NA},
		{"1024", report(dhe), []int{1024, 2048}, check.Fail},
		{"2048", report(dhe), []int{2048}, check.Pass},
		{"dhe-but-no-params", report(dhe), nil, check.Unknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.DHBits = tc.bits
			if v := tlscheck.EvalDHGroup(tc.r, 2048); v.Outcome != tc.want {
				t.Errorf("%s (%s), want %s", v.Outcome, v.Message, tc.want)
			}
		})
	}
}
