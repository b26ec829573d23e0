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
	// StatusPending: failing or warning, but not yet for Hold runs in a
	// row, and never announced (or resolved since): nobody is told yet.
	StatusPending  LifeStatus = "pending"
	StatusOpen     LifeStatus = "open"
	StatusResolved LifeStatus = "resolved"
	StatusAccepted LifeStatus = "accepted" // open, but a risk acceptance is in force
)

// DefaultHold is how many consecutive completed runs a change must hold
// before it is announced: a failure before it is new (or regressed), a
// pass before the finding is fixed. Two nights keep a host that fails once
// (a deploy, a flaky CDN) from emailing anyone.
const DefaultHold = 2

// SetHold sets the hold (at least 1) of the runs this store completes from
// now on, and makes RebuildLifecycle replay every run with it. Without it,
// runs complete with DefaultHold and a rebuild replays each run with the
// hold it was completed with. Call it before the store is used.
func (s *Store) SetHold(n int) error {
	if n < 1 {
		return fmt.Errorf("store: hold %d: want at least 1 run", n)
	}
	s.hold = n
	return nil
}

// Hold is the hold of the runs this store completes.
func (s *Store) Hold() int {
	if s.hold > 0 {
		return s.hold
	}
	return DefaultHold
}

// SetClock replaces the store's time source (run and acceptance times):
// tests, and histories replayed night by night. Call it before the store
// is used.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

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
	// FailStreak and PassStreak count the consecutive completed runs that
	// failed (or warned), or passed (or did not apply), up to LastRun.
	FailStreak, PassStreak int
	OpenedAt               time.Time   // when the current (or last) open spell began; zero if never open
	Acceptance             *Acceptance // the latest risk acceptance of it, in force or lapsed
}

// outcomeRank orders outcomes so that one SQL MAX picks the worst of
// duplicate findings: fail 5, warn 4, unknown 3, pass 2, n/a 1.
const outcomeRank = `CASE outcome WHEN 'fail' THEN 5 WHEN 'warn' THEN 4 WHEN 'unknown' THEN 3
	WHEN 'pass' THEN 2 ELSE 1 END`

// lifeRun is one completed run as the lifecycle sees it.
type lifeRun struct {
	id, seq int64
	at      string
	hold    int
}

// applyRun moves the lifecycle on by one completed run:
//
//   - the first completed run of the database is a baseline: its failures
//     and warnings are open at once, with a 'baseline' event (announced as
//     nothing: reports call them still-open);
//   - otherwise streaks move: fail/warn adds to the fail streak and ends
//     the pass streak, pass/n/a the other way round. Unknown (a timeout)
//     and not evaluated change neither streak: they never resolve a
//     failure, and never count toward or break a streak, so an outage
//     night neither fixes nor announces anything;
//   - a finding never announced (pending) or resolved whose fail streak
//     reaches the hold becomes open: 'new' or 'regressed'; an open or
//     accepted one whose pass streak reaches the hold is 'resolved'. A
//     host that flaps (fail, pass, fail, …) reaches neither, so it never
//     emails anyone;
//   - then acceptances in force at the run's completion mark open findings
//     accepted, and accepted findings none covers any more are re-opened
//     with a 'reopened' event (the organisation must be told).
//
// Events are recorded in life_events, from which Changes reads.
func applyRun(ctx context.Context, tx *sql.Tx, r lifeRun, accs []Acceptance) error {
	stmts := []string{
		`DROP TABLE IF EXISTS temp.cur`,
		// SQLite takes the bare columns from the row that gives MAX: the
		// worst outcome when a finding id appears twice in a run.
		`CREATE TEMP TABLE cur AS SELECT finding_id, check_id, rule, asset_key, asset_kind, asset_name,
			asset_org, asset_domain, outcome, severity, MAX(` + outcomeRank + `) AS orank
			FROM findings WHERE run_id = :run GROUP BY finding_id`,
		`CREATE UNIQUE INDEX temp.cur_id ON cur (finding_id)`,
	}
	// insert adds the run's failures that have no lifecycle yet, with
	// status and opened_at (an SQL expression).
	insert := func(status, opened string) string {
		return `INSERT INTO lifecycle (finding_id, check_id, rule, asset_key, asset_kind, asset_name, asset_org,
			asset_domain, status, first_seen_run, first_seen, last_seen_run, last_seen, last_run, last_outcome,
			last_severity, fail_streak, pass_streak, fail_since, opened_at)
			SELECT c.finding_id, c.check_id, c.rule, c.asset_key, c.asset_kind, c.asset_name, c.asset_org,
			c.asset_domain, '` + status + `', :run, :at, :run, :at, :run, c.outcome, c.severity, 1, 0, :at, ` + opened + `
			FROM cur c WHERE c.orank >= 4 AND NOT EXISTS (SELECT 1 FROM lifecycle l WHERE l.finding_id = c.finding_id)`
	}
	if r.seq == 1 {
		stmts = append(stmts,
			`INSERT INTO life_events (run_id, finding_id, kind, since) SELECT :run, c.finding_id, 'baseline', :at
				FROM cur c WHERE c.orank >= 4`,
			insert("open", ":at"))
	} else {
		stmts = append(stmts,
			`UPDATE lifecycle SET fail_streak = fail_streak + 1, pass_streak = 0,
				fail_since = CASE WHEN fail_streak = 0 OR fail_since IS NULL THEN :at ELSE fail_since END
				FROM cur c WHERE c.finding_id = lifecycle.finding_id AND c.orank >= 4`,
			`UPDATE lifecycle SET pass_streak = pass_streak + 1, fail_streak = 0, fail_since = NULL
				FROM cur c WHERE c.finding_id = lifecycle.finding_id AND c.orank <= 2`,
			insert("pending", "NULL"),

			`INSERT INTO life_events (run_id, finding_id, kind, since)
				SELECT :run, finding_id, CASE status WHEN 'pending' THEN 'new' ELSE 'regressed' END, fail_since
				FROM lifecycle WHERE status IN ('pending', 'resolved') AND fail_streak >= :hold`,
			`UPDATE lifecycle SET regressions = regressions + (status = 'resolved'), status = 'open',
				opened_at = fail_since, resolved_run = NULL, resolved_at = NULL
				WHERE status IN ('pending', 'resolved') AND fail_streak >= :hold`,
			`INSERT INTO life_events (run_id, finding_id, kind) SELECT :run, finding_id, 'resolved'
				FROM lifecycle WHERE status IN ('open', 'accepted') AND pass_streak >= :hold`,
			`UPDATE lifecycle SET status = 'resolved', resolved_run = :run, resolved_at = :at
				WHERE status IN ('open', 'accepted') AND pass_streak >= :hold`,
		)
	}
	stmts = append(stmts,
		`UPDATE lifecycle SET last_run = :run, last_outcome = c.outcome, last_severity = c.severity,
			asset_org = c.asset_org, asset_domain = c.asset_domain,
			last_seen_run = CASE WHEN c.orank >= 4 THEN :run ELSE last_seen_run END,
			last_seen = CASE WHEN c.orank >= 4 THEN :at ELSE last_seen END
			FROM cur c WHERE c.finding_id = lifecycle.finding_id`,
		`DROP TABLE temp.cur`,
	)
	args := []any{sql.Named("run", r.id), sql.Named("at", r.at), sql.Named("hold", r.hold)}
	for _, q := range stmts {
		var a []any
		if strings.Contains(q, ":") {
			a = args
		}
		if _, err := tx.ExecContext(ctx, q, a...); err != nil {
			return fmt.Errorf("lifecycle of run %d: %w", r.id, err)
		}
	}
	at, err := parseTime(r.at)
	if err != nil {
		return fmt.Errorf("lifecycle of run %d: %w", r.id, err)
	}
	if err := applyAcceptances(ctx, tx, r.id, accs, func(a Acceptance) bool { return a.InForce(at) }); err != nil {
		return fmt.Errorf("lifecycle of run %d: acceptances: %w", r.id, err)
	}
	return nil
}

// applyAcceptances marks the open findings an acceptance covers accepted;
// with runID, accepted findings none covers are re-opened with a
// 'reopened' event. inForce says which acceptances count.
func applyAcceptances(ctx context.Context, tx *sql.Tx, runID int64, accs []Acceptance, inForce func(Acceptance) bool) error {
	var live []Acceptance
	for _, a := range accs {
		if inForce(a) {
			live = append(live, a)
		}
	}
	statuses := "'open', 'accepted'"
	if runID == 0 {
		statuses = "'open'"
	}
	if len(live) == 0 && runID == 0 {
		return nil
	}
	lives, err := lifeKeys(ctx, tx, statuses)
	if err != nil {
		return err
	}
	var accept, reopen []string
	for _, l := range lives {
		covered := covering(live, l.id, l.check, l.asset, nil) != nil
		switch {
		case covered && l.status == StatusOpen:
			accept = append(accept, l.id)
		case !covered && l.status == StatusAccepted:
			reopen = append(reopen, l.id)
		}
	}
	if err := setStatus(ctx, tx, accept, StatusAccepted); err != nil {
		return err
	}
	if runID == 0 || len(reopen) == 0 {
		return nil
	}
	if err := setStatus(ctx, tx, reopen, StatusOpen); err != nil {
		return err
	}
	st, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO life_events (run_id, finding_id, kind) VALUES (?, ?, 'reopened')")
	if err != nil {
		return err
	}
	defer st.Close()
	for _, id := range reopen {
		if _, err := st.ExecContext(ctx, runID, id); err != nil {
			return err
		}
	}
	return nil
}

// completedRuns lists the complete runs with seq >= from, in completion
// order, each with its hold (override > 0 replaces it).
func completedRuns(ctx context.Context, tx *sql.Tx, from int64, override int) ([]lifeRun, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, seq, finished_at, COALESCE(hold, 1) FROM runs
		WHERE seq >= ? ORDER BY seq`, from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []lifeRun
	for rows.Next() {
		var r lifeRun
		if err := rows.Scan(&r.id, &r.seq, &r.at, &r.hold); err != nil {
			return nil, err
		}
		if override > 0 {
			r.hold = override
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RebuildLifecycle recomputes the lifecycle from the stored findings of all
// complete runs, in completion order, each with the hold it was completed
// with (or the one SetHold gave, which is then recorded on every run), and
// the risk acceptances as they were recorded. Call it after ReplaceFindings
// on a complete run (`posture reeval`); the result is what completing
// those runs with those findings would have given, acceptances recorded
// since the newest run included.
func (s *Store) RebuildLifecycle(ctx context.Context) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM life_events; DELETE FROM lifecycle;"); err != nil {
			return err
		}
		if s.hold > 0 {
			if _, err := tx.ExecContext(ctx, "UPDATE runs SET hold = ? WHERE seq IS NOT NULL", s.hold); err != nil {
				return err
			}
		}
		runs, err := completedRuns(ctx, tx, 1, s.hold)
		if err != nil {
			return err
		}
		accs, err := loadAcceptances(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range runs {
			if err := applyRun(ctx, tx, r, accs); err != nil {
				return err
			}
		}
		if len(runs) == 0 {
			return nil
		}
		// Acceptances recorded after the newest run took effect when they
		// were recorded (Accept, AcceptPattern): replay that.
		last, err := parseTime(runs[len(runs)-1].at)
		if err != nil {
			return err
		}
		return applyAcceptances(ctx, tx, 0, accs, func(a Acceptance) bool { return a.At.After(last) })
	})
	if err != nil {
		return fmt.Errorf("store: rebuild lifecycle: %w", err)
	}
	return nil
}

// Lifecycle lists every finding that has ever failed or warned, by asset,
// check and rule.
func (s *Store) Lifecycle(ctx context.Context) ([]Life, error) {
	accs, err := loadAcceptances(ctx, s.r)
	if err != nil {
		return nil, fmt.Errorf("store: lifecycle: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT finding_id, check_id, rule, asset_kind, asset_name,
		asset_org, asset_domain, status, first_seen_run, first_seen, last_seen_run, last_seen,
		resolved_run, resolved_at, regressions, last_run, last_outcome, last_severity,
		fail_streak, pass_streak, opened_at
		FROM lifecycle ORDER BY asset_kind, asset_name, check_id, rule`)
	if err != nil {
		return nil, fmt.Errorf("store: lifecycle: %w", err)
	}
	defer rows.Close()
	var out []Life
	for rows.Next() {
		var (
			l            Life
			first, last  string
			resRun       sql.NullInt64
			resAt, opend sql.NullString
		)
		if err := rows.Scan(&l.FindingID, &l.CheckID, &l.Rule, &l.Asset.Kind, &l.Asset.Name, &l.Asset.Org,
			&l.Asset.Domain, &l.Status, &l.FirstSeenRun, &first, &l.LastSeenRun, &last, &resRun, &resAt,
			&l.Regressions, &l.LastRun, &l.LastOutcome, &l.LastSeverity, &l.FailStreak, &l.PassStreak, &opend); err != nil {
			return nil, fmt.Errorf("store: lifecycle: %w", err)
		}
		l.ResolvedRun = resRun.Int64
		var errs [4]error
		l.FirstSeen, errs[0] = parseTime(first)
		l.LastSeen, errs[1] = parseTime(last)
		l.ResolvedAt, errs[2] = parseNullTime(resAt)
		l.OpenedAt, errs[3] = parseNullTime(opend)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("store: lifecycle: %w", err)
		}
		l.Acceptance = covering(accs, l.FindingID, l.CheckID, l.Asset.Name, nil)
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
	ChangeNew       ChangeKind = "new"       // held failing (or warning) for the first time
	ChangeRegressed ChangeKind = "regressed" // held failing again after being resolved
	// ChangeStillOpen: open before and still (failing, or unknown, not
	// evaluated, or passing for fewer runs than the hold), or open in the
	// baseline run.
	ChangeStillOpen ChangeKind = "still-open"
	ChangeResolved  ChangeKind = "resolved" // was open and has held passing (or not applying)
	ChangeReopened  ChangeKind = "reopened" // open, and the risk acceptance that covered it lapsed or was revoked
)

// Change is one finding id that matters to a run. Findings that fail but
// are pending (not yet held) have none.
type Change struct {
	Kind ChangeKind
	ID   string // the stable finding id
	// Finding is the finding as evaluated in the run (its worst, if the
	// run has it twice). A still-open finding the run did not evaluate
	// has only CheckID, Rule, Asset and Severity (the last known), and an
	// empty Outcome.
	Finding      check.Finding
	FirstSeenRun int64
	FirstSeen    time.Time // when it first failed or warned
	LastSeen     time.Time // the last time it failed or warned (as of now, not of the run)
	// OpenedAt is when the open spell the run is in (or, for resolved, the
	// one it ended) began: the first failure of the streak that opened it.
	OpenedAt    time.Time
	Regressions int // regressions up to and including this run
	// Accepted: a risk acceptance covers it in this run (see
	// AcceptancesFor); Acceptance is that acceptance, or for a re-opened
	// finding the one that lapsed.
	Accepted   bool
	Acceptance *Acceptance
}

// DaysOpen is how many whole days the finding had been open when the run
// completed (for resolved: how long it was open until it was fixed).
func (c Change) DaysOpen(runFinished time.Time) int {
	if c.OpenedAt.IsZero() || runFinished.Before(c.OpenedAt) {
		return 0
	}
	return int(runFinished.Sub(c.OpenedAt) / (24 * time.Hour))
}

// Changes classifies each finding id relevant to complete run runID against
// the state left by the runs completed before it: new, regressed, reopened,
// still-open (including open findings that were unknown or not evaluated in
// the run, and the baseline run's failures) and resolved. Ordered by kind,
// then asset, check and rule.
func (s *Store) Changes(ctx context.Context, runID int64) ([]Change, error) {
	run, err := s.Run(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
	}
	if run.Status != Complete {
		return nil, fmt.Errorf("store: changes of run %d: %w", runID, ErrRunIncomplete)
	}
	af, err := s.AcceptancesFor(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
	}
	rows, err := s.r.QueryContext(ctx, `
		WITH ev AS (
			SELECT e.finding_id, e.kind, r.seq, e.run_id,
				ROW_NUMBER() OVER (PARTITION BY e.finding_id ORDER BY r.seq DESC) AS rn,
				SUM(e.kind = 'regressed') OVER (PARTITION BY e.finding_id) AS regressions,
				MAX(CASE WHEN e.kind IN ('baseline', 'new', 'regressed') THEN e.since END)
					OVER (PARTITION BY e.finding_id) AS opened
			FROM life_events e JOIN runs r ON r.id = e.run_id
			WHERE r.seq <= :seq
		), rel AS (
			SELECT finding_id, regressions, opened,
				CASE WHEN seq = :seq AND kind <> 'baseline' THEN kind ELSE 'still-open' END AS change
			FROM ev WHERE rn = 1 AND (seq = :seq OR kind <> 'resolved')
		), cur AS (
			SELECT finding_id, outcome, severity, message, remediation, standards, reason, asset_source,
				MAX(`+outcomeRank+`) AS orank
			FROM findings WHERE run_id = :run AND finding_id IN (SELECT finding_id FROM rel)
			GROUP BY finding_id
		)
		SELECT rel.change, rel.finding_id, l.check_id, l.rule, l.asset_kind, l.asset_name, l.asset_org,
			l.asset_domain, COALESCE(c.asset_source, ''), COALESCE(c.outcome, ''),
			COALESCE(c.severity, l.last_severity), COALESCE(c.message, ''), COALESCE(c.remediation, ''),
			c.standards, COALESCE(c.reason, ''), l.first_seen_run, l.first_seen, l.last_seen, rel.opened,
			rel.regressions
		FROM rel JOIN lifecycle l USING (finding_id)
		LEFT JOIN cur c USING (finding_id)
		ORDER BY CASE rel.change WHEN 'new' THEN 0 WHEN 'regressed' THEN 1 WHEN 'reopened' THEN 2
			WHEN 'still-open' THEN 3 ELSE 4 END,
			l.asset_kind, l.asset_name, l.check_id, l.rule`,
		sql.Named("seq", run.Seq), sql.Named("run", runID))
	if err != nil {
		return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var (
			c                   Change
			std, opened         sql.NullString
			first, last         string
			errF, errL, errO    error
			errStd              error
			findingID, assetNme string
		)
		f := &c.Finding
		if err := rows.Scan(&c.Kind, &c.ID, &f.CheckID, &f.Rule, &f.Asset.Kind, &f.Asset.Name, &f.Asset.Org,
			&f.Asset.Domain, &f.Asset.Source, &f.Outcome, &f.Severity, &f.Message, &f.Remediation, &std,
			&f.Reason, &c.FirstSeenRun, &first, &last, &opened, &c.Regressions); err != nil {
			return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
		}
		c.FirstSeen, errF = parseTime(first)
		c.LastSeen, errL = parseTime(last)
		c.OpenedAt, errO = parseNullTime(opened)
		errStd = decodeStandards(std, &f.Standards)
		if err := errors.Join(errF, errL, errO, errStd); err != nil {
			return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
		}
		findingID, assetNme = c.ID, f.Asset.Name
		if c.Acceptance = af.Covering(findingID, f.CheckID, assetNme); c.Acceptance != nil {
			c.Accepted = true
		} else if c.Kind == ChangeReopened {
			c.Acceptance = af.Latest(findingID, f.CheckID, assetNme)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: changes of run %d: %w", runID, err)
	}
	return out, nil
}
