package dashboard

import (
	"context"
	"errors"

	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/scanner/store"
)

// source adapts the store to what reports read. It mirrors cmd/posture's
// storeSource (package main, which cannot be imported), so the dashboard
// shows what `posture report` writes.
type source struct{ st *store.Store }

func (s source) Runs(ctx context.Context) ([]reports.Run, error) {
	runs, err := s.st.Runs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]reports.Run, len(runs))
	for i, r := range runs {
		out[i] = reports.Run{ID: r.ID, Started: r.StartedAt, Finished: r.FinishedAt, Status: string(r.Status)}
	}
	return out, nil
}

func (s source) Organisations(ctx context.Context) ([]reports.Org, error) {
	orgs, err := s.st.Organisations(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]reports.Org, len(orgs))
	for i, o := range orgs {
		out[i] = reports.Org{Code: o.Code, Name: o.Name, Parent: o.Parent, Kind: o.Kind, Contacts: o.Contacts}
	}
	return out, nil
}

// Unowned lists the run's names in scope that no estate domain owns.
func (s source) Unowned(ctx context.Context, runID int64) ([]reports.Unowned, error) {
	us, err := s.st.Unowned(ctx, runID)
	if err != nil {
		return nil, err
	}
	out := make([]reports.Unowned, len(us))
	for i, u := range us {
		out[i] = reports.Unowned(u)
	}
	return out, nil
}

// changes of a run; an incomplete run has none (nothing to compare yet).
func (s source) changes(ctx context.Context, runID int64) (map[string]store.Change, error) {
	cs, err := s.st.Changes(ctx, runID)
	if errors.Is(err, store.ErrRunIncomplete) {
		return map[string]store.Change{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := make(map[string]store.Change, len(cs))
	for _, c := range cs {
		m[c.ID] = c
	}
	return m, nil
}

func (s source) Findings(ctx context.Context, runID int64) ([]reports.Finding, error) {
	fs, err := s.st.Findings(ctx, runID)
	if err != nil {
		return nil, err
	}
	changes, err := s.changes(ctx, runID)
	if err != nil {
		return nil, err
	}
	lives, err := s.st.Lifecycle(ctx)
	if err != nil {
		return nil, err
	}
	life := make(map[string]store.Life, len(lives))
	for _, l := range lives {
		life[l.FindingID] = l
	}
	out := make([]reports.Finding, 0, len(fs))
	for _, f := range fs {
		r := reports.Finding{Finding: f.Finding, ID: f.ID}
		if l, ok := life[f.ID]; ok {
			r.FirstSeen, r.Status = l.FirstSeen, string(l.Status)
		}
		if c, ok := changes[f.ID]; ok && c.Kind != store.ChangeResolved {
			r.Change = string(c.Kind)
			if c.Accepted {
				r.Status = reports.StatusAccepted
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func (s source) Resolved(ctx context.Context, runID int64) ([]reports.Finding, error) {
	changes, err := s.changes(ctx, runID)
	if err != nil {
		return nil, err
	}
	var out []reports.Finding
	for _, c := range changes {
		if c.Kind == store.ChangeResolved {
			out = append(out, reports.Finding{Finding: c.Finding, ID: c.ID, FirstSeen: c.FirstSeen,
				Status: reports.StatusResolved, Change: reports.ChangeResolved})
		}
	}
	return out, nil
}

// The store's score rollups (reports.ScoreStore), so that trends read a
// few rows a run. PutScores is the dashboard's only write: a run's derived
// rollups, stored when a summary finds them missing (a database from
// before rollups), exactly as `posture report` stores them.

func (s source) ScoredRuns(ctx context.Context) (map[int64]int, error) {
	return s.st.ScoredRuns(ctx)
}

func (s source) ScoreRows(ctx context.Context, q reports.ScoreQuery) ([]reports.ScoreRow, error) {
	rows, err := s.st.Scores(ctx, store.ScoreQuery{Runs: q.Runs, Orgs: q.Orgs, Standards: q.Standards})
	if err != nil {
		return nil, err
	}
	out := make([]reports.ScoreRow, len(rows))
	for i, r := range rows {
		out[i] = reports.ScoreRow{RunID: r.RunID, Org: r.Org, Parent: r.Parent, Kind: r.Kind, Standard: r.Standard,
			Tally: reports.Tally{Earned: r.Earned, Possible: r.Possible, Counts: reports.Counts{Pass: r.Pass, Warn: r.Warn,
				Fail: r.Fail, Unknown: r.Unknown, NA: r.NA, Accepted: r.Accepted}}}
	}
	return out, nil
}

func (s source) PutScores(ctx context.Context, runID int64, version int, rows []reports.ScoreRow) error {
	out := make([]store.Score, len(rows))
	for i, r := range rows {
		out[i] = store.Score{RunID: runID, Org: r.Org, Parent: r.Parent, Kind: r.Kind, Standard: r.Standard,
			Earned: r.Earned, Possible: r.Possible, Pass: r.Pass, Warn: r.Warn, Fail: r.Fail, Unknown: r.Unknown,
			NA: r.NA, Accepted: r.Accepted}
	}
	return s.st.PutScores(ctx, runID, version, out)
}
