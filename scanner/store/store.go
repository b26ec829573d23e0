// Package store keeps runs, organisations, assets, evidence, findings and the
// finding lifecycle in one SQLite file (modernc.org/sqlite, no cgo).
//
// Writes go through a single connection (MaxOpenConns(1)), which serialises
// writers inside the process; BEGIN IMMEDIATE and busy_timeout make other
// processes wait rather than fail. Reads use a separate pool, which WAL lets
// run while the writer writes.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// BusyTimeout is how long a connection waits for a lock held by another
// connection or process before it reports SQLITE_BUSY.
const BusyTimeout = 10 * time.Second

// MaxEvidenceBytes caps the stored evidence data of one job. Larger data is
// stored as a truncation marker (see PutResult) rather than failing the run.
const MaxEvidenceBytes = 1 << 20

var (
	// ErrNotFound is returned for a run, evidence or finding that is not stored.
	ErrNotFound = errors.New("store: not found")
	// ErrRunComplete is returned when a complete run would be changed in a
	// way that the lifecycle has already accounted for.
	ErrRunComplete = errors.New("store: run is already complete")
	// ErrRunIncomplete is returned by Changes for a run that is not complete.
	ErrRunIncomplete = errors.New("store: run is not complete")
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is an open posture database. It is safe for concurrent use.
type Store struct {
	w   *sql.DB // the single writer
	r   *sql.DB // the read pool
	now func() time.Time
	// hold is the lifecycle's hold (SetHold); 0: DefaultHold for new
	// runs, each run's own on a rebuild.
	hold int
}

// Open opens (creating if needed) the database at path and brings its schema
// up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	// A plain path (not a file: URI) is handed to SQLite up to the first
	// '?', which starts the driver's parameters.
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("store: open %q: want a plain file path without '?'", path)
	}
	// journal_mode is a property of the file: the writer sets it, and is
	// opened and migrated before any reader connects.
	w, err := sql.Open("sqlite", dsn(path, "_txlock=immediate", "_pragma=journal_mode(WAL)"))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	s := &Store{w: w, now: time.Now}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("store: open %s: journal mode is %q, want wal", path, mode)
	}

	r, err := sql.Open("sqlite", dsn(path, "_pragma=query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.r = r
	if err := r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return s, nil
}

// dsn builds a modernc.org/sqlite DSN whose pragmas apply to every pooled
// connection, not just the first.
func dsn(path string, extra ...string) string {
	q := []string{
		"_pragma=" + url.QueryEscape(fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds())),
		"_pragma=" + url.QueryEscape("synchronous(FULL)"),
		"_pragma=" + url.QueryEscape("foreign_keys(1)"),
	}
	for _, e := range extra {
		k, v, _ := strings.Cut(e, "=")
		q = append(q, k+"="+url.QueryEscape(v))
	}
	return path + "?" + strings.Join(q, "&")
}

// Close closes both pools.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// IntegrityCheck runs PRAGMA integrity_check and fails unless SQLite
// answers "ok".
func (s *Store) IntegrityCheck(ctx context.Context) error {
	rows, err := s.r.QueryContext(ctx, "PRAGMA integrity_check(20)")
	if err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("store: integrity check: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("store: integrity check failed: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// write runs fn in one transaction on the single writer connection.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	ents, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must start with a positive number and _", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{v, e.Name(), string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %q and %q share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// migrate applies each pending migration in its own transaction, re-reading
// the version inside it so that two processes opening at once do not both
// apply the same file.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	latest := ms[len(ms)-1].version
	for _, m := range ms {
		err := s.write(ctx, func(tx *sql.Tx) error {
			var cur int
			var applied bool
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0),
				EXISTS (SELECT 1 FROM schema_version WHERE version = ?) FROM schema_version`, m.version).Scan(&cur, &applied); err != nil {
				return err
			}
			if cur > latest {
				return fmt.Errorf("database schema version %d is newer than this program's %d", cur, latest)
			}
			// Each version missing is applied, not only those above the
			// highest: a database made by a build whose migrations had a gap
			// (branches landing out of order) gets the ones it lacks.
			if applied {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, fmtTime(s.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}

// SchemaVersion reports the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.r.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// timeLayout is fixed-width so that stored times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(timeLayout, s)
}

func parseNullTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return parseTime(s.String)
}
