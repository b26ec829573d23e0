package nuclei

import (
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

func TestPackParsesWithUniqueIDsAndCatalogueText(t *testing.T) {
	ts := Pack()
	if len(ts) < 15 {
		t.Fatalf("the pack has %d templates", len(ts))
	}
	var exposures, takeovers int
	for _, tm := range ts {
		m := tm.Meta
		switch {
		case strings.HasPrefix(m.ID, "web.exposure."):
			exposures++
		case strings.HasPrefix(m.ID, "web.takeover."):
			takeovers++
			if !strings.Contains(m.Description, "can-i-take-over-xyz") {
				t.Errorf("%s: a takeover template must credit can-i-take-over-xyz", m.ID)
			}
		}
		if m.Title == "" || m.Remediation == "" || len(m.Standards) == 0 || len(tm.Hash) != 64 || len(tm.Paths) == 0 {
			t.Errorf("%s: incomplete: %+v", m.ID, tm)
		}
	}
	if exposures < 8 || takeovers < 5 {
		t.Errorf("%d exposures and %d takeovers", exposures, takeovers)
	}
	if _, err := PackFS.ReadFile("templates/NOTICE"); err != nil {
		t.Errorf("the pack's NOTICE (CC BY 4.0 attribution) is not embedded: %v", err)
	}
	ids := map[string]bool{}
	for _, m := range Rules() {
		if ids[m.ID] {
			t.Errorf("%s twice in the catalogue", m.ID)
		}
		ids[m.ID] = true
	}
	if !ids[CustomID] {
		t.Errorf("%s is not in the catalogue", CustomID)
	}
}

func TestParseTemplateRefusesTemplatesTheCatalogueCannotUse(t *testing.T) {
	good := "id: x\ninfo:\n  name: x\n  severity: high\n  description: d\n  remediation: r\n  metadata:\n    posture-id: web.exposure.x\n    posture-title: t\n    posture-standards:\n      - \"S|sec|https://example.org|\"\n"
	if _, err := ParseTemplate("x.yaml", []byte(good)); err != nil {
		t.Fatalf("a complete template: %v", err)
	}
	for name, bad := range map[string]string{
		"id outside the family": strings.Replace(good, "web.exposure.x", "tls.x", 1),
		"unknown severity":      strings.Replace(good, "severity: high", "severity: urgent", 1),
		"no remediation":        strings.Replace(good, "  remediation: r\n", "", 1),
		"no standards":          strings.Replace(good, "    posture-standards:\n      - \"S|sec|https://example.org|\"\n", "", 1),
		"not YAML":              "id: [",
	} {
		if _, err := ParseTemplate("x.yaml", []byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEvaluateMapsEachRunToAnOutcome(t *testing.T) {
	git := packTemplate(t, "git-config")
	run := func(o string, class check.ErrClass) Run {
		return Run{Template: "git-config", Source: "pack", Hash: git.Hash, CheckID: git.Meta.ID, Outcome: o, Class: class,
			URL: "https://h/.git/config"}
	}
	cases := []struct {
		name   string
		ev     Evidence
		want   check.Outcome
		reason string
	}{
		{"matched fails", Evidence{Templates: []Run{run(Matched, "")}, Net: hostNet{Dials: 3}}, check.Fail, ""},
		{"ran clean passes", Evidence{Templates: []Run{run(Clean, "")}, Net: hostNet{Dials: 3}}, check.Pass, ""},
		{"an error is unknown", Evidence{Templates: []Run{run(Errored, check.ErrMalformed)}, Net: hostNet{Dials: 3}}, check.Unknown, "malformed"},
		{"not run is unknown", Evidence{Templates: []Run{run(NotRun, check.ErrUnreachable)}, Net: hostNet{Dials: 3}}, check.Unknown, "unreachable"},
		{"no result at all is unknown", Evidence{Worker: Worker{Exit: "crashed", Class: check.ErrInternal}}, check.Unknown, "internal"},
		{"clean on a host that timed out is unknown", Evidence{Templates: []Run{run(Clean, "")}, Net: hostNet{Dials: 3, Failed: 1, LastClass: check.ErrTimeout}}, check.Unknown, "timeout"},
		{"matched on a host that timed out still fails", Evidence{Templates: []Run{run(Matched, "")}, Net: hostNet{LastClass: check.ErrTimeout}}, check.Fail, ""},
		{"every connection refused is n/a", Evidence{Net: hostNet{Dials: 1, Refused: 1}}, check.NA, ""},
		{"a name the guard will not resolve is unknown", Evidence{ResolveError: "outside the scope", ResolveClass: check.ErrScope}, check.Unknown, "scope"},
		{"another version of the template is unknown", Evidence{Templates: []Run{{Template: "git-config", Source: "pack", Hash: "00", Outcome: Clean}}}, check.Unknown, "evidence-version"},
	}
	for _, c := range cases {
		c.ev.Host, c.ev.PackVersion = "h", PackVersion
		fs := Evaluate(check.In[Evidence]{Evidence: c.ev, CollectedAt: time.Unix(0, 0)})
		var f check.Finding
		for _, x := range fs {
			if x.CheckID == git.Meta.ID {
				f = x
			}
		}
		if f.Outcome != c.want || f.Reason != c.reason {
			t.Errorf("%s: %s (%q) %q, want %s (%q)", c.name, f.Outcome, f.Reason, f.Message, c.want, c.reason)
		}
		if len(fs) != len(Pack()) {
			t.Errorf("%s: %d findings, want one per pack template (%d) and none for %s without a directory", c.name, len(fs), len(Pack()), CustomID)
		}
	}
}

func packTemplate(t *testing.T, id string) Template {
	t.Helper()
	for _, tm := range Pack() {
		if tm.ID == id {
			return tm
		}
	}
	t.Fatalf("no template %s in the pack", id)
	return Template{}
}

func TestRunsForKeepsTheWorstOfAHostsEventsAndBoundsThem(t *testing.T) {
	long := strings.Repeat("x", 5000)
	evs := []Event{
		{Template: "git-config", Source: "pack", Error: "read: connection reset"},
		{Template: "git-config", Source: "pack", Matched: true, URL: long, Extracted: []string{long, "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}},
		{Template: "env-file", Source: "pack"},
		{Template: "env-file", Source: "pack", Error: "timeout"},
		{Template: "env-file", Source: "user", Matched: true},
	}
	rs := runsFor(evs, Worker{}, hostNet{LastClass: check.ErrTimeout})
	by := map[string]Run{}
	for _, r := range rs {
		by[r.Source+"/"+r.Template] = r
	}
	if r := by["pack/git-config"]; r.Outcome != Matched || len(r.URL) > 310 || len(r.Extracted) != 10 || len(r.Extracted[0]) > 130 {
		t.Errorf("git-config: %s, URL %d bytes, %d extracted", r.Outcome, len(r.URL), len(r.Extracted))
	}
	if r := by["pack/env-file"]; r.Outcome != Errored || r.Class != check.ErrTimeout {
		t.Errorf("pack env-file: %s %s, want error (timeout)", r.Outcome, r.Class)
	}
	if r := by["user/env-file"]; r.Outcome != Matched {
		t.Errorf("user env-file: %s: a user template with a pack template's id is its own", r.Outcome)
	}
	if r := by["pack/phpinfo"]; r.Outcome != NotRun {
		t.Errorf("phpinfo without an event: %s, want not-run", r.Outcome)
	}
}
