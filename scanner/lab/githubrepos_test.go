package lab_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/repo"
	"github.com/nhsx/posture/scanner/ghhttp"
	"github.com/nhsx/posture/scanner/lab"
)

type memCache struct {
	mu sync.Mutex
	m  map[string][3]any
}

func (c *memCache) GitHubCacheGet(_ context.Context, key string) (string, http.Header, []byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return "", nil, nil, false, nil
	}
	return e[0].(string), e[1].(http.Header), e[2].([]byte), true, nil
}

func (c *memCache) GitHubCachePut(_ context.Context, key, etag string, h http.Header, body []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][3]any{}
	}
	c.m[key] = [3]any{etag, h, body}
	return nil
}

// ghRun runs the repo and org collectors on every repository and
// organisation the lab states truth for, through a GitHub client over
// cache, and returns the worst outcome per asset and id.
func ghRun(t *testing.T, l *lab.Lab, cache ghhttp.Cache) map[string]check.Outcome {
	t.Helper()
	env := l.Env()
	u, _ := url.Parse(l.GitHubURL)
	env.Services = map[string]check.Service{"github": {URL: u, Client: l.GitHubClient(cache)}}
	pol := l.Policy()
	assets := map[check.Asset]bool{}
	for _, e := range l.Truth() {
		if e.Kind == check.KindRepo || e.Kind == check.KindOrg {
			assets[check.Asset{Kind: e.Kind, Name: e.Name}] = true
		}
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 16)
		got = map[string]check.Outcome{}
	)
	for a := range assets {
		for _, c := range []check.Check{repo.Check(), repo.OrgCheck()} {
			if !c.Applies(a) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				ev, _ := c.Collect(ctx, env, a)
				for _, f := range c.Evaluate(ev, pol) {
					mu.Lock()
					k := a.Key() + " " + f.CheckID
					got[k] = check.Worst(got[k], f.Outcome)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return got
}

// TestRepoAndOrgVerdictsMatchTheLabsTruth: every repo.* (but
// repo.secrets.history) and org.* verdict on every lab repository and
// organisation equals the lab's ground truth, both ways; the lab covers
// every outcome the checks give.
func TestRepoAndOrgVerdictsMatchTheLabsTruth(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := ghRun(t, l, nil)
	want := map[string]check.Outcome{}
	outcomes := map[string]map[check.Outcome]bool{}
	for _, e := range l.Truth() {
		if (e.Kind != check.KindRepo && e.Kind != check.KindOrg) || e.CheckID == "repo.secrets.history" {
			continue // repo.secrets.history is the secrets collector's (git.go)
		}
		want[string(e.Kind)+":"+e.Name+" "+e.CheckID] = e.Outcome
		if outcomes[e.CheckID] == nil {
			outcomes[e.CheckID] = map[check.Outcome]bool{}
		}
		outcomes[e.CheckID][e.Outcome] = true
	}
	var diffs []string
	for k, w := range want {
		if got[k] != w {
			diffs = append(diffs, fmt.Sprintf("%s: scanner %q, truth %q", k, got[k], w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: scanner %q, not in the truth", k, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d of %d verdicts differ from the truth:\n%s", len(diffs), len(want), strings.Join(diffs, "\n"))
	}
	// Every id passes somewhere and fails (or warns) somewhere; the
	// admin-only ones are unknown somewhere.
	for _, id := range append(lab.RepoIDs, "org.2fa", "org.base-permissions") {
		o := outcomes[id]
		if !o[check.Pass] || !(o[check.Fail] || o[check.Warn]) {
			t.Errorf("%s: the lab shows only %v", id, o)
		}
	}
	for _, id := range []string{"repo.pvr", "repo.secret-scanning", "repo.vuln-alerts.open", "repo.branch-protection", "org.2fa"} {
		if !outcomes[id][check.Unknown] {
			t.Errorf("%s: no lab case where the token cannot see it", id)
		}
	}
}

// TestSecondRunOnUnchangedLabGitHubSpendsNoRateLimit: with the ETag cache
// kept between runs, a second run of every repo and org check on the
// unchanged lab costs nothing, as the lab server counts it.
func TestSecondRunOnUnchangedLabGitHubSpendsNoRateLimit(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cache := &memCache{}
	first := ghRun(t, l, cache)
	total1, spent1, ok1 := l.GitHubRequests()
	second := ghRun(t, l, cache)
	total2, spent2, ok2 := l.GitHubRequests()
	t.Logf("first run: %d requests, %d charged; second run: %d requests, %d charged (%d of them for a resource)",
		total1, spent1, total2-total1, spent2-spent1, ok2-ok1)
	if spent1 == 0 || total2 == total1 {
		t.Fatalf("the runs made no requests (%d, %d)", total1, total2)
	}
	// Unchanged resources are free; what GitHub answers without an ETag
	// (an error status: alerts disabled) costs a request each night.
	if ok2 != ok1 {
		t.Errorf("the second run was charged %d requests for unchanged resources, want 0", ok2-ok1)
	}
	if n := spent2 - spent1; n > 5 {
		t.Errorf("the second run was charged %d requests in all, want at most a few error answers", n)
	}
	for k, o := range first {
		if second[k] != o {
			t.Errorf("%s: %s on the first run, %s on the second", k, o, second[k])
		}
	}
}

// TestWithoutATokenPublicDataIsJudged: an anonymous scan judges what is
// public (files, workflows, commits, rulesets) as a token's does, and says
// unknown "needs-admin" for the settings only administrators see, never
// fail.
func TestWithoutATokenPublicDataIsJudged(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	env := l.Env()
	u, _ := url.Parse(l.GitHubURL)
	anon := &http.Client{Transport: &ghhttp.Transport{Base: &http.Transport{DialContext: l.Dial}}}
	env.Services = map[string]check.Service{"github": {URL: u, Client: anon}}
	truth := map[string]check.Outcome{}
	var kept string
	for _, e := range l.Truth() {
		if e.Kind == check.KindRepo {
			truth[e.Name+" "+e.CheckID] = e.Outcome
			if strings.HasSuffix(e.Name, "/repo-kept-service") {
				kept = e.Name
			}
		}
	}
	if kept == "" {
		t.Fatal("no repo-kept case")
	}
	c := repo.Check()
	a := check.Asset{Kind: check.KindRepo, Name: kept}
	ev, err := c.Collect(context.Background(), env, a)
	if err != nil {
		t.Fatal(err)
	}
	adminOnly := map[string]bool{"repo.pvr": true, "repo.secret-scanning": true, "repo.dependabot": true,
		"repo.vuln-alerts.open": true, "repo.branch-protection": true}
	for _, f := range c.Evaluate(ev, l.Policy()) {
		switch {
		case adminOnly[f.CheckID]:
			if f.Outcome != check.Unknown || f.Reason != repo.ReasonNeedsAdmin {
				t.Errorf("%s: %s (%s), want unknown needs-admin", f.CheckID, f.Outcome, f.Reason)
			}
		case f.Outcome != truth[kept+" "+f.CheckID]:
			t.Errorf("%s: %s, want %s as with a token: %s", f.CheckID, f.Outcome, truth[kept+" "+f.CheckID], f.Message)
		}
	}
}
