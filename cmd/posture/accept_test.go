package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/scanner/store"
)

// acceptDB is a database with one complete (baseline) run in which two
// hosts below legacy.example.nhs.uk and one outside it fail a header
// check, and one fails SPF.
func acceptDB(t *testing.T) (db string, ids map[string]string) {
	t.Helper()
	ctx := context.Background()
	db = filepath.Join(t.TempDir(), "posture.db")
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, _, err := st.BeginRun(ctx, "k", "")
	if err != nil {
		t.Fatal(err)
	}
	ids = map[string]string{}
	for _, f := range []struct {
		id   string
		kind check.Kind
		name string
	}{
		{"web.hdr.csp", check.KindHost, "a.legacy.example.nhs.uk"},
		{"web.hdr.csp", check.KindHost, "b.LEGACY.example.nhs.uk"},
		{"web.hdr.csp", check.KindHost, "www.example.nhs.uk"},
		{"email.spf.all", check.KindDomain, "legacy.example.nhs.uk"},
	} {
		a := check.Asset{Kind: f.kind, Name: f.name, Org: "RXX"}
		fd := check.Finding{CheckID: f.id, Rule: f.id, Asset: a, Outcome: check.Fail, Severity: check.Medium, Message: "m"}
		ev := check.Evidence{CheckID: f.id, Asset: a, CollectedAt: time.Now(), Data: json.RawMessage(`{}`)}
		if err := st.PutResult(ctx, r.ID, ev, []check.Finding{fd}); err != nil {
			t.Fatal(err)
		}
		ids[f.name+" "+f.id] = fd.ID()
	}
	if err := st.FinishRun(ctx, r.ID, store.Complete); err != nil {
		t.Fatal(err)
	}
	return db, ids
}

// TestAcceptAPatternListAndRevoke: a check glob on *.legacy.example.nhs.uk
// accepts the two hosts below it (not www, not the SPF finding), shows in
// the export at once, is listed, and can be revoked; bad patterns are
// usage errors.
func TestAcceptAPatternListAndRevoke(t *testing.T) {
	db, ids := acceptDB(t)
	code, out, errs := runCLI(t, "accept", "--db", db, "--check", "web.hdr.*", "--asset", "*.legacy.example.nhs.uk",
		"--reason", "retiring the legacy estate", "--until", "2999-06-30", "--by", "ciso")
	if code != 0 || !strings.Contains(out, "(2 findings so far)") {
		t.Fatalf("accept a pattern: exit %d\n%s%s", code, out, errs)
	}
	_, out, _ = runCLI(t, "export", "--format", "jsonl", "--db", db)
	status := map[string]reports.Finding{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var f reports.Finding
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		status[f.ID] = f
	}
	for k, want := range map[string]string{
		"a.legacy.example.nhs.uk web.hdr.csp": reports.StatusAccepted,
		"b.LEGACY.example.nhs.uk web.hdr.csp": reports.StatusAccepted,
		"www.example.nhs.uk web.hdr.csp":      reports.StatusOpen,
		"legacy.example.nhs.uk email.spf.all": reports.StatusOpen,
	} {
		f := status[ids[k]]
		if f.Status != want {
			t.Errorf("%s: status %q, want %q", k, f.Status, want)
		}
		if want == reports.StatusAccepted && (f.Acceptance == nil || f.Acceptance.Reason != "retiring the legacy estate" || f.Acceptance.By != "ciso") {
			t.Errorf("%s: acceptance %+v", k, f.Acceptance)
		}
	}

	code, out, _ = runCLI(t, "acceptances", "--db", db)
	if code != 0 || !regexp.MustCompile(`(?m)^1 +in force +web\.hdr\.\* on \*\.legacy\.example\.nhs\.uk +2 +2999-06-30 +ciso +retiring the legacy estate$`).MatchString(out) {
		t.Errorf("acceptances: exit %d\n%s", code, out)
	}
	if code, out, errs := runCLI(t, "accept", "--db", db, "--revoke", "1"); code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("revoke: exit %d %s%s", code, out, errs)
	}
	if _, out, _ := runCLI(t, "acceptances", "--db", db); !strings.Contains(out, "revoked") {
		t.Errorf("acceptances after the revocation:\n%s", out)
	}

	for name, args := range map[string][]string{
		"a bare * on every asset":   {"--check", "*", "--asset", "*"},
		"a check that matches none": {"--check", "web.hdrs.*", "--asset", "x.nhs.uk"},
		"a wildcard inside a name":  {"--check", "web.hdr.*", "--asset", "a*.nhs.uk"},
		"a check without an asset":  {"--check", "web.hdr.*"},
		"a finding and a pattern":   {ids["www.example.nhs.uk web.hdr.csp"], "--check", "web.hdr.*", "--asset", "x.nhs.uk"},
		"revoking an unknown id":    {"--revoke", "99"},
		"revoking twice":            {"--revoke", "1"},
	} {
		full := append([]string{"accept", "--db", db}, args...)
		if !strings.Contains(strings.Join(args, " "), "--revoke") {
			full = append(full, "--reason", "r", "--until", "2999-01-01")
		}
		if code, out, errs := runCLI(t, full...); code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s%s", name, code, out, errs)
		}
	}
	if code, out, errs := runCLI(t, "accept", "--db", db, "--check", "*", "--asset", "*", "--all-assets",
		"--reason", "r", "--until", "2999-01-01"); code != 0 {
		t.Errorf("--all-assets: exit %d\n%s%s", code, out, errs)
	}
}

func TestHoldFlagsRefuseLessThanOne(t *testing.T) {
	db, _ := acceptDB(t)
	for _, args := range [][]string{
		{"scan", "--db", db, "--hold", "0"},
		{"reeval", "--db", db, "--hold", "-1"},
		{"demo", "--dir", t.TempDir(), "--hold", "0"},
	} {
		if code, out, errs := runCLI(t, args...); code != 2 || !strings.Contains(errs, "--hold") {
			t.Errorf("%v: exit %d, want 2\n%s%s", args, code, out, errs)
		}
	}
	// reeval --hold 1 rebuilds the lifecycle with it.
	if code, out, errs := runCLI(t, "reeval", "--db", db, "--hold", "1"); code != 0 || !strings.Contains(out, "with a hold of 1") {
		t.Errorf("reeval --hold 1: exit %d\n%s%s", code, out, errs)
	}
}
