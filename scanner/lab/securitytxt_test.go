package lab

import (
	"context"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webcheck"
)

// TestSecurityTxtCasesTruth: the truth each case states by hand is what
// the derivation (which states every other host's truth) finds too.
func TestSecurityTxtCasesTruth(t *testing.T) {
	for _, c := range securityTxtCases() {
		d := c.Build("lab-" + c.Name + ".nhs.uk")
		want := map[string]check.Outcome{}
		for _, e := range d.Expect {
			want[e.CheckID] = e.Outcome
		}
		p, v := secTxtExpectHost(d.Hosts[0].Name, &d.Hosts[0], true)
		if p != want[webcheck.SecurityTxtPresent] || v != want[webcheck.SecurityTxtValid] {
			t.Errorf("%s: derived present %s, valid %s; stated %s, %s", c.Name, p, v,
				want[webcheck.SecurityTxtPresent], want[webcheck.SecurityTxtValid])
		}
	}
	// The default host (goodPage) serves a good file; webPage a soft 404.
	for _, tc := range []struct {
		h              Host
		present, valid check.Outcome
	}{
		{Host{Name: "www.lab-x.nhs.uk", Web: &WebSpec{}}, check.Pass, check.Pass},
		{Host{Name: "www.lab-x.nhs.uk", Web: &WebSpec{HTTPS: webPage("")}}, check.Fail, check.NA},
		{Host{Name: "www.lab-x.nhs.uk", Web: &WebSpec{NoHTTPS: true}}, check.NA, check.NA},
		{Host{Name: "www.lab-x.nhs.uk", Web: &WebSpec{}, Dead: true}, check.Unknown, check.Unknown},
		{Host{Name: "www.lab-x.nhs.uk", Web: &WebSpec{Raw: Tarpit}}, check.Unknown, check.Unknown},
	} {
		if p, v := secTxtExpectHost(tc.h.Name, &tc.h, false); p != tc.present || v != tc.valid {
			t.Errorf("%+v: %s, %s; want %s, %s", tc.h.Web, p, v, tc.present, tc.valid)
		}
	}
}

// TestSecurityTxtRedirectsOutsideAreNeverFetched scans the central and
// outside cases through the lab: the central file passes, the outside
// one fails with the default policy and passes when the policy names it
// central, and no connection reaches the outside address either way.
func TestSecurityTxtRedirectsOutsideAreNeverFetched(t *testing.T) {
	l := startLab(t, Config{cases: securityTxtCases()})
	env, c := l.Env(), webcheck.SecurityTxtCheck()
	wp := webcheck.Settings.Get(l.Policy())
	wp.SecurityTxtCentral = []string{secTxtCentralURL, secTxtOutsideURL}
	central := webcheck.Settings.Set(l.Policy(), wp)
	for _, tc := range []struct {
		host string
		pol  *check.Policy
		want check.Outcome
	}{
		{"www.lab-sectxt-central.nhs.uk", l.Policy(), check.Pass},
		{"www.lab-sectxt-outside.nhs.uk", l.Policy(), check.Fail},
		{"www.lab-sectxt-outside.nhs.uk", central, check.Pass},
		{"www.lab-sectxt-redirect.nhs.uk", l.Policy(), check.Pass},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ev, err := c.Collect(ctx, env, check.Asset{Kind: check.KindHost, Name: tc.host})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		fs := c.Evaluate(ev, tc.pol)
		if fs[0].CheckID != webcheck.SecurityTxtPresent || fs[0].Outcome != tc.want {
			t.Errorf("%s: %s %s, want %s: %s", tc.host, fs[0].CheckID, fs[0].Outcome, tc.want, fs[0].Message)
		}
	}
	if n := l.Conns(OutsideIP); n != 0 {
		t.Errorf("%d connections to the outside address", n)
	}
}
