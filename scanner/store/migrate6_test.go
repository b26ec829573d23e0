package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

// TestMigration6KeepsTheLifecycleAndAcceptances: a database of schema 5
// with an open finding, its 'new' event and an acceptance opens as schema
// 6+ with the finding open (a fail streak of 1, open since first seen), its
// event, and the acceptance in risk_acceptances (and the compatibility
// view).
func TestMigration6KeepsTheLifecycleAndAcceptances(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version > 5 {
			break
		}
		if _, err := db.Exec(m.sql); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		db.Exec("INSERT INTO schema_version VALUES (?, ?, '')", m.version, m.name)
	}
	const at = "2026-05-02T02:00:00.000000000Z"
	for _, q := range []string{
		`INSERT INTO runs (id, key, status, started_at, finished_at, seq) VALUES (1, 'k', 'complete', '` + at + `', '` + at + `', 1)`,
		`INSERT INTO lifecycle (finding_id, check_id, rule, asset_key, asset_kind, asset_name, status, first_seen_run,
			first_seen, last_seen_run, last_seen, last_run, last_outcome, last_severity)
			VALUES ('f1', 'email.dmarc.policy', 'p', 'domain:a.nhs.uk', 'domain', 'a.nhs.uk', 'accepted', 1, '` + at + `', 1, '` + at + `', 1, 'fail', 'high')`,
		`INSERT INTO life_events (run_id, finding_id, kind) VALUES (1, 'f1', 'new')`,
		`INSERT INTO acceptances VALUES ('f1', 'supplier', '2999-01-01T00:00:00.000000000Z', 'ciso', '` + at + `')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.now = func() time.Time { return time.Date(2026, 5, 3, 0, 0, 0, 0, time.UTC) }
	l := lifeOf(t, s, "email.dmarc.policy")
	if l.Status != StatusAccepted || l.FailStreak != 1 || l.PassStreak != 0 || !l.OpenedAt.Equal(l.FirstSeen) ||
		l.Acceptance == nil || l.Acceptance.Reason != "supplier" {
		t.Errorf("migrated life: %+v", l)
	}
	as, err := s.Acceptances(ctx)
	if err != nil || len(as) != 1 || as[0].FindingID != "f1" || as[0].By != "ciso" {
		t.Errorf("migrated acceptances: %+v, %v", as, err)
	}
	if n := count(t, s, "SELECT COUNT(*) FROM acceptances WHERE finding_id = 'f1'"); n != 1 {
		t.Errorf("the acceptances view has %d rows for f1, want 1", n)
	}
	if k := kinds(t, s, 1)["email.dmarc.policy"]; k != ChangeNew {
		t.Errorf("the migrated event: %q, want new", k)
	}
}
