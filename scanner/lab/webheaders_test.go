package lab_test

import (
	"context"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webcheck"
	"github.com/nhsx/posture/scanner/lab"
)

// TestWebhdrTruthIsStatedAndHolds checks that every lab host has the
// family's ids stated, none left without a truth by the lab's own
// judgement, and runs web.https on the family's own hosts and compares
// those ids (TestEveryFamilysTruthHoldsInTheLab compares them on every
// host; this is its quick slice for the family's cases;
// POSTURE_WEBHDR_ALL=1 scans every host here too).
func TestWebhdrTruthIsStatedAndHolds(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want := map[string]map[string]check.Outcome{}
	hosts := map[string]bool{}
	for _, e := range l.Truth() {
		if e.Kind != check.KindHost {
			continue
		}
		hosts[e.Name] = true
		if !slices.Contains(webcheck.HeaderIDs, e.CheckID) {
			continue
		}
		if strings.HasPrefix(string(e.Outcome), "lab has no truth") {
			t.Errorf("%s: %s", e.Name, e.Outcome)
		}
		if want[e.Name] == nil {
			want[e.Name] = map[string]check.Outcome{}
		}
		want[e.Name][e.CheckID] = e.Outcome
	}
	for h := range hosts {
		if len(want[h]) != len(webcheck.HeaderIDs) {
			t.Errorf("%s: %d of the %d header ids stated", h, len(want[h]), len(webcheck.HeaderIDs))
		}
	}
	env, pol := l.Env(), l.Policy()
	c := webcheck.Check()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 16)
		diffs []string
	)
	ours := 0
	all := os.Getenv("POSTURE_WEBHDR_ALL") != "" // every host, as the every-family test does
	for h, w := range want {
		if !all && !strings.HasPrefix(h, "www.lab-webhdr-") {
			continue
		}
		ours++
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			a := check.Asset{Kind: check.KindHost, Name: h}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			ev, _ := c.Collect(ctx, env, a)
			cancel()
			got := map[string]check.Finding{}
			for _, f := range c.Evaluate(ev, pol) {
				got[f.CheckID] = f
			}
			mu.Lock()
			defer mu.Unlock()
			for id, o := range w {
				if got[id].Outcome != o {
					diffs = append(diffs, h+" "+id+": scanner "+string(got[id].Outcome)+" ("+got[id].Message+"), truth "+string(o))
				}
			}
		}()
	}
	wg.Wait()
	if ours < 20 {
		t.Errorf("only %d hosts of the family's cases judged", ours)
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d verdicts differ from the lab's truth:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}
