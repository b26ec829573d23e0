package webcheck

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/webfetch"
)

// FuzzCSP parses any value within webfetch's bound and judges it: no
// panic, bounded output, and a directive name is lower-case ASCII.
func FuzzCSP(f *testing.F) {
	for _, s := range []string{
		"default-src 'self'; frame-ancestors 'none'",
		"script-src 'unsafe-inline' 'nonce-abc=' 'strict-dynamic' https:, script-src *",
		"SCRIPT-SRC 'UNSAFE-EVAL'; script-src 'self';;; ,,",
		"frame-ancestors https://*:443/x ✓; img-src data:",
		"script-src 'sha256-'; default-src 'nonce-==='",
	} {
		f.Add(s, "DENY, sameorigin")
	}
	f.Add("default-src 'self'", `<meta http-equiv="Content-Security-Policy" content="script-src 'unsafe-inline'"><META HTTP-EQUIV=content-security-policy content=x><metadata>`)
	f.Fuzz(func(t *testing.T, csp, xfo string) {
		if len(csp) > webfetch.MaxValueLen {
			csp = csp[:webfetch.MaxValueLen]
		}
		ps, err := ParseCSP(csp)
		if err != nil {
			return
		}
		if len(ps) > cspMaxPolicies {
			t.Fatalf("%d policies", len(ps))
		}
		for _, p := range ps {
			if len(p.Directives) == 0 || len(p.Directives) > cspMaxDirectives {
				t.Fatalf("a policy of %d directives", len(p.Directives))
			}
			for _, d := range p.Directives {
				if d.Name == "" || d.Name != strings.ToLower(d.Name) || !cspASCII(d.Name) {
					t.Fatalf("directive name %q", d.Name)
				}
			}
		}
		if mps, _, err := cspMetaPolicies([]byte(xfo)); err == nil && len(mps) > cspMaxPolicies*softwareMaxMetas {
			t.Fatalf("%d meta policies", len(mps))
		}
		h := http.Header{}
		h.Add("Content-Security-Policy", csp)
		h.Add("X-Frame-Options", xfo)
		hop := webfetch.Hop{URL: "https://a.example/", TLS: true, Status: 200, Headers: webfetch.BoundHeaders(h)}
		for _, x := range []string{evaluateCSP(&hop).Message, evaluateFraming(&hop).Message} {
			if len(x) > 1024 {
				t.Fatalf("message of %d bytes", len(x))
			}
		}
	})
}

// FuzzSetCookie parses and judges any Set-Cookie value: no panic, and a
// parsed cookie keeps the bounds browsers apply.
func FuzzSetCookie(f *testing.F) {
	for _, s := range []string{
		"__Host-sid=1; Secure; HttpOnly; SameSite=Lax; Path=/",
		"a=b; Max-Age=-0; Expires=Wed, 09 Jun 2021 10:18:14 GMT; expires=99 jan 1:2:3",
		"=; ;;; secure=1; samesite",
		"__Secure-x=1; Domain=.; Max-Age=99999999999999999999999",
		"sid=\x01",
	} {
		f.Add(s)
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > webfetch.MaxValueLen {
			s = s[:webfetch.MaxValueLen]
		}
		c, err := ParseSetCookie(s)
		if err == nil && len(c.Name)+len(c.Value) > cookieMaxNameValue {
			t.Fatalf("name and value of %d bytes kept", len(c.Name)+len(c.Value))
		}
		for _, tlsOn := range []bool{true, false} {
			hop := webfetch.Hop{URL: "https://a.example/", TLS: tlsOn}
			judgeCookie(s, &hop, at)
		}
	})
}

// FuzzSoftware fingerprints any headers and body: no panic, and a fact
// names a product of the table with a dotted version.
func FuzzSoftware(f *testing.F) {
	f.Add("Apache/2.4.41 (Ubuntu) PHP/7.4.3", "PHP/8.1.2, ASP.NET", `<META Name="Generator" content="WordPress 4.6.1"><meta name=generator content=Drupal>`)
	f.Add("nginx/1.25.3", "", `<meta name='generator' content='Joomla! 3.9 - x`)
	f.Add("Microsoft-IIS/8.5", "<script>alert(1)</script>", "<meta <meta name=generator content=\"Drupal 7.1.1.1.1.1\"")
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, server, powered, body string) {
		h := http.Header{}
		h.Add("Server", server)
		h.Add("X-Powered-By", powered)
		h.Add("X-AspNet-Version", powered)
		hop := webfetch.Hop{URL: "https://a.example/", TLS: true, Status: 200, Headers: webfetch.BoundHeaders(h), Body: &webfetch.Body{Data: []byte(body)}}
		for _, fact := range softwareFromHeaders(hop.Headers) {
			if _, ok := eolTable[fact.product]; !ok || fact.version == "" || strings.Trim(fact.version, "0123456789.") != "" {
				t.Fatalf("fact %+v", fact)
			}
		}
		for _, g := range softwareGenerators(hop.Body.Data) {
			softwareFromGenerator(g)
		}
		if m := evaluateSoftware(&hop, at).Message; len(m) > 4096 {
			t.Fatalf("message of %d bytes", len(m))
		}
	})
}

// FuzzPermissionsPolicy parses any value as a structured-field
// dictionary: no panic, and every key returned is a valid key.
func FuzzPermissionsPolicy(f *testing.F) {
	for _, s := range []string{`camera=(), geolocation=(self "https://a.example"), fullscreen=*`, "a=1.5;q=?1, b=:YWJj:, c=@1, d=%\"x\"",
		"geolocation 'none'", "a=(1 2", `a="\"`, "a=-123456789012345, b=1.,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := sfDictKeys(s)
		if err != nil {
			return
		}
		if len(keys) > sfMaxMembers {
			t.Fatalf("%d keys", len(keys))
		}
		for _, k := range keys {
			if k == "" || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789_-.*") != "" {
				t.Fatalf("key %q", k)
			}
		}
	})
}
