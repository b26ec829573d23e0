package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func outboxMsgs(run int64, orgs ...string) []OutboxMessage {
	var ms []OutboxMessage
	for _, o := range orgs {
		ms = append(ms, OutboxMessage{RunID: run, Org: o, MessageID: "posture." + o + "@nhs.net", From: "posture@nhs.net",
			To: []string{"it@" + o + ".nhs.uk", "sec@" + o + ".nhs.uk"}, Data: []byte("Subject: " + o + "\r\n\r\nbody\r\n")})
	}
	return ms
}

func pendingIDs(t *testing.T, s *Store) []string {
	t.Helper()
	ps, err := s.OutboxPending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.MessageID)
	}
	return ids
}

func TestOutboxQueuesARunOnceAndKeepsItsBytes(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	run := mustBegin(t, s, "k")
	ms := outboxMsgs(run.ID, "RJ7", "RVR")
	ok, err := s.QueueOutbox(ctx, run.ID, false, ms)
	if err != nil || !ok {
		t.Fatalf("first queue: %v %v", ok, err)
	}
	// A second queue of the same run stores nothing, even with other emails.
	ok, err = s.QueueOutbox(ctx, run.ID, true, outboxMsgs(run.ID, "RAX"))
	if err != nil || ok {
		t.Fatalf("second queue: queued %v, err %v; want false, nil", ok, err)
	}
	ps, err := s.OutboxPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("%d pending, want 2", len(ps))
	}
	for i, p := range ps {
		w := ms[i]
		if p.MessageID != w.MessageID || p.Org != w.Org || string(p.Data) != string(w.Data) ||
			!slices.Equal(p.To, w.To) || p.From != w.From || p.Status != OutboxPending || p.Kind != "change" {
			t.Errorf("pending %d: %+v, want %+v", i, p, w)
		}
	}
	st, err := s.OutboxRunStatus(ctx, run.ID)
	if err != nil || !st.Queued || st.Emails != 2 || st.Digest || st.ByStatus[OutboxPending] != 2 {
		t.Errorf("status %+v %v", st, err)
	}
}

func TestOutboxARunWithNoEmailsIsStillQueued(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	run := mustBegin(t, s, "k")
	if st, _ := s.OutboxRunStatus(ctx, run.ID); st.Queued {
		t.Fatal("queued before QueueOutbox")
	}
	if ok, err := s.QueueOutbox(ctx, run.ID, false, nil); err != nil || !ok {
		t.Fatalf("queue: %v %v", ok, err)
	}
	if st, _ := s.OutboxRunStatus(ctx, run.ID); !st.Queued || st.Emails != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestOutboxMarkSentIsFinalAndSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "posture.db")
	s, _ := openAt(t, path)
	run := mustBegin(t, s, "k")
	ms := outboxMsgs(run.ID, "RJ7", "RVR", "RAX")
	if _, err := s.QueueOutbox(ctx, run.ID, false, ms); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkOutboxSent(ctx, ms[0].MessageID); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkOutboxAttempt(ctx, ms[1].MessageID, "451 try later", false); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkOutboxAttempt(ctx, ms[2].MessageID, "550 no such user", true); err != nil {
		t.Fatal(err)
	}
	// Sent and failed messages are not pending any more: marking them again
	// is refused, so an accepted message can never be re-queued.
	for _, id := range []string{ms[0].MessageID, ms[2].MessageID} {
		if err := s.MarkOutboxSent(ctx, id); !errors.Is(err, ErrNotPending) {
			t.Errorf("mark %s again: %v, want ErrNotPending", id, err)
		}
	}
	s.Close()
	s2, _ := openAt(t, path)
	if got := pendingIDs(t, s2); !slices.Equal(got, []string{ms[1].MessageID}) {
		t.Errorf("pending after reopen %v, want only %s", got, ms[1].MessageID)
	}
	ps, _ := s2.OutboxPending(ctx)
	if ps[0].Attempts != 1 || ps[0].LastError != "451 try later" {
		t.Errorf("temporary failure recorded as %+v", ps[0])
	}
	st, _ := s2.OutboxRunStatus(ctx, run.ID)
	if st.ByStatus[OutboxSent] != 1 || st.ByStatus[OutboxFailed] != 1 || st.ByStatus[OutboxPending] != 1 {
		t.Errorf("by status %v", st.ByStatus)
	}
}

func TestOutboxExpiresOldPendingMessagesOnly(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	r1 := mustBegin(t, s, "a")
	if _, err := s.QueueOutbox(ctx, r1.ID, false, outboxMsgs(r1.ID, "OLD")); err != nil {
		t.Fatal(err)
	}
	c.advance(8 * 24 * time.Hour)
	r2 := mustBegin(t, s, "b")
	if _, err := s.QueueOutbox(ctx, r2.ID, false, outboxMsgs(r2.ID, "NEW")); err != nil {
		t.Fatal(err)
	}
	n, err := s.ExpireOutbox(ctx, c.now().Add(-7*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("expired %d, %v; want 1", n, err)
	}
	if got := pendingIDs(t, s); !slices.Equal(got, []string{"posture.NEW@nhs.net"}) {
		t.Errorf("pending %v", got)
	}
}

func TestOutboxLockIsExclusiveUntilReleased(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "posture.db")
	s, _ := openAt(t, path)
	unlock, err := s.LockOutbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Another handle on the same database (another process's notify).
	s2, _ := openAt(t, path)
	if _, err := s2.LockOutbox(ctx); !errors.Is(err, ErrOutboxBusy) {
		t.Fatalf("second lock: %v, want ErrOutboxBusy", err)
	}
	unlock()
	unlock2, err := s2.LockOutbox(ctx)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}

func TestOutboxLockOfARelativePathIsBesideTheDatabase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s, _ := openAt(t, "posture.db")
	unlock, err := s.LockOutbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, "posture.db.notify.lock")); err != nil {
		t.Error(err)
	}
}
