package lab

import (
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webcheck"
)

// TestWebCasesTruth pins the derived truth of the web family's cases.
func TestWebCasesTruth(t *testing.T) {
	P, F, W, N := check.Pass, check.Fail, check.Warn, check.NA
	want := map[string][4]check.Outcome{ // available, enforced, present, max-age
		"web-no-hsts":         {P, P, F, N},
		"web-hsts-short":      {P, P, P, F},
		"web-hsts-http-only":  {P, F, F, N},
		"web-http-content":    {P, F, P, P},
		"web-http-302":        {P, W, P, P},
		"web-http-other-host": {P, F, P, P},
		"web-no-http":         {P, P, P, P},
		"web-no-https":        {F, P, N, N},
	}
	for _, c := range webCases() {
		if _, ok := webSiteCases[c.Name]; ok {
			continue // TestWebSiteCasesTruth
		}
		d := c.Build("lab-" + c.Name + ".nhs.uk")
		got := webExpectHost(d.Hosts[0].Name, d.Name, &d.Hosts[0], true)
		w, ok := want[c.Name]
		if !ok {
			t.Errorf("case %s has no pinned truth", c.Name)
			continue
		}
		for i, id := range []string{webcheck.HTTPSAvailable, webcheck.HTTPEnforced, webcheck.HSTSPresent, webcheck.HSTSMaxAge} {
			if got[id] != w[i] {
				t.Errorf("%s %s = %s, want %s", c.Name, id, got[id], w[i])
			}
		}
		if got[webcheck.HSTSSubdomains] != N {
			t.Errorf("%s: subdomains on a www host = %s, want n/a", c.Name, got[webcheck.HSTSSubdomains])
		}
	}
}

// webSiteCases pin the site ids' truth on the cases made for them, host
// by host (the first label; "@" is the apex): preload, redirect scope,
// non-production, and https.available and hsts.present beside them.
var webSiteCases = map[string]map[string][5]check.Outcome{
	"web-redirect-offsite":  {"www": {check.NA, check.Fail, check.NA, check.Pass, check.Fail}},
	"web-preload-ready":     {"@": {check.Pass, check.Pass, check.NA, check.Pass, check.Pass}},
	webPreloadedCase:        {"@": {check.Pass, check.Pass, check.NA, check.Pass, check.Pass}},
	"web-preload-not-ready": {"@": {check.Warn, check.Pass, check.NA, check.Pass, check.Pass}},
	"web-nonprod": {
		"dev":     {check.NA, check.Pass, check.Pass, check.Pass, check.Pass},
		"staging": {check.NA, check.Pass, check.Fail, check.Pass, check.Pass},
		"test":    {check.NA, check.Pass, check.Pass, check.Pass, check.Fail},
	},
}

func TestWebSiteCasesTruth(t *testing.T) {
	ids := []string{webcheck.HSTSPreload, webcheck.RedirectScope, webcheck.NonprodProtected, webcheck.HTTPSAvailable, webcheck.HSTSPresent}
	seen := 0
	for _, c := range webCases() {
		want, ok := webSiteCases[c.Name]
		if !ok {
			continue
		}
		seen++
		d := c.Build("lab-" + c.Name + ".nhs.uk")
		if len(d.Hosts) == 0 {
			d.Hosts = []Host{{Name: "www." + d.Name, Web: &WebSpec{}}}
		}
		if len(d.Hosts) != len(want) {
			t.Errorf("%s: %d hosts, %d pinned", c.Name, len(d.Hosts), len(want))
		}
		for i := range d.Hosts {
			h := &d.Hosts[i]
			label, _, _ := strings.Cut(h.Name, ".")
			if h.Name == d.Name {
				label = "@"
			}
			got := webExpectHost(h.Name, d.Name, h, true)
			for k, id := range ids {
				if got[id] != want[label][k] {
					t.Errorf("%s %s %s = %s, want %s", c.Name, h.Name, id, got[id], want[label][k])
				}
			}
		}
	}
	if seen != len(webSiteCases) {
		t.Errorf("%d of %d pinned cases exist", seen, len(webSiteCases))
	}
}

// TestWebPreloadedIsTheLabsListOnly: the lab's preload list lists the
// stamps of web-preloaded and nothing else.
func TestWebPreloadedIsTheLabsListOnly(t *testing.T) {
	for name, want := range map[string]bool{
		"lab-web-preloaded.nhs.uk": true, "lab-web-preloaded-12.nhs.uk": true,
		"lab-web-preloaded-x.nhs.uk": false, "lab-web-preloaded-.nhs.uk": false, "www.lab-web-preloaded.nhs.uk": false,
		"lab-web-preload-ready.nhs.uk": false,
	} {
		if webPreloaded(name) != want {
			t.Errorf("webPreloaded(%s) = %v", name, !want)
		}
	}
	l := webPreloadList([]Domain{{Name: "lab-web-preloaded.nhs.uk"}, {Name: "lab-tls-good.nhs.uk"}})
	if l == nil || l.Len() != 1 {
		t.Fatalf("list %v", l)
	}
	if webPreloadList([]Domain{{Name: "lab-tls-good.nhs.uk"}}) != nil {
		t.Error("a lab without the case has a list")
	}
}
