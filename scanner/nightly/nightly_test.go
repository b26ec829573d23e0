package nightly

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock jumps to the deadline when asked to wait: the loop runs a
// night's schedule instantly, and a job "takes" time by advancing it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	if d > 0 {
		c.Advance(d)
	}
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

type record struct {
	ran     []Slot
	skipped map[string][]time.Time
}

// runSchedule runs the loop until n jobs have run; durations[i] is how long
// job i takes (past the end: no time), errs[i] what it returns.
func runSchedule(t *testing.T, spec string, start time.Time, resume bool, n int, durations []time.Duration, errs []error) record {
	t.Helper()
	sched, err := Parse(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{now: start}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := record{skipped: map[string][]time.Time{}}
	s := &Scheduler{
		Schedule: sched,
		Clock:    clk,
		Job: func(ctx context.Context, sl Slot) error {
			i := len(rec.ran)
			rec.ran = append(rec.ran, sl)
			if i < len(durations) {
				clk.Advance(durations[i])
			}
			if len(rec.ran) == n {
				cancel()
			}
			if i < len(errs) {
				return errs[i]
			}
			return nil
		},
		Skipped: func(slot time.Time, reason string) { rec.skipped[reason] = append(rec.skipped[reason], slot) },
	}
	if err := s.Loop(ctx, resume); !errors.Is(err, context.Canceled) {
		t.Fatalf("Loop: %v, want context.Canceled", err)
	}
	return rec
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestARunThatOverrunsTheNextSlotsSkipsThemAndCountsEach(t *testing.T) {
	// Every 5 minutes; the first run takes 12 minutes: the slots at :05 and
	// :10 come while it runs and are skipped; the next run is at :15.
	rec := runSchedule(t, "*/5 * * * *", at("2026-12-02T01:58:00Z"), false, 3,
		[]time.Duration{12 * time.Minute, time.Minute, time.Minute}, nil)
	want := []time.Time{at("2026-12-02T02:00:00Z"), at("2026-12-02T02:15:00Z"), at("2026-12-02T02:20:00Z")}
	if len(rec.ran) != len(want) {
		t.Fatalf("ran %v, want %v", rec.ran, want)
	}
	for i, w := range want {
		if !rec.ran[i].At.Equal(w) || rec.ran[i].Resume {
			t.Errorf("run %d at %v (resume %v), want %v", i, rec.ran[i].At, rec.ran[i].Resume, w)
		}
	}
	skipped := rec.skipped[SkipOverrun]
	if len(skipped) != 2 || !skipped[0].Equal(at("2026-12-02T02:05:00Z")) || !skipped[1].Equal(at("2026-12-02T02:10:00Z")) {
		t.Errorf("skipped %v, want 02:05 and 02:10", skipped)
	}
}

func TestARunThatEndsBeforeTheNextSlotSkipsNothing(t *testing.T) {
	rec := runSchedule(t, "0 2 * * *", at("2026-12-02T03:00:00Z"), false, 3,
		[]time.Duration{23 * time.Hour, time.Hour, 5 * time.Hour}, nil)
	for i, r := range rec.ran {
		want := at("2026-12-03T02:00:00Z").AddDate(0, 0, i)
		if !r.At.Equal(want) {
			t.Errorf("run %d at %v, want %v", i, r.At, want)
		}
	}
	if len(rec.skipped) != 0 {
		t.Errorf("skipped %v, want none", rec.skipped)
	}
}

func TestAnInterruptedRunIsResumedAtStartBeforeTheFirstSlot(t *testing.T) {
	start := at("2026-12-02T06:30:00Z")
	rec := runSchedule(t, "0 2 * * *", start, true, 2, []time.Duration{2 * time.Hour}, nil)
	if !rec.ran[0].Resume || !rec.ran[0].At.Equal(start) {
		t.Errorf("first job %+v, want the resume at start %v", rec.ran[0], start)
	}
	if rec.ran[1].Resume || !rec.ran[1].At.Equal(at("2026-12-03T02:00:00Z")) {
		t.Errorf("second job %+v, want the next night's slot", rec.ran[1])
	}
}

func TestAResumeThatOverrunsASlotSkipsIt(t *testing.T) {
	// Restarted at 01:30 with a run to finish that takes an hour: 02:00 is
	// skipped (the resumed run is that night's run), the next is tomorrow.
	rec := runSchedule(t, "0 2 * * *", at("2026-12-02T01:30:00Z"), true, 2, []time.Duration{time.Hour}, nil)
	if got := rec.skipped[SkipOverrun]; len(got) != 1 || !got[0].Equal(at("2026-12-02T02:00:00Z")) {
		t.Errorf("skipped %v, want 02:00", got)
	}
	if !rec.ran[1].At.Equal(at("2026-12-03T02:00:00Z")) {
		t.Errorf("second job at %v, want the next night", rec.ran[1].At)
	}
}

func TestAFailedOrLockedRunDoesNotStopTheSchedule(t *testing.T) {
	rec := runSchedule(t, "0 2 * * *", at("2026-12-02T00:00:00Z"), false, 3, nil,
		[]error{errors.New("disk full"), ErrLocked})
	if len(rec.ran) != 3 {
		t.Fatalf("ran %d jobs, want 3", len(rec.ran))
	}
	if got := rec.skipped[SkipLocked]; len(got) != 1 || !got[0].Equal(at("2026-12-03T02:00:00Z")) {
		t.Errorf("locked skips %v, want the second night's slot", got)
	}
}

func TestTheScheduleIsInItsTimeZone(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no tzdata for Europe/London:", err)
	}
	from := at("2026-07-01T12:00:00Z") // British Summer Time: 02:00 London is 01:00 UTC
	for _, tc := range []struct {
		name, spec string
		loc        *time.Location
		want       time.Time
	}{
		{"default UTC", "0 2 * * *", nil, at("2026-07-02T02:00:00Z")},
		{"--tz", "0 2 * * *", london, at("2026-07-02T01:00:00Z")},
		{"CRON_TZ in the spec", "CRON_TZ=Europe/London 0 2 * * *", nil, at("2026-07-02T01:00:00Z")},
		{"both, agreeing", "CRON_TZ=Europe/London 0 2 * * *", london, at("2026-07-02T01:00:00Z")},
		{"seconds field", "*/3 * * * * *", nil, at("2026-07-01T12:00:03Z")},
		{"descriptor", "@every 3s", nil, at("2026-07-01T12:00:03Z")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.spec, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Next(from); !got.Equal(tc.want) {
				t.Errorf("Next(%v) = %v, want %v", from, got.UTC(), tc.want)
			}
		})
	}
}

func TestBadSchedulesAreRefused(t *testing.T) {
	london, _ := time.LoadLocation("Europe/London")
	for _, tc := range []struct {
		spec string
		loc  *time.Location
	}{
		{"", nil},
		{"CRON_TZ=Europe/London", nil},
		{"CRON_TZ=Mars/Olympus 0 2 * * *", nil},
		{"CRON_TZ=UTC 0 2 * * *", london},
		{"61 2 * * *", nil},
		{"every night", nil},
	} {
		if _, err := Parse(tc.spec, tc.loc); err == nil {
			t.Errorf("Parse(%q, %v): no error", tc.spec, tc.loc)
		}
	}
}

func TestTwoOClockLondonRunsOnceADayAcrossTheClockChanges(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no tzdata for Europe/London:", err)
	}
	s, err := Parse("0 2 * * *", london)
	if err != nil {
		t.Fatal(err)
	}
	// 2026: summer time starts 29 March (01:00 GMT → 02:00 BST) and ends
	// 25 October (02:00 BST → 01:00 GMT). One run each local day, at 02:00.
	for _, tc := range []struct{ from, to string }{
		{"2026-03-27T12:00:00Z", "2026-04-01T12:00:00Z"},
		{"2026-10-23T12:00:00Z", "2026-10-28T12:00:00Z"},
	} {
		from, to := at(tc.from), at(tc.to)
		days := map[string]int{}
		for t0 := s.Next(from); t0.Before(to); t0 = s.Next(t0) {
			local := t0.In(london)
			if local.Hour() != 2 || local.Minute() != 0 {
				t.Errorf("slot %v is %v in London, want 02:00", t0.UTC(), local)
			}
			days[local.Format("2006-01-02")]++
		}
		if len(days) != 5 {
			t.Errorf("%s to %s: slots on %d days (%v), want 5", tc.from, tc.to, len(days), days)
		}
		for d, n := range days {
			if n != 1 {
				t.Errorf("%s: %d slots, want 1", d, n)
			}
		}
	}
}

func TestTheRepeatedHourWhenTheClocksGoBackRunsOnce(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no tzdata for Europe/London:", err)
	}
	sched, err := Parse("30 1 * * *", london)
	if err != nil {
		t.Fatal(err)
	}
	// 25 October 2026: 01:30 BST (00:30 UTC), then 01:30 GMT (01:30 UTC).
	clk := &fakeClock{now: at("2026-10-24T12:00:00Z")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ran []time.Time
	var repeated []time.Time
	s := &Scheduler{Schedule: sched, Clock: clk,
		Job: func(ctx context.Context, sl Slot) error {
			ran = append(ran, sl.At.UTC())
			clk.Advance(10 * time.Minute)
			if len(ran) == 2 {
				cancel()
			}
			return nil
		},
		Skipped: func(slot time.Time, reason string) {
			if reason == SkipRepeat {
				repeated = append(repeated, slot.UTC())
			}
		},
	}
	s.Loop(ctx, false)
	if len(ran) != 2 || !ran[0].Equal(at("2026-10-25T00:30:00Z")) || !ran[1].Equal(at("2026-10-26T01:30:00Z")) {
		t.Errorf("ran %v, want 00:30 UTC on the 25th and 01:30 UTC on the 26th", ran)
	}
	if len(repeated) != 1 || !repeated[0].Equal(at("2026-10-25T01:30:00Z")) {
		t.Errorf("repeated-hour skips %v, want 01:30 UTC on the 25th", repeated)
	}
}

func TestMissedFindsTheSlotTheServiceWasDownFor(t *testing.T) {
	s, err := Parse("0 2 * * *", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, since, now string
		window           time.Duration
		want             string // "" for none
	}{
		{"down over 02:00, back at 02:10", "2026-12-01T02:00:00Z", "2026-12-02T02:10:00Z", 6 * time.Hour, "2026-12-02T02:00:00Z"},
		{"ran at 02:00 today", "2026-12-02T02:00:00Z", "2026-12-02T09:00:00Z", 12 * time.Hour, ""},
		{"missed, but longer ago than the window", "2026-12-01T02:00:00Z", "2026-12-02T09:00:00Z", 6 * time.Hour, ""},
		{"a new database, a slot in the window", "0001-01-01T00:00:00Z", "2026-12-02T07:00:00Z", 6 * time.Hour, "2026-12-02T02:00:00Z"},
		{"two nights missed: the latest only", "2026-11-29T02:00:00Z", "2026-12-02T03:00:00Z", 72 * time.Hour, "2026-12-02T02:00:00Z"},
		{"window 0: never", "2026-11-29T02:00:00Z", "2026-12-02T03:00:00Z", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			since, _ := time.Parse(time.RFC3339, tc.since)
			got, ok := Missed(s, since, at(tc.now), tc.window)
			switch {
			case tc.want == "" && ok:
				t.Errorf("missed %v, want none", got)
			case tc.want != "" && (!ok || !got.Equal(at(tc.want))):
				t.Errorf("missed %v (%v), want %s", got, ok, tc.want)
			}
		})
	}
}

func TestTheScheduleTellsItsZoneForTheCalendarOfTheService(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no Europe/London zone:", err)
	}
	for _, tc := range []struct {
		name, spec string
		loc        *time.Location
		want       string
	}{
		{"default UTC", "0 2 * * *", nil, "UTC"},
		{"--tz", "0 2 * * *", london, "Europe/London"},
		{"CRON_TZ in the spec", "CRON_TZ=Europe/London 0 2 * * *", nil, "Europe/London"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.spec, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			z, ok := s.(interface{ Location() *time.Location })
			if !ok {
				t.Fatalf("%T does not tell its zone", s)
			}
			if got := z.Location().String(); got != tc.want {
				t.Errorf("zone %s, want %s", got, tc.want)
			}
		})
	}
}
