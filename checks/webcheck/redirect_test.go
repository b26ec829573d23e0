package webcheck

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
)

func TestWebRedirectScopeVerdicts(t *testing.T) {
	const host = "www.example.nhs.uk"
	toHTTPS := redirect("https://"+host+"/", 301)
	for _, tc := range []struct {
		name  string
		sites map[string]site
		want  check.Outcome
		msg   string
	}{
		{"no redirect on https", map[string]site{host: {toHTTPS, page(good)}}, check.Pass, "does not redirect"},
		{"one redirect on the estate", map[string]site{host: {toHTTPS, redirect("https://example.nhs.uk/home", 301)}, "example.nhs.uk": {nil, page(good)}}, check.Pass, "takes 1 redirect(s), over https"},
		{"out of scope to another NHS body", map[string]site{host: {toHTTPS, redirect("https://www.england.nhs.uk/", 302)}}, check.Pass, "www.england.nhs.uk"},
		{"to a sign-in service", map[string]site{host: {toHTTPS, redirect("https://login.microsoftonline.com/tenant/oauth2/authorize", 302)}}, check.Pass, "a sign-in service"},
		{"out of scope to a .com", map[string]site{host: {toHTTPS, redirect("https://trust-cms.example.com/", 302)}}, check.Fail, "trust-cms.example.com, which is not a public-sector domain"},
		{"http chain to a .com", map[string]site{host: {redirect("https://vendor.example.com/", 301), page(good)}}, check.Fail, "not a public-sector domain"},
		{"via http", map[string]site{host: {redirect("http://example.nhs.uk/", 301), page(good)}, "example.nhs.uk": {toHTTPS, nil}}, check.Fail, "redirects over http"},
		{"downgrade on https", map[string]site{host: {toHTTPS, redirect("http://"+host+"/plain", 302)}}, check.Fail, "redirects over http"},
		{"four redirects", map[string]site{host: {toHTTPS, chainOf(4, page(good))}}, check.Warn, "takes 4 redirects"},
		{"three redirects", map[string]site{host: {nil, chainOf(3, page(good))}}, check.Pass, "takes 3 redirect(s)"},
		{"a loop", map[string]site{host: {toHTTPS, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			to := "/a"
			if r.URL.Path == "/a" {
				to = "/"
			}
			http.Redirect(w, r, to, 302)
		})}}, check.Warn, "loops back"},
		{"javascript: location", map[string]site{host: {toHTTPS, redirect("javascript:alert(1)", 302)}}, check.Fail, "not an https URL"},
		{"neither port", map[string]site{}, check.NA, "not a web server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := preloadFindings(t, envFor(t, tc.sites), host, nil)[RedirectScope]
			if f.Outcome != tc.want || !strings.Contains(f.Message, tc.msg) {
				t.Errorf("%s (%s), want %s with %q", f.Outcome, f.Message, tc.want, tc.msg)
			}
		})
	}
}

// TestRedirectScopeOffPublicSector: a host that is not under a
// public-sector suffix is judged on hops and HTTPS only.
func TestRedirectScopeOffPublicSector(t *testing.T) {
	ev := Evidence{Host: "www.trust.org.uk"}
	ev.HTTP.Refused = true
	ev.HTTPS.URL = "https://www.trust.org.uk/"
	ev.HTTPS.Hops = append(ev.HTTPS.Hops, hopRedirect("https://www.trust.org.uk/", "https://trust-cms.example.com/"))
	ev.HTTPS.End, ev.HTTPS.Next = "out-of-scope", "https://trust-cms.example.com/"
	a := check.Asset{Kind: check.KindHost, Name: "www.trust.org.uk", Domain: "trust.org.uk"}
	f := evaluateRedirectScope(a, ev, Settings.Defaults())
	if f.Outcome != check.Pass || !strings.Contains(f.Message, "not under a public-sector suffix") {
		t.Errorf("%s %s", f.Outcome, f.Message)
	}
	p := Settings.Defaults()
	p.PublicSectorSuffixes = append(p.PublicSectorSuffixes, "org.uk")
	if f := evaluateRedirectScope(a, ev, p); f.Outcome != check.Fail {
		t.Errorf("with org.uk public: %s %s", f.Outcome, f.Message)
	}
}

func TestWebPolicySiteSettings(t *testing.T) {
	for _, tc := range []struct {
		p     func(*Policy)
		field string
	}{
		{func(p *Policy) { p.PublicSectorSuffixes = []string{"NHS.uk"} }, "public_sector_suffixes"},
		{func(p *Policy) { p.PublicSectorSuffixes = []string{".nhs.uk"} }, "public_sector_suffixes"},
		{func(p *Policy) { p.NonprodLabels = []string{"*"} }, "nonprod_labels"},
		{func(p *Policy) { p.NonprodLabels = []string{"dev.x"} }, "nonprod_labels"},
		{func(p *Policy) { p.NonprodLabels = []string{"[a"} }, "nonprod_labels"},
		{func(p *Policy) { p.LoginHosts = []string{"*"} }, "login_hosts"},
	} {
		p := Settings.Defaults()
		tc.p(&p)
		errs := validateSitePolicy(p)
		if len(errs) != 1 || errs[0].Field != tc.field {
			t.Errorf("%+v: %v, want one error on %s", p, errs, tc.field)
		}
	}
	if errs := validateSitePolicy(Settings.Defaults()); len(errs) > 0 {
		t.Errorf("defaults: %v", errs[0])
	}
	b := []byte("web:\n  nonprod_labels: [dev, \"*-dev\"]\n  public_sector_suffixes: [nhs.uk]\n")
	p, err := check.ParsePolicy("p.yaml", b, []check.Sectioner{Settings})
	if err != nil {
		t.Fatal(err)
	}
	if got := Settings.Get(p); len(got.NonprodLabels) != 2 || got.LoginHosts == nil {
		t.Errorf("parsed %+v", got)
	}
	if _, err := check.ParsePolicy("p.yaml", []byte("web:\n  nonprod_labels: [\"*\"]\n"), []check.Sectioner{Settings}); err == nil || !strings.Contains(err.Error(), "p.yaml:2:") {
		t.Errorf("a bad label: %v, want p.yaml:2", err)
	}
}
