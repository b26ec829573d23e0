// Package nightly schedules the nightly run of `posture serve`: one run at
// a time, on a cron schedule in an explicit time zone; a run that overruns
// the next slot skips that slot (logged and counted), never queues it; an
// interrupted run is resumed first thing at start. The clock is injected,
// so the schedule's behaviour is tested without waiting.
package nightly

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule gives the next slot strictly after t (zero: none).
// cron.Schedule implements it.
type Schedule interface {
	Next(t time.Time) time.Time
}

// parser accepts standard five-field specs, an optional leading seconds
// field (tests and labs: "*/3 * * * * *"), and descriptors (@daily,
// @every 1h).
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse parses a cron spec in the time zone loc (nil: UTC, never the
// host's local zone, so a schedule means the same on every machine). A spec
// may name its own zone with a leading CRON_TZ=Zone (or TZ=Zone); naming a
// different zone from a non-nil loc is an error, not a silent choice.
func Parse(spec string, loc *time.Location) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("schedule: empty")
	}
	if strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=") {
		tz, rest, ok := strings.Cut(spec, " ")
		if !ok || strings.TrimSpace(rest) == "" {
			return nil, fmt.Errorf("schedule %q: a time zone but no schedule", spec)
		}
		_, name, _ := strings.Cut(tz, "=")
		named, err := time.LoadLocation(name)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: time zone: %w", spec, err)
		}
		if loc != nil && named.String() != loc.String() {
			return nil, fmt.Errorf("schedule %q names time zone %s but --tz is %s: give one", spec, named, loc)
		}
		loc, spec = named, strings.TrimSpace(rest)
	}
	if loc == nil {
		loc = time.UTC
	}
	s, err := parser.Parse("CRON_TZ=" + loc.String() + " " + spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return zoned{s, loc}, nil
}

// zoned gives slots in the schedule's zone (cron gives them in the zone of
// the time asked about), so that a slot's wall-clock reading is local.
type zoned struct {
	s   cron.Schedule
	loc *time.Location
}

func (z zoned) Next(t time.Time) time.Time { return z.s.Next(t.In(z.loc)) }

// Location is the schedule's time zone, so that what else the service does
// by the calendar (the weekly digest's day) follows the same clock.
func (z zoned) Location() *time.Location { return z.loc }

// Clock is the scheduler's time: the real one, or a test's.
type Clock interface {
	Now() time.Time
	// After delivers once d has passed (d <= 0: at once).
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time                         { return time.Now() }
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Skip reasons (the label of the skipped-slots metric).
const (
	SkipOverrun = "overrun" // the previous run was still going at the slot
	SkipLocked  = "locked"  // another process was scanning into the database
	// SkipRepeat: the slot's local time came round again when the clocks
	// went back (01:30 twice in Europe/London in October); it ran the
	// first time.
	SkipRepeat = "repeated-hour"
)

// ErrLocked, returned by Job, says the slot could not run because another
// process holds the scan lock: the slot is skipped (SkipLocked).
var ErrLocked = errors.New("nightly: another scan holds the lock")

// Slot is one scheduled run.
type Slot struct {
	At time.Time // the scheduled time; for a run at start, the start time
	// Resume: a run at start, not at a slot (an interrupted run taken up,
	// or a missed slot caught up).
	Resume bool
}

// Missed returns the latest slot after since and at most window before
// now: a slot that came while the service was not running, and was not
// run (since is when the last run started). False if there is none.
func Missed(s Schedule, since, now time.Time, window time.Duration) (time.Time, bool) {
	from := now.Add(-window)
	if since.After(from) {
		from = since
	}
	var last time.Time
	for t, i := s.Next(from), 0; i < maxSkips && !t.IsZero() && !t.After(now); t, i = s.Next(t), i+1 {
		last = t
	}
	return last, !last.IsZero()
}

// Scheduler runs Job at each slot of Schedule, one at a time.
type Scheduler struct {
	Schedule Schedule
	Clock    Clock // nil: RealClock
	// Job does one run. Its error is logged and the schedule goes on: one
	// bad night does not stop the service. ErrLocked skips the slot.
	Job func(ctx context.Context, s Slot) error
	// Skipped is told of each slot that did not run (may be nil).
	Skipped func(slot time.Time, reason string)
	Log     *slog.Logger // nil: discard

	mu      sync.Mutex
	next    time.Time
	running bool // the loop is running (readiness)
	busy    bool // a job is running
}

// maxSkips bounds the slots counted after one overrun, so that a schedule
// of every second after a week-long stall cannot spin.
const maxSkips = 100000

// Loop runs until ctx is done, and returns ctx's error then. With resume it
// first runs Job at once (an interrupted run to take up, or a missed slot). A job that
// overruns the following slots skips them; the next run is at the first
// slot after the job ended.
func (s *Scheduler) Loop(ctx context.Context, resume bool) error {
	clk := s.Clock
	if clk == nil {
		clk = RealClock{}
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.set(func() { s.running = true })
	defer s.set(func() { s.running, s.next = false, time.Time{} })

	after := clk.Now()
	var last time.Time // the last slot run
	if resume {
		log.Info("running at start")
		if err := s.run(ctx, log, Slot{At: after, Resume: true}); errors.Is(err, ErrLocked) {
			s.skip(log, after, SkipLocked)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		end := clk.Now()
		s.skipBetween(log, after, end, SkipOverrun)
		after = end
	}
	for {
		next := s.Schedule.Next(after)
		if next.IsZero() {
			log.Warn("the schedule has no further slots")
			<-ctx.Done()
			return ctx.Err()
		}
		s.set(func() { s.next = next })
		log.Info("next run", "at", next)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clk.After(next.Sub(clk.Now())):
		}
		if sameWallClock(last, next) {
			s.skip(log, next, SkipRepeat)
			after = next
			continue
		}
		last = next
		if err := s.run(ctx, log, Slot{At: next}); errors.Is(err, ErrLocked) {
			s.skip(log, next, SkipLocked)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		end := clk.Now()
		s.skipBetween(log, next, end, SkipOverrun)
		after = end
		if after.Before(next) { // a clock set back: never run a slot twice
			after = next
		}
	}
}

// sameWallClock says whether two slots read the same on the schedule's
// local clock: the second is the repeated hour of a change to winter time.
func sameWallClock(a, b time.Time) bool {
	const f = "2006-01-02 15:04:05"
	return !a.IsZero() && a.Format(f) == b.Format(f)
}

func (s *Scheduler) run(ctx context.Context, log *slog.Logger, slot Slot) error {
	s.set(func() { s.busy = true })
	defer s.set(func() { s.busy = false })
	err := s.Job(ctx, slot)
	switch {
	case err == nil, errors.Is(err, ErrLocked):
	case ctx.Err() != nil:
		log.Info("run stopped by shutdown", "slot", slot.At, "err", err)
	default:
		log.Error("run failed", "slot", slot.At, "err", err)
	}
	return err
}

// skipBetween skips the slots in (from, to]: they came while a job ran.
func (s *Scheduler) skipBetween(log *slog.Logger, from, to time.Time, reason string) {
	t := s.Schedule.Next(from)
	for i := 0; i < maxSkips && !t.IsZero() && !t.After(to); i++ {
		s.skip(log, t, reason)
		t = s.Schedule.Next(t)
	}
}

func (s *Scheduler) skip(log *slog.Logger, slot time.Time, reason string) {
	log.Warn("slot skipped", "slot", slot, "reason", reason)
	if s.Skipped != nil {
		s.Skipped(slot, reason)
	}
}

func (s *Scheduler) set(fn func()) {
	s.mu.Lock()
	fn()
	s.mu.Unlock()
}

// State is what the scheduler is doing, for /readyz and the metrics.
type State struct {
	Running bool      // the loop is running
	Busy    bool      // a run is in progress
	Next    time.Time // the next slot (zero while a run is in progress or the loop is stopped)
}

// State reports the scheduler's state.
func (s *Scheduler) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Running: s.running, Busy: s.busy}
	if !s.busy {
		st.Next = s.next
	}
	return st
}
