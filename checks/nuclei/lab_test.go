package nuclei_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/nuclei"
	"github.com/nhsx/posture/scanner/lab"
)

// TestMain removes the worker the tests built (see worker).
func TestMain(m *testing.M) {
	code := m.Run()
	if workerDir != "" {
		os.RemoveAll(workerDir)
	}
	os.Exit(code)
}

var (
	labOnce    sync.Once
	theLab     *lab.Lab
	labErr     error
	workerOnce sync.Once
	workerDir  string
	workerErr  error
)

// worker builds the worker (a posture binary) once, for the tests that
// run web.nuclei, unless WorkerEnv names one already (make test builds
// bin/posture first).
func worker(t testing.TB) {
	workerOnce.Do(func() {
		if os.Getenv(nuclei.WorkerEnv) != "" {
			return
		}
		if workerDir, workerErr = os.MkdirTemp("", "posture-worker-test-*"); workerErr != nil {
			return
		}
		bin := filepath.Join(workerDir, "posture")
		out, err := exec.Command("go", "build", "-o", bin, "../../cmd/posture").CombinedOutput()
		if err != nil {
			workerErr = fmt.Errorf("build the nuclei worker: %v\n%s", err, out)
			return
		}
		os.Setenv(nuclei.WorkerEnv, bin)
	})
	if workerErr != nil {
		t.Fatal(workerErr)
	}
}

func sharedLab(t testing.TB) *lab.Lab {
	worker(t)
	labOnce.Do(func() { theLab, labErr = lab.Start(context.Background(), lab.Config{}) })
	if labErr != nil {
		t.Fatal(labErr)
	}
	return theLab
}

// collectAll runs c on every host at once (one batch) and returns each
// host's findings by id.
func collectAll(t testing.TB, c check.Check, env *check.Env, pol *check.Policy, hosts []string) map[string]map[string]check.Finding {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[string]map[string]check.Finding{}
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			a := check.Asset{Kind: check.KindHost, Name: h}
			ev, _ := c.Collect(ctx, env, a)
			fs := c.Evaluate(ev, pol)
			mu.Lock()
			defer mu.Unlock()
			out[h] = map[string]check.Finding{}
			for _, f := range fs {
				out[h][f.CheckID] = f
			}
		}()
	}
	wg.Wait()
	return out
}

func TestExposureCasesMatchTheirTruth(t *testing.T) {
	l := sharedLab(t)
	want := map[string]map[string]check.Outcome{}
	for _, e := range l.Truth() {
		if e.Kind != check.KindHost || !strings.HasPrefix(e.Name, "www.lab-exposure-") || !strings.HasPrefix(e.CheckID, "web.") {
			continue
		}
		if !strings.HasPrefix(e.CheckID, "web.exposure.") && !strings.HasPrefix(e.CheckID, "web.takeover.") {
			continue
		}
		if want[e.Name] == nil {
			want[e.Name] = map[string]check.Outcome{}
		}
		want[e.Name][e.CheckID] = e.Outcome
	}
	if len(want) < 10 {
		t.Fatalf("the lab has %d exposure hosts, want at least 10", len(want))
	}
	var hosts []string
	for h := range want {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	r := &nuclei.Runner{}
	got := collectAll(t, nuclei.NewCheck(r), l.Env(), l.Policy(), hosts)
	var diffs []string
	for _, h := range hosts {
		for id, o := range want[h] {
			if f := got[h][id]; f.Outcome != o {
				diffs = append(diffs, fmt.Sprintf("%s %s: got %s (%s), want %s", h, id, f.Outcome, f.Message, o))
			}
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%d verdicts differ:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
	if n := r.Starts.Load(); n != 1 {
		t.Errorf("%d worker starts for %d hosts, want 1 batch", n, len(hosts))
	}
	// The .env file's keys are named, its values never recorded.
	env := got["www.lab-exposure-env.nhs.uk"]["web.exposure.env-file"]
	if !strings.Contains(env.Message, "DB_PASSWORD") || strings.Contains(env.Message, "lab-not-a-secret") {
		t.Errorf("web.exposure.env-file: %q, want the key DB_PASSWORD and no value", env.Message)
	}
}

// TestEveryJudgedHostMatchesTheTruth runs web.nuclei alone on every host
// the lab states truth for, each job with the 20 s the lab's truth test
// gives it (about 30 s; opt-in).
func TestEveryJudgedHostMatchesTheTruth(t *testing.T) {
	if os.Getenv("POSTURE_NUCLEI_ALL_HOSTS") == "" {
		t.Skip("the lab's truth tests (scanner/lab, scanner) cover every host; set POSTURE_NUCLEI_ALL_HOSTS=1 to run web.nuclei alone on all of them")
	}
	l := sharedLab(t)
	want := map[string]map[string]check.Outcome{}
	for _, e := range l.Truth() {
		if e.Kind != check.KindHost || !(strings.HasPrefix(e.CheckID, "web.exposure.") || strings.HasPrefix(e.CheckID, "web.takeover.")) {
			continue
		}
		if want[e.Name] == nil {
			want[e.Name] = map[string]check.Outcome{}
		}
		want[e.Name][e.CheckID] = e.Outcome
	}
	var hosts []string
	for _, e := range l.Truth() {
		if e.Kind == check.KindHost && !slices.Contains(hosts, e.Name) {
			hosts = append(hosts, e.Name)
		}
	}
	sort.Strings(hosts)
	c := nuclei.NewCheck(&nuclei.Runner{})
	env, pol := l.Env(), l.Policy()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var diffs []string
	start := time.Now()
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ev, _ := c.Collect(ctx, env, check.Asset{Kind: check.KindHost, Name: h})
			fs := c.Evaluate(ev, pol)
			mu.Lock()
			defer mu.Unlock()
			got := map[string]check.Finding{}
			for _, f := range fs {
				got[f.CheckID] = f
			}
			for id, f := range got {
				if o, ok := want[h][id]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s %s: got %s, not in the truth", h, id, f.Outcome))
				} else if o != f.Outcome {
					diffs = append(diffs, fmt.Sprintf("%s %s: got %s (%s), want %s", h, id, f.Outcome, f.Message, o))
				}
			}
			for id, o := range want[h] {
				if _, ok := got[id]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s %s: no finding, want %s", h, id, o))
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d hosts in %s", len(hosts), time.Since(start).Round(time.Millisecond))
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%d verdicts differ:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}
