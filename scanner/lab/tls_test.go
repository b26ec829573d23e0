package lab

import (
	"context"
	"crypto/tls"
	"errors"
	"maps"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/smtptls"
	"github.com/nhsx/posture/checks/tlscheck"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

// TestTLSTruthHoldsInTheLab runs the real TLS collectors (tls.protocols and
// tls.cert on web hosts, email.mx.tls on MX hosts) through the lab's Env
// against every host the lab's TLS ground truth speaks for: each TLS case's
// host, the default www host of every domain and the shared MX hosts. The
// worst outcome of every (asset, catalogue id) must equal Truth, both ways.
// Every case is stamped twice, so a second stamp's hosts (other names, other
// certificates) hold too.
func TestTLSTruthHoldsInTheLab(t *testing.T) {
	l := startLab(t, Config{External: true, Domains: 2 * (len(Cases()) + len(externalCases(&external{})))})
	if !l.External() {
		tlsmust.Without(t, "gnutls-serv", "the external TLS hosts are not tested")
	}
	env := l.Env()

	type asset struct {
		kind check.Kind
		name string
	}
	want := map[asset]map[string]check.Outcome{}
	for _, e := range l.Truth() {
		if e.Kind != check.KindHost && e.Kind != check.KindMail ||
			!slices.Contains(WebTLSCheckIDs, e.CheckID) && !slices.Contains(MailTLSCheckIDs, e.CheckID) {
			continue // another family's truth on the host (email.mx.ptr, email.dane)
		}
		a := asset{e.Kind, e.Name}
		if want[a] == nil {
			want[a] = map[string]check.Outcome{}
		}
		if _, dup := want[a][e.CheckID]; dup {
			t.Errorf("%s %s: %s stated twice", a.kind, a.name, e.CheckID)
		}
		want[a][e.CheckID] = e.Outcome
	}
	// Every TLS case speaks for a host; the shared MX hosts are covered.
	for _, c := range l.cases {
		if c.Family != "tls" {
			continue
		}
		d, _ := l.Domain(domainName(c.Name, 1))
		if !slices.ContainsFunc(d.Expect, func(e Expect) bool { return e.Kind == check.KindHost || e.Kind == check.KindMail }) {
			t.Errorf("case %s states no TLS outcome", c.Name)
		}
	}
	for _, mx := range []string{MX1, MX2} {
		if want[asset{check.KindMail, mx}] == nil {
			t.Errorf("no expectations for %s", mx)
		}
	}
	// Expiry warnings carry the severity of checks.md §3.2.12.
	severity := map[string]check.Severity{
		"www." + domainName("tls-expiring-5d", 1):  check.High,
		"www." + domainName("tls-expiring-10d", 1): check.Medium,
	}
	// Verdicts that must say why: a reason ("[reason]") or words in the
	// message, per host and catalogue id.
	www := func(c string) string { return "www." + domainName(c, 1) }
	says := map[string]map[string][]string{
		www("tls-missing-intermediate"):                {"tls.cert.revocation": {"[ocsp-no-issuer]"}},
		www("tls-ocsp-wrong-cert"):                     {"tls.cert.revocation": {"[ocsp-wrong-cert]", "for another certificate"}},
		www("tls-ocsp-forged"):                         {"tls.cert.revocation": {"not signed by the issuer", "so the CRL decides", "lists the certificate as revoked"}},
		www("tls-ocsp-stale"):                          {"tls.cert.revocation": {"is stale", "so the CRL decides", "not on its issuer's CRL"}},
		www("tls-ocsp-revoked-embedded"):               {"tls.cert.revocation": {"signed by the issuer, says the certificate was revoked"}},
		www("tls-ocsp-delegated"):                      {"tls.cert.revocation": {"signed by the issuer's delegated responder", "says good"}},
		www("tls-leaf-from-root"):                      {"tls.cert.revocation": {"signed by the issuer, says good"}, "tls.cert.chain": {`"CN=posture lab CA,O=posture lab"`}},
		www("tls-client-auth-only"):                    {"tls.cert.chain": {"(clientAuth) does not include server authentication"}},
		www("tls-cross-signed-expired"):                {"tls.cert.expiry": {"note: the server also sends", "expired on"}},
		"mx." + domainName("smtp-client-auth-only", 1): {"email.mx.cert": {"not valid for server authentication"}},
	}

	for a, w := range want {
		t.Run(string(a.kind)+":"+a.name, func(t *testing.T) {
			t.Parallel()
			// A host that is expected to give nothing away (a tarpit) is
			// probed with short timeouts; the others get ample ones.
			timeout := 10 * time.Second
			if !slices.ContainsFunc(slices.Collect(maps.Values(w)), func(o check.Outcome) bool { return o != check.Unknown }) {
				timeout = 300 * time.Millisecond
			}
			var checks []check.Check
			ids := WebTLSCheckIDs
			if a.kind == check.KindHost {
				o := tlscheck.Options{Timeout: timeout}
				checks = []check.Check{tlscheck.ProtocolsWith(o), tlscheck.CertificateWith(o)}
			} else {
				ids = MailTLSCheckIDs
				checks = []check.Check{smtptls.CheckWith(smtptls.Options{Timeout: timeout})}
			}
			for _, id := range ids {
				if _, ok := w[id]; !ok {
					t.Errorf("truth states no outcome for %s", id)
				}
			}
			start := time.Now()
			got := map[string]check.Outcome{}
			for _, c := range checks {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				ev, _ := c.Collect(ctx, env, check.Asset{Kind: a.kind, Name: a.name})
				cancel()
				for _, f := range c.Evaluate(ev, l.Policy()) {
					if f.Asset.Kind != a.kind || f.Asset.Name != a.name {
						t.Errorf("finding on %v, want %s %s", f.Asset, a.kind, a.name)
					}
					got[f.CheckID] = check.Worst(got[f.CheckID], f.Outcome)
					if f.Outcome == check.Unknown && f.Reason == "" {
						t.Errorf("%s is unknown without a reason", f.CheckID)
					}
					if s, ok := severity[a.name]; ok && f.CheckID == "tls.cert.expiry" && f.Severity != s {
						t.Errorf("expiry severity %s, want %s", f.Severity, s)
					}
					for _, w := range says[a.name][f.CheckID] {
						if !strings.Contains("["+f.Reason+"] "+f.Message, w) {
							t.Errorf("%s: [%s] %q does not say %q", f.CheckID, f.Reason, f.Message, w)
						}
					}
					t.Logf("%s %s [%s] %s", f.Outcome, f.CheckID, f.Reason, f.Message)
				}
			}
			t.Logf("took %v", time.Since(start).Round(time.Millisecond))
			for id, o := range w {
				if got[id] != o {
					t.Errorf("%s = %q, want %q", id, got[id], o)
				}
			}
			for id, g := range got {
				if _, ok := w[id]; !ok {
					t.Errorf("unexpected %s = %q", id, g)
				}
			}
		})
	}
}

// TestCloseEndsRawHandlersAndTheExternalStack: connections held by raw
// handlers (a tarpit, the relay to gnutls-serv) end when the lab closes,
// the child process is stopped, and no goroutine is left behind.
func TestCloseEndsRawHandlersAndTheExternalStack(t *testing.T) {
	before := runtime.NumGoroutine()
	start := time.Now()
	l, err := Start(context.Background(), Config{External: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("started in %v (external hosts: %v)", time.Since(start).Round(time.Millisecond), l.External())
	ctx := context.Background()
	var held []net.Conn
	hold := func(addr string) {
		c, err := l.Dial(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	hold("www." + domainName("tls-tarpit", 1) + ":443")
	hold("mx." + domainName("smtp-tarpit", 1) + ":25")
	// An SSLv3 host handing a TLS hello on to the lab's server.
	c, err := l.Dial(ctx, "tcp", "www."+domainName("tls-sslv3", 1)+":443")
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c, &tls.Config{RootCAs: l.Roots, ServerName: "www." + domainName("tls-sslv3", 1)})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS through the SSLv3 handler: %v", err)
	}
	held = append(held, tc)
	var ext *external
	if l.External() {
		ext = l.ext
		name := "www." + domainName("tls-dh1024", 1)
		c, err := l.Dial(ctx, "tcp", name+":443")
		if err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(c, &tls.Config{RootCAs: l.Roots, ServerName: name})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS through the relay to gnutls-serv: %v", err)
		}
		held = append(held, tc)
	}
	time.Sleep(50 * time.Millisecond) // let the handlers start
	l.Close()
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%v: still open after Close (%v)", c.RemoteAddr(), err)
		}
		c.Close()
	}
	if ext != nil && ext.cmd.ProcessState == nil { // set once Wait has returned
		t.Error("gnutls-serv still running after Close")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before Start, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
