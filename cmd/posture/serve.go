package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
	_ "time/tzdata" // --tz works on hosts and images without a zoneinfo database

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/reports/dashboard"
	"github.com/nhsx/posture/scanner"
	"github.com/nhsx/posture/scanner/nightly"
	"github.com/nhsx/posture/scanner/store"
)

type serveFlags struct {
	scan                      scanFlags
	schedule, tz, listen      string
	grace, catchUp            time.Duration
	authHeader, basicAuthFile string
	notify                    notifyOptions
}

func serveCmd(g *globals) *cobra.Command {
	f := &serveFlags{}
	c := &cobra.Command{
		Use:   "serve",
		Short: "The nightly service: scan on a schedule, notify, and serve the dashboard, /metrics, /healthz and /readyz",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve(cmd.Context(), g, f)
		},
	}
	f.scan.register(c.Flags())
	fl := c.Flags()
	fl.StringVar(&f.schedule, "schedule", "0 2 * * *", "when to run: a cron spec (5 fields, or 6 with seconds first), @daily or @every DURATION; CRON_TZ=Zone first names its time zone")
	fl.StringVar(&f.tz, "tz", "", "time zone of the schedule (e.g. Europe/London; default UTC, or the spec's CRON_TZ=)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "HTTP address of the dashboard, /metrics, /healthz and /readyz; beyond loopback it needs --auth-header or --basic-auth-file")
	fl.DurationVar(&f.grace, "grace", 30*time.Second, "on SIGTERM or SIGINT, how long to wait for the run in progress to stop (marked interrupted, resumed at the next start) before exiting anyway")
	fl.DurationVar(&f.catchUp, "catch-up", 0, "at start, run at once if a slot came in this window before it and no run started since (the service was down at that time); 0: wait for the next slot")
	fl.StringVar(&f.authHeader, "auth-header", "", "trust this request header (set by an authenticating reverse proxy) as the user's name; requests without it are refused")
	fl.StringVar(&f.basicAuthFile, "basic-auth-file", "", "htpasswd file of user:bcrypt-hash lines (htpasswd -B) for HTTP basic authentication")
	f.notify.Warn = g.stderr
	addNotifyFlags(fl, &f.notify, "smtp-ca-file") // --ca-file is the scan's; --smtp empty: no emails
	return c
}

// service is one `posture serve`: the store, the scheduler, the metrics
// and the run in progress's configured services (for their health).
type service struct {
	g       *globals
	f       *serveFlags
	st      *store.Store
	sched   *nightly.Scheduler
	metrics *nightly.Metrics
	schema  int // the schema version Open migrated the database to

	mu       sync.Mutex
	warm     func(context.Context) error // the dashboard's summary built ahead of its first reader
	services *scanner.Services
	names    []string // configured services of the current or last run
}

func serve(ctx context.Context, g *globals, f *serveFlags) error {
	// Everything that can be wrong with the command line is found before
	// anything starts: exit 2, not a service that fails at 02:00.
	var loc *time.Location
	if f.tz != "" {
		l, err := time.LoadLocation(f.tz)
		if err != nil {
			return usagef("--tz %q: %v", f.tz, err)
		}
		loc = l
	}
	sched, err := nightly.Parse(f.schedule, loc)
	if err != nil {
		return usagef("--schedule: %v", err)
	}
	if z, ok := sched.(interface{ Location() *time.Location }); ok {
		f.notify.Loc = z.Location() // the digest's weekday in the schedule's zone
	}
	if f.grace <= 0 {
		return usagef("--grace must be positive")
	}
	if f.catchUp < 0 {
		return usagef("--catch-up must not be negative")
	}
	if f.notify.SMTP != "" {
		if _, err := f.notify.mailer(); err != nil {
			return err
		}
		if _, err := f.notify.emailOptions(time.Now()); err != nil {
			return err
		}
		f.notify.Warn = nil // mailer() warned once already
	}
	auth := dashboard.Auth{Listen: f.listen, TrustedHeader: f.authHeader, BasicAuthFile: f.basicAuthFile}
	if _, err := dashboard.Protect(http.NotFoundHandler(), auth); err != nil {
		return &usageError{err}
	}
	cfg, err := f.scan.config(g) // checks the scan flags and the estate
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, f.scan.db)
	if err != nil {
		return err
	}
	defer st.Close()
	s := &service{g: g, f: f, st: st}
	if s.schema, err = st.SchemaVersion(ctx); err != nil {
		return err
	}
	s.sched = &nightly.Scheduler{Schedule: sched, Job: s.job, Log: g.log,
		Skipped: func(_ time.Time, reason string) { s.metrics.SkippedSlots.WithLabelValues(reason).Inc() }}
	s.metrics = nightly.NewMetrics(st, s.sched.State, s.serviceHealth)
	s.setServices(cfg) // configured, none found down yet
	h, err := s.handler(auth)
	if err != nil {
		return &usageError{err}
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("http server stopped", "err", err)
		}
	}()
	g.log.Info("serving", "listen", ln.Addr().String(), "schedule", f.schedule, "tz", tzName(loc), "db", f.scan.db)

	last, err := s.newestRun(ctx, cfg)
	if err != nil {
		return err
	}
	resume := last.Status == store.Running || last.Status == store.Interrupted
	if resume {
		g.log.Info("an unfinished run of this configuration: resuming it now", "run", last.ID, "status", last.Status)
	} else if slot, ok := nightly.Missed(sched, last.StartedAt, time.Now(), f.catchUp); ok {
		g.log.Info("a slot came while the service was down: running now (--catch-up)", "slot", slot, "last_run_started", last.StartedAt)
		resume = true
	}
	s.catchUpNotify(ctx)
	loop := make(chan error, 1)
	go func() { loop <- s.sched.Loop(ctx, resume) }()

	var stopErr error
	select {
	case err := <-loop:
		if ctx.Err() == nil {
			stopErr = err // the loop ended by itself: a bug, not a signal
		}
	case <-ctx.Done():
		if s.sched.State().Busy {
			g.log.Info("stopping: a run in progress is interrupted (resumed at the next start); emails being sent are given the grace", "grace", f.grace.String())
		}
		select {
		case <-loop:
		case <-time.After(f.grace):
			stopErr = fmt.Errorf("serve: the run or its emails did not finish within --grace %s; the rest is done at the next start", f.grace)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if stopErr == nil {
		g.log.Info("stopped")
	}
	return stopErr
}

func tzName(loc *time.Location) string {
	if loc == nil {
		return "UTC"
	}
	return loc.String()
}

// newestRun is the newest run of this configuration (zero if none). If it
// stopped before completing (killed: running; signalled: interrupted), the
// scheduler takes it up at once, and the store's BeginRun resumes it by
// its key instead of starting another.
func (s *service) newestRun(ctx context.Context, cfg *scanner.Config) (store.Run, error) {
	c := *cfg
	c.Checks, _ = scanner.Select(c.Checks, c.Families) // as scanner.Run keys it
	key, err := c.Key()
	if err != nil {
		return store.Run{}, err
	}
	runs, err := s.st.Runs(ctx)
	if err != nil {
		return store.Run{}, err
	}
	for _, r := range runs { // newest first
		if r.Key == key {
			return r, nil
		}
	}
	return store.Run{}, nil
}

// job is one scheduled run: under the scan lock (never two at once, and
// none beside a manual `posture scan`), with a fresh configuration (the
// estate file re-read, new breakers for the configured services).
func (s *service) job(ctx context.Context, slot nightly.Slot) error {
	unlock, err := store.LockScans(s.f.scan.db)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: %v", nightly.ErrLocked, err)
	}
	if err != nil {
		return err
	}
	defer unlock()
	cfg, err := s.f.scan.config(s.g)
	if err != nil {
		return err
	}
	// Progress in the service's log: one line a minute and one at each
	// phase's end (a terminal gets the redrawn line, as scan does).
	pr := newProgress(s.g.stderr, s.g.log)
	pr.every = time.Minute
	pr.attach(&cfg.Options)
	defer pr.close()
	s.setServices(cfg)
	start := time.Now()
	s.g.log.Info("run starting", "slot", slot.At, "resume", slot.Resume)
	stats, err := runPipeline(ctx, s.g, &s.f.scan, s.st, cfg, s.notify)
	status := string(store.Complete) // the run's, not notify's: a run complete but not notified is complete
	switch {
	case stats != nil && stats.Status != "":
		status = stats.Status
	case err != nil && ctx.Err() != nil:
		status = string(store.Interrupted)
	case err != nil:
		status = string(store.Failed)
	}
	s.metrics.RunDuration.WithLabelValues(status).Observe(time.Since(start).Seconds())
	s.mu.Lock()
	warm := s.warm
	s.mu.Unlock()
	if warm != nil && status == string(store.Complete) {
		// The first reader after a night need not wait for its summary.
		if werr := warm(context.WithoutCancel(ctx)); werr != nil {
			s.g.log.Warn("dashboard summary", "err", werr)
		}
	}
	if stats != nil {
		s.g.log.Info("run finished", "run", stats.RunID, "status", stats.Status, "jobs", stats.Jobs,
			"resumed", stats.Resumed, "already_done", stats.Skipped, "done", stats.Done, "unknown", stats.Unknown,
			"unavailable", stats.Unavailable, "took", time.Since(start).Round(time.Millisecond).String())
	}
	return err
}

// notify emails each organisation the complete run's changes through
// the outbox (the code path of `posture notify`): queued once per run,
// each email marked sent on the relay's acceptance, so a kill mid-send
// neither loses nor repeats one (catchUpNotify sends the rest at start).
func (s *service) notify(ctx context.Context, st *store.Store, stats *scanner.Stats) error {
	if s.f.notify.SMTP == "" {
		return nil
	}
	// The run is complete: a signal now does not cut the sending short,
	// the shutdown's --grace bounds it (and what is still pending then is
	// sent at the next start).
	ctx = context.WithoutCancel(ctx)
	sum, err := reports.BuildSummary(ctx, storeSource{Store: st}, checks.Catalogue(), stats.RunID)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	res, err := notifyRun(ctx, st, sum, s.f.notify)
	for _, w := range res.Warnings {
		s.g.log.Warn("notify", "run", stats.RunID, "warning", w)
	}
	s.metrics.EmailsSent.Add(float64(res.Sent))
	s.g.log.Info("emails", "run", stats.RunID, "result", res.String(), "relay", s.f.notify.SMTP)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// catchUpWindow: a newest complete run never queued for email (the
// service died between completing it and notifying) is notified at start
// only if it finished this recently; older news is stale.
const catchUpWindow = 24 * time.Hour

// catchUpNotify finishes the newest complete run's notification at start:
// what its outbox still holds pending, or all of it if the service died
// before queuing it. Errors are logged: the schedule goes on.
func (s *service) catchUpNotify(ctx context.Context) {
	if s.f.notify.SMTP == "" {
		return
	}
	last, err := s.st.LatestComplete(ctx)
	if err != nil {
		return // no complete run (or the log says why at the first run)
	}
	ob, err := s.st.OutboxRunStatus(ctx, last.ID)
	if err != nil {
		s.g.log.Error("notify at start", "run", last.ID, "err", err)
		return
	}
	if ob.Queued && ob.ByStatus[store.OutboxPending] == 0 || !ob.Queued && time.Since(last.FinishedAt) > catchUpWindow {
		return
	}
	unlock, err := store.LockScans(s.f.scan.db)
	if err != nil {
		s.g.log.Warn("notify at start skipped", "run", last.ID, "err", err)
		return
	}
	defer unlock()
	s.g.log.Info("notifying the newest complete run's pending emails", "run", last.ID, "queued", ob.Queued)
	if err := s.notify(ctx, s.st, &scanner.Stats{RunID: last.ID}); err != nil {
		s.g.log.Error("notify at start", "run", last.ID, "err", err)
	}
}

func (s *service) setServices(cfg *scanner.Config) {
	var names []string
	if cfg.CTURL != "" {
		names = append(names, "ct")
	}
	if cfg.RDAPURL != "" {
		names = append(names, "rdap")
	}
	if cfg.GitHub != nil {
		names = append(names, "github", "github-git")
	}
	s.mu.Lock()
	s.services, s.names = cfg.Services, names
	s.mu.Unlock()
}

// serviceHealth: each configured service of the current or last run, up
// unless its breaker tripped in that run.
func (s *service) serviceHealth() map[string]bool {
	s.mu.Lock()
	svc, names := s.services, s.names
	s.mu.Unlock()
	down := svc.Down()
	out := map[string]bool{}
	for _, n := range names {
		_, d := down[n]
		out[n] = !d
	}
	return out
}

// handler: /healthz and /readyz open (they say nothing about the estate),
// the dashboard and /metrics behind Protect (which refuses a listen
// address beyond loopback without authentication).
func (s *service) handler(auth dashboard.Auth) (http.Handler, error) {
	inner := http.NewServeMux()
	inner.Handle("/metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}))
	dash := dashboard.New(s.st, checks.Catalogue())
	if w, ok := dash.(interface{ Warm(context.Context) error }); ok {
		s.mu.Lock()
		s.warm = w.Warm
		s.mu.Unlock()
	}
	inner.Handle("/", dash)
	protected, err := dashboard.Protect(inner, auth)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", s.ready)
	mux.Handle("/", protected)
	return mux, nil
}

// ready: the database answers at its schema version and the scheduler runs.
func (s *service) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	v, err := s.st.SchemaVersion(ctx)
	switch {
	case err != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "database:", err)
	case v == 0 || v < s.schema:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "database at schema %d, want %d\n", v, s.schema)
	case !s.sched.State().Running:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "scheduler not running")
	default:
		fmt.Fprintln(w, "ready")
	}
}
