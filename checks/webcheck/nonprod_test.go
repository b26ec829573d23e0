package webcheck

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

func hopRedirect(from, to string) webfetch.Hop {
	return webfetch.Hop{URL: from, TLS: strings.HasPrefix(from, "https:"), Status: 302, Location: to, Next: to}
}

func status(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", good)
		if code == 401 {
			w.Header().Set("WWW-Authenticate", `Basic realm="staging"`)
		}
		w.WriteHeader(code)
	})
}

func TestNonprodLabels(t *testing.T) {
	labels := append(DefaultNonprodLabels[:len(DefaultNonprodLabels):len(DefaultNonprodLabels)], "*-dev")
	for host, want := range map[string]string{
		"dev.example.nhs.uk":         "dev",
		"dev2.example.nhs.uk":        "dev",
		"uat01.example.nhs.uk":       "uat",
		"staging.app.example.nhs.uk": "staging",
		"www-preview.example.nhs.uk": "www-preview",
		"portal-dev.example.nhs.uk":  "*-dev",
		"developer.example.nhs.uk":   "",
		"testing.example.nhs.uk":     "",
		"app.dev.example.nhs.uk":     "", // the first label only
		"example.nhs.uk":             "",
		"dev.other.nhs.uk":           "", // not under the estate domain
		"latest.example.nhs.uk":      "",
	} {
		if got := NonprodLabel(host, "example.nhs.uk", labels); got != want {
			t.Errorf("%s: %q, want %q", host, got, want)
		}
	}
}

func TestWebNonprodProtectedVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		host  string
		sites func(h string) map[string]site
		want  check.Outcome
		msg   string
	}{
		{"basic auth", "staging.example.nhs.uk", func(h string) map[string]site { return map[string]site{h: {nil, status(401)}} }, check.Pass, "answers 401"},
		{"forbidden", "dev.example.nhs.uk", func(h string) map[string]site { return map[string]site{h: {nil, status(403)}} }, check.Pass, "answers 403"},
		{"open", "test.example.nhs.uk", func(h string) map[string]site { return map[string]site{h: {nil, page(good)}} }, check.Fail, "without asking for credentials"},
		{"entra id", "uat.example.nhs.uk", func(h string) map[string]site {
			return map[string]site{h: {nil, redirect("https://login.microsoftonline.com/tenant/oauth2/v2.0/authorize?client_id=x", 302)}}
		}, check.Pass, "sign in at login.microsoftonline.com"},
		{"easy auth via its own path", "preview.example.nhs.uk", func(h string) map[string]site {
			return map[string]site{h: {nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/" {
					http.Redirect(w, r, "/.auth/login/aad", 302)
					return
				}
				http.Redirect(w, r, "https://login.microsoftonline.com/common/oauth2/authorize", 302)
			})}}
		}, check.Pass, "login.microsoftonline.com"},
		{"own sign-in form", "dev.example.nhs.uk", func(h string) map[string]site {
			return map[string]site{h: {nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/" {
					http.Redirect(w, r, "/Account/Login?ReturnUrl=%2F", 302)
					return
				}
				page(good).ServeHTTP(w, r)
			})}}
		}, check.Warn, "sign-in page"},
		{"not found", "dev.example.nhs.uk", func(h string) map[string]site { return map[string]site{h: {nil, status(404)}} }, check.Warn, "with 404"},
		{"to production", "test.example.nhs.uk", func(h string) map[string]site {
			return map[string]site{h: {nil, redirect("https://www.example.nhs.uk/", 301)}, "www.example.nhs.uk": {nil, page(good)}}
		}, check.Pass, "not a non-production host"},
		{"http only", "dev.example.nhs.uk", func(h string) map[string]site { return map[string]site{h: {status(401), nil}} }, check.Pass, "answers 401"},
		{"closed", "dev.example.nhs.uk", func(h string) map[string]site { return map[string]site{} }, check.NA, "serves nothing"},
		{"not non-production", "www.example.nhs.uk", func(h string) map[string]site { return map[string]site{h: {nil, page(good)}} }, check.NA, "not named"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := preloadFindings(t, envFor(t, tc.sites(tc.host)), tc.host, nil)[NonprodProtected]
			if f.Outcome != tc.want || !strings.Contains(f.Message, tc.msg) {
				t.Errorf("%s (%s), want %s with %q", f.Outcome, f.Message, tc.want, tc.msg)
			}
		})
	}
}
