// Package reports turns the findings of a run into what people read: the
// board summary (HTML and Markdown), one organisation's report, JSON Lines
// and CSV exports, and the per-organisation email.
//
// It reads the store through Source, which it defines itself, so that it
// depends on nothing of ours but the check contract. Everything in a finding
// that came from a scanned server is treated as hostile: HTML goes through
// html/template, mail headers are stripped of CR/LF, CSV cells are escaped
// against formula injection and every rendered text is bounded.
package reports

import (
	"context"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// Run is one scan of the estate.
type Run struct {
	ID       int64     `json:"id"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"` // zero while running or if interrupted
	Status   string    `json:"status"`
}

// Org is one organisation of the estate. Parent is the ODS code of the
// organisation it rolls up to (trust → ICB → region → national).
type Org struct {
	Code     string   `json:"code"`
	Name     string   `json:"name"`
	Parent   string   `json:"parent,omitempty"`
	Kind     string   `json:"kind,omitempty"`
	Contacts []string `json:"contacts,omitempty"`
}

// Lifecycle status of a finding.
const (
	StatusOpen     = "open"
	StatusResolved = "resolved"
	StatusAccepted = "accepted" // a risk acceptance is in force
)

// Change of a finding since the previous run.
const (
	ChangeNew       = "new"        // failing now, never seen failing before
	ChangeRegressed = "regressed"  // failing again after it had been resolved
	ChangeStillOpen = "still-open" // failing in both runs
	ChangeResolved  = "resolved"   // failing before, passing now
	// ChangeReopened: open, and the risk acceptance that covered it lapsed
	// (or was revoked): the organisation must be told.
	ChangeReopened = "reopened"
)

// Acceptance is the risk acceptance of a finding: the one in force, or for
// a re-opened finding the one that lapsed.
type Acceptance struct {
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	Until  time.Time `json:"until"`
}

// Finding is a check finding with its lifecycle, as the store keeps it.
type Finding struct {
	check.Finding
	// ID is the stable finding id (check.FindingID); filled from the
	// check, rule and asset when the source leaves it empty.
	ID string `json:"id"`
	// FirstSeen is when the finding was first seen failing (or warning).
	FirstSeen time.Time `json:"first_seen,omitzero"`
	Status    string    `json:"status,omitempty"` // open | resolved | accepted
	// Change since the previous run: new | regressed | still-open |
	// resolved | reopened, or "" (pass, n/a or unknown with no failing
	// history, or failing but pending: not yet for the runs the lifecycle
	// holds a change before it announces it; then Status is "" too).
	Change string `json:"change,omitempty"`
	// LastSeen is when it last failed or warned.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// DaysOpen is how many whole days it had been open when the run
	// completed (resolved: how long it was open until fixed); 0 if not open.
	DaysOpen int `json:"days_open,omitempty"`
	// Regressions is how many times it came back after being resolved.
	Regressions int         `json:"regressions,omitempty"`
	Acceptance  *Acceptance `json:"acceptance,omitempty"`
}

// Source is what reports read from the store.
type Source interface {
	// Runs lists the runs, newest first.
	Runs(ctx context.Context) ([]Run, error)
	Organisations(ctx context.Context) ([]Org, error)
	// Findings returns every finding of the run, pass and unknown included.
	Findings(ctx context.Context, runID int64) ([]Finding, error)
	// Resolved returns the findings resolved at this run (failing in the
	// previous run, passing now), for "what you fixed".
	Resolved(ctx context.Context, runID int64) ([]Finding, error)
}

// UnownedSource is a Source that also lists the names a run's discovery
// found in scope that no estate domain owns (optional).
type UnownedSource interface {
	Unowned(ctx context.Context, runID int64) ([]Unowned, error)
}

// Unowned is a name in scope that no estate domain owns: found, not
// scanned. Source says how (ct, cname, pages …), Via what led to it.
type Unowned struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Via    string `json:"via"`
}
