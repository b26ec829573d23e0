package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nhsx/posture/scanner"
)

// progress shows a run's progress by phase (discovery, scan): on a
// terminal one line redrawn in place, at most five times a second, with
// done/total, rate and ETA; elsewhere (cron, systemd, a pipe, /dev/null)
// plain log lines, one every 10 s and one at each phase's end.
type progress struct {
	w      io.Writer
	tty    bool
	log    *slog.Logger
	now    func() time.Time
	redraw time.Duration // least time between two redraws on a terminal
	every  time.Duration // time between two log lines elsewhere
	tick   time.Duration // the clock that redraws a stalled phase (0: none)

	mu          sync.Mutex
	phase, unit string
	done, total int
	base        int  // done at the phase's first update (an earlier attempt's jobs): not in the rate
	fresh       bool // no update yet in the phase
	start       time.Time
	lastDraw    time.Time
	lastLog     time.Time
	onScreen    int // length of the line on screen (0: none)
	ticking     bool
	stop        chan struct{}
}

func newProgress(w io.Writer, log *slog.Logger) *progress {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &progress{w: w, tty: isTerminal(w), log: log, now: time.Now,
		redraw: 200 * time.Millisecond, every: 10 * time.Second, tick: time.Second}
}

// attach makes o report to p.
func (p *progress) attach(o *scanner.Options) {
	o.Progress, o.Phase = p.update, p.enter
}

// screen is the progress line drawn on the terminal, if any: the
// terminal's log writer (termLog) clears it before a log line and draws it
// again after, so that a warning never lands in the middle of it.
var screen struct {
	sync.Mutex
	p *progress
}

// termLog is the log writer of a terminal.
type termLog struct{ w io.Writer }

func (t termLog) Write(b []byte) (int, error) {
	screen.Lock()
	p := screen.p
	screen.Unlock()
	if p == nil {
		return t.w.Write(b)
	}
	return p.above(b)
}

// above writes b (whole lines) above the progress line.
func (p *progress) above(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.onScreen == 0 {
		return p.w.Write(b)
	}
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.onScreen))
	n, err := p.w.Write(b)
	p.onScreen = 0
	p.line(p.status())
	return n, err
}

// enter ends the phase in course and begins name, of total units.
func (p *progress) enter(name string, total int) {
	if p.tty {
		screen.Lock()
		screen.p = p
		screen.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
	p.phase, p.total, p.done, p.base, p.fresh = name, total, 0, 0, true
	p.unit = map[string]string{"discovery": "domains", "scan": "jobs"}[name]
	p.start, p.lastLog, p.lastDraw = p.now(), p.now(), time.Time{}
	p.drawLocked(true)
	if p.tick > 0 && !p.ticking {
		p.ticking, p.stop = true, make(chan struct{})
		go p.ticker(p.stop)
	}
}

// update records done of total in the phase (the scan's jobs).
func (p *progress) update(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.phase == "" && p.tty { // told no phase: the jobs are the scan
		screen.Lock()
		screen.p = p
		screen.Unlock()
	}
	if p.phase == "" { // told no phase: the jobs are the scan
		p.phase, p.unit, p.start, p.lastLog, p.fresh = "scan", "jobs", p.now(), p.now(), true
	}
	if p.fresh {
		// The scan's first call carries the jobs an earlier attempt did.
		p.base, p.fresh = done, false
	}
	p.done, p.total = done, total
	if done >= total {
		p.finishLocked()
		return
	}
	p.drawLocked(false)
}

// close ends the phase in course (an interrupted run's too) and stops the
// clock.
func (p *progress) close() {
	screen.Lock()
	if screen.p == p {
		screen.p = nil
	}
	screen.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
	if p.ticking {
		close(p.stop)
		p.ticking = false
	}
}

func (p *progress) ticker(stop chan struct{}) {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			if p.phase != "" {
				p.drawLocked(false)
			}
			p.mu.Unlock()
		}
	}
}

// finishLocked ends the phase: its last state drawn and the line ended on
// a terminal, one log line elsewhere.
func (p *progress) finishLocked() {
	if p.phase == "" {
		return
	}
	took := p.now().Sub(p.start).Round(100 * time.Millisecond)
	if p.tty {
		p.line(p.status() + fmt.Sprintf("  done in %s", took))
		fmt.Fprintln(p.w)
		p.onScreen = 0
	} else {
		p.log.Info("phase done", "phase", p.phase, "done", p.done, "total", p.total, "took", took.String())
	}
	p.phase = ""
}

// drawLocked redraws (terminal) or logs (elsewhere) if it is time to.
func (p *progress) drawLocked(force bool) {
	now := p.now()
	if p.tty {
		if !force && now.Sub(p.lastDraw) < p.redraw {
			return
		}
		p.lastDraw = now
		p.line(p.status())
		return
	}
	if !force && now.Sub(p.lastLog) >= p.every {
		p.lastLog = now
		rate, eta := p.rate()
		p.log.Info("progress", "phase", p.phase, "done", p.done, "total", p.total, "rate_per_s", rate, "eta", eta)
	}
}

// line draws s over the line on screen.
func (p *progress) line(s string) {
	pad := ""
	if n := p.onScreen - len(s); n > 0 {
		pad = strings.Repeat(" ", n) // clear what a longer line left
	}
	fmt.Fprintf(p.w, "\r%s%s", s, pad)
	p.onScreen = len(s)
}

// status is the phase's line: "scan  1234/5678 jobs  21.7%  41.2/s  ETA 1m48s".
func (p *progress) status() string {
	elapsed := p.now().Sub(p.start).Round(time.Second)
	if p.phase == "discovery" {
		return fmt.Sprintf("%-9s  %d %s  %s", p.phase, p.total, p.unit, elapsed)
	}
	pct := 0.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	rate, eta := p.rate()
	return fmt.Sprintf("%-9s  %d/%d %s  %5.1f%%  %.1f/s  ETA %s", p.phase, p.done, p.total, p.unit, pct, rate, eta)
}

// rate is the phase's units a second (an earlier attempt's left out) and
// the time left at that rate ("?" before the first unit).
func (p *progress) rate() (float64, string) {
	secs := p.now().Sub(p.start).Seconds()
	n := p.done - p.base
	if secs <= 0 || n <= 0 {
		return 0, "?"
	}
	r := float64(n) / secs
	left := time.Duration(float64(p.total-p.done) / r * float64(time.Second))
	return float64(int(r*10)) / 10, left.Round(time.Second).String()
}
