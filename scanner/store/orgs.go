package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/nhsx/posture/checks/check"
)

// Org is an organisation of the estate (ODS code), with where its findings
// go and what it owns.
type Org struct {
	Code     string
	Name     string
	Parent   string // the ICB or region it rolls up to
	Kind     string
	Contacts []string
	Domains  []string
	GitHub   []string
}

// PutOrganisations inserts or updates organisations by code, in one
// transaction. Organisations not named are left alone.
func (s *Store) PutOrganisations(ctx context.Context, orgs []Org) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO organisations
			(code, name, parent, kind, contacts, domains, github, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (code) DO UPDATE SET name = excluded.name, parent = excluded.parent, kind = excluded.kind,
			contacts = excluded.contacts, domains = excluded.domains, github = excluded.github,
			updated_at = excluded.updated_at`)
		if err != nil {
			return err
		}
		defer st.Close()
		at := fmtTime(s.now())
		for _, o := range orgs {
			if o.Code == "" {
				return fmt.Errorf("organisation %q has no code", o.Name)
			}
			if _, err := st.ExecContext(ctx, o.Code, o.Name, o.Parent, o.Kind,
				jsonList(o.Contacts), jsonList(o.Domains), jsonList(o.GitHub), at); err != nil {
				return fmt.Errorf("organisation %s: %w", o.Code, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put organisations: %w", err)
	}
	return nil
}

// Organisations lists all organisations by code.
func (s *Store) Organisations(ctx context.Context) ([]Org, error) {
	rows, err := s.r.QueryContext(ctx,
		"SELECT code, name, parent, kind, contacts, domains, github FROM organisations ORDER BY code")
	if err != nil {
		return nil, fmt.Errorf("store: organisations: %w", err)
	}
	defer rows.Close()
	var out []Org
	for rows.Next() {
		var (
			o       Org
			c, d, g string
		)
		if err := rows.Scan(&o.Code, &o.Name, &o.Parent, &o.Kind, &c, &d, &g); err != nil {
			return nil, fmt.Errorf("store: organisations: %w", err)
		}
		for _, p := range []struct {
			src string
			dst *[]string
		}{{c, &o.Contacts}, {d, &o.Domains}, {g, &o.GitHub}} {
			if err := json.Unmarshal([]byte(p.src), p.dst); err != nil {
				return nil, fmt.Errorf("store: organisations: %s: %w", o.Code, err)
			}
			if len(*p.dst) == 0 {
				*p.dst = nil
			}
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: organisations: %w", err)
	}
	return out, nil
}

// jsonList encodes a string list; nil and empty both become "[]" and read
// back as empty (nil) slices.
func jsonList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // []string always encodes
	return string(b)
}

// PutAssets records the assets of a run. Putting the same asset (run, kind,
// name) again updates it rather than adding a row.
func (s *Store) PutAssets(ctx context.Context, runID int64, assets []check.Asset) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO assets (run_id, kind, name, org, domain, source)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, kind, name) DO UPDATE SET
			org = excluded.org, domain = excluded.domain, source = excluded.source`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, a := range assets {
			if a.Kind == "" || a.Name == "" {
				return fmt.Errorf("asset %q has no kind or name", a.Key())
			}
			if _, err := st.ExecContext(ctx, runID, a.Kind, a.Name, a.Org, a.Domain, a.Source); err != nil {
				return fmt.Errorf("asset %s: %w", a.Key(), err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put assets of run %d: %w", runID, err)
	}
	return nil
}

// Assets lists the assets of a run by kind and name.
func (s *Store) Assets(ctx context.Context, runID int64) ([]check.Asset, error) {
	rows, err := s.r.QueryContext(ctx,
		"SELECT kind, name, org, domain, source FROM assets WHERE run_id = ? ORDER BY kind, name", runID)
	if err != nil {
		return nil, fmt.Errorf("store: assets of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []check.Asset
	for rows.Next() {
		var a check.Asset
		if err := rows.Scan(&a.Kind, &a.Name, &a.Org, &a.Domain, &a.Source); err != nil {
			return nil, fmt.Errorf("store: assets of run %d: %w", runID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: assets of run %d: %w", runID, err)
	}
	return out, nil
}

// PutNames records, per estate domain, the names discovery saw under it in
// a run. Putting a name again is a no-op.
func (s *Store) PutNames(ctx context.Context, runID int64, names map[string][]string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO discovered_names (run_id, domain, name)
			VALUES (?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		for dom, ns := range names {
			for _, n := range ns {
				if dom == "" || n == "" {
					return fmt.Errorf("name %q of domain %q is empty", n, dom)
				}
				if _, err := st.ExecContext(ctx, runID, dom, n); err != nil {
					return fmt.Errorf("name %s: %w", n, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put names of run %d: %w", runID, err)
	}
	return nil
}

// Names are the names of a run by domain, each list sorted.
func (s *Store) Names(ctx context.Context, runID int64) (map[string][]string, error) {
	rows, err := s.r.QueryContext(ctx,
		"SELECT domain, name FROM discovered_names WHERE run_id = ? ORDER BY domain, name", runID)
	if err != nil {
		return nil, fmt.Errorf("store: names of run %d: %w", runID, err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var dom, n string
		if err := rows.Scan(&dom, &n); err != nil {
			return nil, fmt.Errorf("store: names of run %d: %w", runID, err)
		}
		out[dom] = append(out[dom], n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: names of run %d: %w", runID, err)
	}
	return out, nil
}
