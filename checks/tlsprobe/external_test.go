package tlsprobe_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/tlsprobe"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

// These tests run independent TLS stacks (GnuTLS's gnutls-serv, OpenSSL's
// s_server) and assert that the versions and suites the prober reports are
// exactly those the stack's own listing says its configuration accepts.
// They skip, loudly, when the binaries are absent; CI installs them.

// gnutlsAccepts lists, per version, what gnutls-cli -l says a priority
// string enables, keeping suites an RSA certificate can serve. (GnuTLS 3.6+
// serves DHE with an RFC 7919 group when it is given no parameters.)
func gnutlsAccepts(t *testing.T, priority string) map[tlsprobe.Version][]string {
	t.Helper()
	lines, err := tlstest.Lines(context.Background(), tlsmust.Binary(t, "gnutls-cli"), "--priority", priority, "-l")
	if err != nil {
		t.Fatal(err)
	}
	var versions []tlsprobe.Version
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "Protocols: "); ok {
			for _, p := range strings.Split(rest, ", ") {
				switch p {
				case "VERS-TLS1.3":
					versions = append(versions, tlsprobe.TLS13)
				case "VERS-TLS1.2":
					versions = append(versions, tlsprobe.TLS12)
				case "VERS-TLS1.1":
					versions = append(versions, tlsprobe.TLS11)
				case "VERS-TLS1.0":
					versions = append(versions, tlsprobe.TLS10)
				case "VERS-SSL3.0":
					versions = append(versions, tlsprobe.SSL30)
				}
			}
		}
	}
	out := map[tlsprobe.Version][]string{}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 3 || !strings.HasPrefix(f[0], "TLS_") {
			continue
		}
		// "0xc0, 0x2f" → 0xC02F
		hi, lo, _ := strings.Cut(f[1], ", ")
		a, _ := strconv.ParseUint(strings.TrimPrefix(hi, "0x"), 16, 8)
		b, _ := strconv.ParseUint(strings.TrimPrefix(lo, "0x"), 16, 8)
		s, ok := tlsprobe.SuiteByID(uint16(a<<8 | b))
		if !ok {
			t.Fatalf("gnutls lists %s (%s), which the registry lacks", f[0], f[1])
		}
		if !s.TLS13 && s.Auth != "RSA" {
			continue
		}
		for _, v := range versions {
			if s.ValidAt(v) {
				out[v] = append(out[v], s.Name)
			}
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func TestScanGnuTLSReportsExactlyWhatItsPriorityAllows(t *testing.T) {
	tlsmust.Binary(t, "gnutls-serv")
	dir := t.TempDir()
	ca := newCA(t)
	certFile, keyFile, dh1024 := tlsmust.PeerFiles(t, ca, dir, "www.lab.nhs.uk")
	cases := []struct {
		name, priority string
		dh             string // --dhparams file; "" for none
		wantDH         []int
	}{
		{"legacy-rc4-3des-tls10-11", "NORMAL:+ARCFOUR-128:+3DES-CBC:+VERS-TLS1.0:+VERS-TLS1.1", "", []int{2048}},
		{"tls12-only-dhe-1024", "NONE:+VERS-TLS1.2:+DHE-RSA:+RSA:+AES-128-CBC:+AES-256-GCM:+SHA1:+AEAD:+COMP-NULL:+SIGN-ALL:+GROUP-ALL", dh1024, []int{1024}},
		{"tls10-only-3des", "NONE:+VERS-TLS1.0:+RSA:+ECDHE-RSA:+3DES-CBC:+AES-128-CBC:+SHA1:+COMP-NULL:+SIGN-ALL:+GROUP-ALL", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			args := []string{"--port", "{port}", "--x509certfile", certFile, "--x509keyfile", keyFile,
				"--priority", tc.priority, "-a", "-q", "--noticket"}
			if tc.dh != "" {
				args = append(args, "--dhparams", tc.dh)
			}
			srv := tlsmust.StartProcess(t, "gnutls-serv", args...)
			rep, err := prober().Scan(context.Background(), srv.Addr, "www.lab.nhs.uk")
			if err != nil {
				t.Fatalf("%v\n%s", err, srv.Output())
			}
			want := gnutlsAccepts(t, tc.priority)
			if got := accepted(rep); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("accepted:\n got  %v\n want %v", got, want)
			}
			if fmt.Sprint(rep.DHBits) != fmt.Sprint(tc.wantDH) {
				t.Errorf("DH sizes %v, want %v", rep.DHBits, tc.wantDH)
			}
			for _, v := range rep.Versions {
				if v.State == tlsprobe.Unknown {
					t.Errorf("%v unknown: %s", v.Version, v.Error)
				}
			}
			t.Logf("K=%d V=%d connections=%d preference=%s in %v", rep.AcceptedSuites(), rep.AcceptedVersions(),
				rep.Connections, rep.Preference, time.Duration(rep.Elapsed))
		})
	}
}

// opensslAccepts lists what `openssl ciphers -s` says a cipher string (and
// TLS 1.3 ciphersuites string) enables at each version, keeping suites an
// RSA certificate (or no certificate: anonymous) can serve.
func opensslAccepts(t *testing.T, cipher, suites13 string, versions []tlsprobe.Version) map[tlsprobe.Version][]string {
	t.Helper()
	bin := tlsmust.Binary(t, "openssl")
	flag := map[tlsprobe.Version]string{tlsprobe.TLS10: "-tls1", tlsprobe.TLS11: "-tls1_1", tlsprobe.TLS12: "-tls1_2", tlsprobe.TLS13: "-tls1_3"}
	out := map[tlsprobe.Version][]string{}
	for _, v := range versions {
		args := []string{"ciphers", "-V", "-stdname", "-s", flag[v]}
		if suites13 != "" {
			args = append(args, "-ciphersuites", suites13)
		}
		lines, err := tlstest.Lines(context.Background(), bin, append(args, cipher)...)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 8 {
				continue
			}
			hi, lo, _ := strings.Cut(f[0], ",")
			a, _ := strconv.ParseUint(strings.TrimPrefix(hi, "0x"), 16, 8)
			b, _ := strconv.ParseUint(strings.TrimPrefix(lo, "0x"), 16, 8)
			s, ok := tlsprobe.SuiteByID(uint16(a<<8 | b))
			if !ok {
				t.Fatalf("openssl lists %s, which the registry lacks", l)
			}
			if !s.ValidAt(v) || (!s.TLS13 && s.Auth != "RSA" && s.Auth != "anon") {
				continue
			}
			out[v] = append(out[v], s.Name)
		}
		sort.Strings(out[v])
	}
	return out
}

func TestScanOpenSSLReportsExactlyWhatItsCipherStringAllows(t *testing.T) {
	tlsmust.Binary(t, "openssl")
	dir := t.TempDir()
	ca := newCA(t)
	certFile, keyFile, dh1024 := tlsmust.PeerFiles(t, ca, dir, "www.lab.nhs.uk")
	dh2048 := filepath.Join(dir, "ffdhe2048.pem")
	if _, err := tlstest.Lines(context.Background(), "openssl", "genpkey", "-genparam", "-algorithm", "DH",
		"-pkeyopt", "group:ffdhe2048", "-out", dh2048); err != nil {
		t.Fatal(err)
	}
	v12 := []tlsprobe.Version{tlsprobe.TLS12}
	cases := []struct {
		name     string
		args     []string
		cipher   string
		suites13 string
		versions []tlsprobe.Version
		wantDH   []int
		wantPref string
	}{
		{"tls12-null-anon-dhe1024", []string{"-tls1_2", "-dhparam", dh1024},
			"NULL-SHA:NULL-SHA256:ADH-AES128-SHA:ADH-AES256-GCM-SHA384:DHE-RSA-AES128-SHA:AECDH-AES128-SHA:@SECLEVEL=0", "", v12, []int{1024}, "client"},
		{"tls10-12-camellia-aria-server-order", []string{"-min_protocol", "TLSv1", "-max_protocol", "TLSv1.2", "-serverpref", "-dhparam", dh2048},
			"CAMELLIA:ARIA:@SECLEVEL=0", "", []tlsprobe.Version{tlsprobe.TLS10, tlsprobe.TLS11, tlsprobe.TLS12}, []int{2048}, "server"},
		{"tls12-client-order", []string{"-tls1_2"},
			"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA:AES128-SHA", "", v12, nil, "client"},
		{"tls13-chosen-suites", []string{"-tls1_3"},
			"DEFAULT", "TLS_AES_256_GCM_SHA384:TLS_AES_128_CCM_8_SHA256:TLS_CHACHA20_POLY1305_SHA256", []tlsprobe.Version{tlsprobe.TLS13}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			args := []string{"s_server", "-accept", "127.0.0.1:{port}", "-cert", certFile, "-key", keyFile, "-quiet", "-no_ticket", "-cipher", tc.cipher}
			if tc.suites13 != "" {
				args = append(args, "-ciphersuites", tc.suites13)
			}
			srv := tlsmust.StartProcess(t, "openssl", append(args, tc.args...)...)
			rep, err := prober().Scan(context.Background(), srv.Addr, "www.lab.nhs.uk")
			if err != nil {
				t.Fatalf("%v\n%s", err, srv.Output())
			}
			want := opensslAccepts(t, tc.cipher, tc.suites13, tc.versions)
			if got := accepted(rep); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("accepted:\n got  %v\n want %v", got, want)
			}
			if fmt.Sprint(rep.DHBits) != fmt.Sprint(tc.wantDH) {
				t.Errorf("DH sizes %v, want %v", rep.DHBits, tc.wantDH)
			}
			if rep.Preference != tc.wantPref {
				t.Errorf("preference %q, want %q (%s)", rep.Preference, tc.wantPref, rep.PreferenceError)
			}
			for _, v := range rep.Versions {
				if v.State == tlsprobe.Unknown {
					t.Errorf("%v unknown: %s", v.Version, v.Error)
				}
			}
			k, vv := rep.AcceptedSuites(), rep.AcceptedVersions()
			if rep.Connections > k+vv+3 {
				t.Errorf("used %d connections; budget K+V+3 = %d", rep.Connections, k+vv+3)
			}
			t.Logf("K=%d V=%d connections=%d preference=%s in %v", k, vv, rep.Connections, rep.Preference, time.Duration(rep.Elapsed))
		})
	}
}
