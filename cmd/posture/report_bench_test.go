package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/scanner/store"
)

// The national benchmark's store: 1,300 organisations (7 regions, 42 ICBs,
// 1,251 trusts), 70 checks, 365 nightly runs. Every night has its score
// rollups; only the newest benchFindingNights nights have findings (91,000
// a night): a year of findings would be about 33 million rows and some
// 11 GB, and the board never reads them, which is what the rollups are
// for (see BenchmarkBoardNational).
const (
	benchGenVersion    = 1 // bump when the generator changes: the cached file is rebuilt
	benchOrgs          = 1300
	benchRegions       = 7
	benchICBs          = 42
	benchChecks        = 70
	benchNights        = 365
	benchFindingNights = 8
)

// benchDB returns the path of the generated store, building it once into
// the temporary directory (keyed by the generator version); later runs
// reuse it.
func benchDB(b *testing.B) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("posture-bench-board-v%d-%dx%dx%d.db", benchGenVersion, benchOrgs, benchChecks, benchNights))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".tmp"
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	start := time.Now()
	if err := generateBenchDB(context.Background(), tmp); err != nil {
		b.Fatalf("generate the benchmark store: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %s in %s", path, time.Since(start).Round(time.Second))
	return path
}

func generateBenchDB(ctx context.Context, path string) error {
	st, err := store.Open(ctx, path) // the schema, by the migrations
	if err != nil {
		return err
	}
	st.Close()
	db, err := sql.Open("sqlite", path+"?_pragma=synchronous(OFF)&_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	exec := func(q string, args ...any) error {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("%.60s…: %w", q, err)
		}
		return nil
	}
	const at = "2026-01-01T00:00:00.000000000Z"
	// Organisations: regions Y50…, ICBs Q00…, trusts R0000…
	if err := exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
		INSERT INTO organisations (code, name, parent, kind, updated_at)
		SELECT CASE WHEN i < ? THEN 'Y' || (50 + i) WHEN i < ? THEN printf('Q%02d', i - ?) ELSE printf('R%04d', i) END,
			CASE WHEN i < ? THEN 'Region ' || i WHEN i < ? THEN 'Integrated Care Board ' || i ELSE 'NHS Trust number ' || i END,
			CASE WHEN i < ? THEN '' WHEN i < ? THEN 'Y' || (50 + (i - ?) % ?) ELSE printf('Q%02d', i % ?) END,
			CASE WHEN i < ? THEN 'region' WHEN i < ? THEN 'icb' ELSE 'trust' END, ?
		FROM n`, benchOrgs, benchRegions, benchRegions+benchICBs, benchRegions, benchRegions, benchRegions+benchICBs,
		benchRegions, benchRegions+benchICBs, benchRegions, benchRegions, benchICBs, benchRegions, benchRegions+benchICBs, at); err != nil {
		return err
	}
	// Runs: one a night at 02:00, each an hour long, all complete.
	base := time.Date(2025, 12, 1, 2, 0, 0, 0, time.UTC)
	for i := 1; i <= benchNights; i++ {
		s := base.AddDate(0, 0, i-1)
		if err := exec(`INSERT INTO runs (id, key, status, started_at, finished_at, seq) VALUES (?, 'bench', 'complete', ?, ?, ?)`,
			i, s.Format("2006-01-02T15:04:05.000000000Z"), s.Add(time.Hour).Format("2006-01-02T15:04:05.000000000Z"), i); err != nil {
			return err
		}
	}
	// The checks: the catalogue's first 70, domain checks on the
	// organisation's domain, the others on its web host.
	if err := exec(`CREATE TEMP TABLE bench_checks (n INTEGER PRIMARY KEY, id TEXT, severity TEXT, kind TEXT)`); err != nil {
		return err
	}
	cat := checks.Catalogue()
	for i := 0; i < benchChecks && i < len(cat); i++ {
		kind := "host"
		if i%2 == 0 {
			kind = "domain"
		}
		if err := exec(`INSERT INTO bench_checks VALUES (?, ?, ?, ?)`, i, cat[i].ID, string(cat[i].Severity), kind); err != nil {
			return err
		}
	}
	// Findings of the newest nights: outcomes from a hash of organisation,
	// check and night (about 10% fail, 5% warn, 5% unknown, 5% n/a).
	if err := exec(`WITH RECURSIVE night(r) AS (SELECT ? UNION ALL SELECT r + 1 FROM night WHERE r < ?),
		o(i, code) AS (SELECT rowid - 1, code FROM organisations),
		f AS (SELECT r, i, code, c.n, c.id AS check_id, c.severity, c.kind,
			(i * 7919 + c.n * 104729 + (r / 30) * 31 + (CASE WHEN (i + c.n) % 13 = 0 THEN r ELSE 0 END)) % 20 AS h
			FROM night, o, bench_checks c)
		INSERT INTO findings (evidence_id, run_id, finding_id, check_id, rule, asset_key, asset_kind, asset_name, asset_org,
			asset_domain, asset_source, outcome, severity, message, remediation, reason)
		SELECT 0, r, printf('%020x', i * 1000 + n), check_id, check_id, kind || ':' || lower(code) || '.example.nhs.uk', kind,
			lower(code) || '.example.nhs.uk', code, lower(code) || '.example.nhs.uk', 'estate',
			CASE WHEN h < 2 THEN 'fail' WHEN h = 2 THEN 'warn' WHEN h = 3 THEN 'unknown' WHEN h = 4 THEN 'n/a' ELSE 'pass' END,
			severity, 'observed value ' || h || ' on ' || lower(code) || '.example.nhs.uk',
			CASE WHEN h < 3 THEN 'Follow the catalogue''s remediation for ' || check_id ELSE '' END,
			CASE WHEN h = 3 THEN (CASE (i + n) % 3 WHEN 0 THEN 'timeout' WHEN 1 THEN 'blocked' ELSE 'needs-admin' END) ELSE '' END
		FROM f`, benchNights-benchFindingNights+1, benchNights); err != nil {
		return err
	}
	// The lifecycle of what fails or warns on the newest night, first seen
	// some night of the year, and a 'new' event then.
	if err := exec(`INSERT INTO lifecycle (finding_id, check_id, rule, asset_key, asset_kind, asset_name, asset_org, asset_domain,
			status, first_seen_run, first_seen, last_seen_run, last_seen, regressions, last_run, last_outcome, last_severity)
		SELECT f.finding_id, f.check_id, f.rule, f.asset_key, f.asset_kind, f.asset_name, f.asset_org, f.asset_domain, 'open',
			1 + (f.id % (? - 1)), (SELECT finished_at FROM runs WHERE id = 1 + (f.id % (? - 1))), ?, (SELECT finished_at FROM runs WHERE id = ?),
			0, ?, f.outcome, f.severity
		FROM findings f WHERE f.run_id = ? AND f.outcome IN ('fail', 'warn')`, benchNights, benchNights, benchNights, benchNights, benchNights, benchNights); err != nil {
		return err
	}
	if err := exec(`INSERT INTO life_events (run_id, finding_id, kind) SELECT first_seen_run, finding_id, 'new' FROM lifecycle`); err != nil {
		return err
	}
	// A year of rollups: every organisation, the nation and each standard
	// at every night, slowly improving.
	stds := []string{reports.AllChecks}
	for _, s := range reports.BoardStandards {
		stds = append(stds, s.ID)
	}
	if err := exec(`CREATE TEMP TABLE bench_stds (n INTEGER PRIMARY KEY, id TEXT)`); err != nil {
		return err
	}
	for i, s := range stds {
		if err := exec(`INSERT INTO bench_stds VALUES (?, ?)`, i, s); err != nil {
			return err
		}
	}
	if err := exec(`WITH RECURSIVE night(r) AS (SELECT 1 UNION ALL SELECT r + 1 FROM night WHERE r < ?),
		o(i, code, parent, kind) AS (SELECT rowid, code, parent, kind FROM organisations UNION ALL SELECT 0, '', '', 'national'),
		g AS (SELECT r, i, code, parent, kind, s.n, s.id AS std, 800 + (i % 97) + s.n * 3 + r / 4 AS earned FROM night, o, bench_stds s)
		INSERT INTO run_scores (run_id, standard, org, parent, kind, earned, possible, pass, warn, fail, unknown, na, accepted)
		SELECT r, std, code, parent, kind, min(earned, 1400), 1400, 60 + n, 3, 4, 3, 5, 0 FROM g`, benchNights); err != nil {
		return err
	}
	if err := exec(`INSERT INTO run_scored (run_id, version, computed_at) SELECT id, ?, ? FROM runs`, reports.ScoreVersion, at); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return err
	}
	// The newest night's rollups as a completed run would store them.
	st, err = store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	return RecordRunScores(ctx, st, benchNights)
}

// BenchmarkBoardNational renders the board as `posture report board` does
// (open the store, build the summary of the newest run, write the HTML)
// from a store of 1,300 organisations × 70 checks × 365 nights. Only under
// -bench: the store takes a while to generate the first time.
//
//	go test -run '^$' -bench BoardNational -benchtime 5x ./cmd/posture
func BenchmarkBoardNational(b *testing.B) {
	path := benchDB(b)
	ctx := context.Background()
	var n countingWriter
	for b.Loop() {
		n = 0
		s, st, err := summaryWith(ctx, path, reports.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := reports.WriteBoard(&n, s); err != nil {
			b.Fatal(err)
		}
		st.Close()
		if len(s.Trend) != benchNights || len(s.Orgs) < benchOrgs {
			b.Fatalf("trend of %d runs, %d organisations: want %d, at least %d", len(s.Trend), len(s.Orgs), benchNights, benchOrgs)
		}
	}
	b.ReportMetric(float64(n)/1e6, "board-MB")
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/1e6, "db-MB")
	}
}

type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)
