package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Outbox message statuses.
const (
	OutboxPending = "pending" // queued, not yet accepted by the relay
	OutboxSent    = "sent"    // the relay answered 250 to its DATA
	OutboxFailed  = "failed"  // refused for good (5xx): not retried
	OutboxExpired = "expired" // pending for too long: dropped, not sent
)

// OutboxMessage is one queued email: its envelope and the exact bytes that
// are sent. Its fields match reports.QueuedEmail, so that one converts to
// the other.
type OutboxMessage struct {
	RunID     int64
	Org       string
	Kind      string // change | digest
	MessageID string // stable, without angle brackets
	From      string
	To        []string
	Data      []byte
	Status    string
	QueuedAt  time.Time
	Attempts  int
	LastError string
	SentAt    time.Time
}

// OutboxRun is what the outbox holds for one run.
type OutboxRun struct {
	Queued   bool // the run's emails were queued (possibly none)
	QueuedAt time.Time
	Emails   int
	Digest   bool
	// ByStatus counts the run's messages by status.
	ByStatus map[string]int
}

// QueueOutbox stores a run's emails, all in one transaction, unless the run
// was queued before: then nothing is stored and queued is false. So a run
// is queued at most once, and its messages (with their Message-IDs) never
// change once stored.
func (s *Store) QueueOutbox(ctx context.Context, runID int64, digest bool, msgs []OutboxMessage) (queued bool, err error) {
	now := fmtTime(s.now())
	err = s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox_runs WHERE run_id = ?", runID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO outbox_runs (run_id, queued_at, emails, digest) VALUES (?, ?, ?, ?)",
			runID, now, len(msgs), digest); err != nil {
			return err
		}
		for _, m := range msgs {
			to, err := json.Marshal(m.To)
			if err != nil {
				return err
			}
			kind := m.Kind
			if kind == "" {
				kind = "change"
			}
			if m.RunID != 0 && m.RunID != runID {
				return fmt.Errorf("message %s belongs to run %d, not %d", m.MessageID, m.RunID, runID)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (message_id, run_id, org, kind, sender, recipients, data, queued_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, m.MessageID, runID, m.Org, kind, m.From, string(to), m.Data, now); err != nil {
				return fmt.Errorf("message %s: %w", m.MessageID, err)
			}
		}
		queued = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: queue emails of run %d: %w", runID, err)
	}
	return queued, nil
}

// OutboxPending returns every pending message, of any run, oldest first.
func (s *Store) OutboxPending(ctx context.Context) ([]OutboxMessage, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT message_id, run_id, org, kind, sender, recipients, data, status,
		queued_at, attempts, last_error, sent_at FROM outbox WHERE status = 'pending' ORDER BY queued_at, run_id, org`)
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxMessage
	for rows.Next() {
		var m OutboxMessage
		var to, queued string
		var sent sql.NullString
		if err := rows.Scan(&m.MessageID, &m.RunID, &m.Org, &m.Kind, &m.From, &to, &m.Data, &m.Status,
			&queued, &m.Attempts, &m.LastError, &sent); err != nil {
			return nil, fmt.Errorf("store: outbox: %w", err)
		}
		if err := json.Unmarshal([]byte(to), &m.To); err != nil {
			return nil, fmt.Errorf("store: outbox %s recipients: %w", m.MessageID, err)
		}
		if m.QueuedAt, err = parseTime(queued); err != nil {
			return nil, fmt.Errorf("store: outbox: %w", err)
		}
		if m.SentAt, err = parseNullTime(sent); err != nil {
			return nil, fmt.Errorf("store: outbox: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	return out, nil
}

// ErrNotPending is returned when a message that is no longer pending would
// be marked: it was sent, failed or expired already.
var ErrNotPending = errors.New("store: outbox message is not pending")

// MarkOutboxSent records that the relay accepted the message. It is called
// right after the relay's 250 to DATA, before the next message is sent.
func (s *Store) MarkOutboxSent(ctx context.Context, messageID string) error {
	now := fmtTime(s.now())
	return s.markOutbox(ctx, messageID, `UPDATE outbox SET status = 'sent', sent_at = ?, last_attempt = ?,
		attempts = attempts + 1, last_error = '' WHERE message_id = ? AND status = 'pending'`, now, now, messageID)
}

// MarkOutboxAttempt records a failed attempt: the message stays pending
// (a temporary failure, retried by the next notify) or, if permanent (the
// relay refused it with 5xx), is failed and never retried.
func (s *Store) MarkOutboxAttempt(ctx context.Context, messageID, reason string, permanent bool) error {
	status := OutboxPending
	if permanent {
		status = OutboxFailed
	}
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	return s.markOutbox(ctx, messageID, `UPDATE outbox SET status = ?, last_attempt = ?, attempts = attempts + 1,
		last_error = ? WHERE message_id = ? AND status = 'pending'`, status, fmtTime(s.now()), reason, messageID)
}

// ExpireOutbox marks pending messages queued before cutoff expired: news
// that old would mislead more than help. It returns how many it expired.
func (s *Store) ExpireOutbox(ctx context.Context, cutoff time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'expired' WHERE status = 'pending' AND queued_at < ?`, fmtTime(cutoff))
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: expire outbox: %w", err)
	}
	return int(n), nil
}

func (s *Store) markOutbox(ctx context.Context, messageID, query string, args ...any) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotPending
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: outbox %s: %w", messageID, err)
	}
	return nil
}

// OutboxRunStatus reports what the outbox holds for a run.
func (s *Store) OutboxRunStatus(ctx context.Context, runID int64) (OutboxRun, error) {
	r := OutboxRun{ByStatus: map[string]int{}}
	var queued string
	err := s.r.QueryRowContext(ctx, "SELECT queued_at, emails, digest FROM outbox_runs WHERE run_id = ?", runID).
		Scan(&queued, &r.Emails, &r.Digest)
	if errors.Is(err, sql.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("store: outbox run %d: %w", runID, err)
	}
	r.Queued = true
	if r.QueuedAt, err = parseTime(queued); err != nil {
		return r, fmt.Errorf("store: outbox run %d: %w", runID, err)
	}
	rows, err := s.r.QueryContext(ctx, "SELECT status, COUNT(*) FROM outbox WHERE run_id = ? GROUP BY status", runID)
	if err != nil {
		return r, fmt.Errorf("store: outbox run %d: %w", runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return r, fmt.Errorf("store: outbox run %d: %w", runID, err)
		}
		r.ByStatus[st] = n
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("store: outbox run %d: %w", runID, err)
	}
	return r, nil
}

// ErrOutboxBusy is returned by LockOutbox when another process (or another
// notify in this one) is sending from the same database's outbox.
var ErrOutboxBusy = errors.New("another notify is sending from this database's outbox")

// LockOutbox takes an exclusive, advisory lock for sending from the outbox
// (a file beside the database, path+".notify.lock", holding the owner's
// pid), so that two notifies at once (the service's and one by hand) never
// send the same pending email twice. The kernel drops the lock when the
// process dies: a killed notify leaves no stale lock.
func (s *Store) LockOutbox(ctx context.Context) (unlock func(), err error) {
	var path string
	if err := s.r.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&path); err != nil {
		return nil, fmt.Errorf("store: outbox lock: %w", err)
	}
	if path == "" {
		return nil, errors.New("store: outbox lock: the database has no file")
	}
	return lockFile(path+".notify.lock", 0o600, ErrOutboxBusy, "outbox lock")
}
