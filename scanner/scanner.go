// Package scanner runs a scan: it turns assets into jobs (asset × applicable
// check), runs them on a bounded worker pool with a per-domain politeness
// limit and per-job timeouts derived from the run's context, turns a panic
// into an unknown result, and hands every result to one writer goroutine.
// A run interrupted by a signal or a kill is resumed by running the same
// command again: finished jobs are not redone and no row is duplicated.
package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/scanner/discover"
	"github.com/nhsx/posture/scanner/store"
)

// Store is what Scan needs of the store; *store.Store implements it.
type Store interface {
	DoneJobs(ctx context.Context, runID int64) (map[store.JobKey]bool, error)
	PutResult(ctx context.Context, runID int64, ev check.Evidence, fs []check.Finding) error
}

// Options configure a scan.
type Options struct {
	Checks      []check.Check
	Env         *check.Env
	Policy      *check.Policy
	Concurrency int           // workers; 0: 16
	PerDomain   int           // concurrent jobs per estate domain; 0: 4
	JobTimeout  time.Duration // per job; 0: 60 s
	Log         *slog.Logger
	// Progress is called after each finished job (from the writer goroutine).
	Progress func(done, total int)
	// Phase, with Progress set, is told when the run enters a phase:
	// "discovery" (total: the estate's domains) and "scan" (total: the
	// jobs, done ones of an earlier attempt included); Progress then
	// counts the scan's jobs. nil: not told.
	Phase func(name string, total int)
	// Keep filters findings by catalogue id (nil: keep all): a run limited
	// with --only keeps its families' ids (see Select).
	Keep func(id string) bool
}

// Stats summarises a scan.
type Stats struct {
	RunID    int64
	Resumed  bool
	Jobs     int // applicable jobs in the run
	Skipped  int // finished in an earlier attempt of this run
	Done     int // finished now
	Unknown  int // jobs whose collection failed (unknown findings)
	Panics   int
	Findings map[check.Outcome]int
	Status   string // complete | interrupted
	// Excluded are the excluded names (scope.exclude) the run did not
	// contact although something led to them, with the refusal count.
	Excluded map[string]int
	// Unavailable are the configured services (ct, rdap, github) found
	// down in the run, with their first failure: their sources left gaps.
	Unavailable map[string]string
	// Unowned counts the names in scope that no estate domain owns.
	Unowned int
	// CT sums up discovery's CT searches (zero on a resume).
	CT discover.CTStats
}

// Job is one check on one asset.
type Job struct {
	Asset check.Asset
	Check check.Check
}

// Jobs lists the applicable jobs for assets, in a stable order.
func Jobs(assets []check.Asset, cs []check.Check) []Job {
	var out []Job
	for _, a := range assets {
		for _, c := range cs {
			if c.Applies(a) {
				out = append(out, Job{a, c})
			}
		}
	}
	return out
}

type result struct {
	ev  check.Evidence
	fs  []check.Finding
	err error
}

// Scan runs every applicable job of assets that run runID has not finished.
// It returns when all jobs are stored or ctx is cancelled; on cancellation
// the jobs in flight are abandoned (not stored), so a resume redoes them.
func Scan(ctx context.Context, st Store, runID int64, assets []check.Asset, o Options) (*Stats, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.PerDomain <= 0 {
		o.PerDomain = 4
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 60 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Policy == nil {
		o.Policy = check.DefaultPolicy()
	}
	done, err := st.DoneJobs(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("scan: finished jobs: %w", err)
	}
	all := Jobs(assets, o.Checks)
	stats := &Stats{RunID: runID, Jobs: len(all), Findings: map[check.Outcome]int{}}
	var todo []Job
	for _, j := range all {
		if done[store.JobKey{CheckID: j.Check.ID(), AssetKey: j.Asset.Key()}] {
			stats.Skipped++
			continue
		}
		todo = append(todo, j)
	}

	if o.Progress != nil && o.Phase != nil {
		o.Phase("scan", stats.Jobs)
		o.Progress(stats.Skipped, stats.Jobs)
	}

	// wctx stops the workers when the run is interrupted or the store
	// fails: probing on without being able to store is wasted traffic.
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	jobs := make(chan Job)
	results := make(chan result, o.Concurrency)
	var panics atomic.Int64
	polite := &limiter{n: o.PerDomain, sems: map[string]chan struct{}{}}

	var workers sync.WaitGroup
	for i := 0; i < o.Concurrency; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				release, err := polite.acquire(wctx, politeKey(j.Asset))
				if err != nil {
					return // cancelled while waiting: the job stays undone
				}
				r := runJob(wctx, j.Check, j.Asset, o, &panics)
				release()
				if wctx.Err() != nil {
					// The run was interrupted while this job ran: part of
					// its evidence may be "canceled" rather than what the
					// server said. Drop it; a resume redoes the job.
					continue
				}
				select {
				case results <- r:
				case <-wctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, j := range todo {
			select {
			case jobs <- j:
			case <-wctx.Done():
				return
			}
		}
	}()
	go func() { workers.Wait(); close(results) }()

	// The one writer: results are stored in the order they finish, each in
	// its own transaction, so a kill loses at most the jobs in flight. It
	// drains results even after a cancellation so finished work is kept.
	var werr error
	for r := range results {
		if werr != nil {
			continue
		}
		if err := st.PutResult(context.WithoutCancel(ctx), runID, r.ev, r.fs); err != nil {
			werr = fmt.Errorf("scan: store result: %w", err)
			stop()
			continue
		}
		stats.Done++
		if r.err != nil {
			stats.Unknown++
		}
		for _, f := range r.fs {
			stats.Findings[f.Outcome]++
		}
		if o.Progress != nil {
			o.Progress(stats.Skipped+stats.Done, stats.Jobs)
		}
	}
	stats.Panics = int(panics.Load())
	if werr != nil {
		stats.Status = "failed" // stored jobs are kept: the same command resumes
		return stats, werr
	}
	if ctx.Err() != nil {
		stats.Status = "interrupted"
		return stats, ctx.Err()
	}
	stats.Status = "complete"
	return stats, nil
}

// runJob collects and evaluates one job. A panic in either becomes unknown
// findings with the stack logged, never a crashed run.
func runJob(ctx context.Context, c check.Check, a check.Asset, o Options, panics *atomic.Int64) (r result) {
	timeout := o.JobTimeout
	if h, ok := c.(check.TimeoutHinter); ok && h.JobTimeout() > timeout {
		timeout = h.JobTimeout()
	}
	jctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			panics.Add(1)
			o.Log.Error("check panicked", "check", c.ID(), "asset", a.Key(), "panic", p, "stack", string(debug.Stack()))
			err := check.WithClass(check.ErrInternal, fmt.Errorf("%s panicked: %v", c.ID(), p))
			r.ev = check.Evidence{CheckID: c.ID(), Asset: a, CollectedAt: o.Env.Clock(), Error: err.Error(), ErrorClass: check.ErrInternal}
			r.err = err
			r.fs = Keep(c.Evaluate(r.ev, o.Policy), o.Keep)
		}
	}()
	ev, err := c.Collect(jctx, o.Env, a)
	ev.CheckID, ev.Asset = c.ID(), a
	if err != nil {
		cls := check.Classify(err)
		if cls == check.ErrCanceled && ctx.Err() == nil {
			cls = check.ErrTimeout // our per-job deadline, not the run's
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			cls = check.ErrTimeout
		}
		ev.Error, ev.ErrorClass = err.Error(), cls
		o.Log.Debug("collect failed", "check", c.ID(), "asset", a.Key(), "class", cls, "err", err)
	}
	return result{ev: ev, fs: Keep(c.Evaluate(ev, o.Policy), o.Keep), err: err}
}

// Keep drops the findings whose id keep rejects (nil keeps all).
func Keep(fs []check.Finding, keep func(id string) bool) []check.Finding {
	if keep == nil {
		return fs
	}
	out := fs[:0]
	for _, f := range fs {
		if keep(f.CheckID) {
			out = append(out, f)
		}
	}
	return out
}

// politeKey groups jobs that hit the same owner's servers.
func politeKey(a check.Asset) string {
	if a.Domain != "" {
		return a.Domain
	}
	return a.Key()
}

// limiter caps concurrent jobs per key.
type limiter struct {
	n    int
	mu   sync.Mutex
	sems map[string]chan struct{}
}

func (l *limiter) acquire(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	s, ok := l.sems[key]
	if !ok {
		s = make(chan struct{}, l.n)
		l.sems[key] = s
	}
	l.mu.Unlock()
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
