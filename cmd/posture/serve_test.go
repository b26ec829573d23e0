package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/nuclei"
	"github.com/nhsx/posture/reports/dashboard"
	"github.com/nhsx/posture/scanner/lab"
	"github.com/nhsx/posture/scanner/nightly"
	"github.com/nhsx/posture/scanner/store"
)

// serveLab is a small lab and the serve command line for it: the email
// family only (cheap), few workers, so a run lasts long enough to be
// killed in the middle.
type serveLab struct {
	l             *lab.Lab
	dir, db, addr string
	args          []string
	child         *exec.Cmd
	childDone     chan error
	childOut      *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newServeLab(t *testing.T, domains int, schedule string) *serveLab {
	t.Helper()
	l, err := lab.Start(context.Background(), lab.Config{Domains: domains, Latency: 15 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	dir := t.TempDir()
	s := &serveLab{l: l, dir: dir, db: filepath.Join(dir, "p.db"), addr: freeAddr(t)}
	estatePath := filepath.Join(dir, "estate.yaml")
	if err := os.WriteFile(estatePath, l.EstateYAML(), 0o644); err != nil {
		t.Fatal(err)
	}
	s.args = []string{"serve", "--estate", estatePath, "--db", s.db, "--resolver", l.DNSAddr, "--only", "email",
		"--ct-url", "", "--allow-private", "--dns-timeout", "300ms", "--schedule", schedule,
		"--listen", s.addr, "--smtp", l.SMTPAddr, "--smtp-tls", "none", "--digest", "--grace", "20s"}
	return s
}

// start runs `posture serve` in a child process (this test binary again,
// so that real signals reach it) with extra flags.
func (s *serveLab) start(t *testing.T, extra ...string) {
	t.Helper()
	s.child = postureChild(append(append([]string{}, s.args...), extra...)...)
	t.Logf("posture serve: %s", s.child.Path)
	s.childOut = &lockedBuffer{}
	s.child.Stdout, s.child.Stderr = s.childOut, s.childOut
	if err := s.child.Start(); err != nil {
		t.Fatal(err)
	}
	s.childDone = make(chan error, 1)
	go func() { s.childDone <- s.child.Wait() }()
	t.Cleanup(func() {
		if s.child.ProcessState == nil {
			s.child.Process.Kill()
		}
	})
}

// postureChild runs the real binary: the one TestMain built for the
// nuclei worker (or make test's bin/posture), both built from this tree;
// without one that knows serve, the CLI in this test binary.
func postureChild(args ...string) *exec.Cmd {
	if bin := os.Getenv(nuclei.WorkerEnv); bin != "" {
		if exec.Command(bin, "serve", "--help").Run() == nil {
			return exec.Command(bin, args...)
		}
	}
	return cliChild(args...)
}

// wait waits for the child to exit (at most d) and returns its exit code.
func (s *serveLab) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case err := <-s.childDone:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(d):
		s.child.Process.Kill()
		t.Fatalf("serve did not exit within %s\n%s", d, s.childOut.String())
	}
	return -1
}

func until(t *testing.T, what string, d time.Duration, cond func() bool, out func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s\n%s", d, what, out())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runsOf(t *testing.T, db string) []store.Run {
	t.Helper()
	if _, err := os.Stat(db); err != nil {
		return nil
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		return nil
	}
	defer st.Close()
	runs, _ := st.Runs(context.Background())
	return runs
}

// messageIDs counts the lab's received emails by Message-ID.
func messageIDs(t *testing.T, l *lab.Lab) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range l.Received() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("a received email does not parse: %v", err)
		}
		out[msg.Header.Get("Message-Id")]++
	}
	return out
}

func scrapeMetrics(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

func gauge(fams map[string]*dto.MetricFamily, name, label, value string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value {
				if m.Gauge != nil {
					return m.Gauge.GetValue(), true
				}
				return m.Counter.GetValue(), true
			}
		}
	}
	return 0, false
}

func TestServeKilledMidRunResumesItAtRestartOnceWithoutDuplicateFindingsOrEmails(t *testing.T) {
	// Every second: even on a fast machine the lab's latency keeps a run of
	// 1,467 jobs over a second (at least 1467/16 × 15 ms), so the slots
	// that come during it are skipped, and counted.
	s := newServeLab(t, 40, "@every 1s")

	// First life: killed (SIGKILL: no chance to mark anything) mid-run.
	s.start(t, "--concurrency", "2", "--per-domain", "1")
	until(t, "the first run to store some jobs", 90*time.Second, func() bool { return storedJobs(s.db) >= 5 }, s.childOut.String)
	if err := s.child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.wait(t, 10*time.Second)
	runs := runsOf(t, s.db)
	if len(runs) != 1 || runs[0].Status != store.Running {
		t.Fatalf("after SIGKILL: runs %+v, want one left running", runs)
	}
	killed := runs[0]
	if n := len(s.l.Received()); n != 0 {
		t.Fatalf("%d emails before the run completed, want none", n)
	}
	// The lock died with the process.
	unlock, err := store.LockScans(s.db)
	if err != nil {
		t.Fatalf("the scan lock after SIGKILL: %v", err)
	}
	unlock()

	// Second life: the same command (more workers, which is not part of
	// what makes a run the same) takes the run up at start.
	s.start(t, "--concurrency", "16", "--per-domain", "4")
	until(t, "the killed run to complete and its emails to arrive", 120*time.Second, func() bool {
		for _, r := range runsOf(t, s.db) {
			if r.ID == killed.ID && r.Status == store.Complete {
				return len(s.l.Received()) > 0
			}
		}
		return false
	}, s.childOut.String)
	// Let the slots that came during the run pass, and the emails settle.
	time.Sleep(3 * time.Second)

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + s.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %s, want 200", path, resp.Status)
		}
	}
	fams := scrapeMetrics(t, s.addr)
	for _, name := range []string{"posture_runs", "posture_run_duration_seconds", "posture_findings", "posture_probes",
		"posture_last_success_timestamp_seconds", "posture_service_up", "posture_skipped_slots_total"} {
		if fams[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if n, _ := gauge(fams, "posture_runs", "status", "complete"); n < 1 {
		t.Errorf("posture_runs{status=complete} = %v, want at least 1", n)
	}
	if n, ok := gauge(fams, "posture_skipped_slots_total", "reason", "overrun"); !ok || n < 1 {
		t.Errorf("posture_skipped_slots_total{reason=overrun} = %v, want at least 1 (a run longer than a second on an every-second schedule)", n)
	}

	if err := s.child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0\n%s", code, s.childOut.String())
	}

	// The killed run: resumed once, complete once; no other run overlaps it.
	runs = runsOf(t, s.db)
	var got store.Run
	for _, r := range runs {
		if r.ID == killed.ID {
			got = r
			continue
		}
		if r.ID < killed.ID || r.StartedAt.Before(got.FinishedAt) && !got.FinishedAt.IsZero() {
			t.Errorf("run %d (%s, started %v) beside the resumed run %d (finished %v)", r.ID, r.Status, r.StartedAt, killed.ID, got.FinishedAt)
		}
	}
	if got.Status != store.Complete || got.Resumes != 1 {
		t.Fatalf("the killed run: %+v, want complete after one resume", got)
	}
	for _, r := range runs {
		if r.ID != killed.ID && !r.StartedAt.After(got.FinishedAt) {
			t.Errorf("run %d started %v, before the resumed run finished at %v: the slot ran twice", r.ID, r.StartedAt, got.FinishedAt)
		}
	}

	// No finding twice in the run.
	st, err := store.Open(context.Background(), s.db)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := st.Findings(context.Background(), killed.ID)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range fs {
		if seen[f.ID] {
			t.Errorf("finding %s (%s on %s) stored twice", f.ID, f.CheckID, f.Asset.Key())
		}
		seen[f.ID] = true
	}
	if len(fs) == 0 {
		t.Error("the resumed run has no findings")
	}

	// No email twice; the killed run's emails arrived.
	ids := messageIDs(t, s.l)
	runEmails := 0
	for id, n := range ids {
		if n != 1 {
			t.Errorf("Message-ID %s received %d times", id, n)
		}
		if strings.HasPrefix(id, fmt.Sprintf("<posture.%d.", killed.ID)) {
			runEmails++
		}
	}
	if runEmails == 0 {
		t.Errorf("no email of run %d among %v", killed.ID, ids)
	}
	t.Logf("run %d: %d findings, %d emails; %d runs in all", killed.ID, len(fs), runEmails, len(runs))
}

func TestServeSIGTERMInterruptsTheRunExitsCleanlyAndReleasesTheLock(t *testing.T) {
	s := newServeLab(t, 40, "@every 1s")
	s.start(t, "--concurrency", "2", "--per-domain", "1")
	until(t, "a run to store some jobs", 90*time.Second, func() bool { return storedJobs(s.db) >= 5 }, s.childOut.String)
	start := time.Now()
	if err := s.child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\n%s", code, s.childOut.String())
	}
	t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	runs := runsOf(t, s.db)
	if len(runs) != 1 || runs[0].Status != store.Interrupted {
		t.Fatalf("runs after SIGTERM: %+v, want one interrupted run", runs)
	}
	unlock, err := store.LockScans(s.db)
	if err != nil {
		t.Fatalf("the scan lock after SIGTERM: %v", err)
	}
	unlock()
}

func TestServeRefusesBadUsageBeforeStarting(t *testing.T) {
	dir := t.TempDir()
	estatePath := filepath.Join(dir, "estate.yaml")
	os.WriteFile(estatePath, []byte("organisations:\n  - code: RXX\n    name: X\n    domains: [x.nhs.uk]\n"), 0o644)
	base := []string{"serve", "--estate", estatePath, "--db", filepath.Join(dir, "p.db")}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad schedule", []string{"--schedule", "every night"}, "--schedule"},
		{"bad time zone", []string{"--tz", "Mars/Olympus"}, "--tz"},
		{"two time zones", []string{"--tz", "Europe/London", "--schedule", "CRON_TZ=UTC 0 2 * * *"}, "give one"},
		{"beyond loopback without authentication", []string{"--listen", "0.0.0.0:0"}, "needs authentication"},
		{"no grace", []string{"--grace", "0s"}, "--grace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(append(append([]string{}, base...), tc.args...), &out, &out)
			if code != exitUsage || !strings.Contains(out.String(), tc.want) {
				t.Errorf("exit %d, output %q; want exit 2 mentioning %q", code, out.String(), tc.want)
			}
		})
	}
}

func TestServeHTTPHealthIsOpenAndTheDashboardAndMetricsNeedAuthentication(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sched, err := nightly.Parse("0 2 * * *", nil)
	if err != nil {
		t.Fatal(err)
	}
	auth := dashboard.Auth{Listen: "0.0.0.0:8080", TrustedHeader: "X-Forwarded-User"}
	s := &service{g: &globals{log: slog.New(slog.DiscardHandler)}, f: &serveFlags{listen: auth.Listen, authHeader: auth.TrustedHeader}, st: st}
	s.sched = &nightly.Scheduler{Schedule: sched, Job: func(context.Context, nightly.Slot) error { return nil }}
	s.metrics = nightly.NewMetrics(st, s.sched.State, s.serviceHealth)
	if s.schema, err = st.SchemaVersion(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := s.handler(auth)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path, user string) int {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if user != "" {
			req.Header.Set("X-Forwarded-User", user)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, user string
		want       int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 503}, // the scheduler is not running yet
		{"/metrics", "", 401},
		{"/metrics", "alice@nhs.net", 200},
		{"/", "", 401},
	} {
		if got := get(tc.path, tc.user); got != tc.want {
			t.Errorf("GET %s (user %q): %d, want %d", tc.path, tc.user, got, tc.want)
		}
	}
	// Past the access control, the dashboard answers for itself (an empty
	// database: 503, no run yet).
	if got := get("/", "alice@nhs.net"); got == 401 || got == 403 {
		t.Errorf("GET / as alice: %d, want the dashboard's own answer", got)
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.sched.Loop(lctx, false); close(done) }()
	defer func() { cancel(); <-done }()
	until(t, "the scheduler to run", 10*time.Second, func() bool { return s.sched.State().Running }, func() string { return "" })
	if got := get("/readyz", ""); got != 200 {
		t.Errorf("GET /readyz with the scheduler running: %d, want 200", got)
	}
}

func TestServeSkipsASlotWhileAnotherScanHoldsTheLock(t *testing.T) {
	s := newServeLab(t, 5, "@every 1s")
	unlock, err := store.LockScans(s.db) // a manual `posture scan` in progress
	if err != nil {
		t.Fatal(err)
	}
	s.start(t)
	until(t, "a slot skipped as locked", 60*time.Second, func() bool {
		return strings.Contains(s.childOut.String(), `"reason":"locked"`)
	}, s.childOut.String)
	if runs := runsOf(t, s.db); len(runs) != 0 {
		t.Errorf("runs while the lock was held: %+v, want none", runs)
	}
	if n, ok := gauge(scrapeMetrics(t, s.addr), "posture_skipped_slots_total", "reason", "locked"); !ok || n < 1 {
		t.Errorf("posture_skipped_slots_total{reason=locked} = %v, want at least 1", n)
	}
	unlock()
	until(t, "a run once the lock is free", 60*time.Second, func() bool { return len(runsOf(t, s.db)) > 0 }, s.childOut.String)
	s.child.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0\n%s", code, s.childOut.String())
	}
}

func TestServeAtStartSendsTheNewestCompleteRunsEmailsOnceIfItDiedBeforeSending(t *testing.T) {
	ctx := context.Background()
	l, err := lab.Start(ctx, lab.Config{Domains: 1}) // its mail sink
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	db := filepath.Join(t.TempDir(), "p.db")
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A run completed by a service that died before notifying: two
	// organisations with failures, never queued in the outbox.
	var orgs []store.Org
	for _, code := range []string{"RXA", "RXB"} {
		orgs = append(orgs, store.Org{Code: code, Name: code + " Trust", Contacts: []string{"it@" + strings.ToLower(code) + ".nhs.uk"},
			Domains: []string{strings.ToLower(code) + ".nhs.uk"}})
	}
	if err := st.PutOrganisations(ctx, orgs); err != nil {
		t.Fatal(err)
	}
	run, _, err := st.BeginRun(ctx, "k", "{}")
	if err != nil {
		t.Fatal(err)
	}
	id := checksCatalogueID(t)
	for _, o := range orgs {
		a := check.Asset{Kind: check.KindDomain, Name: o.Domains[0], Domain: o.Domains[0], Org: o.Code}
		f := check.Finding{CheckID: id, Rule: "r", Asset: a, Outcome: check.Fail, Severity: check.High, Message: "bad"}
		if err := st.PutResult(ctx, run.ID, check.Evidence{CheckID: id, Asset: a, CollectedAt: time.Now()}, []check.Finding{f}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.FinishRun(ctx, run.ID, store.Complete); err != nil {
		t.Fatal(err)
	}

	s := &service{g: &globals{log: slog.New(slog.DiscardHandler)}, st: st,
		f: &serveFlags{notify: notifyOptions{SMTP: l.SMTPAddr, TLS: "none", From: "posture@nhs.net", Digest: true}}}
	s.f.scan.db = db
	s.metrics = nightly.NewMetrics(st, nil, nil)
	s.catchUpNotify(ctx)
	first := messageIDs(t, l)
	if len(first) != 2 {
		t.Fatalf("emails after the first start: %v, want one per organisation", first)
	}
	s.catchUpNotify(ctx) // the next start: the run is notified already
	again := messageIDs(t, l)
	for mid, n := range again {
		if n != 1 {
			t.Errorf("Message-ID %s received %d times", mid, n)
		}
	}
	if len(again) != len(first) {
		t.Errorf("emails after the second start: %v, want the first start's %v only", again, first)
	}
}

// checksCatalogueID is a real catalogue id, so the summary keeps the finding.
func checksCatalogueID(t *testing.T) string {
	t.Helper()
	for _, m := range checks.Catalogue() {
		if m.Family == "dns" {
			return m.ID
		}
	}
	t.Fatal("no dns check in the catalogue")
	return ""
}

func TestServeCatchesUpASlotItWasDownForWhenAsked(t *testing.T) {
	// Hourly at :00: a slot came within the last hour, and the database has
	// no run since, so with --catch-up the service runs at start.
	s := newServeLab(t, 5, "0 * * * *")
	s.start(t, "--catch-up", "2h")
	until(t, "a run at start", 60*time.Second, func() bool {
		for _, r := range runsOf(t, s.db) {
			if r.Status == store.Complete {
				return true
			}
		}
		return false
	}, s.childOut.String)
	if !strings.Contains(s.childOut.String(), "--catch-up") {
		t.Errorf("the log does not say why it ran at start:\n%s", s.childOut.String())
	}
	s.child.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0\n%s", code, s.childOut.String())
	}
	if runs := runsOf(t, s.db); len(runs) != 1 {
		t.Errorf("runs: %+v, want the one caught up", runs)
	}
}
