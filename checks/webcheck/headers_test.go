package webcheck

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

// hdrHop is an answered HTTPS hop with the given headers (name, value
// pairs; a name may repeat), recorded as webfetch records them.
func hdrHop(url string, kv ...string) webfetch.Hop {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return webfetch.Hop{URL: url, TLS: strings.HasPrefix(url, "https:"), Status: 200, Headers: webfetch.BoundHeaders(h)}
}

// goodHeaders are a good site's headers.
var goodHeaders = []string{
	"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options", "nosniff",
	"X-Frame-Options", "DENY",
	"Referrer-Policy", "strict-origin-when-cross-origin",
	"Permissions-Policy", "camera=(), microphone=()",
}

// hdrJudge judges one final HTTPS page with the given headers.
func hdrJudge(t *testing.T, kv ...string) map[string]check.Finding {
	t.Helper()
	h := hdrHop("https://www.example.nhs.uk/", kv...)
	ev := Evidence{Host: "www.example.nhs.uk",
		HTTP:  Chain{Refused: true, Result: webfetch.Result{URL: "http://www.example.nhs.uk/", End: webfetch.EndError, Hops: []webfetch.Hop{{URL: "http://www.example.nhs.uk/", Stage: webfetch.StageDial, Class: check.ErrUnreachable}}}},
		HTTPS: Chain{Result: webfetch.Result{URL: h.URL, End: webfetch.EndFinal, Hops: []webfetch.Hop{h}}}}
	return hdrEvaluate(ev)
}

func hdrEvaluate(ev Evidence) map[string]check.Finding {
	in := check.In[Evidence]{Asset: check.Asset{Kind: check.KindHost, Name: ev.Host, Domain: "example.nhs.uk"}, Evidence: ev,
		CollectedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	got := map[string]check.Finding{}
	for _, f := range evaluateHeaders(in, check.Finding{Outcome: check.Pass}) {
		got[f.CheckID] = f
	}
	return got
}

func TestParseCSPFollowsCSP3Parsing(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []CSPPolicy
	}{
		{"default-src 'self'", []CSPPolicy{{[]CSPDirective{{"default-src", []string{"'self'"}}}}}},
		{"SCRIPT-SRC 'Self'  https://a.example ;;", []CSPPolicy{{[]CSPDirective{{"script-src", []string{"'Self'", "https://a.example"}}}}}},
		// The first directive of a name wins; later ones are ignored.
		{"script-src 'self'; script-src *", []CSPPolicy{{[]CSPDirective{{"script-src", []string{"'self'"}}}}}},
		// Commas separate policies; empty ones are dropped.
		{"script-src *, , default-src 'none'", []CSPPolicy{
			{[]CSPDirective{{"script-src", []string{"*"}}}},
			{[]CSPDirective{{"default-src", []string{"'none'"}}}}}},
		// A directive with a non-ASCII code point is skipped.
		{"script-src 'self' ✓; img-src *", []CSPPolicy{{[]CSPDirective{{"img-src", []string{"*"}}}}}},
		{"upgrade-insecure-requests", []CSPPolicy{{[]CSPDirective{{"upgrade-insecure-requests", []string{}}}}}},
		{" ; ,", nil},
	} {
		got, err := ParseCSP(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCSP(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	var distinct strings.Builder
	for i := range cspMaxDirectives + 1 {
		fmt.Fprintf(&distinct, "d%d;", i)
	}
	if _, err := ParseCSP(distinct.String()); err == nil {
		t.Error("a policy of distinct directives past the bound parsed")
	}
	if _, err := ParseCSP(strings.Repeat("a;", 10000)); err != nil {
		t.Errorf("repeated duplicate directives: %v", err)
	}
}

func TestCSPVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   []string
		want check.Outcome
	}{
		{"missing", nil, check.Fail},
		{"report-only alone", []string{"Content-Security-Policy-Report-Only", "default-src 'self'"}, check.Fail},
		{"empty header", []string{"Content-Security-Policy", " ; "}, check.Fail},
		{"self", []string{"Content-Security-Policy", "default-src 'self'"}, check.Pass},
		{"unsafe-inline without a nonce", []string{"Content-Security-Policy", "script-src 'self' 'unsafe-inline'"}, check.Warn},
		{"unsafe-inline keyword in upper case", []string{"Content-Security-Policy", "script-src 'self' 'UNSAFE-INLINE'"}, check.Warn},
		{"unsafe-inline with a nonce", []string{"Content-Security-Policy", "script-src 'self' 'unsafe-inline' 'nonce-r4nd0m+/='"}, check.Pass},
		{"unsafe-inline with a hash", []string{"Content-Security-Policy", "script-src 'unsafe-inline' 'sha256-abc123='"}, check.Pass},
		{"unsafe-inline with an empty nonce", []string{"Content-Security-Policy", "script-src 'unsafe-inline' 'nonce-'"}, check.Warn},
		{"strict-dynamic ignores unsafe-inline and hosts", []string{"Content-Security-Policy", "script-src 'strict-dynamic' 'nonce-abc' 'unsafe-inline' https:"}, check.Pass},
		{"unsafe-eval", []string{"Content-Security-Policy", "default-src 'self' 'unsafe-eval'"}, check.Warn},
		{"star", []string{"Content-Security-Policy", "script-src *"}, check.Warn},
		{"https scheme", []string{"Content-Security-Policy", "script-src 'self' https:"}, check.Warn},
		{"any host on https", []string{"Content-Security-Policy", "script-src https://*"}, check.Warn},
		{"data scheme", []string{"Content-Security-Policy", "script-src 'self' data:"}, check.Warn},
		{"wildcard subdomain is a host list", []string{"Content-Security-Policy", "script-src https://*.nhs.uk"}, check.Pass},
		{"script-src beats a weak default-src", []string{"Content-Security-Policy", "default-src *; script-src 'self'"}, check.Pass},
		{"weak script-src beats a strict default-src", []string{"Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'"}, check.Warn},
		{"first duplicate wins", []string{"Content-Security-Policy", "script-src 'self'; script-src 'unsafe-inline'"}, check.Pass},
		{"first duplicate wins, weak", []string{"Content-Security-Policy", "script-src 'unsafe-inline'; script-src 'self'"}, check.Warn},
		{"no script policy", []string{"Content-Security-Policy", "frame-ancestors 'none'"}, check.Warn},
		{"script-src-elem lets inline scripts in", []string{"Content-Security-Policy", "script-src 'self'; script-src-elem 'self' 'unsafe-inline'"}, check.Warn},
		{"script-src lets inline handlers in past a strict elem", []string{"Content-Security-Policy", "script-src 'unsafe-inline'; script-src-elem 'self'"}, check.Warn},
		{"elem and attr both strict", []string{"Content-Security-Policy", "script-src 'unsafe-inline' 'unsafe-eval'; script-src-elem 'self'; script-src-attr 'none'"}, check.Warn},
		{"elem, attr and script-src strict", []string{"Content-Security-Policy", "script-src 'self'; script-src-elem 'self'; script-src-attr 'none'"}, check.Pass},
		{"any host through script-src-elem", []string{"Content-Security-Policy", "default-src 'self'; script-src-elem https:"}, check.Warn},
		{"inline kinds blocked by different policies", []string{"Content-Security-Policy", "default-src 'self'; script-src-elem 'unsafe-inline', default-src 'self'; script-src-attr 'unsafe-inline'"}, check.Pass},
		{"second header is strict", []string{"Content-Security-Policy", "script-src 'unsafe-inline' 'unsafe-eval' *", "Content-Security-Policy", "script-src 'self'"}, check.Pass},
		{"second comma policy is strict", []string{"Content-Security-Policy", "script-src *, script-src 'self'"}, check.Pass},
		{"second policy has no script list", []string{"Content-Security-Policy", "script-src *", "Content-Security-Policy", "frame-ancestors 'none'"}, check.Warn},
		{"report-only strict does not help", []string{"Content-Security-Policy", "script-src *", "Content-Security-Policy-Report-Only", "script-src 'self'"}, check.Warn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := hdrJudge(t, tc.kv...)[HdrCSP]
			if got.Outcome != tc.want {
				t.Errorf("%s = %s (%s), want %s", HdrCSP, got.Outcome, got.Message, tc.want)
			}
		})
	}
}

func TestFramingVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   []string
		want check.Outcome
	}{
		{"nothing", nil, check.Fail},
		{"deny", []string{"X-Frame-Options", "DENY"}, check.Pass},
		{"sameorigin lower case, spaces", []string{"X-Frame-Options", " sameorigin "}, check.Pass},
		{"allow-from is obsolete", []string{"X-Frame-Options", "ALLOW-FROM https://a.example"}, check.Fail},
		{"unknown value", []string{"X-Frame-Options", "DENYY"}, check.Fail},
		{"the same value twice", []string{"X-Frame-Options", "DENY", "X-Frame-Options", "deny"}, check.Pass},
		// HTML §7.1: conflicting values fall back to deny.
		{"conflicting values", []string{"X-Frame-Options", "DENY, SAMEORIGIN"}, check.Pass},
		{"frame-ancestors none without xfo", []string{"Content-Security-Policy", "frame-ancestors 'none'"}, check.Pass},
		{"frame-ancestors self", []string{"Content-Security-Policy", "frame-ancestors 'self'"}, check.Pass},
		{"frame-ancestors list", []string{"Content-Security-Policy", "frame-ancestors https://portal.nhs.uk"}, check.Pass},
		{"frame-ancestors empty", []string{"Content-Security-Policy", "frame-ancestors"}, check.Pass},
		// An enforced frame-ancestors makes browsers ignore XFO.
		{"frame-ancestors star overrides xfo", []string{"Content-Security-Policy", "frame-ancestors *", "X-Frame-Options", "DENY"}, check.Fail},
		{"frame-ancestors https overrides xfo", []string{"Content-Security-Policy", "frame-ancestors https:", "X-Frame-Options", "DENY"}, check.Fail},
		{"one restricting policy is enough", []string{"Content-Security-Policy", "frame-ancestors *, frame-ancestors 'self'"}, check.Pass},
		{"report-only frame-ancestors does not count", []string{"Content-Security-Policy-Report-Only", "frame-ancestors 'none'"}, check.Fail},
		{"report-only frame-ancestors does not displace xfo", []string{"Content-Security-Policy-Report-Only", "frame-ancestors *", "X-Frame-Options", "SAMEORIGIN"}, check.Pass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := hdrJudge(t, tc.kv...)[HdrFraming]
			if got.Outcome != tc.want {
				t.Errorf("%s = %s (%s), want %s", HdrFraming, got.Outcome, got.Message, tc.want)
			}
		})
	}
}

func TestOtherHeaderVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		kv   []string
		want check.Outcome
	}{
		{"xcto missing", HdrXCTO, nil, check.Fail},
		{"xcto nosniff", HdrXCTO, []string{"X-Content-Type-Options", "nosniff"}, check.Pass},
		{"xcto case and spaces", HdrXCTO, []string{"X-Content-Type-Options", " NoSniff "}, check.Pass},
		{"xcto wrong", HdrXCTO, []string{"X-Content-Type-Options", "sniff"}, check.Fail},
		{"xcto first value counts", HdrXCTO, []string{"X-Content-Type-Options", "nosniff", "X-Content-Type-Options", "nosniff"}, check.Pass},
		{"xcto nosniff second", HdrXCTO, []string{"X-Content-Type-Options", "foo, nosniff"}, check.Fail},

		{"referrer missing", HdrReferrer, nil, check.Fail},
		{"referrer good", HdrReferrer, []string{"Referrer-Policy", "strict-origin-when-cross-origin"}, check.Pass},
		{"referrer unsafe-url", HdrReferrer, []string{"Referrer-Policy", "unsafe-url"}, check.Fail},
		{"referrer downgrade", HdrReferrer, []string{"Referrer-Policy", "No-Referrer-When-Downgrade"}, check.Fail},
		{"referrer last recognised wins", HdrReferrer, []string{"Referrer-Policy", "unsafe-url, no-referrer, made-up"}, check.Pass},
		{"referrer last recognised is unsafe", HdrReferrer, []string{"Referrer-Policy", "no-referrer", "Referrer-Policy", "unsafe-url"}, check.Fail},
		{"referrer unknown only", HdrReferrer, []string{"Referrer-Policy", "strict"}, check.Fail},
		{"referrer values past the bound", HdrReferrer, []string{"Referrer-Policy", "no-referrer", "Referrer-Policy", "a", "Referrer-Policy", "b",
			"Referrer-Policy", "c", "Referrer-Policy", "unsafe-url"}, check.Unknown},

		{"permissions missing", HdrPermissions, nil, check.Fail},
		{"permissions empty", HdrPermissions, []string{"Permissions-Policy", " "}, check.Fail},
		{"permissions present", HdrPermissions, []string{"Permissions-Policy", "geolocation=()"}, check.Pass},
		{"permissions full", HdrPermissions, []string{"Permissions-Policy", `camera=(), geolocation=(self "https://maps.example"), fullscreen=*, interest-cohort=()`}, check.Pass},
		{"permissions two headers", HdrPermissions, []string{"Permissions-Policy", "camera=()", "Permissions-Policy", "microphone=(self)"}, check.Pass},
		{"permissions feature-policy syntax", HdrPermissions, []string{"Permissions-Policy", "geolocation 'none'; camera 'none'"}, check.Fail},
		{"permissions upper-case key", HdrPermissions, []string{"Permissions-Policy", "Camera=()"}, check.Fail},
		{"permissions trailing comma", HdrPermissions, []string{"Permissions-Policy", "camera=(),"}, check.Fail},

		{"no server", HdrInfoLeak, nil, check.Pass},
		{"server without version", HdrInfoLeak, []string{"Server", "nginx"}, check.Pass},
		{"server with digits in the name", HdrInfoLeak, []string{"Server", "AmazonS3"}, check.Pass},
		{"server with an id in a comment", HdrInfoLeak, []string{"Server", "ECS (dcb/7F84)"}, check.Pass},
		{"nginx version", HdrInfoLeak, []string{"Server", "nginx/1.25.3"}, check.Fail},
		{"iis version", HdrInfoLeak, []string{"Server", "Microsoft-IIS/10.0"}, check.Fail},
		{"apache version and os", HdrInfoLeak, []string{"Server", "Apache/2.4.58 (Debian)"}, check.Fail},
		{"jetty version in a comment", HdrInfoLeak, []string{"Server", "Jetty(9.4.43.v20210629)"}, check.Fail},
		{"x-powered-by", HdrInfoLeak, []string{"X-Powered-By", "PHP/8.1.2"}, check.Fail},
		{"x-powered-by script", HdrInfoLeak, []string{"X-Powered-By", "<script>alert(1)</script>"}, check.Fail},
		{"aspnet version", HdrInfoLeak, []string{"X-AspNet-Version", "4.0.30319"}, check.Fail},
		{"aspnetmvc version", HdrInfoLeak, []string{"X-AspNetMvc-Version", "5.2"}, check.Fail},

		{"nothing deprecated", HdrDeprecated, nil, check.Pass},
		{"xss protection 0", HdrDeprecated, []string{"X-XSS-Protection", "0"}, check.Pass},
		{"xss protection on", HdrDeprecated, []string{"X-XSS-Protection", "1; mode=block"}, check.Warn},
		{"expect-ct", HdrDeprecated, []string{"Expect-CT", "max-age=86400, enforce"}, check.Warn},
		{"hpkp", HdrDeprecated, []string{"Public-Key-Pins", `pin-sha256="abc="; max-age=5184000`}, check.Fail},
		{"hpkp report-only", HdrDeprecated, []string{"Public-Key-Pins-Report-Only", `pin-sha256="abc="`}, check.Warn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := hdrJudge(t, tc.kv...)[tc.id]
			if got.Outcome != tc.want {
				t.Errorf("%s = %s (%s), want %s", tc.id, got.Outcome, got.Message, tc.want)
			}
		})
	}
}

func TestGoodHeadersPassEveryID(t *testing.T) {
	got := hdrJudge(t, goodHeaders...)
	for _, id := range HeaderIDs {
		want := check.Pass
		if id == SoftwareOutdated {
			want = check.NA // no version named
		}
		if got[id].Outcome != want {
			t.Errorf("%s = %s (%s), want %s", id, got[id].Outcome, got[id].Message, want)
		}
	}
}

func TestHeaderMessagesQuoteServerTextClipped(t *testing.T) {
	long := "<script>" + strings.Repeat("A", 5000) + "</script>"
	got := hdrJudge(t, "X-Powered-By", long, "Content-Security-Policy", "script-src * "+strings.Repeat("https://a.example ", 300))
	for _, id := range []string{HdrInfoLeak, HdrCSP} {
		if m := got[id].Message; len(m) > 600 || !strings.Contains(m, "…") {
			t.Errorf("%s message not clipped (%d bytes): %.200s", id, len(m), m)
		}
	}
	if !strings.Contains(got[HdrInfoLeak].Message, "<script>") {
		t.Errorf("the leak is not quoted: %s", got[HdrInfoLeak].Message)
	}
}

func TestClippedCSPIsUnknownWhenTheVerdictDependsOnIt(t *testing.T) {
	// Five weak policies: the fifth is not recorded (MaxValues = 4) and
	// could have been strict.
	var kv []string
	for range webfetch.MaxValues + 1 {
		kv = append(kv, "Content-Security-Policy", "script-src *")
	}
	if got := hdrJudge(t, kv...)[HdrCSP]; got.Outcome != check.Unknown || got.Reason != string(check.ErrTooLarge) {
		t.Errorf("weak and clipped: %s (%s) %s", got.Outcome, got.Reason, got.Message)
	}
	// A strict policy recorded settles it: policies only restrict.
	kv = []string{"Content-Security-Policy", "script-src 'self'"}
	for range webfetch.MaxValues {
		kv = append(kv, "Content-Security-Policy", "script-src *")
	}
	if got := hdrJudge(t, kv...)[HdrCSP]; got.Outcome != check.Pass {
		t.Errorf("strict and clipped: %s %s", got.Outcome, got.Message)
	}
}

// TestHeadersFollowTheChain: headers are read on the final page of the
// https:// chain, and nothing is judged where it ends without one.
func TestHeadersFollowTheChain(t *testing.T) {
	redirectHop := hdrHop("https://www.example.nhs.uk/")
	redirectHop.Status, redirectHop.Next = 301, "https://www.example.nhs.uk/home"
	final := hdrHop("https://www.example.nhs.uk/home", goodHeaders...)
	mk := func(end webfetch.End, next string, hops ...webfetch.Hop) Evidence {
		return Evidence{Host: "www.example.nhs.uk", HTTP: Chain{Refused: true},
			HTTPS: Chain{Result: webfetch.Result{URL: "https://www.example.nhs.uk/", End: end, Next: next, Hops: hops}}}
	}
	failed := webfetch.Hop{URL: "https://www.example.nhs.uk/home", TLS: true, Stage: webfetch.StageResponse, Class: check.ErrTimeout}
	for _, tc := range []struct {
		name   string
		ev     Evidence
		want   check.Outcome
		reason string
	}{
		{"the final page", mk(webfetch.EndFinal, "", redirectHop, final), check.Pass, ""},
		{"a later hop timed out", mk(webfetch.EndError, "", redirectHop, failed), check.Unknown, string(check.ErrTimeout)},
		{"out of scope", mk(webfetch.EndScope, "https://elsewhere.example/", redirectHop), check.NA, ""},
		{"a loop", mk(webfetch.EndLoop, "https://www.example.nhs.uk/", redirectHop), check.NA, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := hdrEvaluate(tc.ev)
			for _, id := range HeaderIDs[:len(HeaderIDs)-1] {
				if id == SoftwareOutdated && tc.want == check.Pass {
					continue // no version named: n/a
				}
				if got[id].Outcome != tc.want || got[id].Reason != tc.reason {
					t.Errorf("%s = %s (%s) %s, want %s (%s)", id, got[id].Outcome, got[id].Reason, got[id].Message, tc.want, tc.reason)
				}
			}
		})
	}
}

// TestHeaderIDsThroughTheCollector fetches loopback sites through
// web.https and checks every header id is emitted with its outcome.
func TestHeaderIDsThroughTheCollector(t *testing.T) {
	const host = "www.example.nhs.uk"
	headers := func(kv ...string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(kv); i += 2 {
				w.Header().Add(kv[i], kv[i+1])
			}
			if r.URL.Path == "/" && w.Header().Get("Location") != "" {
				w.WriteHeader(http.StatusFound)
				return
			}
			fmt.Fprint(w, "<p>hello</p>")
		})
	}
	toHTTPSWithCookie := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "tracking=1; Max-Age=3600")
		http.Redirect(w, r, "https://"+host+"/", http.StatusMovedPermanently)
	})
	all := func(o check.Outcome) map[string]check.Outcome {
		m := map[string]check.Outcome{}
		for _, id := range HeaderIDs {
			m[id] = o
		}
		if o == check.Pass {
			m[SoftwareOutdated] = check.NA // no version named
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		sites map[string]site
		want  map[string]check.Outcome
	}{
		{"good", map[string]site{host: {redirect("https://"+host+"/", 301), headers(goodHeaders...)}}, all(check.Pass)},
		{"bare", map[string]site{host: {nil, headers()}}, map[string]check.Outcome{HdrCSP: check.Fail, HdrXCTO: check.Fail, HdrFraming: check.Fail,
			HdrReferrer: check.Fail, HdrPermissions: check.Fail, HdrInfoLeak: check.Pass, HdrDeprecated: check.Pass, Cookies: check.Pass}},
		{"no https", map[string]site{host: {headers(), nil}}, all(check.NA)},
		{"neither port", map[string]site{}, all(check.NA)},
		{"cookie on the http redirect", map[string]site{host: {toHTTPSWithCookie, headers(goodHeaders...)}},
			map[string]check.Outcome{Cookies: check.Fail, HdrCSP: check.Pass}},
		{"session cookie on an https redirect hop", map[string]site{host: {nil, headers(append([]string{
			"Location", "/home", "Set-Cookie", "SESSION=abc; Secure; SameSite=Lax"}, goodHeaders...)...)}},
			map[string]check.Outcome{Cookies: check.Fail, HdrCSP: check.Pass}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := envFor(t, tc.sites)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := Check()
			a := check.Asset{Kind: check.KindHost, Name: host, Domain: "example.nhs.uk"}
			ev, err := c.Collect(ctx, env, a)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]check.Finding{}
			for _, f := range c.Evaluate(ev, nil) {
				got[f.CheckID] = f
			}
			for _, id := range HeaderIDs {
				if _, ok := got[id]; !ok {
					t.Errorf("no %s finding", id)
				}
			}
			for id, o := range tc.want {
				if got[id].Outcome != o {
					t.Errorf("%s = %s (%s), want %s", id, got[id].Outcome, got[id].Message, o)
				}
			}
		})
	}
}

func TestHeaderRulesAreInTheCatalogue(t *testing.T) {
	ids := map[string]bool{}
	for _, m := range Check().Rules() {
		ids[m.ID] = true
	}
	for _, id := range HeaderIDs {
		if !ids[id] {
			t.Errorf("%s is not among web.https's rules", id)
		}
	}
}

func TestStructuredFieldDictionaries(t *testing.T) {
	for in, want := range map[string][]string{
		"a=1, b=2;x=?1, c":                   {"a", "b", "c"},
		`a=("x" y:z/w 1.5;q=-2), b=:YWJj:`:   {"a", "b"},
		"a=(),\tb=?0 ":                       {"a", "b"},
		"  ":                                 nil,
		"*k.-_9=@1659578233, d=%\"f%c3%bc\"": {"*k.-_9", "d"},
		"a=1234567890123456":                 nil, // 16 digits
		"a=1.2345":                           nil,
		"a=1.":                               nil,
		`a="unterminated`:                    nil,
		`a="bad\escape"`:                     nil,
		"a=(1 2":                             nil,
		"a=(1,2)":                            nil,
		"A=1":                                nil,
		"a=1,":                               nil,
		"a=1 b=2":                            nil,
		"a=é":                                nil,
	} {
		got, err := sfDictKeys(in)
		if want == nil {
			if err == nil && len(got) > 0 {
				t.Errorf("sfDictKeys(%q) = %q, want an error or nothing", in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("sfDictKeys(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestCSPInMetaElementsIsEnforced(t *testing.T) {
	judge := func(body string, kv ...string) check.Finding {
		h := hdrHop("https://www.example.nhs.uk/", kv...)
		h.Body = &webfetch.Body{Data: []byte(body)}
		return evaluateCSP(&h)
	}
	for _, tc := range []struct {
		name string
		body string
		kv   []string
		want check.Outcome
	}{
		{"meta alone", `<head><meta http-equiv="Content-Security-Policy" content="default-src 'self'"></head>`, nil, check.Pass},
		{"meta upper case", `<META HTTP-EQUIV='content-security-policy' CONTENT="script-src 'unsafe-inline'">`, nil, check.Warn},
		{"meta restricts a weak header", `<meta http-equiv="Content-Security-Policy" content="script-src 'self'">`, []string{"Content-Security-Policy", "script-src *"}, check.Pass},
		{"meta report-only is ignored", `<meta http-equiv="Content-Security-Policy-Report-Only" content="default-src 'self'">`, nil, check.Fail},
		// HTML §4.2.5.3 parses the content as one serialized policy: after
		// a comma, "*" is one more source of script-src.
		{"a meta policy is one policy", `<meta http-equiv="Content-Security-Policy" content="script-src 'self', script-src *">`, nil, check.Warn},
		{"frame-ancestors alone in meta restricts nothing", `<meta http-equiv="Content-Security-Policy" content="frame-ancestors 'none'">`, nil, check.Fail},
		{"metadata is not meta", `<metadata http-equiv="Content-Security-Policy" content="default-src 'self'">`, nil, check.Fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := judge(tc.body, tc.kv...); got.Outcome != tc.want {
				t.Errorf("%s = %s (%s), want %s", HdrCSP, got.Outcome, got.Message, tc.want)
			}
		})
	}
	// frame-ancestors in a meta element does not protect from framing.
	h := hdrHop("https://www.example.nhs.uk/")
	h.Body = &webfetch.Body{Data: []byte(`<meta http-equiv="Content-Security-Policy" content="frame-ancestors 'none'">`)}
	if got := evaluateFraming(&h); got.Outcome != check.Fail {
		t.Errorf("%s = %s (%s), want fail", HdrFraming, got.Outcome, got.Message)
	}
}
