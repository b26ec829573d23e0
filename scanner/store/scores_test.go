package store

import (
	"context"
	"testing"
)

func TestPutScoresReplacesARunsRollupsAndRecordsTheVersion(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	r1 := mustBegin(t, s, "a")
	if err := s.FinishRun(ctx, r1.ID, Complete); err != nil {
		t.Fatal(err)
	}
	r2 := mustBegin(t, s, "a")
	first := []Score{
		{Org: "", Standard: "", Earned: 10, Possible: 20, Pass: 1, Fail: 1},
		{Org: "RJ7", Parent: "QWE", Kind: "trust", Standard: "", Earned: 4, Possible: 8, Warn: 1},
		{Org: "RJ7", Parent: "QWE", Kind: "trust", Standard: "email", Earned: 4, Possible: 8, Warn: 1},
	}
	if err := s.PutScores(ctx, r1.ID, 1, first); err != nil {
		t.Fatal(err)
	}
	if err := s.PutScores(ctx, r2.ID, 1, first[:1]); err != nil {
		t.Fatal(err)
	}
	// Computed again (a new scoring version): the old rows go.
	if err := s.PutScores(ctx, r1.ID, 2, first[1:2]); err != nil {
		t.Fatal(err)
	}
	got, err := s.Scores(ctx, ScoreQuery{Runs: []int64{r1.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Org != "RJ7" || got[0].Parent != "QWE" || got[0].Kind != "trust" || got[0].Warn != 1 ||
		got[0].Earned != 4 || got[0].Possible != 8 || got[0].RunID != r1.ID {
		t.Errorf("run %d rollups %+v, want RJ7's only", r1.ID, got)
	}
	v, err := s.ScoredRuns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v[r1.ID] != 2 || v[r2.ID] != 1 || len(v) != 2 {
		t.Errorf("scored runs %v, want run %d at 2 and %d at 1", v, r1.ID, r2.ID)
	}
}

func TestScoresSelectsByRunStandardAndOrganisation(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	var runs []int64
	for range 3 {
		r := mustBegin(t, s, "k")
		if err := s.FinishRun(ctx, r.ID, Complete); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r.ID)
		var rows []Score
		for _, org := range []string{"", "RJ7", "RAX"} {
			for _, std := range []string{"", "email", "tls"} {
				rows = append(rows, Score{Org: org, Standard: std, Earned: r.ID, Possible: 10})
			}
		}
		if err := s.PutScores(ctx, r.ID, 1, rows); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		q    ScoreQuery
		want int
	}{
		{"everything", ScoreQuery{}, 27},
		{"the nation over two runs", ScoreQuery{Runs: runs[1:], Standards: []string{"", "email", "tls"}, Orgs: []string{""}}, 6},
		{"every organisation at one run", ScoreQuery{Runs: runs[:1]}, 9},
		{"every check's score over all runs", ScoreQuery{Runs: runs, Standards: []string{""}}, 9},
		{"nothing that is not there", ScoreQuery{Orgs: []string{"NOPE"}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Scores(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Errorf("%d rows, want %d", len(got), tc.want)
			}
			for _, r := range got {
				if r.Earned != r.RunID {
					t.Errorf("row %+v carries another run's numbers", r)
				}
			}
		})
	}
}
