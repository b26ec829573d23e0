// Package storesource adapts the store to what reports read (package
// reports depends on the check contract only, never on the scanner). The
// CLI, the nightly service and the dashboard all read through it, so the
// dashboard shows exactly what `posture report` writes.
package storesource

import (
	"context"
	"errors"

	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/scanner/store"
)

// Source is the store as reports read it: reports.Source, UnownedSource
// and ScoreStore.
type Source struct{ Store *store.Store }

func (s Source) Runs(ctx context.Context) ([]reports.Run, error) {
	runs, err := s.Store.Runs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]reports.Run, len(runs))
	for i, r := range runs {
		out[i] = reports.Run{ID: r.ID, Started: r.StartedAt, Finished: r.FinishedAt, Status: string(r.Status)}
	}
	return out, nil
}

func (s Source) Organisations(ctx context.Context) ([]reports.Org, error) {
	orgs, err := s.Store.Organisations(ctx)
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
func (s Source) Unowned(ctx context.Context, runID int64) ([]reports.Unowned, error) {
	us, err := s.Store.Unowned(ctx, runID)
	if err != nil {
		return nil, err
	}
	out := make([]reports.Unowned, len(us))
	for i, u := range us {
		out[i] = reports.Unowned(u)
	}
	return out, nil
}

// runLife is what the lifecycle says about one run's findings.
type runLife struct {
	run     store.Run
	changes map[string]store.Change
	life    map[string]store.Life
	accs    *store.AcceptanceFor // nil: an incomplete run
}

// lifeOf reads the changes, lifecycle and acceptances that bear on a run;
// an incomplete run has no changes (nothing to compare yet).
func (s Source) lifeOf(ctx context.Context, runID int64) (*runLife, error) {
	run, err := s.Store.Run(ctx, runID)
	if err != nil {
		return nil, err
	}
	rl := &runLife{run: run, changes: map[string]store.Change{}, life: map[string]store.Life{}}
	cs, err := s.Store.Changes(ctx, runID)
	switch {
	case errors.Is(err, store.ErrRunIncomplete):
	case err != nil:
		return nil, err
	default:
		for _, c := range cs {
			rl.changes[c.ID] = c
		}
		if rl.accs, err = s.Store.AcceptancesFor(ctx, runID); err != nil {
			return nil, err
		}
	}
	lives, err := s.Store.Lifecycle(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range lives {
		rl.life[l.FindingID] = l
	}
	return rl, nil
}

func acceptanceOf(a *store.Acceptance) *reports.Acceptance {
	if a == nil {
		return nil
	}
	return &reports.Acceptance{Reason: a.Reason, By: a.By, Until: a.Until}
}

// Findings gives each finding of the run its lifecycle. A failing finding
// the lifecycle has not announced (pending: not yet held for the hold's
// runs) has no Change and no Status; one an acceptance covers in the run is
// accepted, pending or not (accepting a pattern anticipates failures).
func (s Source) Findings(ctx context.Context, runID int64) ([]reports.Finding, error) {
	fs, err := s.Store.Findings(ctx, runID)
	if err != nil {
		return nil, err
	}
	rl, err := s.lifeOf(ctx, runID)
	if err != nil {
		return nil, err
	}
	out := make([]reports.Finding, 0, len(fs))
	for _, f := range fs {
		r := reports.Finding{Finding: f.Finding, ID: f.ID}
		l, known := rl.life[f.ID]
		if known {
			r.FirstSeen, r.LastSeen, r.Regressions = l.FirstSeen, l.LastSeen, l.Regressions
		}
		c, changed := rl.changes[f.ID]
		switch {
		case changed && c.Kind != store.ChangeResolved:
			r.Change, r.Status = string(c.Kind), reports.StatusOpen
			r.Regressions, r.DaysOpen = c.Regressions, c.DaysOpen(rl.run.FinishedAt)
			r.Acceptance = acceptanceOf(c.Acceptance)
			if c.Accepted {
				r.Status = reports.StatusAccepted
			}
		case changed: // resolved in this run: listed by Resolved
			r.Status = reports.StatusResolved
		case f.Outcome.Counts():
			// Pending, or an incomplete run: counted as its outcome, not
			// announced, unless an acceptance covers it.
			if a := rl.accs.Covering(f.ID, f.CheckID, f.Asset.Name); a != nil {
				r.Status, r.Acceptance = reports.StatusAccepted, acceptanceOf(a)
			} else if rl.accs == nil && known && l.Status != store.StatusPending {
				r.Status = string(l.Status) // an incomplete run: as the lifecycle stands
			}
		case known && l.Status == store.StatusResolved:
			r.Status = reports.StatusResolved
		}
		out = append(out, r)
	}
	return out, nil
}

// Resolved lists the findings the run announced fixed. It needs only the
// run's changes, not the whole lifecycle Findings reads.
func (s Source) Resolved(ctx context.Context, runID int64) ([]reports.Finding, error) {
	run, err := s.Store.Run(ctx, runID)
	if err != nil {
		return nil, err
	}
	cs, err := s.Store.Changes(ctx, runID)
	switch {
	case errors.Is(err, store.ErrRunIncomplete):
		return nil, nil // nothing is announced before a run completes
	case err != nil:
		return nil, err
	}
	var out []reports.Finding
	for _, c := range cs {
		if c.Kind == store.ChangeResolved {
			out = append(out, reports.Finding{Finding: c.Finding, ID: c.ID, FirstSeen: c.FirstSeen,
				LastSeen: c.LastSeen, DaysOpen: c.DaysOpen(run.FinishedAt), Regressions: c.Regressions,
				Status: reports.StatusResolved, Change: reports.ChangeResolved})
		}
	}
	return out, nil
}

// The store's score rollups (reports.ScoreStore), so that trends read a
// few rows a run. PutScores stores a run's derived rollups when a summary
// finds them missing (a database from before rollups): the dashboard's only
// write.

func (s Source) ScoredRuns(ctx context.Context) (map[int64]int, error) {
	return s.Store.ScoredRuns(ctx)
}

func (s Source) ScoreRows(ctx context.Context, q reports.ScoreQuery) ([]reports.ScoreRow, error) {
	rows, err := s.Store.Scores(ctx, store.ScoreQuery{Runs: q.Runs, Orgs: q.Orgs, Standards: q.Standards})
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

func (s Source) PutScores(ctx context.Context, runID int64, version int, rows []reports.ScoreRow) error {
	out := make([]store.Score, len(rows))
	for i, r := range rows {
		out[i] = store.Score{RunID: runID, Org: r.Org, Parent: r.Parent, Kind: r.Kind, Standard: r.Standard,
			Earned: r.Earned, Possible: r.Possible, Pass: r.Pass, Warn: r.Warn, Fail: r.Fail, Unknown: r.Unknown,
			NA: r.NA, Accepted: r.Accepted}
	}
	return s.Store.PutScores(ctx, runID, version, out)
}
