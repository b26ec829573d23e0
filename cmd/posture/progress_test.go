package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nhsx/posture/scanner/lab"
)

// openPTY opens a pseudo-terminal pair (Linux /dev/ptmx): what a user's
// terminal is to posture.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("SKIP LOUDLY: no pseudo-terminals here (/dev/ptmx: %v): the terminal display is untested", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// drain reads the master side until it is closed or quiet for a second.
func drain(m *os.File) <-chan string {
	out := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for {
			m.SetReadDeadline(time.Now().Add(time.Second))
			n, err := m.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		out <- b.String()
	}()
	return out
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// simulate runs a discovery of 3 domains for 2 s, then a scan of 1,000
// jobs of which 100 were done by an earlier attempt, one job every
// step.
func simulate(p *progress, c *fakeClock, step time.Duration) {
	p.enter("discovery", 3)
	c.add(2 * time.Second)
	p.enter("scan", 1000)
	p.update(100, 1000)
	for done := 101; done <= 1000; done++ {
		c.add(step)
		p.update(done, 1000)
	}
	p.close()
}

// redraws counts carriage returns that are not a line's end (the
// terminal turns "\n" into "\r\n").
func redraws(s string) int { return strings.Count(s, "\r") - strings.Count(s, "\r\n") }

func TestProgressOnATerminalRedrawsInPlaceAtMostFiveTimesASecond(t *testing.T) {
	m, tty := openPTY(t)
	out := drain(m)
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := newProgress(tty, nil)
	if !p.tty {
		t.Fatal("a pseudo-terminal is not taken for a terminal")
	}
	p.now, p.tick = c.now, 0
	simulate(p, c, 2*time.Millisecond) // 900 jobs in 1.8 s
	tty.Close()
	got := <-out
	// 1.8 s of scan at most 5 a second (+1 for the first), the phase
	// starts and ends: never one per job.
	if n := redraws(got); n < 5 || n > 16 {
		t.Errorf("%d redraws for 900 jobs in 1.8 s, want 5..16 (in place, at most 5 a second):\n%q", n, got)
	}
	for _, want := range []string{"discovery  3 domains", "done in 2s", "scan", "1000/1000 jobs", "100.0%", "/s", "ETA"} {
		if !strings.Contains(got, want) {
			t.Errorf("the terminal lacks %q:\n%q", want, got)
		}
	}
	// The rate leaves out the earlier attempt's 100 jobs: 900 in 1.8 s.
	if !strings.Contains(got, "500.0/s") {
		t.Errorf("rate: want 500.0/s (900 jobs done now in 1.8 s):\n%q", got)
	}
	if lines := strings.Count(got, "\n"); lines != 2 {
		t.Errorf("%d lines ended, want 2 (one per phase):\n%q", lines, got)
	}
}

func TestProgressOffATerminalLogsPlainLines(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	for _, w := range []struct {
		name string
		f    *os.File
	}{{"/dev/null", null}, {"a pipe", pw}} {
		t.Run(w.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			p := newProgress(w.f, slog.New(slog.NewJSONHandler(&logs, nil)))
			if p.tty {
				t.Fatalf("%s is taken for a terminal", w.name)
			}
			p.now, p.tick = c.now, 0
			simulate(p, c, 100*time.Millisecond) // 90 s of scan
			var progressLines, phaseEnds int
			sc := bufio.NewScanner(&logs)
			for sc.Scan() {
				line := sc.Text()
				if strings.ContainsAny(line, "\r\x1b") {
					t.Errorf("a log line holds a carriage return or escape: %q", line)
				}
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("not a log record: %q", line)
				}
				switch rec["msg"] {
				case "progress":
					progressLines++
				case "phase done":
					phaseEnds++
				}
			}
			// 90 s of scan: a line every 10 s, and one per phase's end.
			if progressLines < 8 || progressLines > 9 || phaseEnds != 2 {
				t.Errorf("%d progress lines and %d phase ends for 90 s of scan, want 8..9 and 2:\n%s", progressLines, phaseEnds, logs.String())
			}
		})
	}
	pw.Close()
	if b, _ := io.ReadAll(pr); len(b) != 0 {
		t.Errorf("the display wrote to a pipe: %q", b)
	}
}

// TestScanShowsProgressOnATerminalAndLogsElsewhere runs `posture scan` of
// a small lab twice: with stderr a pseudo-terminal it redraws a progress
// line; with stderr a pipe it logs lines (JSON records), no redraws.
func TestScanShowsProgressOnATerminalAndLogsElsewhere(t *testing.T) {
	t.Parallel()
	l, err := lab.Start(context.Background(), lab.Config{Domains: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	estatePath := filepath.Join(dir, "estate.yaml")
	os.WriteFile(estatePath, l.EstateYAML(), 0o644)
	args := func(db string) []string {
		return []string{"scan", "--estate", estatePath, "--db", filepath.Join(dir, db), "--resolver", l.DNSAddr, "--only", "email",
			"--ct-url", "", "--allow-private", "--dns-timeout", "300ms"}
	}

	m, tty := openPTY(t)
	child := cliChild(args("tty.db")...)
	child.Stderr = tty
	out := drain(m)
	if err := child.Run(); err != nil {
		t.Fatalf("scan on a terminal: %v", err)
	}
	tty.Close()
	got := <-out
	if redraws(got) < 2 || !strings.Contains(got, "discovery") || !strings.Contains(got, "jobs") || !strings.Contains(got, "done in") {
		t.Errorf("scan on a terminal: want progress lines redrawn in place, got:\n%q", got)
	}

	child = cliChild(args("pipe.db")...)
	var stderr bytes.Buffer
	child.Stderr = &stderr // exec copies it through a pipe
	if err := child.Run(); err != nil {
		t.Fatalf("scan into a pipe: %v\n%s", err, stderr.String())
	}
	logs := stderr.String()
	if strings.Contains(logs, "\r") {
		t.Errorf("scan into a pipe redrew:\n%q", logs)
	}
	for _, want := range []string{`"msg":"phase done","phase":"discovery"`, `"msg":"phase done","phase":"scan"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("scan into a pipe: no %s line:\n%s", want, logs)
		}
	}
}

// TestLogLinesGoAboveTheProgressLine: a warning logged on the terminal
// while the progress line is drawn clears it, takes a line of its own,
// and the progress line is drawn again below it.
func TestLogLinesGoAboveTheProgressLine(t *testing.T) {
	m, tty := openPTY(t)
	out := drain(m)
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := newProgress(tty, nil)
	p.now, p.tick = c.now, 0
	log := newLogger(tty, false)
	p.enter("scan", 10)
	p.update(0, 10)
	c.add(time.Second)
	p.update(5, 10)
	log.Warn("a warning", "domain", "example.nhs.uk")
	c.add(time.Second)
	p.update(10, 10)
	p.close()
	log.Warn("after the display")
	tty.Close()
	got := <-out
	// The warning starts a line (after the blanked progress line's \r)
	// and the progress line follows it, redrawn.
	i := strings.Index(got, "level=WARN msg=\"a warning\"")
	if i < 0 {
		t.Fatalf("no warning on the terminal:\n%q", got)
	}
	before, after := got[:i], got[i:]
	before = before[:strings.LastIndex(before, "time=")]
	if !strings.HasSuffix(before, " \r") {
		t.Errorf("the warning does not start at the line's start:\n%q", got)
	}
	if !strings.Contains(after, "\r\n\rscan") || !strings.Contains(after, "5/10 jobs") {
		t.Errorf("the progress line is not drawn again below the warning:\n%q", got)
	}
	if !strings.Contains(after, "10/10 jobs") || !strings.Contains(after, "level=WARN msg=\"after the display\"") {
		t.Errorf("after the phase:\n%q", got)
	}
}
