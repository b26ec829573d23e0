package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// Read queries for the dashboard (reports/dashboard): one finding's history
// and evidence, and a search of a run's assets. They use the read pool only
// and are bounded by their callers' limits.

// HistoryEntry is one finding id as one run evaluated it (its worst, when
// the run has it twice).
type HistoryEntry struct {
	RunID      int64
	RunStatus  RunStatus
	RunStarted time.Time
	Finding    check.Finding
	// Event is what completing the run did to the finding's lifecycle:
	// baseline, new, regressed, resolved or reopened; "" for nothing.
	Event string
}

// FindingHistory returns the runs that evaluated finding id, newest first:
// at most limit entries after skipping offset, and how many there are in
// all. No entry at all is ErrNotFound.
func (s *Store) FindingHistory(ctx context.Context, id string, limit, offset int) ([]HistoryEntry, int, error) {
	wrap := func(err error) error { return fmt.Errorf("store: history of finding %s: %w", id, err) }
	limit, offset = max(limit, 1), max(offset, 0)
	// The runs are few (one a night) and findings are indexed by (run_id,
	// finding_id): walking the runs and seeking each keeps a lookup by
	// finding id off a scan of every finding ever stored. CROSS JOIN fixes
	// that order.
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(DISTINCT r.id) FROM runs r CROSS JOIN findings f
		ON f.run_id = r.id AND f.finding_id = ?`, id).Scan(&total); err != nil {
		return nil, 0, wrap(err)
	}
	if total == 0 {
		return nil, 0, wrap(ErrNotFound)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT r.id, r.status, r.started_at, f.check_id, f.rule, f.asset_kind,
		f.asset_name, f.asset_org, f.asset_domain, f.asset_source, f.outcome, f.severity, f.message,
		f.remediation, f.standards, f.reason, MAX(`+outcomeRank+`),
		COALESCE((SELECT e.kind FROM life_events e WHERE e.run_id = r.id AND e.finding_id = f.finding_id), '')
		FROM runs r CROSS JOIN findings f ON f.run_id = r.id AND f.finding_id = ?
		GROUP BY r.id ORDER BY r.id DESC LIMIT ? OFFSET ?`, id, limit, offset)
	if err != nil {
		return nil, 0, wrap(err)
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var (
			e       HistoryEntry
			started string
			std     sql.NullString
			rank    int
		)
		f, a := &e.Finding, &e.Finding.Asset
		if err := rows.Scan(&e.RunID, &e.RunStatus, &started, &f.CheckID, &f.Rule, &a.Kind, &a.Name, &a.Org,
			&a.Domain, &a.Source, &f.Outcome, &f.Severity, &f.Message, &f.Remediation, &std, &f.Reason, &rank,
			&e.Event); err != nil {
			return nil, 0, wrap(err)
		}
		if e.RunStarted, err = parseTime(started); err != nil {
			return nil, 0, wrap(err)
		}
		if err := decodeStandards(std, &f.Standards); err != nil {
			return nil, 0, wrap(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, wrap(err)
	}
	return out, total, nil
}

// LifeOf returns the lifecycle of one finding id (as Lifecycle gives it,
// with the latest acceptance that covers it, pattern or single), or
// ErrNotFound if it has never failed or warned in a completed run.
func (s *Store) LifeOf(ctx context.Context, id string) (Life, error) {
	wrap := func(err error) error { return fmt.Errorf("store: lifecycle of finding %s: %w", id, err) }
	var (
		l            Life
		first, last  string
		resRun       sql.NullInt64
		resAt, opend sql.NullString
	)
	err := s.r.QueryRowContext(ctx, `SELECT finding_id, check_id, rule, asset_kind, asset_name,
		asset_org, asset_domain, status, first_seen_run, first_seen, last_seen_run, last_seen,
		resolved_run, resolved_at, regressions, last_run, last_outcome, last_severity,
		fail_streak, pass_streak, opened_at FROM lifecycle WHERE finding_id = ?`, id).Scan(
		&l.FindingID, &l.CheckID, &l.Rule, &l.Asset.Kind, &l.Asset.Name, &l.Asset.Org, &l.Asset.Domain, &l.Status,
		&l.FirstSeenRun, &first, &l.LastSeenRun, &last, &resRun, &resAt, &l.Regressions, &l.LastRun,
		&l.LastOutcome, &l.LastSeverity, &l.FailStreak, &l.PassStreak, &opend)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Life{}, wrap(err)
	}
	l.ResolvedRun = resRun.Int64
	var errs [4]error
	l.FirstSeen, errs[0] = parseTime(first)
	l.LastSeen, errs[1] = parseTime(last)
	l.ResolvedAt, errs[2] = parseNullTime(resAt)
	l.OpenedAt, errs[3] = parseNullTime(opend)
	if err := errors.Join(errs[:]...); err != nil {
		return Life{}, wrap(err)
	}
	accs, err := loadAcceptances(ctx, s.r)
	if err != nil {
		return Life{}, wrap(err)
	}
	l.Acceptance = covering(accs, l.FindingID, l.CheckID, l.Asset.Name, nil)
	return l, nil
}

// StoredEvidence is one job's evidence as stored, with what the store did
// to it: Truncated evidence holds a marker {"truncated":true,"bytes":N,
// "head":"…"} in place of data of Bytes bytes.
type StoredEvidence struct {
	check.Evidence
	Bytes     int
	Truncated bool
}

// EvidenceFor returns the evidence that finding id was evaluated from in a
// run, or ErrNotFound.
func (s *Store) EvidenceFor(ctx context.Context, id string, runID int64) (StoredEvidence, error) {
	var (
		ev   StoredEvidence
		at   string
		data []byte
	)
	a := &ev.Asset
	err := s.r.QueryRowContext(ctx, `SELECT e.check_id, e.asset_kind, e.asset_name, e.asset_org, e.asset_domain,
		e.asset_source, e.collected_at, e.data, e.data_bytes, e.truncated, e.error, e.error_class, e.version
		FROM findings f JOIN evidence e ON e.id = f.evidence_id
		WHERE f.run_id = ? AND f.finding_id = ? ORDER BY f.id LIMIT 1`, runID, id).Scan(
		&ev.CheckID, &a.Kind, &a.Name, &a.Org, &a.Domain, &a.Source, &at, &data, &ev.Bytes, &ev.Truncated,
		&ev.Error, &ev.ErrorClass, &ev.Version)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return StoredEvidence{}, fmt.Errorf("store: evidence of finding %s in run %d: %w", id, runID, err)
	}
	if ev.CollectedAt, err = parseTime(at); err != nil {
		return StoredEvidence{}, fmt.Errorf("store: evidence of finding %s in run %d: %w", id, runID, err)
	}
	if len(data) > 0 {
		ev.Data = json.RawMessage(data)
	}
	return ev, nil
}

// AssetHit is an asset that a search matched, with its findings in the run
// (worst first).
type AssetHit struct {
	Asset    check.Asset
	Findings []Finding
}

// SearchAssets finds the assets of a run whose name contains q (case
// folded; an exact match first, then names that start with q, then the
// rest by name): at most limit after skipping offset, with their findings,
// and how many assets match in all.
func (s *Store) SearchAssets(ctx context.Context, runID int64, q string, limit, offset int) ([]AssetHit, int, error) {
	wrap := func(err error) error { return fmt.Errorf("store: search %q in run %d: %w", q, runID, err) }
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" {
		return nil, 0, nil
	}
	limit, offset = max(limit, 1), max(offset, 0)
	like := "%" + escapeLike(q) + "%"
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM assets WHERE run_id = ? AND lower(name) LIKE ? ESCAPE '\'`,
		runID, like).Scan(&total); err != nil {
		return nil, 0, wrap(err)
	}
	if total == 0 {
		return nil, 0, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT kind, name, org, domain, source FROM assets
		WHERE run_id = ? AND lower(name) LIKE ? ESCAPE '\'
		ORDER BY lower(name) = ? DESC, lower(name) LIKE ? ESCAPE '\' DESC, name, kind LIMIT ? OFFSET ?`,
		runID, like, q, escapeLike(q)+"%", limit, offset)
	if err != nil {
		return nil, 0, wrap(err)
	}
	var hits []AssetHit
	index := map[string]int{}
	for rows.Next() {
		var a check.Asset
		if err := rows.Scan(&a.Kind, &a.Name, &a.Org, &a.Domain, &a.Source); err != nil {
			rows.Close()
			return nil, 0, wrap(err)
		}
		index[a.Key()] = len(hits)
		hits = append(hits, AssetHit{Asset: a})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, wrap(err)
	}
	if len(hits) == 0 {
		return nil, total, nil
	}
	keys := make([]any, 0, len(hits)+1)
	keys = append(keys, sql.Named("run", runID))
	for _, h := range hits {
		keys = append(keys, h.Asset.Key())
	}
	// Seeks in the evidence's (run_id, check_id, asset_key) index: the
	// run's collector ids, each found by a seek past the last (a skip
	// scan), times the assets; then each job's findings by evidence id.
	// Reading the run's findings instead costs a run's worth of rows.
	rows, err = s.r.QueryContext(ctx, `WITH RECURSIVE cid(id) AS (
			SELECT (SELECT MIN(check_id) FROM evidence WHERE run_id = :run)
			UNION ALL
			SELECT (SELECT MIN(check_id) FROM evidence WHERE run_id = :run AND check_id > cid.id)
			FROM cid WHERE cid.id IS NOT NULL)
		SELECT f.finding_id, f.check_id, f.rule, f.asset_kind, f.asset_name, f.asset_org, f.asset_domain,
			f.asset_source, f.outcome, f.severity, f.message, f.reason, f.asset_key
		FROM cid CROSS JOIN evidence e ON e.run_id = :run AND e.check_id = cid.id
			AND e.asset_key IN (?`+strings.Repeat(", ?", len(hits)-1)+`)
		JOIN findings f ON f.evidence_id = e.id
		ORDER BY CASE f.outcome WHEN 'fail' THEN 5 WHEN 'warn' THEN 4 WHEN 'unknown' THEN 3 WHEN 'pass' THEN 2 ELSE 1 END DESC,
		CASE f.severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END DESC,
		f.check_id, f.rule`, keys...)
	if err != nil {
		return nil, 0, wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		f := Finding{RunID: runID}
		var key string
		a := &f.Asset
		if err := rows.Scan(&f.ID, &f.CheckID, &f.Rule, &a.Kind, &a.Name, &a.Org, &a.Domain, &a.Source,
			&f.Outcome, &f.Severity, &f.Message, &f.Reason, &key); err != nil {
			return nil, 0, wrap(err)
		}
		if i, ok := index[key]; ok {
			hits[i].Findings = append(hits[i].Findings, f)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, wrap(err)
	}
	return hits, total, nil
}

// AcceptanceStamp changes whenever a risk acceptance is recorded or
// revoked: with the newest complete run, it tells a cached summary that it
// is stale.
func (s *Store) AcceptanceStamp(ctx context.Context) (string, error) {
	var n, revoked int
	var at, rev sql.NullString
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), MAX(accepted_at), COUNT(revoked_at), MAX(revoked_at)
		FROM risk_acceptances`).Scan(&n, &at, &revoked, &rev); err != nil {
		return "", fmt.Errorf("store: acceptance stamp: %w", err)
	}
	return fmt.Sprintf("%d/%s/%d/%s", n, at.String, revoked, rev.String), nil
}

// escapeLike escapes LIKE's wildcards (with ESCAPE '\').
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
