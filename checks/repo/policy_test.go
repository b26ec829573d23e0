package repo_test

import (
	"strings"
	"testing"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/repo"
)

func TestRepoPolicySectionDefaultsAndRanges(t *testing.T) {
	p, err := checks.ParsePolicy("p.yaml", []byte("repo:\n  stale_days: 180\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := repo.Settings.Get(p); got.StaleDays != 180 || got.AlertSLADays != 30 {
		t.Errorf("got %+v, want stale_days 180 and the default alert_sla_days 30", got)
	}
	for _, bad := range []string{"repo:\n  stale_days: 7\n", "repo:\n  alert_sla_days: 400\n", "repo:\n  stale: 1\n"} {
		if _, err := checks.ParsePolicy("p.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "p.yaml:") {
			t.Errorf("%q: err %v, want an error with its line", bad, err)
		}
	}
}
