package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Score is one stored rollup: an organisation's (Org "" is the nation)
// weighted tally on one standard (Standard "" is every check) at one run.
// Earned and Possible are half points.
type Score struct {
	RunID                 int64
	Org, Parent, Kind     string
	Standard              string
	Earned, Possible      int64
	Pass, Warn, Fail      int
	Unknown, NA, Accepted int
}

// ScoreQuery selects stored rollups; an empty list selects every value.
// Give the standards when the orgs are given: rows are keyed by run,
// standard and organisation, in that order.
type ScoreQuery struct {
	Runs      []int64
	Standards []string
	Orgs      []string
}

// PutScores replaces the rollups of a run and records the scoring version
// they were computed with, in one transaction.
func (s *Store) PutScores(ctx context.Context, runID int64, version int, rows []Score) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM run_scores WHERE run_id = ?", runID); err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO run_scores (run_id, standard, org, parent, kind, earned, possible,
			pass, warn, fail, unknown, na, accepted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rows {
			if _, err := st.ExecContext(ctx, runID, r.Standard, r.Org, r.Parent, r.Kind, r.Earned, r.Possible,
				r.Pass, r.Warn, r.Fail, r.Unknown, r.NA, r.Accepted); err != nil {
				return fmt.Errorf("%s/%s: %w", r.Org, r.Standard, err)
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO run_scored (run_id, version, computed_at) VALUES (?, ?, ?)
			ON CONFLICT (run_id) DO UPDATE SET version = excluded.version, computed_at = excluded.computed_at`,
			runID, version, fmtTime(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: put scores of run %d: %w", runID, err)
	}
	return nil
}

// ScoredRuns maps each run with stored rollups to their scoring version.
func (s *Store) ScoredRuns(ctx context.Context) (map[int64]int, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT run_id, version FROM run_scored")
	if err != nil {
		return nil, fmt.Errorf("store: scored runs: %w", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var v int
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("store: scored runs: %w", err)
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: scored runs: %w", err)
	}
	return out, nil
}

// scoreBatch bounds the runs of one query (SQLite's bound parameters).
const scoreBatch = 400

// Scores returns the stored rollups that match the query, by run,
// standard and organisation.
func (s *Store) Scores(ctx context.Context, q ScoreQuery) ([]Score, error) {
	var out []Score
	runs := q.Runs
	for {
		batch := runs[:min(len(runs), scoreBatch)]
		runs = runs[len(batch):]
		var where []string
		var args []any
		in := func(col string, n int, arg func(i int) any) {
			if n == 0 {
				return
			}
			where = append(where, col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", n), ",")+")")
			for i := range n {
				args = append(args, arg(i))
			}
		}
		in("run_id", len(batch), func(i int) any { return batch[i] })
		in("standard", len(q.Standards), func(i int) any { return q.Standards[i] })
		in("org", len(q.Orgs), func(i int) any { return q.Orgs[i] })
		query := `SELECT run_id, standard, org, parent, kind, earned, possible, pass, warn, fail, unknown, na, accepted
			FROM run_scores`
		if len(where) > 0 {
			query += " WHERE " + strings.Join(where, " AND ")
		}
		query += " ORDER BY run_id, standard, org"
		rows, err := s.r.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("store: scores: %w", err)
		}
		for rows.Next() {
			var r Score
			if err := rows.Scan(&r.RunID, &r.Standard, &r.Org, &r.Parent, &r.Kind, &r.Earned, &r.Possible,
				&r.Pass, &r.Warn, &r.Fail, &r.Unknown, &r.NA, &r.Accepted); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: scores: %w", err)
			}
			out = append(out, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: scores: %w", err)
		}
		if len(runs) == 0 {
			return out, nil
		}
	}
}
