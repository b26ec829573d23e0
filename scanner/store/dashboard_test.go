package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// TestFindingHistoryListsEachRunNewestFirst: one entry per run that
// evaluated the id (the worst, when a run has it twice), paged.
func TestFindingHistoryListsEachRunNewestFirst(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	outcomes := []check.Outcome{check.Fail, check.Pass, check.Warn, check.Unknown, check.Fail, check.Pass, check.Pass}
	// What completing each run did to the lifecycle (hold 2): the first
	// run is a baseline; the second pass in a row resolves it.
	events := []string{"baseline", "", "", "", "", "", "resolved", ""}
	var runs []int64
	for _, o := range outcomes {
		runs = append(runs, completeRun(t, s, c, map[string]check.Outcome{"email.dmarc.policy": o}).ID)
	}
	completeRun(t, s, c, nil) // evaluates nothing: not in the history
	// A run with the finding twice keeps the worst.
	r := mustBegin(t, s, "twice")
	f := finding("email.dmarc.policy", domain, check.Pass)
	worse := f
	worse.Outcome = check.Fail
	if err := s.PutResult(ctx, r.ID, evidence("email.dmarc", domain, c.now()), []check.Finding{f, worse}); err != nil {
		t.Fatal(err)
	}
	runs = append(runs, r.ID)
	outcomes = append(outcomes, check.Fail)

	id := f.ID()
	all, total, err := s.FindingHistory(ctx, id, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if total != len(runs) || len(all) != len(runs) {
		t.Fatalf("%d entries of %d, want %d", len(all), total, len(runs))
	}
	for i, e := range all {
		j := len(runs) - 1 - i
		if e.RunID != runs[j] || e.Finding.Outcome != outcomes[j] || e.Event != events[j] {
			t.Errorf("entry %d: run %d %s %q, want run %d %s %q", i, e.RunID, e.Finding.Outcome, e.Event, runs[j], outcomes[j], events[j])
		}
	}
	if all[0].RunStatus != Running || all[1].RunStatus != Complete {
		t.Errorf("run statuses %s, %s", all[0].RunStatus, all[1].RunStatus)
	}
	page2, total2, err := s.FindingHistory(ctx, id, 2, 2)
	if err != nil || total2 != total || len(page2) != 2 || page2[0].RunID != all[2].RunID {
		t.Errorf("page 2: %v entries, total %d, err %v", len(page2), total2, err)
	}
	if _, _, err := s.FindingHistory(ctx, "00000000000000000000", 10, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
}

// TestLifeOfAndEvidenceForOneFinding: the lifecycle of one id (with its
// acceptance) and the evidence it was evaluated from in a given run.
func TestLifeOfAndEvidenceForOneFinding(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	r1 := completeRun(t, s, c, map[string]check.Outcome{"email.dmarc.policy": check.Fail, "email.dmarc.record": check.Pass})
	id := finding("email.dmarc.policy", domain, check.Fail).ID()
	if err := s.Accept(ctx, id, "replacing the gateway", c.now().AddDate(0, 1, 0), "board"); err != nil {
		t.Fatal(err)
	}
	l, err := s.LifeOf(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if l.Status != StatusAccepted || l.FirstSeenRun != r1.ID || l.Acceptance == nil || l.Acceptance.Reason != "replacing the gateway" {
		t.Errorf("life %+v", l)
	}
	passing := finding("email.dmarc.record", domain, check.Pass).ID()
	if _, err := s.LifeOf(ctx, passing); !errors.Is(err, ErrNotFound) {
		t.Errorf("a finding that never failed: %v, want ErrNotFound", err)
	}
	ev, err := s.EvidenceFor(ctx, passing, r1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.CheckID != "email.dmarc" || ev.Asset.Name != domain.Name || string(ev.Data) != `{"txt":["v=spf1 -all"]}` || ev.Truncated {
		t.Errorf("evidence %+v", ev)
	}
	if _, err := s.EvidenceFor(ctx, passing, r1.ID+1); !errors.Is(err, ErrNotFound) {
		t.Errorf("another run: %v, want ErrNotFound", err)
	}
}

// TestSearchAssetsMatchesPartOfTheName: case folded, exact and prefix
// matches first, LIKE's wildcards literal, paged, with each asset's
// findings.
func TestSearchAssetsMatchesPartOfTheName(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	r := mustBegin(t, s, "search")
	names := []string{"www.example.nhs.uk", "example.nhs.uk", "mail.example.nhs.uk", "other.nhs.uk", "a_b.nhs.uk", "axb.nhs.uk"}
	var assets []check.Asset
	for _, n := range names {
		assets = append(assets, check.Asset{Kind: check.KindHost, Name: n, Org: "RXX"})
	}
	if err := s.PutAssets(ctx, r.ID, assets); err != nil {
		t.Fatal(err)
	}
	if err := s.PutResult(ctx, r.ID, evidence("web.https", assets[0], c.now()),
		[]check.Finding{finding("web.hsts.present", assets[0], check.Pass), finding("web.https.available", assets[0], check.Fail)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		q    string
		want []string
	}{
		{"EXAMPLE.nhs.uk", []string{"example.nhs.uk", "mail.example.nhs.uk", "www.example.nhs.uk"}},
		{"www", []string{"www.example.nhs.uk"}},
		{"a_b", []string{"a_b.nhs.uk"}},
		{"%", nil},
		{"", nil},
		{"nothing", nil},
	}
	for _, tc := range cases {
		hits, total, err := s.SearchAssets(ctx, r.ID, tc.q, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hits {
			got = append(got, h.Asset.Name)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || total != len(tc.want) {
			t.Errorf("search %q: %v (total %d), want %v", tc.q, got, total, tc.want)
		}
	}
	hits, _, err := s.SearchAssets(ctx, r.ID, "www", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fs := hits[0].Findings; len(fs) != 2 || fs[0].Outcome != check.Fail || fs[0].ID != finding("web.https.available", assets[0], check.Fail).ID() {
		t.Errorf("the asset's findings, worst first: %+v", fs)
	}
	page, total, err := s.SearchAssets(ctx, r.ID, ".nhs.uk", 2, 2)
	if err != nil || total != len(names) || len(page) != 2 {
		t.Errorf("page 2 of 2: %d hits, total %d, err %v", len(page), total, err)
	}
}

// TestFindingHistoryUsesTheRunIndex: a finding's history seeks each run in
// findings_run rather than scanning every finding ever stored (a year of
// nights over a national estate is tens of millions of rows).
func TestFindingHistoryUsesTheRunIndex(t *testing.T) {
	s, _ := openTemp(t)
	rows, err := s.r.Query(`EXPLAIN QUERY PLAN SELECT r.id FROM runs r CROSS JOIN findings f
		ON f.run_id = r.id AND f.finding_id = ? GROUP BY r.id`, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	joined := fmt.Sprint(plan)
	if !strings.Contains(joined, "SEARCH f USING COVERING INDEX findings_run") && !strings.Contains(joined, "SEARCH f USING INDEX findings_run") {
		t.Errorf("the history query does not seek findings_run: %s", joined)
	}
	if strings.Contains(joined, "SCAN f") {
		t.Errorf("the history query scans the findings: %s", joined)
	}
}

// BenchmarkSearchAssets searches a run of 20,000 hosts with five
// collectors' evidence and findings each (100,000 findings).
func BenchmarkSearchAssets(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir()+"/posture.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r, _, err := s.BeginRun(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 20000 {
		a := check.Asset{Kind: check.KindHost, Name: fmt.Sprintf("h%d.example%d.nhs.uk", i, i%1300), Org: "RXX"}
		if _, err := tx.ExecContext(ctx, "INSERT INTO assets (run_id, kind, name, org) VALUES (?, 'host', ?, 'RXX')", r.ID, a.Name); err != nil {
			b.Fatal(err)
		}
		for k := range 5 {
			var evID int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO evidence (run_id, check_id, asset_key, asset_kind,
				asset_name, collected_at) VALUES (?, ?, ?, 'host', ?, '') RETURNING id`,
				r.ID, fmt.Sprint("c", k), a.Key(), a.Name).Scan(&evID); err != nil {
				b.Fatal(err)
			}
			if err := replaceFindings(ctx, tx, r.ID, evID, []check.Finding{finding(fmt.Sprint("c", k), a, check.Fail)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{"h12345.", "example7", "nothing"} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := s.SearchAssets(ctx, r.ID, q, 25, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFindingHistory reads one finding's history over 365 runs of
// 200 findings each: a seek a run.
func BenchmarkFindingHistory(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir()+"/posture.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	var id string
	for n := range 365 {
		res, err := tx.ExecContext(ctx, "INSERT INTO runs (key, status, started_at, seq) VALUES ('k', 'complete', ?, ?)",
			fmtTime(time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC).AddDate(0, 0, n)), n+1)
		if err != nil {
			b.Fatal(err)
		}
		run, _ := res.LastInsertId()
		for i := range 200 {
			a := check.Asset{Kind: check.KindHost, Name: fmt.Sprintf("h%d.example.nhs.uk", i)}
			var evID int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO evidence (run_id, check_id, asset_key, asset_kind,
				asset_name, collected_at) VALUES (?, 'c', ?, 'host', ?, '') RETURNING id`, run, a.Key(), a.Name).Scan(&evID); err != nil {
				b.Fatal(err)
			}
			f := finding("c", a, check.Fail)
			id = f.ID()
			if err := replaceFindings(ctx, tx, run, evID, []check.Finding{f}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, total, err := s.FindingHistory(ctx, id, 50, 0); err != nil || total != 365 {
			b.Fatal(total, err)
		}
	}
}
