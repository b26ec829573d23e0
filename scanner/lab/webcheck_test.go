package lab

import (
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
