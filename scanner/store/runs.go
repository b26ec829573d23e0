package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RunStatus is the state of a run.
type RunStatus string

const (
	// Running is also what a killed process leaves behind: the next
	// BeginRun with the same key resumes it.
	Running     RunStatus = "running"
	Interrupted RunStatus = "interrupted" // stopped on a signal; resumable
	Failed      RunStatus = "failed"      // stopped by an error; not resumed
	Complete    RunStatus = "complete"    // results are final; the lifecycle has been updated
)

// Run is one scan.
type Run struct {
	ID         int64
	Key        string // identifies "the same command" (estate + options hash)
	Options    string
	Status     RunStatus
	StartedAt  time.Time
	FinishedAt time.Time // when it last stopped; zero while running
	Resumes    int       // how many times it was taken up again
	Seq        int64     // completion order 1, 2, …; 0 unless complete
}

const runCols = "id, key, options, status, started_at, finished_at, resumes, seq"

func scanRun(sc interface{ Scan(...any) error }) (Run, error) {
	var (
		r        Run
		started  string
		finished sql.NullString
		seq      sql.NullInt64
	)
	if err := sc.Scan(&r.ID, &r.Key, &r.Options, &r.Status, &started, &finished, &r.Resumes, &seq); err != nil {
		return Run{}, err
	}
	var err error
	if r.StartedAt, err = parseTime(started); err != nil {
		return Run{}, err
	}
	if r.FinishedAt, err = parseNullTime(finished); err != nil {
		return Run{}, err
	}
	r.Seq = seq.Int64
	return r, nil
}

// BeginRun starts a run for key, or resumes the newest run with that key if
// it did not complete (running after a kill, or interrupted); a failed or
// complete newest run gives a new one.
func (s *Store) BeginRun(ctx context.Context, key, options string) (run Run, resumed bool, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		last, err := scanRun(tx.QueryRowContext(ctx,
			"SELECT "+runCols+" FROM runs WHERE key = ? ORDER BY id DESC LIMIT 1", key))
		switch {
		case err == nil && (last.Status == Running || last.Status == Interrupted):
			if _, err := tx.ExecContext(ctx,
				"UPDATE runs SET status = 'running', finished_at = NULL, resumes = resumes + 1 WHERE id = ?", last.ID); err != nil {
				return err
			}
			run, resumed = last, true
			run.Status, run.FinishedAt = Running, time.Time{}
			run.Resumes++
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		now := s.now()
		res, err := tx.ExecContext(ctx,
			"INSERT INTO runs (key, options, status, started_at) VALUES (?, ?, 'running', ?)", key, options, fmtTime(now))
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		run = Run{ID: id, Key: key, Options: options, Status: Running, StartedAt: now.UTC().Round(0)}
		return nil
	})
	if err != nil {
		return Run{}, false, fmt.Errorf("store: begin run: %w", err)
	}
	return run, resumed, nil
}

// FinishRun records how a run stopped. Completing a run gives it the next
// completion number and updates the finding lifecycle in the same
// transaction. A complete run cannot be finished again (ErrRunComplete).
func (s *Store) FinishRun(ctx context.Context, id int64, status RunStatus) error {
	switch status {
	case Complete, Interrupted, Failed:
	default:
		return fmt.Errorf("store: finish run %d: status %q is not complete, interrupted or failed", id, status)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var cur RunStatus
		if err := tx.QueryRowContext(ctx, "SELECT status FROM runs WHERE id = ?", id).Scan(&cur); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if cur == Complete {
			return ErrRunComplete
		}
		at := fmtTime(s.now())
		if status != Complete {
			_, err := tx.ExecContext(ctx, "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", status, at, id)
			return err
		}
		r := lifeRun{id: id, at: at, hold: s.Hold()}
		if err := tx.QueryRowContext(ctx, `UPDATE runs SET status = 'complete', finished_at = ?, hold = ?,
			seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM runs) WHERE id = ? RETURNING seq`, at, r.hold, id).Scan(&r.seq); err != nil {
			return err
		}
		accs, err := loadAcceptances(ctx, tx)
		if err != nil {
			return err
		}
		return applyRun(ctx, tx, r, accs)
	})
	if err != nil {
		return fmt.Errorf("store: finish run %d: %w", id, err)
	}
	return nil
}

// Runs lists every run, newest first.
func (s *Store) Runs(ctx context.Context) ([]Run, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+runCols+" FROM runs ORDER BY id DESC")
	if err != nil {
		return nil, fmt.Errorf("store: runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("store: runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: runs: %w", err)
	}
	return out, nil
}

// Run returns one run, or ErrNotFound.
func (s *Store) Run(ctx context.Context, id int64) (Run, error) {
	return s.oneRun(ctx, "run", "SELECT "+runCols+" FROM runs WHERE id = ?", id)
}

// LatestComplete returns the most recently completed run, or ErrNotFound.
func (s *Store) LatestComplete(ctx context.Context) (Run, error) {
	return s.oneRun(ctx, "latest complete run",
		"SELECT "+runCols+" FROM runs WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
}

// PreviousComplete returns the run completed just before run id (which must
// be complete), or ErrNotFound if id was the first.
func (s *Store) PreviousComplete(ctx context.Context, id int64) (Run, error) {
	return s.oneRun(ctx, "previous complete run", `SELECT `+runCols+` FROM runs
		WHERE seq = (SELECT seq - 1 FROM runs WHERE id = ? AND seq IS NOT NULL)`, id)
}

func (s *Store) oneRun(ctx context.Context, what, q string, args ...any) (Run, error) {
	r, err := scanRun(s.r.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Run{}, fmt.Errorf("store: %s: %w", what, err)
	}
	return r, nil
}
