package nuclei

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// WorkerEnv names the worker binary (a posture build) explicitly; tests
// set it. Without it the scanner's own executable is the worker.
const WorkerEnv = "POSTURE_NUCLEI_WORKER"

// Batching and budgets.
const (
	batchWindow   = 300 * time.Millisecond // a batch starts this long after its first host
	hostBudget    = 10 * time.Second       // all of one host's connections, from the first
	workerStart   = 4 * time.Second        // the worker's start-up (loading templates)
	preflightTime = 3 * time.Second        // the first connection to a host's port 443
	hostByteCap   = 256 << 20              // bytes one host may send in a batch
	requestTime   = 5                      // seconds: one request's time limit in nuclei
	workerSlack   = 20 * time.Second       // the worker's own start-up and shut-down
	maxEventLine  = 1 << 20
	maxEventsHost = 2000
)

// Runner coalesces Collect calls into batches and runs one worker process
// per batch. Its zero value is ready; Starts counts worker processes.
type Runner struct {
	// Worker is the posture binary to run as `nuclei-worker` ("": the
	// WorkerEnv variable, else the running executable).
	Worker string
	// Window overrides batchWindow (tests).
	Window time.Duration
	// Budget overrides hostBudget (tests).
	Budget time.Duration

	Starts atomic.Int64

	mu      sync.Mutex
	pending map[string]*batch
}

type batch struct {
	env   *check.Env
	cfg   config
	hosts []string
	wait  map[string][]chan Evidence
	timer *time.Timer
	ran   bool
}

// Collect adds the host to a batch and waits for its evidence, which
// comes as soon as every template has run on the host (not when the whole
// batch ends). It never returns an error: a batch that does not finish in
// the job's time is recorded as such, and Evaluate makes it unknown.
func (r *Runner) Collect(ctx context.Context, env *check.Env, a check.Asset) (Evidence, error) {
	host := strings.ToLower(strings.TrimSuffix(a.Name, "."))
	cfg := configOf(env)
	ch := make(chan Evidence, 1)
	key := fmt.Sprintf("%p|%s", env, cfg.key())
	r.mu.Lock()
	if r.pending == nil {
		r.pending = map[string]*batch{}
	}
	b := r.pending[key]
	if b == nil {
		b = &batch{env: env, cfg: cfg, wait: map[string][]chan Evidence{}}
		r.pending[key] = b
		win := r.Window
		if win <= 0 {
			win = batchWindow
		}
		b.timer = time.AfterFunc(win, func() { r.launch(key, b) })
	}
	if _, ok := b.wait[host]; !ok {
		b.hosts = append(b.hosts, host)
	}
	b.wait[host] = append(b.wait[host], ch)
	full := len(b.hosts) >= cfg.batch
	if full && r.pending[key] == b {
		delete(r.pending, key) // later hosts start a new batch
	}
	r.mu.Unlock()
	if full {
		b.timer.Stop()
		go r.launch(key, b)
	}
	select {
	case ev := <-ch:
		return ev, nil
	case <-ctx.Done():
		return Evidence{Host: host, PackVersion: PackVersion, UserDir: cfg.userDir, Tags: cfg.tags, Severities: cfg.severities,
			Templates: []Run{}, Worker: Worker{Exit: "had not finished the host when the job's time ran out", Class: check.Classify(ctx.Err())}}, nil
	}
}

func (r *Runner) launch(key string, b *batch) {
	r.mu.Lock()
	if b.ran {
		r.mu.Unlock()
		return
	}
	b.ran = true
	if r.pending[key] == b {
		delete(r.pending, key)
	}
	r.mu.Unlock()
	var mu sync.Mutex
	sent := map[string]bool{}
	deliver := func(h string, ev Evidence) {
		mu.Lock()
		defer mu.Unlock()
		if sent[h] {
			return
		}
		sent[h] = true
		for _, ch := range b.wait[h] {
			ch <- ev
		}
	}
	r.runBatch(b, deliver)
}

// runBatch runs one worker on the batch's hosts and delivers each host's
// evidence (at the latest when the worker ends).
func (r *Runner) runBatch(b *batch, deliver func(string, Evidence)) {
	start := time.Now()
	budget := r.Budget
	if budget <= 0 {
		budget = hostBudget
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget+workerSlack)
	defer cancel()
	base := func(h string) Evidence {
		return Evidence{Host: h, PackVersion: PackVersion, UserDir: b.cfg.userDir, Tags: b.cfg.tags,
			Severities: b.cfg.severities, Templates: []Run{}}
	}
	// Resolve through the guard first (it refuses names out of scope and
	// vouches for the addresses of those in scope), then open one
	// connection to port 443: a host that refuses it has nothing to
	// inspect, one that does not answer is not worth a worker's time.
	var (
		targets []string
		ok      []string
		rmu     sync.Mutex
		rwg     sync.WaitGroup
	)
	for _, h := range b.hosts {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			ev := base(h)
			ev.Worker.Batch = len(b.hosts)
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := b.env.Addrs(rctx, h)
			rcancel()
			if err != nil {
				ev.ResolveError, ev.ResolveClass = clip(err.Error(), 300), check.Classify(err)
				deliver(h, ev)
				return
			}
			if net, err := preflight(ctx, b.env, h); err != nil {
				ev.Net = net
				ev.Worker.Exit, ev.Worker.Class = "was not given the host: "+clip(err.Error(), 200), net.LastClass
				ev.Templates = runsFor(nil, ev.Worker, net)
				deliver(h, ev)
				return
			}
			rmu.Lock()
			ok = append(ok, h)
			rmu.Unlock()
		}()
	}
	rwg.Wait()
	sort.Strings(ok)
	for _, h := range ok {
		targets = append(targets, "https://"+h)
	}
	if len(targets) == 0 {
		return
	}
	// The worker gets the host budget and its start-up; then whatever a
	// host has not finished is unknown (timeout).
	wctx, wcancel := context.WithTimeout(ctx, budget+workerStart)
	defer wcancel()
	p, err := startProxy(b.env, b.cfg.hostRate, budget, hostByteCap)
	if err != nil {
		for _, h := range ok {
			ev := base(h)
			ev.Worker = Worker{Batch: len(b.hosts), Exit: "did not start: " + err.Error(), Class: check.ErrInternal}
			deliver(h, ev)
		}
		return
	}
	defer p.Close()
	build := func(h string, evs []Event, w Worker) Evidence {
		ev := base(h)
		w.Batch = len(b.hosts)
		w.ElapsedMS = time.Since(start).Milliseconds()
		w.ScopeRefused = p.ScopeRefused()
		ev.Worker = w
		ev.Net = p.Host(h)
		ev.Templates = runsFor(evs, w, ev.Net)
		return ev
	}
	events, w := r.runWorker(wctx, b, targets, p, func(h string, evs []Event) {
		deliver(h, build(h, evs, Worker{}))
	})
	for _, h := range ok {
		deliver(h, build(h, events[h], w))
	}
}

// preflight opens (and closes) one connection to the host's port 443
// through env, as the worker's would go.
func preflight(ctx context.Context, env *check.Env, host string) (hostNet, error) {
	ctx, cancel := context.WithTimeout(ctx, preflightTime)
	defer cancel()
	n := hostNet{Dials: 1}
	c, err := env.DialContext(ctx, "tcp", net.JoinHostPort(host, "443"))
	if err == nil {
		c.Close()
		return hostNet{}, nil
	}
	n.LastClass = check.Classify(err)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		n.Refused = 1
	case n.LastClass == check.ErrScope:
		n.Scope = 1
	default:
		n.Failed = 1
	}
	return n, err
}

// runsFor folds a host's events into one Run per template: matched if any
// event matched, else error if any errored, else clean; pack templates
// without an event did not run.
func runsFor(evs []Event, w Worker, net hostNet) []Run {
	byT := map[string]*Run{}
	var order []string
	for _, e := range evs {
		k := e.Source + "/" + e.Template
		r := byT[k]
		if r == nil {
			r = &Run{Template: clip(e.Template, 120), Source: e.Source, Outcome: Clean, Severity: clip(e.Severity, 20), Name: clip(e.Name, 120)}
			byT[k] = r
			order = append(order, k)
		}
		r.ElapsedMS = max(r.ElapsedMS, min(max(e.ElapsedMS, 0), int64(time.Hour/time.Millisecond)))
		switch {
		case e.Matched && r.Outcome != Matched:
			r.Outcome, r.URL, r.Matcher, r.Error, r.Class = Matched, clip(e.URL, 300), clip(e.Matcher, 60), "", ""
			for i, x := range e.Extracted {
				if i == 10 {
					break
				}
				r.Extracted = append(r.Extracted, clip(x, 120))
			}
		case !e.Matched && e.Error != "" && r.Outcome == Clean:
			r.Outcome, r.Error = Errored, clip(e.Error, 300)
			r.Class = net.LastClass
			if r.Class == "" {
				r.Class = check.ErrOther
			}
		}
	}
	var out []Run
	for _, t := range Pack() {
		if r, ok := byT["pack/"+t.ID]; ok {
			r.Hash, r.CheckID = t.Hash, t.Meta.ID
			continue
		}
		class := net.LastClass
		if class == "" {
			class = w.Class
		}
		out = append(out, Run{Template: t.ID, Source: "pack", Hash: t.Hash, CheckID: t.Meta.ID, Outcome: NotRun, Class: class})
	}
	for _, id := range order {
		out = append(out, *byT[id])
	}
	return out
}

// runWorker starts the worker and reads its events, by host; done is
// called for a host as soon as every loaded template has a result there.
func (r *Runner) runWorker(ctx context.Context, b *batch, targets []string, p *guardProxy, done func(string, []Event)) (map[string][]Event, Worker) {
	var w Worker
	exe, err := r.workerPath()
	if err != nil {
		w.Exit, w.Class = "was not found: "+err.Error(), check.ErrInternal
		return nil, w
	}
	dir, err := os.MkdirTemp("", "posture-nuclei-*")
	if err != nil {
		w.Exit, w.Class = "had no work directory: "+err.Error(), check.ErrInternal
		return nil, w
	}
	defer os.RemoveAll(dir)
	job := Job{Version: JobVersion, Targets: targets, Pack: true, PackVersion: PackVersion,
		UserDir: b.cfg.userDir, Tags: b.cfg.tags, Severities: b.cfg.severities,
		Proxy: p.Addr(), Resolver: p.DNSAddr(), RateLimit: b.cfg.rate, Timeout: requestTime,
		WorkDir: dir, HostConcurrency: min(len(targets), 64), TemplateConcurrency: 10, MaxHostErrors: 3}
	if d, ok := ctx.Deadline(); ok {
		job.Deadline = int(time.Until(d)/time.Second) + 2
	}
	in, _ := json.Marshal(job)
	cmd := exec.CommandContext(ctx, exe, "nuclei-worker")
	cmd.Stdin = bytes.NewReader(in)
	proxyURL := "http://" + p.Addr()
	cmd.Env = []string{
		"HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "NUCLEI_CONFIG_DIR=" + filepath.Join(dir, "nuclei"),
		"TMPDIR=" + dir, "PATH=", // no openssl binary for tlsx: its openssl mode would dial by itself
		// Anything in the worker that reads the proxy environment goes to
		// the guarded proxy too.
		"HTTP_PROXY=" + proxyURL, "HTTPS_PROXY=" + proxyURL, "ALL_PROXY=socks5://" + p.Addr(), "NO_PROXY=",
		"DISABLE_NUCLEI_TEMPLATES_PUBLIC_DOWNLOAD=true", "HIDE_TEMPLATE_SIG_WARNING=true",
	}
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	cmd.WaitDelay = 2 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		w.Exit, w.Class = "did not start: "+err.Error(), check.ErrInternal
		return nil, w
	}
	if err := cmd.Start(); err != nil {
		w.Exit, w.Class = "did not start: "+err.Error(), check.ErrInternal
		return nil, w
	}
	r.Starts.Add(1)
	workerStarts.Add(1)
	events := map[string][]Event{}
	var loaded []string // "source/template"
	seen := map[string]map[string]bool{}
	finished := map[string]bool{}
	complete := func(h string) bool {
		if loaded == nil || finished[h] {
			return false
		}
		for _, k := range loaded {
			if !seen[h][k] {
				return false
			}
		}
		return true
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	ended := false
	for sc.Scan() {
		var e Event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if e.Done {
			ended = true
			w.LoadError = clip(e.LoadError, 500)
			continue
		}
		if e.Loaded != nil && e.Template == "" {
			loaded = loaded[:0:0]
			for k := range e.Loaded {
				loaded = append(loaded, k)
			}
			continue
		}
		h := hostOfTarget(e.Target)
		if h == "" || len(events[h]) >= maxEventsHost {
			continue
		}
		events[h] = append(events[h], e)
		if seen[h] == nil {
			seen[h] = map[string]bool{}
		}
		seen[h][e.Source+"/"+e.Template] = true
		if complete(h) {
			finished[h] = true
			done(h, events[h])
		}
	}
	err = cmd.Wait()
	switch {
	case ctx.Err() != nil:
		w.Exit, w.Class = "was stopped at the batch's time limit", check.ErrTimeout
	case err != nil:
		w.Exit, w.Class = clip("failed: "+err.Error()+": "+strings.TrimSpace(stderr.String()), 500), check.ErrInternal
	case !ended:
		w.Exit, w.Class = "ended without finishing its output", check.ErrInternal
	}
	return events, w
}

func hostOfTarget(t string) string {
	t = strings.TrimPrefix(strings.TrimPrefix(t, "https://"), "http://")
	if i := strings.IndexAny(t, "/:"); i >= 0 {
		t = t[:i]
	}
	return strings.ToLower(strings.TrimSuffix(t, "."))
}

// workerStarts counts worker processes started by every Runner.
var workerStarts atomic.Int64

// WorkerStarts returns how many worker processes this process has
// started (a scan limited to other families starts none).
func WorkerStarts() int64 { return workerStarts.Load() }

// errNoWorker: a test binary is not a posture binary.
var errNoWorker = errors.New("this is a test binary: set " + WorkerEnv + " to a posture binary (make build)")

func (r *Runner) workerPath() (string, error) {
	if r.Worker != "" {
		return r.Worker, nil
	}
	if p := os.Getenv(WorkerEnv); p != "" {
		return p, nil
	}
	if isTestBinary() {
		return testWorker()
	}
	return os.Executable()
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
