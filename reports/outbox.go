package reports

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// QueuedEmail is one email in the outbox: its envelope and the exact bytes
// sent. Its fields match store.OutboxMessage field for field, so that the
// one converts to the other.
type QueuedEmail struct {
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

// Outbox keeps the emails of each run until the relay has accepted them
// (the store's outbox table, through an adapter in cmd).
type Outbox interface {
	// LockOutbox is held while a notify queues and sends, so that two at
	// once never send the same email; it fails at once if another holds it.
	LockOutbox(ctx context.Context) (unlock func(), err error)
	// QueueOutbox stores a run's emails unless the run was queued before
	// (then it stores nothing and returns false).
	QueueOutbox(ctx context.Context, runID int64, digest bool, msgs []QueuedEmail) (queued bool, err error)
	// OutboxPending lists the pending emails of every run, oldest first.
	OutboxPending(ctx context.Context) ([]QueuedEmail, error)
	// MarkOutboxSent records the relay's acceptance; it must be durable
	// when it returns.
	MarkOutboxSent(ctx context.Context, messageID string) error
	// MarkOutboxAttempt records a failure; permanent ones are not retried.
	MarkOutboxAttempt(ctx context.Context, messageID, reason string, permanent bool) error
	// ExpireOutbox drops pending emails queued before cutoff.
	ExpireOutbox(ctx context.Context, cutoff time.Time) (int, error)
}

// DefaultOutboxMaxAge is how long an email may wait for the relay before
// it is dropped: older news would mislead more than help (the next change
// email covers it).
const DefaultOutboxMaxAge = 7 * 24 * time.Hour

// NotifyOptions tune Notify.
type NotifyOptions struct {
	Email  EmailOptions // From, Digest, Limit
	Mailer *Mailer
	// MaxAge: pending emails queued longer ago are expired, not sent
	// (default DefaultOutboxMaxAge).
	MaxAge time.Duration
	Now    func() time.Time // default time.Now
}

// NotifyResult says what Notify did.
type NotifyResult struct {
	RunID int64
	// AlreadyQueued: the run's emails were queued by an earlier notify;
	// nothing new was queued, only what was still pending was sent.
	AlreadyQueued bool
	Queued        int // emails of this run queued now
	Sent          int // accepted by the relay now
	Failed        int // refused for good now (5xx)
	Pending       int // still pending: a temporary failure, or not reached
	Expired       int // pending for longer than MaxAge: dropped
	// Warnings: contacts that are not addresses, recipients the relay
	// refused while it took the message for the others.
	Warnings []string
}

// String is the one-line account `posture notify` prints.
func (r NotifyResult) String() string {
	var b strings.Builder
	if r.AlreadyQueued {
		fmt.Fprintf(&b, "run %d was already notified: ", r.RunID)
	} else {
		fmt.Fprintf(&b, "run %d: %d emails queued; ", r.RunID, r.Queued)
	}
	fmt.Fprintf(&b, "%d sent", r.Sent)
	if r.Sent == 0 && r.AlreadyQueued && r.Pending == 0 && r.Failed == 0 {
		b.WriteString(" (nothing pending)")
	}
	if r.Failed > 0 {
		fmt.Fprintf(&b, ", %d refused by the relay", r.Failed)
	}
	if r.Pending > 0 {
		fmt.Fprintf(&b, ", %d pending (sent by the next notify)", r.Pending)
	}
	if r.Expired > 0 {
		fmt.Fprintf(&b, ", %d expired unsent", r.Expired)
	}
	return b.String()
}

// Notify emails each organisation of the summary's run what changed, once.
//
// The run's emails are built and queued in the outbox, bytes and all,
// before any is sent (a run is queued once: a second Notify of the same run
// queues nothing). Then every pending email of the outbox, this run's and
// any an earlier notify could not send, is delivered; each is marked sent
// right after the relay accepts its DATA, before the next is sent. A crash
// or a dropped connection leaves the rest pending for the next Notify, and
// an accepted email is never sent again.
//
// The error is not nil when an email could not be sent (it stays pending or
// is failed) or the relay could not be used; the result counts what was done.
func Notify(ctx context.Context, ob Outbox, s *Summary, o NotifyOptions) (NotifyResult, error) {
	if s == nil || s.Estate == nil {
		return NotifyResult{}, errNoSummary
	}
	res := NotifyResult{RunID: s.Run.ID}
	if s.Run.Status != "complete" {
		return res, fmt.Errorf("reports: notify: run %d is %s, not complete: its changes are not final", s.Run.ID, asciiSafe(s.Run.Status))
	}
	if o.Mailer == nil {
		return res, errors.New("reports: notify: no mailer")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	maxAge := o.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultOutboxMaxAge
	}
	emails, err := o.Email.Build(s)
	if err != nil && emails == nil {
		return res, err
	}
	if err != nil {
		for _, e := range unjoin(err) {
			res.Warnings = append(res.Warnings, e.Error())
		}
	}
	unlock, err := ob.LockOutbox(ctx)
	if err != nil {
		return res, err
	}
	defer unlock()
	queue := make([]QueuedEmail, 0, len(emails))
	for _, e := range emails {
		m, err := e.Message()
		if err != nil {
			return res, err
		}
		kind := "change"
		if strings.HasPrefix(e.Subject, digestPrefix) {
			kind = "digest"
		}
		queue = append(queue, QueuedEmail{RunID: s.Run.ID, Org: e.Org, Kind: kind, MessageID: m.ID,
			From: m.From, To: m.To, Data: m.Data})
	}
	queued, err := ob.QueueOutbox(ctx, s.Run.ID, o.Email.Digest, queue)
	if err != nil {
		return res, err
	}
	res.AlreadyQueued = !queued
	if queued {
		res.Queued = len(queue)
	}
	if res.Expired, err = ob.ExpireOutbox(ctx, now().Add(-maxAge)); err != nil {
		return res, err
	}
	pending, err := ob.OutboxPending(ctx)
	if err != nil {
		return res, err
	}
	msgs := make([]Message, len(pending))
	for i, p := range pending {
		msgs[i] = Message{ID: p.MessageID, From: p.From, To: p.To, Data: p.Data}
	}
	res.Pending = len(msgs)
	var failures []error
	derr := o.Mailer.Deliver(ctx, msgs, func(m Message, err error) error {
		var se *SendError
		switch {
		case err == nil:
		case errors.As(err, &se) && se.Accepted:
			res.Warnings = append(res.Warnings, err.Error())
		case errors.As(err, &se):
			// Record the failure even if ctx has just ended: it must not be lost.
			if merr := ob.MarkOutboxAttempt(context.WithoutCancel(ctx), m.ID, asciiSafe(err.Error()), se.Permanent); merr != nil {
				return merr
			}
			if se.Permanent {
				res.Failed++
				res.Pending--
			}
			failures = append(failures, err)
			return nil
		default:
			return err
		}
		// The relay has accepted it: record that before anything else is
		// sent, and even if ctx has ended meanwhile.
		if merr := ob.MarkOutboxSent(context.WithoutCancel(ctx), m.ID); merr != nil {
			return fmt.Errorf("reports: notify: %s was accepted by the relay but could not be marked sent (it may be sent again): %w", asciiSafe(m.ID), merr)
		}
		res.Sent++
		res.Pending--
		return nil
	})
	if derr != nil {
		failures = append(failures, derr)
	}
	if res.Pending > 0 {
		failures = append(failures, fmt.Errorf("reports: notify: %d emails still pending", res.Pending))
	}
	return res, errors.Join(failures...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
