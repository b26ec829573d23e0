package webcheck

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

// secTxtServe serves body at the well-known path with content type ct
// (and legacy at /security.txt); anything else is a 404.
func secTxtServe(ct, body string, legacy ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == SecurityTxtPath:
			if ct != "" {
				w.Header().Set("Content-Type", ct)
			} else {
				w.Header()["Content-Type"] = nil
			}
			w.Write([]byte(body))
		case r.URL.Path == securityTxtLegacy && len(legacy) > 0:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte(legacy[0]))
		default:
			http.NotFound(w, r)
		}
	})
}

const secTxtPlain = "text/plain; charset=utf-8"

func secTxtFile(host string, extra ...string) string {
	lines := append([]string{"Contact: mailto:security@example.nhs.uk", "Expires: 2026-12-31T23:59:59Z",
		"Policy: https://example.nhs.uk/vdp", "Canonical: https://" + host + SecurityTxtPath}, extra...)
	return strings.Join(lines, "\n") + "\n"
}

// TestSecurityTxtVerdicts fetches loopback sites and judges them at a
// fixed collection time.
func TestSecurityTxtVerdicts(t *testing.T) {
	const host, apex = "www.example.nhs.uk", "example.nhs.uk"
	P, F, W, N := check.Pass, check.Fail, check.Warn, check.NA
	html := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!doctype html><p>Page not found</p>"))
	})
	for _, tc := range []struct {
		name           string
		sites          map[string]site
		present, valid check.Outcome
		severity       check.Severity // of valid, when set
		msg            string         // in present's or valid's message
	}{
		{"good", map[string]site{host: {nil, secTxtServe(secTxtPlain, secTxtFile(host))}}, P, P, "", ""},
		{"no charset", map[string]site{host: {nil, secTxtServe("text/plain", secTxtFile(host))}}, P, P, "", "no charset"},
		{"charset latin-1", map[string]site{host: {nil, secTxtServe("text/plain; charset=iso-8859-1", secTxtFile(host))}}, F, P, "", "charset MUST be utf-8"},
		{"no content type", map[string]site{host: {nil, secTxtServe("", secTxtFile(host))}}, F, N, "", "without a Content-Type"},
		{"octet-stream", map[string]site{host: {nil, secTxtServe("application/octet-stream", secTxtFile(host))}}, F, N, "", "MUST be text/plain"},
		{"404", map[string]site{host: {nil, http.NotFoundHandler()}}, F, N, "", "answers 404"},
		{"404, file at the legacy path", map[string]site{host: {nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == securityTxtLegacy {
				w.Header().Set("Content-Type", secTxtPlain)
				w.Write([]byte(secTxtFile(host)))
				return
			}
			http.NotFound(w, r)
		})}}, F, N, "", "legacy location"},
		{"soft 404", map[string]site{host: {nil, html}}, F, N, "", "soft 404"},
		{"expired", map[string]site{host: {nil, secTxtServe(secTxtPlain, strings.Replace(secTxtFile(host), "2026-12-31", "2026-05-01", 1))}}, P, F, check.High, "expired on 2026-05-01"},
		{"no policy", map[string]site{host: {nil, secTxtServe(secTxtPlain, strings.Replace(secTxtFile(host), "Policy:", "X-Policy:", 1))}}, P, W, check.Low, "no Policy"},
		{"http contact and canonical elsewhere", map[string]site{host: {nil, secTxtServe(secTxtPlain,
			"Contact: http://example.nhs.uk/c\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://example.nhs.uk/vdp\nCanonical: https://example.org/.well-known/security.txt\n")}},
			P, F, check.Medium, "line 1: Contact"},
		{"huge", map[string]site{host: {nil, secTxtServe(secTxtPlain, secTxtFile(host)+strings.Repeat("# padding\n", 4000))}}, P, F, "", "larger than 32768 bytes"},
		{"central redirect", map[string]site{host: {nil, redirect(DefaultSecurityTxtCentral[0], 302)}}, P, N, "", "central disclosure file"},
		{"redirect out of the estate", map[string]site{host: {nil, redirect("https://vdp.example.org/.well-known/security.txt", 302)}}, F, N, "", "out of the estate"},
		{"redirect to the apex's file", map[string]site{host: {nil, redirect("https://"+apex+SecurityTxtPath, 301)},
			apex: {nil, secTxtServe(secTxtPlain, secTxtFile(apex))}}, P, P, "", "after 1 redirect from"},
		{"redirect loop", map[string]site{host: {nil, redirect("https://"+host+SecurityTxtPath, 302)}}, F, N, "", "loop"},
		{"no port 443", map[string]site{host: {redirect("https://"+host+"/", 301), nil}}, N, N, "", "refuses connections on port 443"},
		{"signed", map[string]site{host: {nil, secTxtServe(secTxtPlain, "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"+secTxtFile(host)+
			"-----BEGIN PGP SIGNATURE-----\n\niHUEARYIAB0WIQQ\n=ab12\n-----END PGP SIGNATURE-----\n")}}, P, P, "", "OpenPGP-signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := envFor(t, tc.sites)
			var outside atomic.Int64
			dial := env.Dial
			env.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if h, _, _ := net.SplitHostPort(addr); !strings.HasSuffix(h, apex) {
					outside.Add(1)
				}
				return dial(ctx, network, addr)
			}
			env.Now = func() time.Time { return secTxtAt }
			c := SecurityTxtCheck()
			ev, err := c.Collect(context.Background(), env, check.Asset{Kind: check.KindHost, Name: host, Domain: apex})
			if err != nil {
				t.Fatal(err)
			}
			fs := c.Evaluate(ev, nil)
			got := map[string]check.Finding{}
			for _, f := range fs {
				got[f.CheckID] = f
			}
			if len(fs) != 2 || got[SecurityTxtPresent].Outcome != tc.present || got[SecurityTxtValid].Outcome != tc.valid {
				t.Fatalf("present %s, valid %s; want %s, %s\n%+v", got[SecurityTxtPresent].Outcome, got[SecurityTxtValid].Outcome, tc.present, tc.valid, fs)
			}
			t.Logf("present: %s\nvalid: %s", got[SecurityTxtPresent].Message, got[SecurityTxtValid].Message)
			if tc.severity != "" && got[SecurityTxtValid].Severity != tc.severity {
				t.Errorf("valid severity %s, want %s", got[SecurityTxtValid].Severity, tc.severity)
			}
			if msg := got[SecurityTxtPresent].Message + " | " + got[SecurityTxtValid].Message; !strings.Contains(msg, tc.msg) {
				t.Errorf("messages %q lack %q", msg, tc.msg)
			}
			var e SecurityTxtEvidence
			if err := json.Unmarshal(ev.Data, &e); err != nil || e.Signed != (tc.name == "signed") {
				t.Errorf("evidence signed = %v (%v)", e.Signed, err)
			}
			if n := outside.Load(); n != 0 {
				t.Errorf("%d connections outside the estate", n)
			}
		})
	}
}

// TestSecurityTxtCentralListIsPolicy: a redirect to a file the policy
// names as central passes without a connection to it; with the default
// policy the same redirect fails.
func TestSecurityTxtCentralListIsPolicy(t *testing.T) {
	const host = "www.example.nhs.uk"
	const central = "https://vdp.example.org/.well-known/security.txt"
	var conns atomic.Int64
	env := envFor(t, map[string]site{host: {nil, redirect(central, 302)}})
	dial := env.Dial
	env.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "vdp.example.org") {
			conns.Add(1)
		}
		return dial(ctx, network, addr)
	}
	c := SecurityTxtCheck()
	ev, _ := c.Collect(context.Background(), env, check.Asset{Kind: check.KindHost, Name: host, Domain: "example.nhs.uk"})
	p, err := secTxtParsePolicy("web:\n  securitytxt_central:\n    - " + central + "\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pol  *check.Policy
		want check.Outcome
	}{{nil, check.Fail}, {p, check.Pass}} {
		if fs := c.Evaluate(ev, tc.pol); fs[0].Outcome != tc.want {
			t.Errorf("present = %s, want %s: %s", fs[0].Outcome, tc.want, fs[0].Message)
		}
	}
	if conns.Load() != 0 {
		t.Errorf("%d connections to the central file's host", conns.Load())
	}
}

// secTxtParsePolicy parses a policy with the web section registered.
func secTxtParsePolicy(y string) (*check.Policy, error) {
	return check.ParsePolicy("test.yaml", []byte(y), []check.Sectioner{Settings})
}

func TestSecurityTxtPolicyCentralValidation(t *testing.T) {
	p, err := secTxtParsePolicy("web:\n  securitytxt_central: []\n")
	if err != nil || len(Settings.Get(p).SecurityTxtCentral) != 0 {
		t.Errorf("an empty list: %v, %v", err, Settings.Get(p).SecurityTxtCentral)
	}
	if got := Settings.Get(nil).SecurityTxtCentral; len(got) != 1 || got[0] != DefaultSecurityTxtCentral[0] {
		t.Errorf("default %v", got)
	}
	for _, bad := range []string{"http://vdp.example.org/x", "vdp.example.org", "https:///x"} {
		if _, err := secTxtParsePolicy("web:\n  securitytxt_central: [\"" + bad + "\"]\n"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestSecurityTxtUnknownWhenTheFetchFails judges recorded failures: a
// timeout or a failed handshake is unknown with its class, never fail.
func TestSecurityTxtUnknownWhenTheFetchFails(t *testing.T) {
	for _, class := range []check.ErrClass{check.ErrTimeout, check.ErrBlocked} {
		ev := SecurityTxtEvidence{Host: "h.nhs.uk", WellKnown: Chain{Result: webfetch.Result{
			URL: "https://h.nhs.uk" + SecurityTxtPath, End: webfetch.EndError, Class: class,
			Hops: []webfetch.Hop{{URL: "https://h.nhs.uk" + SecurityTxtPath, TLS: true, Stage: webfetch.StageTLS, Class: class, Error: "x"}}}}}
		b, _ := json.Marshal(ev)
		fs := SecurityTxtCheck().Evaluate(check.Evidence{CheckID: "web.securitytxt", Data: b, Version: 1, CollectedAt: secTxtAt}, nil)
		for _, f := range fs {
			if f.Outcome != check.Unknown || f.Reason != string(class) {
				t.Errorf("%s: %s %s (%s), want unknown %s", class, f.CheckID, f.Outcome, f.Reason, class)
			}
		}
	}
	// A body cut short: the file is there, its fields unknown.
	ev := SecurityTxtEvidence{Host: "h.nhs.uk", WellKnown: Chain{Result: webfetch.Result{
		URL: "https://h.nhs.uk" + SecurityTxtPath, End: webfetch.EndFinal,
		Hops: []webfetch.Hop{{URL: "https://h.nhs.uk" + SecurityTxtPath, TLS: true, Status: 200,
			Headers: webfetch.Headers{"Content-Type": {Values: []string{"text/plain"}, Count: 1}},
			Body:    &webfetch.Body{Data: []byte("Contact: mai"), Class: check.ErrTimeout, Error: "deadline"}}}}}}
	b, _ := json.Marshal(ev)
	fs := SecurityTxtCheck().Evaluate(check.Evidence{CheckID: "web.securitytxt", Data: b, Version: 1, CollectedAt: secTxtAt}, nil)
	if fs[0].Outcome != check.Pass || fs[1].Outcome != check.Unknown || fs[1].Reason != string(check.ErrTimeout) {
		t.Errorf("a trickled body: %s, %s (%s)", fs[0].Outcome, fs[1].Outcome, fs[1].Reason)
	}
}
