package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CTEntry is the CT cache of one organisational domain (migration 0004).
type CTEntry struct {
	Names     []string
	MaxID     int64
	FullAt    time.Time // zero: no full search has finished
	FetchedAt time.Time
}

// CTEntry returns the cached CT search of an organisational domain.
func (s *Store) CTEntry(ctx context.Context, domain string) (CTEntry, bool, error) {
	var e CTEntry
	var full sql.NullString
	var fetched string
	err := s.r.QueryRowContext(ctx, "SELECT max_id, full_at, fetched_at FROM ct_cache WHERE domain = ?", domain).
		Scan(&e.MaxID, &full, &fetched)
	if errors.Is(err, sql.ErrNoRows) {
		return CTEntry{}, false, nil
	}
	if err != nil {
		return CTEntry{}, false, fmt.Errorf("store: ct cache %s: %w", domain, err)
	}
	if e.FullAt, err = parseNullTime(full); err != nil {
		return CTEntry{}, false, fmt.Errorf("store: ct cache %s: %w", domain, err)
	}
	if e.FetchedAt, err = parseTime(fetched); err != nil {
		return CTEntry{}, false, fmt.Errorf("store: ct cache %s: %w", domain, err)
	}
	rows, err := s.r.QueryContext(ctx, "SELECT name FROM ct_cache_names WHERE domain = ? ORDER BY name", domain)
	if err != nil {
		return CTEntry{}, false, fmt.Errorf("store: ct cache %s: %w", domain, err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return CTEntry{}, false, fmt.Errorf("store: ct cache %s: %w", domain, err)
		}
		e.Names = append(e.Names, n)
	}
	if err := rows.Err(); err != nil {
		return CTEntry{}, false, fmt.Errorf("store: ct cache %s: %w", domain, err)
	}
	return e, true, nil
}

// PutCTEntry replaces the cached CT search of an organisational domain.
func (s *Store) PutCTEntry(ctx context.Context, domain string, e CTEntry) error {
	var full any
	if !e.FullAt.IsZero() {
		full = fmtTime(e.FullAt)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ct_cache (domain, max_id, full_at, fetched_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (domain) DO UPDATE SET max_id = excluded.max_id, full_at = excluded.full_at, fetched_at = excluded.fetched_at`,
			domain, e.MaxID, full, fmtTime(e.FetchedAt)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM ct_cache_names WHERE domain = ?", domain); err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, "INSERT INTO ct_cache_names (domain, name) VALUES (?, ?) ON CONFLICT DO NOTHING")
		if err != nil {
			return err
		}
		defer st.Close()
		for _, n := range e.Names {
			if _, err := st.ExecContext(ctx, domain, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put ct cache %s: %w", domain, err)
	}
	return nil
}

// Unowned is a name in scope that no estate domain owns, as a run found it.
type Unowned struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Via    string `json:"via"`
}

// PutUnowned records a run's unowned names (again: a no-op).
func (s *Store) PutUnowned(ctx context.Context, runID int64, us []Unowned) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO unowned_names (run_id, name, source, via)
			VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, u := range us {
			if u.Name == "" {
				return errors.New("an unowned name is empty")
			}
			if _, err := st.ExecContext(ctx, runID, u.Name, u.Source, u.Via); err != nil {
				return fmt.Errorf("unowned %s: %w", u.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put unowned names of run %d: %w", runID, err)
	}
	return nil
}

// Unowned are a run's unowned names, sorted.
func (s *Store) Unowned(ctx context.Context, runID int64) ([]Unowned, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT name, source, via FROM unowned_names WHERE run_id = ? ORDER BY name", runID)
	if err != nil {
		return nil, fmt.Errorf("store: unowned names of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []Unowned
	for rows.Next() {
		var u Unowned
		if err := rows.Scan(&u.Name, &u.Source, &u.Via); err != nil {
			return nil, fmt.Errorf("store: unowned names of run %d: %w", runID, err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: unowned names of run %d: %w", runID, err)
	}
	return out, nil
}
