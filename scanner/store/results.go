package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nhsx/posture/checks/check"
)

// JobKey names one job of a run: a collector on an asset.
type JobKey struct {
	CheckID  string // the collector id (Evidence.CheckID)
	AssetKey string // check.Asset.Key()
}

// Finding is a stored finding.
type Finding struct {
	check.Finding
	ID    string // check.Finding.ID(): the same in every run
	RunID int64
}

// PutResult stores one job's evidence and the findings evaluated from it,
// in one transaction. A job is (run, ev.CheckID, ev.Asset.Key()): putting it
// again replaces the evidence and all its findings, so a resumed run that
// re-does a job never duplicates rows. Evidence data over MaxEvidenceBytes
// is stored as a truncation marker with error class too-large (see
// truncate); the findings are stored as given.
func (s *Store) PutResult(ctx context.Context, runID int64, ev check.Evidence, fs []check.Finding) error {
	if ev.CheckID == "" || ev.Asset.Kind == "" || ev.Asset.Name == "" {
		return fmt.Errorf("store: put result: evidence needs a check id and an asset (got %q on %q)", ev.CheckID, ev.Asset.Key())
	}
	ev, size, truncated := truncate(ev)
	err := s.write(ctx, func(tx *sql.Tx) error {
		var status RunStatus
		if err := tx.QueryRowContext(ctx, "SELECT status FROM runs WHERE id = ?", runID).Scan(&status); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if status == Complete {
			return ErrRunComplete
		}
		var data any
		if len(ev.Data) > 0 {
			data = []byte(ev.Data)
		}
		a := ev.Asset
		var evID int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO evidence (run_id, check_id, asset_key, asset_kind, asset_name,
			asset_org, asset_domain, asset_source, collected_at, data, data_bytes, truncated, error, error_class, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, check_id, asset_key) DO UPDATE SET asset_kind = excluded.asset_kind,
			asset_name = excluded.asset_name, asset_org = excluded.asset_org, asset_domain = excluded.asset_domain,
			asset_source = excluded.asset_source, collected_at = excluded.collected_at, data = excluded.data,
			data_bytes = excluded.data_bytes, truncated = excluded.truncated, error = excluded.error,
			error_class = excluded.error_class, version = excluded.version
			RETURNING id`,
			runID, ev.CheckID, a.Key(), a.Kind, a.Name, a.Org, a.Domain, a.Source, fmtTime(ev.CollectedAt),
			data, size, truncated, ev.Error, ev.ErrorClass, ev.Version).Scan(&evID); err != nil {
			return err
		}
		return replaceFindings(ctx, tx, runID, evID, fs)
	})
	if err != nil {
		return fmt.Errorf("store: put result %s on %s in run %d: %w", ev.CheckID, ev.Asset.Key(), runID, err)
	}
	return nil
}

// ReplaceFindings replaces the findings evaluated from one stored job
// (collector checkID on assetKey), for `posture reeval`. It is allowed on a
// complete run; call RebuildLifecycle afterwards so that the lifecycle
// reflects the new findings.
func (s *Store) ReplaceFindings(ctx context.Context, runID int64, checkID, assetKey string, fs []check.Finding) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var evID int64
		err := tx.QueryRowContext(ctx, "SELECT id FROM evidence WHERE run_id = ? AND check_id = ? AND asset_key = ?",
			runID, checkID, assetKey).Scan(&evID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return replaceFindings(ctx, tx, runID, evID, fs)
	})
	if err != nil {
		return fmt.Errorf("store: replace findings %s on %s in run %d: %w", checkID, assetKey, runID, err)
	}
	return nil
}

func replaceFindings(ctx context.Context, tx *sql.Tx, runID, evID int64, fs []check.Finding) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM findings WHERE evidence_id = ?", evID); err != nil {
		return err
	}
	if len(fs) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO findings (evidence_id, run_id, finding_id, check_id, rule,
		asset_key, asset_kind, asset_name, asset_org, asset_domain, asset_source, outcome, severity, message,
		remediation, standards, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, f := range fs {
		if !f.Outcome.Valid() {
			return fmt.Errorf("finding %s/%s: invalid outcome %q", f.CheckID, f.Rule, f.Outcome)
		}
		var std any
		if len(f.Standards) > 0 {
			b, err := json.Marshal(f.Standards)
			if err != nil {
				return fmt.Errorf("finding %s/%s: standards: %w", f.CheckID, f.Rule, err)
			}
			std = string(b)
		}
		a := f.Asset
		if _, err := st.ExecContext(ctx, evID, runID, f.ID(), f.CheckID, f.Rule, a.Key(), a.Kind, a.Name, a.Org,
			a.Domain, a.Source, f.Outcome, f.Severity, f.Message, f.Remediation, std, f.Reason); err != nil {
			return fmt.Errorf("finding %s/%s: %w", f.CheckID, f.Rule, err)
		}
	}
	return nil
}

// truncate bounds the evidence data. Over the cap, the data becomes a valid
// JSON marker {"truncated":true,"bytes":N,"head":"…"} and, unless the
// evidence already carries an error, the error class becomes too-large, so
// that re-evaluating it gives unknown rather than a verdict on half a
// document.
func truncate(ev check.Evidence) (check.Evidence, int, bool) {
	size := len(ev.Data)
	if size <= MaxEvidenceBytes {
		return ev, size, false
	}
	head := ev.Data[:MaxEvidenceBytes-1024]
	for {
		// encoding/json replaces invalid UTF-8 (a split rune) with U+FFFD.
		b, _ := json.Marshal(struct {
			Truncated bool   `json:"truncated"`
			Bytes     int    `json:"bytes"`
			Head      string `json:"head"`
		}{true, size, string(head)})
		if len(b) <= MaxEvidenceBytes {
			ev.Data = b
			break
		}
		head = head[:len(head)/2] // escaping grew it: halve until it fits
	}
	if ev.Error == "" {
		ev.Error = fmt.Sprintf("evidence data of %d bytes exceeded the %d-byte store limit and was truncated", size, MaxEvidenceBytes)
		ev.ErrorClass = check.ErrTooLarge
	}
	return ev, size, true
}

// DoneJobs lists the jobs of a run that have stored results, for resuming
// it. A job whose collection was cut short by the interruption (error class
// canceled) is not done: the resumed run does it again.
func (s *Store) DoneJobs(ctx context.Context, runID int64) (map[JobKey]bool, error) {
	rows, err := s.r.QueryContext(ctx,
		"SELECT check_id, asset_key FROM evidence WHERE run_id = ? AND error_class <> ?", runID, check.ErrCanceled)
	if err != nil {
		return nil, fmt.Errorf("store: done jobs of run %d: %w", runID, err)
	}
	defer rows.Close()
	done := map[JobKey]bool{}
	for rows.Next() {
		var k JobKey
		if err := rows.Scan(&k.CheckID, &k.AssetKey); err != nil {
			return nil, fmt.Errorf("store: done jobs of run %d: %w", runID, err)
		}
		done[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: done jobs of run %d: %w", runID, err)
	}
	return done, nil
}

// Evidence returns all evidence of a run, ordered by collector and asset.
func (s *Store) Evidence(ctx context.Context, runID int64) ([]check.Evidence, error) {
	var out []check.Evidence
	err := s.EachEvidence(ctx, runID, func(ev check.Evidence) error {
		out = append(out, ev)
		return nil
	})
	return out, err
}

// EachEvidence calls fn for each piece of evidence of a run, ordered by
// collector and asset, without holding them all in memory. It reads a
// snapshot, so fn may write (e.g. ReplaceFindings) as it goes. An error from
// fn stops the walk and is returned.
func (s *Store) EachEvidence(ctx context.Context, runID int64, fn func(check.Evidence) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT check_id, asset_kind, asset_name, asset_org, asset_domain,
		asset_source, collected_at, data, error, error_class, version FROM evidence WHERE run_id = ?
		ORDER BY check_id, asset_key`, runID)
	if err != nil {
		return fmt.Errorf("store: evidence of run %d: %w", runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			ev   check.Evidence
			at   string
			data []byte
		)
		a := &ev.Asset
		if err := rows.Scan(&ev.CheckID, &a.Kind, &a.Name, &a.Org, &a.Domain, &a.Source, &at, &data,
			&ev.Error, &ev.ErrorClass, &ev.Version); err != nil {
			return fmt.Errorf("store: evidence of run %d: %w", runID, err)
		}
		if ev.CollectedAt, err = parseTime(at); err != nil {
			return fmt.Errorf("store: evidence of run %d: %w", runID, err)
		}
		if len(data) > 0 {
			ev.Data = json.RawMessage(data)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: evidence of run %d: %w", runID, err)
	}
	return nil
}

// Findings returns all findings of a run, ordered by asset, check and rule.
func (s *Store) Findings(ctx context.Context, runID int64) ([]Finding, error) {
	var out []Finding
	err := s.EachFinding(ctx, runID, func(f Finding) error {
		out = append(out, f)
		return nil
	})
	return out, err
}

// EachFinding calls fn for each finding of a run, in Findings order, without
// holding them all in memory. An error from fn stops the walk and is
// returned.
func (s *Store) EachFinding(ctx context.Context, runID int64, fn func(Finding) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT finding_id, check_id, rule, asset_kind, asset_name, asset_org,
		asset_domain, asset_source, outcome, severity, message, remediation, standards, reason
		FROM findings WHERE run_id = ? ORDER BY asset_kind, asset_name, check_id, rule, id`, runID)
	if err != nil {
		return fmt.Errorf("store: findings of run %d: %w", runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		f := Finding{RunID: runID}
		var std sql.NullString
		a := &f.Asset
		if err := rows.Scan(&f.ID, &f.CheckID, &f.Rule, &a.Kind, &a.Name, &a.Org, &a.Domain, &a.Source,
			&f.Outcome, &f.Severity, &f.Message, &f.Remediation, &std, &f.Reason); err != nil {
			return fmt.Errorf("store: findings of run %d: %w", runID, err)
		}
		if err := decodeStandards(std, &f.Standards); err != nil {
			return fmt.Errorf("store: findings of run %d: %w", runID, err)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: findings of run %d: %w", runID, err)
	}
	return nil
}

func decodeStandards(s sql.NullString, dst *[]check.Ref) error {
	if !s.Valid || s.String == "" {
		return nil
	}
	return json.Unmarshal([]byte(s.String), dst)
}
