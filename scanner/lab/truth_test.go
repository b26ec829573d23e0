package lab

import (
	"context"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/email"
)

// TestEmailTruthHoldsInTheLab runs the SPF and DMARC checks against every
// domain of a running lab (the email cases with everything the lab adds
// around them, and the other families' domains that borrow the all-pass
// email records) and compares the worst outcomes with Truth.
func TestEmailTruthHoldsInTheLab(t *testing.T) {
	l := startLab(t, Config{})
	env := l.Env()
	checks := []check.Check{email.SPF(), email.DMARC()}
	want := map[string]map[string]check.Outcome{}
	for _, e := range l.Truth() {
		if e.Kind != check.KindDomain {
			continue
		}
		if want[e.Name] == nil {
			want[e.Name] = map[string]check.Outcome{}
		}
		want[e.Name][e.CheckID] = e.Outcome
	}
	for _, d := range l.Domains() {
		if len(want[d.Name]) == 0 {
			t.Errorf("%s: no email expectations", d.Name)
		}
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := map[string]check.Outcome{}
			asset := check.Asset{Kind: check.KindDomain, Name: name}
			for _, c := range checks {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ev, _ := c.Collect(ctx, env, asset)
				cancel()
				for _, f := range c.Evaluate(ev, check.DefaultPolicy()) {
					got[f.CheckID] = check.Worst(got[f.CheckID], f.Outcome)
					t.Logf("%s %s [%s] %s", f.Outcome, f.CheckID, f.Rule, f.Message)
				}
			}
			for id, o := range w {
				if got[id] != o {
					t.Errorf("%s = %q, want %q", id, got[id], o)
				}
			}
		})
	}
}
