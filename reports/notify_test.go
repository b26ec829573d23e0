package reports

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/nhsx/posture/scanner/store"
)

// storeOutbox is the store's outbox as Outbox (cmd/posture has the same
// adapter); the tests use the real store, so that what survives a crash
// is what SQLite kept.
type storeOutbox struct{ st *store.Store }

func (o storeOutbox) QueueOutbox(ctx context.Context, runID int64, digest bool, msgs []QueuedEmail) (bool, error) {
	out := make([]store.OutboxMessage, len(msgs))
	for i, m := range msgs {
		out[i] = store.OutboxMessage(m)
	}
	return o.st.QueueOutbox(ctx, runID, digest, out)
}

func (o storeOutbox) OutboxPending(ctx context.Context) ([]QueuedEmail, error) {
	ms, err := o.st.OutboxPending(ctx)
	out := make([]QueuedEmail, len(ms))
	for i, m := range ms {
		out[i] = QueuedEmail(m)
	}
	return out, err
}

func (o storeOutbox) MarkOutboxSent(ctx context.Context, id string) error {
	return o.st.MarkOutboxSent(ctx, id)
}

func (o storeOutbox) MarkOutboxAttempt(ctx context.Context, id, reason string, permanent bool) error {
	return o.st.MarkOutboxAttempt(ctx, id, reason, permanent)
}

func (o storeOutbox) LockOutbox(ctx context.Context) (func(), error) { return o.st.LockOutbox(ctx) }

func (o storeOutbox) ExpireOutbox(ctx context.Context, cutoff time.Time) (int, error) {
	return o.st.ExpireOutbox(ctx, cutoff)
}

// notifyStore opens a store at path holding the fixture's three runs (the
// outbox refers to them).
func notifyStore(t testing.TB, path string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	runs, err := st.Runs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(runs); i < 3; i++ {
		if _, _, err := st.BeginRun(ctx, fmt.Sprint("run", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// completeSummary is the fixture's newest run, complete: the only kind
// Notify emails about.
func completeSummary(t *testing.T) *Summary {
	t.Helper()
	src := fixture()
	src.runs[0].Status = "complete"
	return mustSummary(t, src)
}

// tlsSink is a relay with STARTTLS and the Mailer that trusts it.
func tlsSink(t *testing.T, s *sink) (*sink, *Mailer) {
	t.Helper()
	cert, pool := selfSigned(t)
	serveSink(t, s, &tls.Config{Certificates: []tls.Certificate{cert}}, false)
	return s, &Mailer{Addr: s.addr, TLSConfig: trusting(pool), Timeout: 5 * time.Second}
}

// orgsReceived lists the X-Posture-Org of every message the sink accepted.
func orgsReceived(t *testing.T, s *sink) []string {
	t.Helper()
	var orgs []string
	for _, m := range s.messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.data))
		if err != nil {
			t.Fatal(err)
		}
		orgs = append(orgs, msg.Header.Get("X-Posture-Org"))
	}
	slices.Sort(orgs)
	return orgs
}

func outboxStatus(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	r, err := st.OutboxRunStatus(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	return r.ByStatus
}

var fixtureOrgs = []string{"RJ7", "RVR", "RYJ"}

func TestNotifySendsEachEmailOnceAcrossRepeats(t *testing.T) {
	st := notifyStore(t, filepath.Join(t.TempDir(), "posture.db"))
	s, m := tlsSink(t, &sink{})
	sum := completeSummary(t)
	o := NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m}
	res, err := Notify(sendCtx(t), storeOutbox{st}, sum, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.AlreadyQueued || res.Queued != 3 || res.Sent != 3 || res.Pending != 0 {
		t.Errorf("first notify: %+v", res)
	}
	// The invalid RYJ contact is a warning, not a failure.
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "RYJ") {
		t.Errorf("warnings %q", res.Warnings)
	}
	// Again, and with --digest this time: the run was notified, nothing is
	// queued or sent, and it says so.
	o.Email.Digest = true
	res, err = Notify(sendCtx(t), storeOutbox{st}, sum, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.AlreadyQueued || res.Queued != 0 || res.Sent != 0 {
		t.Errorf("second notify: %+v", res)
	}
	if !strings.Contains(res.String(), "run 3 was already notified: 0 sent (nothing pending)") {
		t.Errorf("second notify says %q", res)
	}
	if got := orgsReceived(t, s); !slices.Equal(got, fixtureOrgs) {
		t.Errorf("received for %v, want %v once each", got, fixtureOrgs)
	}
	if got := outboxStatus(t, st); got[store.OutboxSent] != 3 || len(got) != 1 {
		t.Errorf("outbox %v", got)
	}
}

func TestNotifyQueuesEveryEmailBeforeSendingAny(t *testing.T) {
	st := notifyStore(t, filepath.Join(t.TempDir(), "posture.db"))
	var queuedAtFirstData map[string]int
	_, m := tlsSink(t, &sink{onData: func(n int, _ []byte, _ *smtp.Conn) error {
		if n == 1 {
			queuedAtFirstData = outboxStatus(t, st)
		}
		return nil
	}})
	if _, err := Notify(sendCtx(t), storeOutbox{st}, completeSummary(t), NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m}); err != nil {
		t.Fatal(err)
	}
	if queuedAtFirstData[store.OutboxPending] != 3 {
		t.Errorf("outbox when the first email reached the relay: %v, want all 3 queued", queuedAtFirstData)
	}
}

func TestNotifyRetriesATemporaryRefusalOnTheNextNotify(t *testing.T) {
	st := notifyStore(t, filepath.Join(t.TempDir(), "posture.db"))
	var mu sync.Mutex
	down := true
	s, m := tlsSink(t, &sink{onData: func(_ int, data []byte, _ *smtp.Conn) error {
		mu.Lock()
		defer mu.Unlock()
		if down && bytes.Contains(data, []byte("X-Posture-Org: RVR")) {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "insufficient storage"}
		}
		return nil
	}})
	sum := completeSummary(t)
	o := NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m}
	res, err := Notify(sendCtx(t), storeOutbox{st}, sum, o)
	if err == nil || !strings.Contains(err.Error(), "452") {
		t.Errorf("err %v, want the 452 reported", err)
	}
	if res.Sent != 2 || res.Pending != 1 {
		t.Errorf("first notify: %+v", res)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	res, err = Notify(sendCtx(t), storeOutbox{st}, sum, o)
	if err != nil || !res.AlreadyQueued || res.Sent != 1 || res.Pending != 0 {
		t.Errorf("retry: %+v, %v; want the one pending email sent", res, err)
	}
	if got := orgsReceived(t, s); !slices.Equal(got, fixtureOrgs) {
		t.Errorf("received for %v, want %v once each", got, fixtureOrgs)
	}
}

func TestNotifyPermanentRefusalIsNotRetried(t *testing.T) {
	st := notifyStore(t, filepath.Join(t.TempDir(), "posture.db"))
	s, m := tlsSink(t, &sink{onData: func(_ int, data []byte, _ *smtp.Conn) error {
		if bytes.Contains(data, []byte("X-Posture-Org: RJ7")) {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "content rejected"}
		}
		return nil
	}})
	o := NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m}
	res, err := Notify(sendCtx(t), storeOutbox{st}, completeSummary(t), o)
	if err == nil || res.Failed != 1 || res.Sent != 2 || res.Pending != 0 {
		t.Errorf("%+v, %v", res, err)
	}
	res, _ = Notify(sendCtx(t), storeOutbox{st}, completeSummary(t), o)
	if res.Sent != 0 || res.Failed != 0 {
		t.Errorf("the refused email was tried again: %+v", res)
	}
	if n := len(s.messages()); n != 2 {
		t.Errorf("%d accepted, want 2", n)
	}
}

// The process's context ends while the relay holds the third email's DATA
// (a shutdown mid-send): the two accepted are marked sent, the third stays
// pending, and the next notify sends only it.
func TestNotifyCancelledMidSendResumesWithoutResending(t *testing.T) {
	st := notifyStore(t, filepath.Join(t.TempDir(), "posture.db"))
	ctx, cancel := context.WithCancel(sendCtx(t))
	s, m := tlsSink(t, &sink{onData: func(n int, _ []byte, c *smtp.Conn) error {
		if n == 3 {
			cancel()
			// Hold the reply until the client has gone.
			time.Sleep(200 * time.Millisecond)
			return &smtp.SMTPError{Code: 421, Message: "shutting down"}
		}
		return nil
	}})
	sum := completeSummary(t)
	o := NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m}
	res, err := Notify(ctx, storeOutbox{st}, sum, o)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if res.Sent != 2 || res.Pending != 1 {
		t.Errorf("interrupted notify: %+v", res)
	}
	if got := outboxStatus(t, st); got[store.OutboxSent] != 2 || got[store.OutboxPending] != 1 {
		t.Errorf("outbox after the interruption %v", got)
	}
	res, err = Notify(sendCtx(t), storeOutbox{st}, sum, o)
	if err != nil || res.Sent != 1 || res.Pending != 0 {
		t.Errorf("resumed notify: %+v, %v", res, err)
	}
	if got := orgsReceived(t, s); !slices.Equal(got, fixtureOrgs) {
		t.Errorf("received for %v, want %v once each", got, fixtureOrgs)
	}
}

// The relay drops the connection during the second email: the first is
// sent, the second waits for the next notify, the third goes over a new
// connection.
func TestNotifyConnectionDroppedMidSend(t *testing.T) {
	st := notifyStore(t, filepath.Join(t.TempDir(), "posture.db"))
	var mu sync.Mutex
	dropped := ""
	s, m := tlsSink(t, &sink{onData: func(n int, data []byte, c *smtp.Conn) error {
		if n == 2 {
			msg, _ := mail.ReadMessage(bytes.NewReader(data))
			mu.Lock()
			dropped = msg.Header.Get("X-Posture-Org")
			mu.Unlock()
			c.Close()
			return errors.New("dropped")
		}
		return nil
	}})
	sum := completeSummary(t)
	o := NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m}
	res, err := Notify(sendCtx(t), storeOutbox{st}, sum, o)
	if err == nil || res.Sent != 2 || res.Pending != 1 {
		t.Errorf("notify with a dropped connection: %+v, %v", res, err)
	}
	ps, _ := st.OutboxPending(context.Background())
	if len(ps) != 1 || ps[0].Org != dropped {
		t.Fatalf("pending %v, want only %s", ps, dropped)
	}
	if res, err := Notify(sendCtx(t), storeOutbox{st}, sum, o); err != nil || res.Sent != 1 {
		t.Errorf("next notify: %+v, %v", res, err)
	}
	if got := orgsReceived(t, s); !slices.Equal(got, fixtureOrgs) {
		t.Errorf("received for %v, want %v once each", got, fixtureOrgs)
	}
}

// A notify process killed (SIGKILL: no clean-up at all) while the relay
// holds its third email: a new process sends only that one.
func TestNotifyKilledMidSendResumesWithoutResending(t *testing.T) {
	if os.Getenv("POSTURE_NOTIFY_CHILD") != "" {
		t.Skip("the child runs TestNotifyChildProcess")
	}
	db := filepath.Join(t.TempDir(), "posture.db")
	st := notifyStore(t, db)
	st.Close()
	held := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	cert, pool := selfSigned(t)
	s := serveSink(t, &sink{onData: func(n int, _ []byte, _ *smtp.Conn) error {
		if n == 3 {
			close(held)
			<-release
			return &smtp.SMTPError{Code: 421, Message: "gone"}
		}
		return nil
	}}, &tls.Config{Certificates: []tls.Certificate{cert}}, false)
	m := &Mailer{Addr: s.addr, TLSConfig: trusting(pool), Timeout: 5 * time.Second}
	pem := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(pem, encodePEM(cert.Leaf.Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNotifyChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "POSTURE_NOTIFY_CHILD="+db+"|"+s.addr+"|"+pem)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child never reached the third email:\n%s", out.String())
	}
	cmd.Process.Kill()
	cmd.Wait()

	st = notifyStore(t, db)
	if got := outboxStatus(t, st); got[store.OutboxSent] != 2 || got[store.OutboxPending] != 1 {
		t.Fatalf("outbox after the kill %v", got)
	}
	res, err := Notify(sendCtx(t), storeOutbox{st}, completeSummary(t), NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m})
	if err != nil || res.Sent != 1 || !res.AlreadyQueued {
		t.Errorf("after restart: %+v, %v", res, err)
	}
	if got := orgsReceived(t, s); !slices.Equal(got, fixtureOrgs) {
		t.Errorf("received for %v, want %v once each", got, fixtureOrgs)
	}
}

// TestNotifyChildProcess is the notify process the test above kills.
func TestNotifyChildProcess(t *testing.T) {
	env := os.Getenv("POSTURE_NOTIFY_CHILD")
	if env == "" {
		t.Skip("only run as the child of TestNotifyKilledMidSendResumesWithoutResending")
	}
	parts := strings.Split(env, "|")
	st, err := store.Open(context.Background(), parts[0])
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in", parts[2])
	}
	m := &Mailer{Addr: parts[1], TLSConfig: trusting(pool), Timeout: time.Minute}
	Notify(context.Background(), storeOutbox{st}, completeSummary(t), NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m})
	t.Fatal("the child should have been killed")
}

func encodePEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestNotifyRefusesAnIncompleteRun(t *testing.T) {
	st := notifyStore(t, filepath.Join(t.TempDir(), "posture.db"))
	s, m := tlsSink(t, &sink{})
	_, err := Notify(sendCtx(t), storeOutbox{st}, mustSummary(t, fixture()), NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m})
	if err == nil || !strings.Contains(err.Error(), "not complete") {
		t.Errorf("err %v", err)
	}
	if r, _ := st.OutboxRunStatus(context.Background(), 3); r.Queued || len(s.messages()) != 0 {
		t.Errorf("an incomplete run was queued (%v) or sent", r.Queued)
	}
}

func TestNotifyExpiresEmailsPendingTooLong(t *testing.T) {
	st := notifyStore(t, filepath.Join(t.TempDir(), "posture.db"))
	// The relay is down for the first notify.
	_, down := tlsSink(t, &sink{})
	down.Addr = "127.0.0.1:1"
	sum := completeSummary(t)
	o := NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: down}
	if res, err := Notify(sendCtx(t), storeOutbox{st}, sum, o); err == nil || res.Pending != 3 {
		t.Fatalf("relay down: %+v, %v", res, err)
	}
	s, m := tlsSink(t, &sink{})
	o.Mailer = m
	o.Now = func() time.Time { return time.Now().Add(DefaultOutboxMaxAge + time.Hour) }
	res, err := Notify(sendCtx(t), storeOutbox{st}, sum, o)
	if err != nil || res.Expired != 3 || res.Sent != 0 {
		t.Errorf("a week later: %+v, %v", res, err)
	}
	if n := len(s.messages()); n != 0 {
		t.Errorf("%d stale emails sent", n)
	}
}

func TestNotifyWhileAnotherIsSendingSendsNothing(t *testing.T) {
	st := notifyStore(t, filepath.Join(t.TempDir(), "posture.db"))
	s, m := tlsSink(t, &sink{})
	unlock, err := st.LockOutbox(context.Background()) // the other notify
	if err != nil {
		t.Fatal(err)
	}
	o := NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m}
	if _, err := Notify(sendCtx(t), storeOutbox{st}, completeSummary(t), o); !errors.Is(err, store.ErrOutboxBusy) {
		t.Errorf("err %v, want store.ErrOutboxBusy", err)
	}
	if r, _ := st.OutboxRunStatus(context.Background(), 3); r.Queued || len(s.messages()) != 0 {
		t.Errorf("queued %v, sent %d while another notify held the outbox", r.Queued, len(s.messages()))
	}
	unlock()
	if res, err := Notify(sendCtx(t), storeOutbox{st}, completeSummary(t), o); err != nil || res.Sent != 3 {
		t.Errorf("once released: %+v, %v", res, err)
	}
}

// One of an organisation's contacts is refused (550): the others get the
// email, it is sent (never again), and the refusal is a warning.
func TestNotifyARefusedContactDoesNotHoldUpTheOthers(t *testing.T) {
	st := notifyStore(t, filepath.Join(t.TempDir(), "posture.db"))
	s, m := tlsSink(t, &sink{refuse: "security@epsom-sthelier.nhs.uk"})
	res, err := Notify(sendCtx(t), storeOutbox{st}, completeSummary(t), NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m})
	if err != nil || res.Sent != 3 {
		t.Fatalf("%+v, %v", res, err)
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool {
		return strings.Contains(w, "security@epsom-sthelier.nhs.uk") && strings.Contains(w, "550")
	}) {
		t.Errorf("warnings %q lack the refused contact", res.Warnings)
	}
	rvr := 0
	for _, r := range s.messages() {
		if slices.Contains(r.to, "it@epsom-sthelier.nhs.uk") {
			rvr++
			if !slices.Equal(r.to, []string{"it@epsom-sthelier.nhs.uk"}) {
				t.Errorf("RVR envelope %v", r.to)
			}
		}
	}
	if rvr != 1 {
		t.Errorf("RVR's other contact got %d emails, want 1", rvr)
	}
	if got := outboxStatus(t, st); got[store.OutboxSent] != 3 {
		t.Errorf("outbox %v", got)
	}
}
