package reports

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
)

// scoreMem is a source that keeps rollups in memory and counts the runs
// whose findings are read.
type scoreMem struct {
	*memSource
	mu     sync.Mutex
	rows   map[int64][]ScoreRow
	scored map[int64]int
	reads  map[int64]int
}

func newScoreMem(m *memSource) *scoreMem {
	return &scoreMem{memSource: m, rows: map[int64][]ScoreRow{}, scored: map[int64]int{}, reads: map[int64]int{}}
}

func (s *scoreMem) Findings(ctx context.Context, id int64) ([]Finding, error) {
	s.mu.Lock()
	s.reads[id]++
	s.mu.Unlock()
	return s.memSource.Findings(ctx, id)
}

func (s *scoreMem) ScoredRuns(context.Context) (map[int64]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]int{}
	for k, v := range s.scored {
		out[k] = v
	}
	return out, nil
}

func (s *scoreMem) PutScores(_ context.Context, id int64, v int, rows []ScoreRow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows[id], s.scored[id] = rows, v
	return nil
}

func (s *scoreMem) ScoreRows(_ context.Context, q ScoreQuery) ([]ScoreRow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ScoreRow
	for _, id := range q.Runs {
		for _, r := range s.rows[id] {
			if (q.Orgs == nil || slices.Contains(q.Orgs, r.Org)) && (q.Standards == nil || slices.Contains(q.Standards, r.Standard)) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func TestTrendsComeFromStoredRollupsAndOldFindingsAreReadOnce(t *testing.T) {
	src := newScoreMem(fixture())
	plain := mustSummary(t, fixture()) // the same estate, trends read from findings
	for pass := 1; pass <= 2; pass++ {
		s := mustSummary(t, src)
		for i, p := range s.Trend {
			if math.Abs(p.Score.Value-plain.Trend[i].Score.Value) > 1e-9 || p.Tallies[AllChecks] != plain.Trend[i].Tallies[AllChecks] {
				t.Errorf("pass %d, trend[%d]: %v from rollups, %v from findings", pass, i, p.Score, plain.Trend[i].Score)
			}
		}
		if got, want := s.Org("RJ7").Previous, plain.Org("RJ7").Previous; got != want {
			t.Errorf("pass %d: RJ7's previous score %v from rollups, %v from findings", pass, got, want)
		}
	}
	// Runs 1 and 2 were read once, to compute their rollups; run 3 (the
	// one reported) once per report.
	if src.reads[1] != 1 || src.reads[2] != 1 || src.reads[3] != 2 {
		t.Errorf("findings read per run %v, want runs 1 and 2 once, run 3 twice", src.reads)
	}
	if src.scored[1] != ScoreVersion || src.scored[2] != ScoreVersion {
		t.Errorf("stored rollups %v", src.scored)
	}
	// Rollups of another scoring version are computed again.
	src.scored[1] = ScoreVersion - 1
	mustSummary(t, src)
	if src.reads[1] != 2 || src.scored[1] != ScoreVersion {
		t.Errorf("an outdated rollup was not recomputed: reads %v", src.reads)
	}
}

func TestRecordScoresStoresEveryOrganisationAndTheNation(t *testing.T) {
	src := newScoreMem(fixture())
	if err := RecordScores(context.Background(), src, testCatalogue(), 3); err != nil {
		t.Fatal(err)
	}
	s := mustSummary(t, fixture())
	got := map[string]Tally{}
	for _, r := range src.rows[3] {
		got[r.Org+"/"+r.Standard] = r.Tally
	}
	// The rows are what the summary computes: one function.
	for _, o := range append(s.Orgs, s.Estate) {
		for std, want := range o.Tallies {
			if got[o.Code+"/"+std] != want {
				t.Errorf("%s/%s stored %+v, summary %+v", o.Code, std, got[o.Code+"/"+std], want)
			}
		}
	}
	if _, ok := got["QRV/"+AllChecks]; !ok {
		t.Error("the implicit parent QRV has no row")
	}
	if err := RecordScores(context.Background(), fixture(), testCatalogue(), 3); err == nil {
		t.Error("a source that keeps no scores: no error")
	}
}
