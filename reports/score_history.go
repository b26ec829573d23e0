package reports

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// ScoreStore is a Source that keeps each run's rolled-up scores (optional).
// With it, trends over a year read a few rows per run and never the old
// runs' findings.
type ScoreStore interface {
	// ScoredRuns maps each run with stored rollups to their ScoreVersion.
	ScoredRuns(ctx context.Context) (map[int64]int, error)
	// ScoreRows returns the stored rows that match the query.
	ScoreRows(ctx context.Context, q ScoreQuery) ([]ScoreRow, error)
	// PutScores replaces the rollups of a run.
	PutScores(ctx context.Context, runID int64, version int, rows []ScoreRow) error
}

// ScoreQuery selects stored score rows: runs, organisations ("" is the
// nation) and standards (AllChecks is every check). A nil list selects
// every value.
type ScoreQuery struct {
	Runs      []int64
	Orgs      []string
	Standards []string
}

// RunScores computes the rolled-up scores of one run from its findings:
// every organisation (declared, or implicit: named only as an owner or a
// parent) and the nation, on every check and on each board standard. It is
// the function every report's numbers come from.
func RunScores(runID int64, fs []Finding, orgs []Org, catalogue []check.Meta) []ScoreRow {
	meta := map[string]check.Meta{}
	for _, m := range catalogue {
		if _, dup := meta[m.ID]; !dup {
			meta[m.ID] = m
		}
	}
	return runScores(runID, fs, orgs, newScorer(meta))
}

func runScores(runID int64, fs []Finding, orgs []Org, sc *scorer) []ScoreRow {
	codes := make([]string, 0, len(fs))
	seen := map[string]bool{}
	for _, f := range fs {
		if c := orgOf(f); !seen[c] {
			seen[c] = true
			codes = append(codes, c)
		}
	}
	t := buildTree(orgs, codes)
	total, nation := rollUp(computeScores(tally(fs), sc), t.order, t.parent)
	return scoreRows(runID, t, total, nation)
}

// RecordScores computes and stores the rollups of a run: call it when a
// run completes (scan, demo, reeval, the nightly service). src must be a
// ScoreStore.
func RecordScores(ctx context.Context, src Source, catalogue []check.Meta, runID int64) error {
	ss, ok := src.(ScoreStore)
	if !ok {
		return errors.New("reports: record scores: the source keeps no scores")
	}
	orgs, err := src.Organisations(ctx)
	if err != nil {
		return fmt.Errorf("reports: record scores of run %d: organisations: %w", runID, err)
	}
	fs, err := findingsOf(ctx, src, runID)
	if err != nil {
		return fmt.Errorf("reports: record scores: %w", err)
	}
	if err := ss.PutScores(ctx, runID, ScoreVersion, RunScores(runID, fs, orgs, catalogue)); err != nil {
		return fmt.Errorf("reports: record scores of run %d: %w", runID, err)
	}
	return nil
}

// scoreIndex holds rows by run, organisation and standard.
type scoreIndex map[int64]map[string]Tallies

func (x scoreIndex) add(rows []ScoreRow) {
	for _, r := range rows {
		byOrg := x[r.RunID]
		if byOrg == nil {
			byOrg = map[string]Tallies{}
			x[r.RunID] = byOrg
		}
		ts := byOrg[r.Org]
		if ts == nil {
			ts = Tallies{}
			byOrg[r.Org] = ts
		}
		ts[r.Standard] = r.Tally
	}
}

// history fills the trend (the nation over HistoryDays, the reported run
// last), the comparisons (previous run, 7, 30, 90 and 365 days before) and,
// with OrgTrends, every organisation's trend. older are the runs before the
// reported one, newest first.
func (s *Summary) history(ctx context.Context, src Source, orgs []Org, older []Run, o Options) error {
	from := s.At().AddDate(0, 0, -o.HistoryDays).Add(-24 * time.Hour)
	var window []Run // finished runs in the period, newest first
	for _, r := range older {
		if r.Finished.IsZero() {
			continue
		}
		if r.Started.Before(from) {
			break
		}
		window = append(window, r)
	}
	ss, stored := src.(ScoreStore)
	if !stored && len(window) > o.TrendRuns-1 {
		window = window[:o.TrendRuns-1]
	}
	// The comparisons: the newest run started Windows[i] days before, with
	// a day's slack.
	var compare []int64
	if s.Previous != nil {
		compare = append(compare, s.Previous.ID)
	}
	for i, d := range Windows {
		s.Ago[i] = Comparison{Days: d}
		cut := s.At().AddDate(0, 0, -d).Add(24 * time.Hour)
		for j := range window {
			if !window[j].Started.After(cut) {
				r := window[j]
				s.Ago[i].Run = &r
				compare = append(compare, r.ID)
				break
			}
		}
	}
	ids := make([]int64, len(window))
	for i, r := range window {
		ids[i] = r.ID
	}

	idx := scoreIndex{}
	if stored {
		if err := s.backfill(ctx, src, ss, orgs, window); err != nil {
			return err
		}
		// The nation on every standard at every run; every organisation
		// at the runs compared with: on every check for the board, on
		// every standard too for organisation pages.
		q := []ScoreQuery{{Runs: ids, Orgs: []string{""}, Standards: standardKeys()}, {Runs: compare, Standards: []string{AllChecks}}}
		if o.OrgTrends {
			q[1].Standards = nil
			q = append(q, ScoreQuery{Runs: ids, Standards: []string{AllChecks}, Orgs: o.TrendsFor})
		}
		for _, q := range q {
			if len(q.Runs) == 0 {
				continue
			}
			rows, err := ss.ScoreRows(ctx, q)
			if err != nil {
				return fmt.Errorf("reports: score history: %w", err)
			}
			idx.add(rows)
		}
	} else {
		for _, r := range window {
			fs, err := findingsOf(ctx, src, r.ID)
			if err != nil {
				return err
			}
			idx.add(runScores(r.ID, fs, orgs, s.scorer))
		}
	}

	// Oldest first, the reported run (computed from its findings) last.
	nodes := append([]*OrgSummary{s.Estate}, s.Orgs...)
	codeOf := func(n *OrgSummary) string { return n.Code } // the estate's is ""
	s.Trend = make([]TrendPoint, 0, len(window)+1)
	for i := len(window) - 1; i >= 0; i-- {
		r := window[i]
		nt := idx[r.ID][""]
		s.Trend = append(s.Trend, TrendPoint{Run: r, Counts: nt[AllChecks].Counts, Score: nt[AllChecks].Score(), Tallies: nt})
	}
	s.Trend = append(s.Trend, TrendPoint{Run: s.Run, Counts: s.Estate.Tallies[AllChecks].Counts,
		Score: s.Estate.Score, Tallies: s.Estate.Tallies})
	for _, n := range nodes {
		if s.Previous != nil {
			n.Previous = idx[s.Previous.ID][codeOf(n)][AllChecks].Score()
		}
		for i, c := range s.Ago {
			if c.Run != nil {
				n.Ago[i] = idx[c.Run.ID][codeOf(n)]
			}
		}
		if n == s.Estate || !stored || o.OrgTrends && (o.TrendsFor == nil || slices.Contains(o.TrendsFor, n.Code)) {
			n.Trend = make([]Score, len(s.Trend))
			for i, p := range s.Trend[:len(s.Trend)-1] {
				n.Trend[i] = idx[p.Run.ID][codeOf(n)][AllChecks].Score()
			}
			n.Trend[len(n.Trend)-1] = n.Score
		}
	}
	return nil
}

// standardKeys are every standard key a row may have.
func standardKeys() []string {
	out := []string{AllChecks}
	for _, b := range BoardStandards {
		out = append(out, b.ID)
	}
	return out
}

// backfill computes and stores the rollups of the runs that have none, or
// of an older ScoreVersion: a database from before rollups reads each old
// run's findings once, and never again.
func (s *Summary) backfill(ctx context.Context, src Source, ss ScoreStore, orgs []Org, runs []Run) error {
	have, err := ss.ScoredRuns(ctx)
	if err != nil {
		return fmt.Errorf("reports: scored runs: %w", err)
	}
	var missing []Run
	for _, r := range runs {
		if have[r.ID] != ScoreVersion {
			missing = append(missing, r)
		}
	}
	slices.SortFunc(missing, func(a, b Run) int { return a.Started.Compare(b.Started) })
	for _, r := range missing {
		fs, err := findingsOf(ctx, src, r.ID)
		if err != nil {
			return err
		}
		if err := ss.PutScores(ctx, r.ID, ScoreVersion, runScores(r.ID, fs, orgs, s.scorer)); err != nil {
			return fmt.Errorf("reports: store scores of run %d: %w", r.ID, err)
		}
	}
	return nil
}

// StoredScores returns the finished runs started in the last days (0:
// all), oldest first, and their stored rollups, computing and storing those
// a run lacks.
func StoredScores(ctx context.Context, src Source, catalogue []check.Meta, days int) ([]Run, []ScoreRow, error) {
	ss, ok := src.(ScoreStore)
	if !ok {
		return nil, nil, errors.New("reports: stored scores: the source keeps no scores")
	}
	all, err := src.Runs(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("reports: runs: %w", err)
	}
	var runs []Run
	var ids []int64
	for i := len(all) - 1; i >= 0; i-- {
		r := all[i]
		if r.Finished.IsZero() || days > 0 && len(all) > 0 && r.Started.Before(all[0].Started.AddDate(0, 0, -days)) {
			continue
		}
		runs = append(runs, r)
		ids = append(ids, r.ID)
	}
	if len(runs) == 0 {
		return nil, nil, nil
	}
	orgs, err := src.Organisations(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("reports: organisations: %w", err)
	}
	s := &Summary{meta: map[string]check.Meta{}}
	for _, m := range catalogue {
		if _, dup := s.meta[m.ID]; !dup {
			s.meta[m.ID] = m
		}
	}
	s.scorer = newScorer(s.meta)
	if err := s.backfill(ctx, src, ss, orgs, runs); err != nil {
		return nil, nil, err
	}
	rows, err := ss.ScoreRows(ctx, ScoreQuery{Runs: ids})
	if err != nil {
		return nil, nil, fmt.Errorf("reports: stored scores: %w", err)
	}
	return runs, rows, nil
}
