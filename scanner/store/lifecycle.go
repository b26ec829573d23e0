package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// LifeStatus is the state of a finding across runs.
type LifeStatus string

const (
	StatusOpen     LifeStatus = "open"
	StatusResolved LifeStatus = "resolved"
	StatusAccepted LifeStatus = "accepted" // open, but a risk acceptance is in force
)

// Life is the history of one finding id: every finding that has ever failed
// or warned has one.
type Life struct {
	FindingID    string
	CheckID      string
	Rule         string
	Asset        check.Asset // Kind, Name, Org, Domain
	Status       LifeStatus
	FirstSeenRun int64
	FirstSeen    time.Time // completion time of FirstSeenRun
	LastSeenRun  int64     // the last run in which it failed or warned
	LastSeen     time.Time
	ResolvedRun  int64     // 0 unless resolved
	ResolvedAt   time.Time // zero unless resolved
	Regressions  int       // times it came back after being resolved
	LastRun      int64     // the last completed run that evaluated it
	LastOutcome  check.Outcome
	LastSeverity check.Severity
	Acceptance   *Acceptance // the latest risk acceptance, in force or lapsed
}

// Acceptance is a risk acceptance of one finding.
type Acceptance struct {
	Reason string
	Until  time.Time
	By     string
	At     time.Time
}

// outcomeRank orders outcomes so that one SQL MAX picks the worst of
// duplicate findings: fail 5, warn 4, unknown 3, pass 2, n/a 1.
const outcomeRank = `CASE outcome WHEN 'fail' THEN 5 WHEN 'warn' THEN 4 WHEN 'unknown' THEN 3
	WHEN 'pass' THEN 2 ELSE 1 END`

// applyRun moves the lifecycle on by one completed run, at time at:
//   - fail/warn: new if never seen, regressed (regressions+1) if resolved,
//     otherwise still open;
//   - pass/n/a: an open or accepted finding is resolved;
//   - unknown or not evaluated: nothing changes (a timeout resolves nothing);
//   - then acceptances in force at `at` mark open findings accepted, and
//     lapsed ones re-open accepted findings.
//
// new, regressed and resolved are recorded in life_events for Changes.
func applyRun(ctx context.Context, tx *sql.Tx, runID int64, at string) error {
	stmts := []string{
		`DROP TABLE IF EXISTS temp.cur`,
		// SQLite takes the bare columns from the row that gives MAX: the
		// worst outcome when a finding id appears twice in a run.
		`CREATE TEMP TABLE cur AS SELECT finding_id, check_id, rule, asset_key, asset_kind, asset_name,
			asset_org, asset_domain, outcome, severity, MAX(` + outcomeRank + `) AS orank
			FROM findings WHERE run_id = :run GROUP BY finding_id`,
		`CREATE UNIQUE INDEX temp.cur_id ON cur (finding_id)`,

		`INSERT INTO life_events (run_id, finding_id, kind) SELECT :run, l.finding_id, 'regressed'
			FROM lifecycle l JOIN cur c USING (finding_id) WHERE c.orank >= 4 AND l.status = 'resolved'`,
		`UPDATE lifecycle SET status = 'open', regressions = regressions + 1, resolved_run = NULL,
			resolved_at = NULL FROM cur c
			WHERE c.finding_id = lifecycle.finding_id AND c.orank >= 4 AND lifecycle.status = 'resolved'`,

		`INSERT INTO life_events (run_id, finding_id, kind) SELECT :run, c.finding_id, 'new' FROM cur c
			WHERE c.orank >= 4 AND NOT EXISTS (SELECT 1 FROM lifecycle l WHERE l.finding_id = c.finding_id)`,
		`INSERT INTO lifecycle (finding_id, check_id, rule, asset_key, asset_kind, asset_name, asset_org,
			asset_domain, status, first_seen_run, first_seen, last_seen_run, last_seen, last_run, last_outcome,
			last_severity)
			SELECT c.finding_id, c.check_id, c.rule, c.asset_key, c.asset_kind, c.asset_name, c.asset_org,
			c.asset_domain, 'open', :run, :at, :run, :at, :run, c.outcome, c.severity FROM cur c
			WHERE c.orank >= 4 AND NOT EXISTS (SELECT 1 FROM lifecycle l WHERE l.finding_id = c.finding_id)`,

		`INSERT INTO life_events (run_id, finding_id, kind) SELECT :run, l.finding_id, 'resolved'
			FROM lifecycle l JOIN cur c USING (finding_id)
			WHERE c.orank <= 2 AND l.status IN ('open', 'accepted')`,
		`UPDATE lifecycle SET status = 'resolved', resolved_run = :run, resolved_at = :at FROM cur c
			WHERE c.finding_id = lifecycle.finding_id AND c.orank <= 2 AND lifecycle.status IN ('open', 'accepted')`,

		`UPDATE lifecycle SET last_run = :run, last_outcome = c.outcome, last_severity = c.severity,
			asset_org = c.asset_org, asset_domain = c.asset_domain,
			last_seen_run = CASE WHEN c.orank >= 4 THEN :run ELSE last_seen_run END,
			last_seen = CASE WHEN c.orank >= 4 THEN :at ELSE last_seen END
			FROM cur c WHERE c.finding_id = lifecycle.finding_id`,

		`UPDATE lifecycle SET status = 'accepted' WHERE status = 'open'
			AND finding_id IN (SELECT finding_id FROM acceptances WHERE until > :at)`,
		`UPDATE lifecycle SET status = 'open' WHERE status = 'accepted'
			AND finding_id NOT IN (SELECT finding_id FROM acceptances WHERE until > :at)`,
		`DROP TABLE temp.cur`,
	}
	args := []any{sql.Named("run", runID), sql.Named("at", at)}
	for _, q := range stmts {
		n := strings.Count(q, ":run") + strings.Count(q, ":at")
		var a []any
		if n > 0 {
			a = args
		}
		if _, err := tx.ExecContext(ctx, q, a...); err != nil {
			return fmt.Errorf("lifecycle of run %d: %w", runID, err)
		}
	}
	return nil
}

// RebuildLifecycle recomputes the lifecycle from the stored findings of all
// complete runs, in completion order. Call it after ReplaceFindings on a
// complete run (`posture reeval`); the result is what completing those runs
// with those findings would have given.
func (s *Store) RebuildLifecycle(ctx context.Context) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM life_events; DELETE FROM lifecycle;"); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT id, finished_at FROM runs WHERE seq IS NOT NULL ORDER BY seq")
		if err != nil {
			return err
		}
		type done struct {
			id int64
			at string
		}
		var runs []done
		for rows.Next() {
			var d done
			if err := rows.Scan(&d.id, &d.at); err != nil {
				rows.Close()
				return err
			}
			runs = append(runs, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range runs {
			if err := applyRun(ctx, tx, r.id, r.at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: rebuild lifecycle: %w", err)
	}
	return nil
}

// Accept records a risk acceptance of a finding until the given time. An
// open finding shows as accepted at once; a finding that fails or warns
// while the acceptance is in force stays accepted; after until, the next
// completed run re-opens it. The finding must have a lifecycle (it has
// failed or warned in a completed run).
func (s *Store) Accept(ctx context.Context, findingID, reason string, until time.Time, by string) error {
	now := s.now()
	switch {
	case strings.TrimSpace(reason) == "":
		return fmt.Errorf("store: accept %s: a reason is required", findingID)
	case strings.TrimSpace(by) == "":
		return fmt.Errorf("store: accept %s: who accepts it is required", findingID)
	case !until.After(now):
		return fmt.Errorf("store: accept %s: until %s is not in the future", findingID, until.Format(time.RFC3339))
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var status LifeStatus
		if err := tx.QueryRowContext(ctx, "SELECT status FROM lifecycle WHERE finding_id = ?", findingID).Scan(&status); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO acceptances (finding_id, reason, until, accepted_by, accepted_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (finding_id) DO UPDATE SET reason = excluded.reason,
			until = excluded.until, accepted_by = excluded.accepted_by, accepted_at = excluded.accepted_at`,
			findingID, reason, fmtTime(until), by, fmtTime(now)); err != nil {
			return err
		}
		if status == StatusOpen {
			_, err := tx.ExecContext(ctx, "UPDATE lifecycle SET status = 'accepted' WHERE finding_id = ?", findingID)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: accept %s: %w", findingID, err)
	}
	return nil
}

// Lifecycle lists every finding that has ever failed or warned, by asset,
// check and rule.
func (s *Store) Lifecycle(ctx context.Context) ([]Life, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT l.finding_id, l.check_id, l.rule, l.asset_kind, l.asset_name,
		l.asset_org, l.asset_domain, l.status, l.first_seen_run, l.first_seen, l.last_seen_run, l.last_seen,
		l.resolved_run, l.resolved_at, l.regressions, l.last_run, l.last_outcome, l.last_severity,
		a.reason, a.until, a.accepted_by, a.accepted_at
		FROM lifecycle l LEFT JOIN acceptances a USING (finding_id)
		ORDER BY l.asset_kind, l.asset_name, l.check_id, l.rule`)
	if err != nil {
		return nil, fmt.Errorf("store: lifecycle: %w", err)
	}
	defer rows.Close()
	var out []Life
	for rows.Next() {
		var (
			l                        Life
			first, last              string
			resRun                   sql.NullInt64
			resAt, reason, until, by sql.NullString
			accAt                    sql.NullString
		)
		if err := rows.Scan(&l.FindingID, &l.CheckID, &l.Rule, &l.Asset.Kind, &l.Asset.Name, &l.Asset.Org,
			&l.Asset.Domain, &l.Status, &l.FirstSeenRun, &first, &l.LastSeenRun, &last, &resRun, &resAt,
			&l.Regressions, &l.LastRun, &l.LastOutcome, &l.LastSeverity, &reason, &until, &by, &accAt); err != nil {
			return nil, fmt.Errorf("store: lifecycle: %w", err)
		}
		l.ResolvedRun = resRun.Int64
		var errs [6]error
		l.FirstSeen, errs[0] = parseTime(first)
		l.LastSeen, errs[1] = parseTime(last)
		l.ResolvedAt, errs[2] = parseNullTime(resAt)
		if reason.Valid {
			l.Acceptance = &Acceptance{Reason: reason.String, By: by.String}
			l.Acceptance.Until, errs[3] = parseNullTime(until)
			l.Acceptance.At, errs[4] = parseNullTime(accAt)
		}
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("store: lifecycle: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: lifecycle: %w", err)
	}
	return out, nil
}

// ChangeKind classifies a finding in a run against the runs completed before
// it.
type ChangeKind string

const (
	ChangeNew       ChangeKind = "new"        // fails or warns for the first time
	ChangeRegressed ChangeKind = "regressed"  // fails or warns again after being resolved
	ChangeStillOpen ChangeKind = "still-open" // open before and still: failing, or unknown or not evaluated in this run
	ChangeResolved  ChangeKind = "resolved"   // was open and now passes (or no longer applies)
)

// Change is one finding id that matters to a run.
type Change struct {
	Kind ChangeKind
	ID   string // the stable finding id
	// Finding is the finding as evaluated in the run (its worst, if the
	// run has it twice). A still-open finding the run did not evaluate
	// has only CheckID, Rule, Asset and Severity (the last known), and an
	// empty Outcome.
	Finding      check.Finding
	FirstSeenRun int64
	FirstSeen    time.Time
	Regressions  int  // regressions up to and including this run
	Accepted     bool // a risk acceptance was in force when the run completed
}

// Changes classifies each finding id relevant to complete run runID against
// the state left by the runs completed before it: new, regressed, still-open
// (including open findings that were unknown or not evaluated in the run)
// and resolved. Ordered by kind, then asset, check and rule.
func (s *Store) Changes(ctx context.Context, runID int64) ([]Change, error) {
	run, err := s.Run(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
	}
	if run.Status != Complete {
		return nil, fmt.Errorf("store: changes of run %d: %w", runID, ErrRunIncomplete)
	}
	rows, err := s.r.QueryContext(ctx, `
		WITH ev AS (
			SELECT e.finding_id, e.kind, r.seq, e.run_id,
				ROW_NUMBER() OVER (PARTITION BY e.finding_id ORDER BY r.seq DESC) AS rn,
				SUM(e.kind = 'regressed') OVER (PARTITION BY e.finding_id) AS regressions
			FROM life_events e JOIN runs r ON r.id = e.run_id
			WHERE r.seq <= :seq
		), rel AS (
			SELECT finding_id, regressions,
				CASE WHEN seq = :seq THEN kind ELSE 'still-open' END AS change
			FROM ev WHERE rn = 1 AND (seq = :seq OR kind <> 'resolved')
		), firsts AS (
			SELECT e.finding_id, e.run_id, r.finished_at FROM life_events e JOIN runs r ON r.id = e.run_id
			WHERE e.kind = 'new'
		), cur AS (
			SELECT finding_id, outcome, severity, message, remediation, standards, reason, asset_source,
				MAX(`+outcomeRank+`) AS orank
			FROM findings WHERE run_id = :run AND finding_id IN (SELECT finding_id FROM rel)
			GROUP BY finding_id
		)
		SELECT rel.change, rel.finding_id, l.check_id, l.rule, l.asset_kind, l.asset_name, l.asset_org,
			l.asset_domain, COALESCE(c.asset_source, ''), COALESCE(c.outcome, ''),
			COALESCE(c.severity, l.last_severity), COALESCE(c.message, ''), COALESCE(c.remediation, ''),
			c.standards, COALESCE(c.reason, ''), COALESCE(f.run_id, 0), f.finished_at, rel.regressions,
			EXISTS (SELECT 1 FROM acceptances a WHERE a.finding_id = rel.finding_id AND a.until > :at)
		FROM rel JOIN lifecycle l USING (finding_id)
		LEFT JOIN cur c USING (finding_id)
		LEFT JOIN firsts f USING (finding_id)
		ORDER BY CASE rel.change WHEN 'new' THEN 0 WHEN 'regressed' THEN 1 WHEN 'still-open' THEN 2 ELSE 3 END,
			l.asset_kind, l.asset_name, l.check_id, l.rule`,
		sql.Named("seq", run.Seq), sql.Named("run", runID), sql.Named("at", fmtTime(run.FinishedAt)))
	if err != nil {
		return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var (
			c     Change
			std   sql.NullString
			first sql.NullString
		)
		f := &c.Finding
		if err := rows.Scan(&c.Kind, &c.ID, &f.CheckID, &f.Rule, &f.Asset.Kind, &f.Asset.Name, &f.Asset.Org,
			&f.Asset.Domain, &f.Asset.Source, &f.Outcome, &f.Severity, &f.Message, &f.Remediation, &std,
			&f.Reason, &c.FirstSeenRun, &first, &c.Regressions, &c.Accepted); err != nil {
			return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
		}
		if c.FirstSeen, err = parseNullTime(first); err != nil {
			return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
		}
		if err := decodeStandards(std, &f.Standards); err != nil {
			return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
	}
	return out, nil
}
