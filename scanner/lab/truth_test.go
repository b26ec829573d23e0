package lab_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/scanner/lab"
)

// TestEveryFamilysTruthHoldsInTheLab runs every collector of checks.All()
// against every asset the lab states truth for (domains, web hosts, mail
// hosts), straight through the lab's network, and compares the worst
// outcome of each catalogue id with the truth in both directions for the
// families the lab registers: a family with a lab file must say what its
// checks find on every asset they judge, and nothing else is asked of it.
func TestEveryFamilysTruthHoldsInTheLab(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	env, pol := l.Env(), l.Policy()
	fams := lab.FamilyNames()
	covered := func(id string) bool {
		f, _, _ := strings.Cut(id, ".")
		return slices.Contains(fams, f)
	}
	want := map[check.Asset]map[string]check.Outcome{}
	for _, e := range l.Truth() {
		a := check.Asset{Kind: e.Kind, Name: e.Name}
		if want[a] == nil {
			want[a] = map[string]check.Outcome{}
		}
		want[a][e.CheckID] = e.Outcome
	}
	for _, d := range l.Domains() {
		if !d.Absent && len(want[check.Asset{Kind: check.KindDomain, Name: d.Name}]) == 0 {
			t.Errorf("%s: the lab states no truth for the domain", d.Name)
		}
	}
	var (
		mu    sync.Mutex
		diffs []string
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 16)
	)
	for a, w := range want {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			got := map[string]check.Outcome{}
			for _, c := range checks.All() {
				if !c.Applies(a) {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				ev, _ := c.Collect(ctx, env, a)
				cancel()
				for _, f := range c.Evaluate(ev, pol) {
					got[f.CheckID] = check.Worst(got[f.CheckID], f.Outcome)
				}
			}
			var d []string
			for id, o := range w {
				if got[id] != o {
					d = append(d, fmt.Sprintf("%s %s: scanner %q, truth %q", a.Key(), id, got[id], o))
				}
			}
			for id, o := range got {
				if _, ok := w[id]; !ok && covered(id) {
					d = append(d, fmt.Sprintf("%s %s: scanner %q, not in the truth", a.Key(), id, o))
				}
			}
			mu.Lock()
			diffs = append(diffs, d...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d verdicts differ from the lab's ground truth:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}
