package main

import (
	"errors"
	"testing"

	"github.com/spf13/pflag"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/nuclei"
)

func TestNucleiFlagsBecomeSettingsAndBadOnesAreUsageErrors(t *testing.T) {
	dir := t.TempDir()
	parse := func(args ...string) (map[string]string, error) {
		var n nucleiFlags
		fl := pflag.NewFlagSet("scan", pflag.ContinueOnError)
		n.register(fl)
		if err := fl.Parse(args); err != nil {
			return nil, err
		}
		return n.settings()
	}
	set, err := parse("--templates", dir, "--template-tags", "trust,nhs", "--template-severity", "High,critical", "--nuclei-rate", "50", "--nuclei-host-rate", "2.5")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{nuclei.SetTemplates: dir, nuclei.SetTags: "trust,nhs", nuclei.SetSeverity: "high,critical",
		nuclei.SetRate: "50", nuclei.SetHostRate: "2.5"}
	for k, v := range want {
		if set[k] != v {
			t.Errorf("%s = %q, want %q", k, set[k], v)
		}
	}
	env := withNuclei(&check.Env{EHLOName: "x", Settings: map[string]string{"other": "1"}}, set)
	if env.EHLOName != "x" || env.Setting("other") != "1" || env.Setting(nuclei.SetTemplates) != dir {
		t.Errorf("withNuclei lost or did not add settings: %+v", env)
	}
	for _, bad := range [][]string{
		{"--templates", dir + "/missing"},
		{"--template-tags", "x"},
		{"--templates", dir, "--template-severity", "urgent"},
		{"--nuclei-rate", "0"},
		{"--nuclei-host-rate", "-1"},
	} {
		_, err := parse(bad...)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}
