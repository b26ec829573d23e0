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
	// One goroutine per (asset, collector), as the scanner runs jobs: a
	// tarpit host's slow collectors then overlap instead of adding up.
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 32)
		got = map[check.Asset]map[string]check.Outcome{}
	)
	for a := range want {
		got[a] = map[string]check.Outcome{} // all made before any job runs
	}
	// A host belongs to its estate domain, as discovery says (the apex
	// host, a non-production host below it are judged by it).
	owner := map[string]string{}
	for _, d := range l.Domains() {
		for _, e := range d.Expect {
			if e.Kind == check.KindHost {
				owner[e.Name] = d.Name
			}
		}
	}
	for a := range want {
		for _, c := range checks.All() {
			if !c.Applies(a) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				asset := a
				asset.Domain = owner[a.Name]
				ev, _ := c.Collect(ctx, env, asset)
				cancel()
				fs := c.Evaluate(ev, pol)
				mu.Lock()
				defer mu.Unlock()
				for _, f := range fs {
					got[a][f.CheckID] = check.Worst(got[a][f.CheckID], f.Outcome)
				}
			}()
		}
	}
	wg.Wait()
	var diffs []string
	for a, w := range want {
		for id, o := range w {
			if got[a][id] != o {
				diffs = append(diffs, fmt.Sprintf("%s %s: scanner %q, truth %q", a.Key(), id, got[a][id], o))
			}
		}
		for id, o := range got[a] {
			if _, ok := w[id]; !ok && covered(id) {
				diffs = append(diffs, fmt.Sprintf("%s %s: scanner %q, not in the truth", a.Key(), id, o))
			}
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d verdicts differ from the lab's ground truth:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}
