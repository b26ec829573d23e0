package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// BenchmarkPutResult measures one job's transaction (evidence + 5 findings)
// with synchronous=FULL on the test's file system.
func BenchmarkPutResult(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir()+"/posture.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r, _, _ := s.BeginRun(context.Background(), "bench", "")
	b.ResetTimer()
	for i := range b.N {
		a := check.Asset{Kind: check.KindHost, Name: fmt.Sprintf("h%d.example.nhs.uk", i)}
		var fs []check.Finding
		for k := range 5 {
			fs = append(fs, finding(fmt.Sprintf("tls.rule%d", k), a, check.Fail))
		}
		if err := s.PutResult(context.Background(), r.ID, evidence("tls.cert", a, s.now()), fs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFinishRun measures completing a run of 20,000 jobs × 5 findings
// (100,000 findings, a fifth of them failing) against a lifecycle holding
// the previous run's.
func BenchmarkFinishRun(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir()+"/posture.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fill := func(runID int64, shift int) { fillHosts(b, s, runID, shift) }
	var (
		changes time.Duration
		n       int
	)
	for i := range b.N + 1 {
		r, _, err := s.BeginRun(ctx, fmt.Sprint(i), "")
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		fill(r.ID, i)
		if i > 0 {
			b.StartTimer()
		}
		if err := s.FinishRun(ctx, r.ID, Complete); err != nil {
			b.Fatal(err)
		}
		if i > 0 {
			b.StopTimer()
			t0 := time.Now()
			cs, err := s.Changes(ctx, r.ID)
			if err != nil {
				b.Fatal(err)
			}
			changes += time.Since(t0)
			n = len(cs)
		}
	}
	b.ReportMetric(float64(changes.Milliseconds())/float64(b.N), "changes-ms/op")
	b.ReportMetric(float64(n), "changes")
}

// fillHosts stores run runID's 20,000 host jobs × 5 findings, a fifth of
// them failing, which fifth shifting with shift.
func fillHosts(b *testing.B, s *Store, runID int64, shift int) {
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 20000 {
		a := check.Asset{Kind: check.KindHost, Name: fmt.Sprintf("h%d.example.nhs.uk", i), Org: "RXX"}
		var evID int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO evidence (run_id, check_id, asset_key, asset_kind,
			asset_name, collected_at) VALUES (?, 'tls', ?, 'host', ?, '') RETURNING id`,
			runID, a.Key(), a.Name).Scan(&evID); err != nil {
			b.Fatal(err)
		}
		var fs []check.Finding
		for k := range 5 {
			o := check.Pass
			if (i+k+shift)%5 == 0 {
				o = check.Fail
			}
			fs = append(fs, finding(fmt.Sprintf("tls.rule%d", k), a, o))
		}
		if err := replaceFindings(ctx, tx, runID, evID, fs); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
