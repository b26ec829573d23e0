package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Acceptance is a risk acceptance: of one finding (FindingID), or of every
// finding of a check pattern on an asset pattern (see MatchCheck and
// MatchAsset). It is in force from At until Until, unless revoked.
type Acceptance struct {
	ID           int64
	FindingID    string // one finding, or "" for a pattern
	CheckPattern string // a check id, or a glob (web.hdr.*)
	AssetPattern string // an asset name, *.zone (any name below zone) or * (any asset)
	Reason       string
	Until        time.Time
	By           string
	At           time.Time // when it was recorded
	RevokedAt    time.Time // zero unless revoked
	RevokedBy    string
}

// InForce reports whether the acceptance applies at time t: recorded by
// then, not yet expired and not revoked by then.
func (a Acceptance) InForce(t time.Time) bool {
	return !a.At.After(t) && t.Before(a.Until) && (a.RevokedAt.IsZero() || t.Before(a.RevokedAt))
}

// Matches reports whether the acceptance is about this finding.
func (a Acceptance) Matches(findingID, checkID, assetName string) bool {
	if a.FindingID != "" {
		return a.FindingID == findingID
	}
	return MatchCheck(a.CheckPattern, checkID) && MatchAsset(a.AssetPattern, assetName)
}

// IsPattern reports whether the acceptance is a check-and-asset pattern.
func (a Acceptance) IsPattern() bool { return a.FindingID == "" }

// MatchCheck matches a check id against a pattern: an exact id or a glob
// (* and ?), case-insensitive.
func MatchCheck(pattern, id string) bool {
	ok, err := path.Match(strings.ToLower(pattern), strings.ToLower(id))
	return ok && err == nil
}

// MatchAsset matches an asset name against a pattern, case-insensitive:
// "*" matches any asset, "*.zone" any name below zone (not zone itself),
// anything else only that name.
func MatchAsset(pattern, name string) bool {
	p := strings.ToLower(strings.TrimSuffix(pattern, "."))
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	switch {
	case p == "*":
		return true
	case strings.HasPrefix(p, "*."):
		return len(n) > len(p)-1 && strings.HasSuffix(n, p[1:])
	}
	return n == p
}

// ValidateCheckPattern accepts a check id or a glob of one: lower-case
// letters, digits, '.', '-', '_', and the wildcards * and ?.
func ValidateCheckPattern(p string) error {
	if p == "" {
		return errors.New("the check pattern is empty")
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_*?", r)) {
			return fmt.Errorf("check pattern %q: %q is not allowed (a check id, with * and ? as wildcards)", p, r)
		}
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("check pattern %q: %w", p, err)
	}
	return nil
}

// ValidateAssetPattern accepts "*", "*.zone" or a name (DNS names, or
// owner/name for repositories): no other wildcard.
func ValidateAssetPattern(p string) error {
	if p == "*" {
		return nil
	}
	name := strings.TrimPrefix(p, "*.")
	if name == "" {
		return fmt.Errorf("asset pattern %q: want *, *.zone or a name", p)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_/", r)) {
			return fmt.Errorf("asset pattern %q: %q is not allowed (want *, *.zone or a name)", p, r)
		}
	}
	if strings.HasPrefix(name, ".") || strings.Contains(name, "..") {
		return fmt.Errorf("asset pattern %q: empty label", p)
	}
	return nil
}

func validAcceptance(what, reason, by string, until, now time.Time) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return fmt.Errorf("store: accept %s: a reason is required", what)
	case strings.TrimSpace(by) == "":
		return fmt.Errorf("store: accept %s: who accepts it is required", what)
	case !until.After(now):
		return fmt.Errorf("store: accept %s: until %s is not in the future", what, until.Format(time.RFC3339))
	}
	return nil
}

// Accept records a risk acceptance of one finding until the given time and
// returns its id. An open finding shows as accepted at once; a finding that
// fails or warns while the acceptance is in force stays accepted; after
// until (or a revocation), the next completed run re-opens it with a
// 'reopened' event. The finding must have a lifecycle (it has failed or
// warned in a completed run).
func (s *Store) Accept(ctx context.Context, findingID, reason string, until time.Time, by string) error {
	_, err := s.AcceptFinding(ctx, findingID, reason, until, by)
	return err
}

// AcceptFinding is Accept, returning the acceptance's id.
func (s *Store) AcceptFinding(ctx context.Context, findingID, reason string, until time.Time, by string) (int64, error) {
	now := s.now()
	if err := validAcceptance(findingID, reason, by, until, now); err != nil {
		return 0, err
	}
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var status LifeStatus
		if err := tx.QueryRowContext(ctx, "SELECT status FROM lifecycle WHERE finding_id = ?", findingID).Scan(&status); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO risk_acceptances (finding_id, reason, until, accepted_by,
			accepted_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			findingID, reason, fmtTime(until), by, fmtTime(now)).Scan(&id); err != nil {
			return err
		}
		if status == StatusOpen {
			_, err := tx.ExecContext(ctx, "UPDATE lifecycle SET status = 'accepted' WHERE finding_id = ?", findingID)
			return err
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: accept %s: %w", findingID, err)
	}
	return id, nil
}

// AcceptPattern records a risk acceptance of every finding of the checks
// matching checkPattern on the assets matching assetPattern (see MatchCheck,
// MatchAsset), including findings that first fail later, and returns its
// id. Open findings it matches show as accepted at once. It returns how
// many findings with a lifecycle it matches now (0 is allowed: an
// acceptance may anticipate).
func (s *Store) AcceptPattern(ctx context.Context, checkPattern, assetPattern, reason string, until time.Time, by string) (id int64, matched int, err error) {
	now := s.now()
	what := checkPattern + " on " + assetPattern
	if err := errors.Join(ValidateCheckPattern(checkPattern), ValidateAssetPattern(assetPattern)); err != nil {
		return 0, 0, fmt.Errorf("store: accept %s: %w", what, err)
	}
	if err := validAcceptance(what, reason, by, until, now); err != nil {
		return 0, 0, err
	}
	a := Acceptance{CheckPattern: checkPattern, AssetPattern: assetPattern}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO risk_acceptances (check_pattern, asset_pattern, reason, until,
			accepted_by, accepted_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			checkPattern, assetPattern, reason, fmtTime(until), by, fmtTime(now)).Scan(&id); err != nil {
			return err
		}
		lives, err := lifeKeys(ctx, tx, "")
		if err != nil {
			return err
		}
		var open []string
		for _, l := range lives {
			if a.Matches(l.id, l.check, l.asset) {
				matched++
				if l.status == StatusOpen {
					open = append(open, l.id)
				}
			}
		}
		return setStatus(ctx, tx, open, StatusAccepted)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: accept %s: %w", what, err)
	}
	return id, matched, nil
}

// Revoke ends an acceptance now. Its findings stay accepted until the next
// completed run, which re-opens them (a 'reopened' event: the organisation
// is told) unless another acceptance covers them.
func (s *Store) Revoke(ctx context.Context, id int64, by string) error {
	now := s.now()
	err := s.write(ctx, func(tx *sql.Tx) error {
		var revoked sql.NullString
		if err := tx.QueryRowContext(ctx, "SELECT revoked_at FROM risk_acceptances WHERE id = ?", id).Scan(&revoked); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if revoked.Valid {
			return fmt.Errorf("acceptance %d was already revoked at %s", id, revoked.String)
		}
		_, err := tx.ExecContext(ctx, "UPDATE risk_acceptances SET revoked_at = ?, revoked_by = ? WHERE id = ?",
			fmtTime(now), by, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: revoke acceptance %d: %w", id, err)
	}
	return nil
}

// Acceptances lists every risk acceptance ever recorded, in force or not,
// oldest first.
func (s *Store) Acceptances(ctx context.Context) ([]Acceptance, error) {
	as, err := loadAcceptances(ctx, s.r)
	if err != nil {
		return nil, fmt.Errorf("store: acceptances: %w", err)
	}
	return as, nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func loadAcceptances(ctx context.Context, q querier) ([]Acceptance, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, COALESCE(finding_id, ''), COALESCE(check_pattern, ''),
		COALESCE(asset_pattern, ''), reason, until, accepted_by, accepted_at, revoked_at, COALESCE(revoked_by, '')
		FROM risk_acceptances ORDER BY accepted_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Acceptance
	for rows.Next() {
		var (
			a                 Acceptance
			until, at         string
			revoked           sql.NullString
			errU, errA, errRv error
		)
		if err := rows.Scan(&a.ID, &a.FindingID, &a.CheckPattern, &a.AssetPattern, &a.Reason, &until, &a.By, &at,
			&revoked, &a.RevokedBy); err != nil {
			return nil, err
		}
		a.Until, errU = parseTime(until)
		a.At, errA = parseTime(at)
		a.RevokedAt, errRv = parseNullTime(revoked)
		if err := errors.Join(errU, errA, errRv); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// covering returns the last acceptance (by when it was recorded) that
// matches the finding and satisfies ok, or nil.
func covering(as []Acceptance, findingID, checkID, assetName string, ok func(Acceptance) bool) *Acceptance {
	for i := len(as) - 1; i >= 0; i-- {
		if (ok == nil || ok(as[i])) && as[i].Matches(findingID, checkID, assetName) {
			a := as[i]
			return &a
		}
	}
	return nil
}

// AcceptanceFor is how a report of run R sees acceptances: the one that
// covers a finding in R, if any. An acceptance covers R if it was in
// force when R completed, or was recorded after R but before the next
// completed run (next; zero if none) and is still in force at R's
// completion time otherwise: recording an acceptance shows at once.
type AcceptanceFor struct {
	all       []Acceptance
	at, next  time.Time
	applyable []Acceptance
}

// AcceptancesFor returns the acceptances as they apply to complete run
// runID.
func (s *Store) AcceptancesFor(ctx context.Context, runID int64) (*AcceptanceFor, error) {
	run, err := s.Run(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("store: acceptances of run %d: %w", runID, err)
	}
	all, err := loadAcceptances(ctx, s.r)
	if err != nil {
		return nil, fmt.Errorf("store: acceptances of run %d: %w", runID, err)
	}
	af := &AcceptanceFor{all: all, at: run.FinishedAt}
	if run.Seq > 0 {
		var next sql.NullString
		err := s.r.QueryRowContext(ctx, "SELECT finished_at FROM runs WHERE seq = ?", run.Seq+1).Scan(&next)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("store: acceptances of run %d: %w", runID, err)
		}
		if af.next, err = parseNullTime(next); err != nil {
			return nil, fmt.Errorf("store: acceptances of run %d: %w", runID, err)
		}
	}
	for _, a := range all {
		if af.covers(a) {
			af.applyable = append(af.applyable, a)
		}
	}
	return af, nil
}

func (af *AcceptanceFor) covers(a Acceptance) bool {
	if !af.next.IsZero() && !a.At.Before(af.next) {
		return false
	}
	return af.at.Before(a.Until) && (a.RevokedAt.IsZero() || af.at.Before(a.RevokedAt))
}

// Covering returns the acceptance that covers the finding in the run, or
// nil.
func (af *AcceptanceFor) Covering(findingID, checkID, assetName string) *Acceptance {
	if af == nil {
		return nil
	}
	return covering(af.applyable, findingID, checkID, assetName, nil)
}

// Latest returns the latest acceptance recorded by the run's completion
// (or, for the newest run, ever) that matches the finding, in force or
// lapsed: the one a re-opened finding's acceptance was.
func (af *AcceptanceFor) Latest(findingID, checkID, assetName string) *Acceptance {
	if af == nil {
		return nil
	}
	return covering(af.all, findingID, checkID, assetName, func(a Acceptance) bool {
		return af.next.IsZero() || a.At.Before(af.next)
	})
}

type lifeKey struct {
	id, check, asset string
	status           LifeStatus
}

// lifeKeys lists the lifecycle's findings (with status in statuses, a SQL
// list, or all when "") for matching against acceptances.
func lifeKeys(ctx context.Context, tx *sql.Tx, statuses string) ([]lifeKey, error) {
	q := "SELECT finding_id, check_id, asset_name, status FROM lifecycle"
	if statuses != "" {
		q += " WHERE status IN (" + statuses + ")"
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []lifeKey
	for rows.Next() {
		var k lifeKey
		if err := rows.Scan(&k.id, &k.check, &k.asset, &k.status); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func setStatus(ctx context.Context, tx *sql.Tx, ids []string, status LifeStatus) error {
	if len(ids) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, "UPDATE lifecycle SET status = ? WHERE finding_id = ?")
	if err != nil {
		return err
	}
	defer st.Close()
	for _, id := range ids {
		if _, err := st.ExecContext(ctx, status, id); err != nil {
			return err
		}
	}
	return nil
}

// AcceptanceOf returns the latest acceptance (of the finding itself, or a
// pattern that matches it) recorded for a finding with a lifecycle, in
// force or not, or nil: what a page about one finding shows.
func (s *Store) AcceptanceOf(ctx context.Context, findingID string) (*Acceptance, error) {
	var checkID, asset string
	err := s.r.QueryRowContext(ctx, "SELECT check_id, asset_name FROM lifecycle WHERE finding_id = ?", findingID).Scan(&checkID, &asset)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: acceptance of %s: %w", findingID, err)
	}
	as, err := loadAcceptances(ctx, s.r)
	if err != nil {
		return nil, fmt.Errorf("store: acceptance of %s: %w", findingID, err)
	}
	return covering(as, findingID, checkID, asset, nil), nil
}

// AcceptanceCoverage counts, per acceptance id, the findings with a
// lifecycle that are not resolved (open, accepted or pending) and that it
// matches: what each acceptance covers now, in force or not.
func (s *Store) AcceptanceCoverage(ctx context.Context) (map[int64]int, error) {
	as, err := loadAcceptances(ctx, s.r)
	if err != nil {
		return nil, fmt.Errorf("store: acceptance coverage: %w", err)
	}
	out := make(map[int64]int, len(as))
	if len(as) == 0 {
		return out, nil
	}
	rows, err := s.r.QueryContext(ctx, "SELECT finding_id, check_id, asset_name FROM lifecycle WHERE status <> 'resolved'")
	if err != nil {
		return nil, fmt.Errorf("store: acceptance coverage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, checkID, asset string
		if err := rows.Scan(&id, &checkID, &asset); err != nil {
			return nil, fmt.Errorf("store: acceptance coverage: %w", err)
		}
		for _, a := range as {
			if a.Matches(id, checkID, asset) {
				out[a.ID]++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: acceptance coverage: %w", err)
	}
	return out, nil
}
