package scanner

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/email"
	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/store"
)

// probe is a check whose collector behaves as told; the unit under test is
// the scanner around it.
type probe struct {
	id      string
	collect func(ctx context.Context, a check.Asset) (string, error)
}

func (p probe) Check() check.Check {
	return check.New(check.Spec[string]{
		ID:      p.id,
		Rules:   []check.Meta{{ID: p.id + ".rule", Family: "test", Severity: check.High}},
		Applies: func(a check.Asset) bool { return a.Kind == check.KindDomain },
		Collect: func(ctx context.Context, env *check.Env, a check.Asset) (string, error) { return p.collect(ctx, a) },
		Evaluate: func(in check.In[string]) []check.Finding {
			o := check.Pass
			if in.Evidence == "bad" {
				o = check.Fail
			}
			return []check.Finding{{Rule: "ok", Outcome: o, Message: in.Evidence}}
		},
	})
}

func domains(n int) []check.Asset {
	var out []check.Asset
	for i := 0; i < n; i++ {
		d := fmt.Sprintf("d%03d.nhs.uk", i)
		out = append(out, check.Asset{Kind: check.KindDomain, Name: d, Domain: d, Org: "R0A"})
	}
	return out
}

func openStore(t *testing.T) (*store.Store, int64) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	run, _, err := st.BeginRun(context.Background(), "k", "{}")
	if err != nil {
		t.Fatal(err)
	}
	return st, run.ID
}

func outcomes(t *testing.T, st *store.Store, run int64) map[string]check.Outcome {
	t.Helper()
	fs, err := st.Findings(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]check.Outcome{}
	for _, f := range fs {
		m[f.Asset.Name+" "+f.CheckID] = f.Outcome
	}
	return m
}

func TestScanPanicBecomesUnknownAndRunContinues(t *testing.T) {
	st, run := openStore(t)
	c := probe{"t.panic", func(ctx context.Context, a check.Asset) (string, error) {
		if a.Name == "d001.nhs.uk" {
			panic("boom")
		}
		return "good", nil
	}}.Check()
	stats, err := Scan(context.Background(), st, run, domains(3), Options{Checks: []check.Check{c}, Env: &check.Env{}})
	if err != nil {
		t.Fatal(err)
	}
	got := outcomes(t, st, run)
	if got["d001.nhs.uk t.panic.rule"] != check.Unknown || got["d000.nhs.uk t.panic.rule"] != check.Pass || got["d002.nhs.uk t.panic.rule"] != check.Pass {
		t.Fatalf("outcomes %v: want unknown for the panicking job, pass for the others", got)
	}
	if stats.Panics != 1 {
		t.Fatalf("stats.Panics = %d, want 1", stats.Panics)
	}
}

func TestScanJobTimeoutIsUnknownNotFail(t *testing.T) {
	st, run := openStore(t)
	c := probe{"t.slow", func(ctx context.Context, a check.Asset) (string, error) {
		<-ctx.Done()
		return "", fmt.Errorf("slow: %w", ctx.Err())
	}}.Check()
	_, err := Scan(context.Background(), st, run, domains(2), Options{Checks: []check.Check{c}, Env: &check.Env{}, JobTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := st.Findings(context.Background(), run)
	for _, f := range fs {
		if f.Outcome != check.Unknown || f.Reason != string(check.ErrTimeout) {
			t.Fatalf("finding %s: outcome %s reason %q, want unknown/timeout", f.Asset.Name, f.Outcome, f.Reason)
		}
	}
	if len(fs) != 2 {
		t.Fatalf("%d findings, want 2", len(fs))
	}
}

func TestScanBoundsConcurrencyAndPerDomainJobs(t *testing.T) {
	st, run := openStore(t)
	var cur, peak atomic.Int64
	var mu sync.Mutex
	perDomain := map[string]int{}
	peakDomain := 0
	mk := func(id string) check.Check {
		return probe{id, func(ctx context.Context, a check.Asset) (string, error) {
			n := cur.Add(1)
			defer cur.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			mu.Lock()
			perDomain[a.Domain]++
			if perDomain[a.Domain] > peakDomain {
				peakDomain = perDomain[a.Domain]
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			perDomain[a.Domain]--
			mu.Unlock()
			return "good", nil
		}}.Check()
	}
	cs := []check.Check{mk("t.a"), mk("t.b"), mk("t.c"), mk("t.d")}
	if _, err := Scan(context.Background(), st, run, domains(20), Options{Checks: cs, Env: &check.Env{}, Concurrency: 5, PerDomain: 2}); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p > 5 || p < 2 {
		t.Fatalf("peak concurrent jobs = %d, want between 2 and the limit 5", p)
	}
	if peakDomain > 2 {
		t.Fatalf("peak concurrent jobs on one domain = %d, want at most 2", peakDomain)
	}
}

func TestScanInterruptedThenResumedDoesEachJobOnce(t *testing.T) {
	st, run := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int64
	c := probe{"t.count", func(jctx context.Context, a check.Asset) (string, error) {
		if started.Add(1) == 10 {
			cancel() // the operator presses Ctrl-C during the tenth job
		}
		select {
		case <-jctx.Done():
			return "", jctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		return "bad", nil
	}}.Check()
	opts := Options{Checks: []check.Check{c}, Env: &check.Env{}, Concurrency: 2}
	stats, err := Scan(ctx, st, run, domains(40), opts)
	if !errors.Is(err, context.Canceled) || stats.Status != "interrupted" {
		t.Fatalf("first scan: err %v status %q, want interrupted", err, stats.Status)
	}
	first := stats.Done
	if first == 0 || first >= 40 {
		t.Fatalf("first scan stored %d jobs, want some but not all", first)
	}
	stats, err = Scan(context.Background(), st, run, domains(40), opts)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Skipped != first || stats.Done != 40-first {
		t.Fatalf("resume skipped %d and did %d; want %d skipped and %d done", stats.Skipped, stats.Done, first, 40-first)
	}
	fs, _ := st.Findings(context.Background(), run)
	if len(fs) != 40 {
		t.Fatalf("%d findings stored, want 40 (one per job, no duplicates)", len(fs))
	}
	for _, f := range fs {
		if f.Outcome != check.Fail {
			t.Fatalf("%s: %s, want fail (no unknown left by the interrupt)", f.Asset.Name, f.Outcome)
		}
	}
}

func TestScanGivesSlowChecksTheirLongerTimeout(t *testing.T) {
	st, run := openStore(t)
	slow := check.New(check.Spec[string]{
		ID:      "t.smtp",
		Rules:   []check.Meta{{ID: "t.smtp.rule", Family: "test", Severity: check.High}},
		Timeout: time.Second,
		Collect: func(ctx context.Context, env *check.Env, a check.Asset) (string, error) {
			select {
			case <-time.After(200 * time.Millisecond):
				return "good", nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		},
		Evaluate: func(in check.In[string]) []check.Finding {
			return []check.Finding{{Rule: "ok", Outcome: check.Pass}}
		},
	})
	if _, err := Scan(context.Background(), st, run, domains(1), Options{Checks: []check.Check{slow}, Env: &check.Env{}, JobTimeout: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if got := outcomes(t, st, run)["d000.nhs.uk t.smtp.rule"]; got != check.Pass {
		t.Fatalf("outcome %q: the check's own 1 s limit should have replaced the 50 ms default", got)
	}
}

func TestRunKeyChangesWithWhatTheRunWouldJudge(t *testing.T) {
	e := estate.Default()
	c := email.SPF() // a collector with a policy section
	base := Config{Estate: e, Checks: []check.Check{c}}
	key := func(cfg Config) string {
		k, err := cfg.Key()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	parse := func(y string) *check.Policy {
		p, err := check.ParsePolicy("policy.yaml", []byte(y), []check.Sectioner{email.Settings})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	strict := parse("email: {spf_max_lookups: 8}")
	explicit := parse("email: {spf_max_lookups: 10}")
	other := probe{"t.b", nil}.Check()
	tests := []struct {
		name string
		cfg  Config
		same bool
	}{
		{"same command", Config{Estate: e, Checks: []check.Check{c}}, true},
		{"default policy given explicitly", Config{Estate: e, Checks: []check.Check{c}, Options: Options{Policy: check.DefaultPolicy()}}, true},
		{"default section values given explicitly", Config{Estate: e, Checks: []check.Check{c}, Options: Options{Policy: explicit}}, true},
		{"another policy", Config{Estate: e, Checks: []check.Check{c}, Options: Options{Policy: strict}}, false},
		{"another family", Config{Estate: e, Checks: []check.Check{c}, Families: []string{"email"}}, false},
		{"another check list", Config{Estate: e, Checks: []check.Check{c, other}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := key(tt.cfg) == key(base); got != tt.same {
				t.Fatalf("same key = %v, want %v", got, tt.same)
			}
		})
	}
}

// failingStore is a store whose disk fills after n results.
type failingStore struct {
	*store.Store
	n atomic.Int64
}

func (f *failingStore) PutResult(ctx context.Context, run int64, ev check.Evidence, fs []check.Finding) error {
	if f.n.Add(-1) < 0 {
		return errors.New("disk I/O error: database or disk is full")
	}
	return f.Store.PutResult(ctx, run, ev, fs)
}

func TestScanStopsProbingWhenTheStoreFails(t *testing.T) {
	st, run := openStore(t)
	fst := &failingStore{Store: st}
	fst.n.Store(3)
	var collected atomic.Int64
	c := probe{"t.probe", func(ctx context.Context, a check.Asset) (string, error) {
		collected.Add(1)
		time.Sleep(2 * time.Millisecond)
		return "good", nil
	}}.Check()
	stats, err := Scan(context.Background(), fst, run, domains(200), Options{Checks: []check.Check{c}, Env: &check.Env{}, Concurrency: 4})
	if err == nil || stats.Status != "failed" {
		t.Fatalf("err %v, status %q: want the store's error and status failed", err, stats.Status)
	}
	if n := collected.Load(); n > 40 {
		t.Fatalf("%d of 200 hosts probed after the store failed at the fourth result: probing should stop", n)
	}
	if stats.Done != 3 {
		t.Fatalf("%d results stored, want the 3 before the failure", stats.Done)
	}
}
