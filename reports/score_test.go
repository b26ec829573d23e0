package reports

import (
	"context"
	"math"
	"slices"
	"strings"
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

func TestUnknownReasonsAreGroupedByClass(t *testing.T) {
	for reason, class := range map[string]string{
		"timeout": "timeout", "i/o timed out": "timeout", "unreachable": "refused", "connection refused": "refused",
		"blocked": "blocked", "needs-admin": "needs-admin", "no-selector": "no-selector", "nxdomain": "nxdomain",
		"dns": "dns", "canceled": "interrupted", "internal": "error", "": "error", "ocsp-no-issuer": "other",
	} {
		if got := UnknownClass(reason); got != class {
			t.Errorf("UnknownClass(%q) = %q, want %q", reason, got, class)
		}
	}
	u := func(id, reason string) Finding {
		f := fd("RJ7", "domain", "a.nhs.uk", id, "unknown", "", day1, "")
		f.Reason = reason
		return f
	}
	gs := groupUntested([]Finding{u("email.dmarc.record", "timeout"), u("tls.min-version", "timeout"),
		u("tls.min-version", "i/o timed out"), u("email.dmarc.policy", "needs-admin"),
		fd("RJ7", "domain", "a.nhs.uk", "email.dmarc.record", "fail", "", day1, "")})
	if len(gs) != 2 || gs[0].Class != "timeout" || gs[0].Count != 3 || gs[0].Checks[0] != "tls.min-version" ||
		gs[1].Class != "needs-admin" || gs[1].Count != 1 || gs[0].Label == "" {
		t.Errorf("groups %+v: want 3 timeouts (tls.min-version most) then 1 needs-admin", gs)
	}
}

func TestDSPTStatusIsMatchedByODSCode(t *testing.T) {
	if d, ok := DSPTOf("rj7"); !ok || d.Status != "22/23 Approaching Standards" || d.Published.Format("2006-01-02") != "2023-06-30" {
		t.Errorf("RJ7: %+v %v", d, ok)
	}
	if d, ok := DSPTOf("QWE"); !ok || d.Status != "22/23 Standards Met" {
		t.Errorf("the ICB QWE: %+v %v", d, ok)
	}
	if _, ok := DSPTOf("Y56"); ok {
		t.Error("a region has a DSPT status")
	}
	if !strings.Contains(DSPTLicence(), "MIT License") {
		t.Error("the DSPT data's licence is not embedded")
	}
}

func TestLeagueRanksBestFirstWithTheSevenDayDirection(t *testing.T) {
	s := mustSummary(t, fixture())
	v := newBoardView(s, Links{})
	if len(v.League) == 0 || len(v.Groups) == 0 {
		t.Fatalf("league %d rows, groups %d", len(v.League), len(v.Groups))
	}
	prev := 101.0
	for _, r := range v.League {
		o := s.Org(r.Org.Code)
		if len(o.Children) > 0 {
			t.Errorf("%s groups others but is in the league", r.Org.Code)
		}
		if o.Score.Valid && o.Score.Value > prev {
			t.Errorf("%s (%v) ranked below a lower score", r.Org.Code, o.Score)
		}
		if o.Score.Valid {
			prev = o.Score.Value
		}
	}
	// RJ7 declined since run 2 (7 days before): 50% → 43%.
	for _, r := range v.League {
		if r.Org.Code == "RJ7" && (r.Week.Class != "down" || r.Week.Text != "▼ 7.1") {
			t.Errorf("RJ7's week %+v, want ▼ 7.1", r.Week)
		}
	}
	// RVR fell furthest: its DMARC record failed again (100% → 25%).
	if len(v.Declining) != 2 || v.Declining[0].Org.Code != "RVR" || v.Declining[1].Org.Code != "RJ7" {
		t.Errorf("declining most: %+v", v.Declining)
	}
}
