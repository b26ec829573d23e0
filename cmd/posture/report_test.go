package main

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/scanner/store"
)

// reportStore writes a small store: London (Y56) → South West London ICB
// (QWE) → St George's (RJ7) and Epsom (RVR), three complete nights (day 0,
// day 8, day 9), RJ7 fixing its DMARC policy on the last. No rollups are
// stored: the reports must compute the older nights' once.
func reportStore(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "p.db")
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	st.SetClock(func() time.Time { return now })
	if err := st.PutOrganisations(ctx, []store.Org{
		{Code: "Y56", Name: "London", Kind: "region"},
		{Code: "QWE", Name: "South West London ICB", Parent: "Y56", Kind: "icb"},
		{Code: "RJ7", Name: "St George's", Parent: "QWE", Kind: "trust", Domains: []string{"stgeorges.nhs.uk"}},
		{Code: "RVR", Name: "Epsom and St Helier", Parent: "QWE", Kind: "trust", Domains: []string{"epsom.nhs.uk"}},
	}); err != nil {
		t.Fatal(err)
	}
	for night, day := range []int{0, 8, 9} {
		now = time.Date(2026, 3, 1+day, 2, 0, 0, 0, time.UTC)
		run, _, err := st.BeginRun(ctx, "k", "")
		if err != nil {
			t.Fatal(err)
		}
		policy := check.Fail
		if night == 2 {
			policy = check.Pass
		}
		for _, d := range []struct {
			org, name string
			policy    check.Outcome
		}{{"RJ7", "stgeorges.nhs.uk", policy}, {"RVR", "epsom.nhs.uk", check.Pass}} {
			a := check.Asset{Kind: check.KindDomain, Name: d.name, Org: d.org, Domain: d.name}
			fs := []check.Finding{
				{CheckID: "email.dmarc.record", Rule: "dmarc-record", Asset: a, Outcome: check.Pass, Severity: check.Critical},
				{CheckID: "email.dmarc.policy", Rule: "dmarc-policy", Asset: a, Outcome: d.policy, Severity: check.High, Message: "p=none"},
			}
			if err := st.PutResult(ctx, run.ID, check.Evidence{CheckID: "email.dmarc", Asset: a, CollectedAt: now}, fs); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.FinishRun(ctx, run.ID, store.Complete); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func TestReportBoardDirWritesLinkedPagesAndStoresMissingRollups(t *testing.T) {
	db := reportStore(t)
	out := filepath.Join(t.TempDir(), "site")
	if code, stdout, errs := runCLI(t, "report", "board", "--db", db, "--dir", out); code != 0 {
		t.Fatalf("exit %d: %s%s", code, stdout, errs)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(out, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	index := read("index.html")
	for _, want := range []string{`<a href="orgs/RJ7.html">St George&#39;s</a>`, `<a href="orgs/QWE.html">`, "League table"} {
		if !strings.Contains(index, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	// The ICB's page links its trusts beside it; a trust's page charts its
	// score over the nights.
	if qwe := read("orgs/QWE.html"); !strings.Contains(qwe, `<a href="RJ7.html">`) || !strings.Contains(qwe, `<a href="../index.html">`) {
		t.Error("QWE.html does not link RJ7.html and the board")
	}
	if rj7 := read("orgs/RJ7.html"); !strings.Contains(rj7, "<polyline") || !strings.Contains(rj7, "St George") {
		t.Error("RJ7.html has no trend chart")
	}
	// The older nights' rollups were computed from their findings and
	// stored, so the next report reads them instead.
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	scored, err := st.ScoredRuns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(scored) < 2 {
		t.Errorf("rollups stored for runs %v, want the two older nights at least", scored)
	}

	if code, _, _ := runCLI(t, "report", "board", "--db", db, "--dir", out, "-o", "x.html"); code != 2 {
		t.Errorf("--dir with -o: exit %d, want 2", code)
	}
}

func TestExportScoresIsEveryRunsScoresByOrganisationAndStandard(t *testing.T) {
	db := reportStore(t)
	code, stdout, errs := runCLI(t, "export", "--format", "scores", "--db", db)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	score := map[string]string{} // run/org/standard → score
	for _, r := range recs[1:] {
		score[r[col["run"]]+"/"+r[col["org"]]+"/"+r[col["standard"]]] = r[col["score"]]
	}
	// RJ7: record (critical, 8) passes, policy (high, 4) fails until the
	// last night: 16 of 24 half points, then all; its ICB and region add
	// up RVR's all-passing 24 of 24.
	for k, want := range map[string]string{
		"1/RJ7/": "66.7", "3/RJ7/": "100.0", "1/QWE/": "83.3", "1/Y56/email": "83.3", "1//": "83.3", "3//": "100.0",
	} {
		if score[k] != want {
			t.Errorf("score %s = %q, want %s", k, score[k], want)
		}
	}
	if code, _, _ := runCLI(t, "export", "--format", "scores", "--db", db, "--days", "3"); code != 0 {
		t.Error("--days 3 failed")
	}
}
