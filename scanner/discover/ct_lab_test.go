package discover_test

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/scanner/discover"
	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/lab"
)

// labRun discovers the lab (names and hosts) with extra options.
func labRun(t *testing.T, l *lab.Lab, e *estate.Estate, o discover.Options) *discover.Result {
	t.Helper()
	if o.HTTP == nil {
		o.HTTP = &http.Client{Transport: &http.Transport{DialContext: l.Dial}}
	}
	o.DNS, o.CTURL, o.AllowPrivate = l.Resolver(), l.CTURL, true
	if o.Kinds == nil {
		o.Kinds = map[check.Kind]bool{check.KindDomain: true, check.KindHost: true}
	}
	o.Names = true
	res, err := discover.Run(context.Background(), e, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func startLab(t *testing.T) (*lab.Lab, *estate.Estate) {
	t.Helper()
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e, err := estate.Parse("lab.yaml", l.EstateYAML())
	if err != nil {
		t.Fatal(err)
	}
	return l, e
}

// TestDiscoveryFindsExactlyTheLabsNamesUnderTheirOwners: with CT, the
// common labels and zone transfers, the names discovery records are exactly the lab's
// in-scope names, each under the lab domain that owns it; every host is
// owned by that domain's organisation; the names in scope that no domain
// owns are listed as unowned; nothing outside the scope appears.
func TestDiscoveryFindsExactlyTheLabsNamesUnderTheirOwners(t *testing.T) {
	l, e := startLab(t)
	labels := append(slices.Clone(discover.DefaultLabels), "mta-sts", "dept", "legacy-app")
	res := labRun(t, l, e, discover.Options{Labels: labels, Dial: l.Dial})
	owned, unowned := l.DiscoveryTruth(labels, true)
	if len(res.AXFR) == 0 {
		t.Error("no zone transferred: the lab has a name server that transfers to anyone")
	}

	got := map[string]string{}
	for dom, ns := range res.Names {
		for _, n := range ns {
			if prev, dup := got[n]; dup {
				t.Errorf("%s recorded under %s and %s", n, prev, dom)
			}
			got[n] = dom
		}
	}
	for n, dom := range owned {
		if got[n] != dom {
			t.Errorf("%s: recorded under %q, want %q", n, got[n], dom)
		}
	}
	for n, dom := range got {
		if _, ok := owned[n]; !ok {
			t.Errorf("%s recorded under %s: not a name of the lab in scope", n, dom)
		}
	}
	orgOf := map[string]string{}
	for _, o := range e.Organisations {
		for _, d := range o.Domains {
			orgOf[d] = o.Code
		}
	}
	hosts := 0
	for _, a := range res.Assets {
		if !e.InScope(a.Name) && a.Kind != check.KindMail {
			t.Errorf("asset %s is outside the scope", a.Key())
		}
		if a.Kind != check.KindHost {
			continue
		}
		hosts++
		if owned[a.Name] != a.Domain || orgOf[a.Domain] != a.Org {
			t.Errorf("host %s under %s/%s, want %s/%s", a.Name, a.Org, a.Domain, orgOf[owned[a.Name]], owned[a.Name])
		}
	}
	if hosts == 0 {
		t.Fatal("no host discovered")
	}
	var ct []string
	for _, u := range res.Unowned {
		if _, ok := owned[u.Name]; ok || !e.InScope(u.Name) {
			t.Errorf("unowned %+v: owned or out of scope", u)
		}
		if u.Source == "ct" {
			ct = append(ct, u.Name)
		}
	}
	if !slices.Equal(ct, unowned) {
		t.Errorf("unowned from CT %v, want %v", ct, unowned)
	}
	if len(res.Errors) > 0 {
		t.Errorf("discovery errors: %v", res.Errors)
	}
}

// TestCTIsSearchedOncePerOrganisationalDomain: lab domains below the same
// registrable domain (mail.lab-x.nhs.uk, lab-x.nhs.uk) cost one search.
func TestCTIsSearchedOncePerOrganisationalDomain(t *testing.T) {
	l, e := startLab(t)
	res := labRun(t, l, e, discover.Options{})
	want := map[string]int{}
	for _, d := range l.Domains() {
		want["%."+discover.OrgDomain(d.Name)] = 1
	}
	if got := l.CTQueries(); !maps.Equal(got, want) {
		t.Errorf("CT queries %v, want one per organisational domain %v", got, want)
	}
	if res.CT.Domains != len(want) || res.CT.Queries != len(want) || res.CT.Full != len(want) {
		t.Errorf("CT stats %+v, want %d domains, queries and full searches", res.CT, len(want))
	}
}

// TestCTRowCapIsSplitByLabel: with the lab capping every answer below the
// first domain's full answer, discovery splits by the labels it sees and
// asks again for current certificates, and finds every name it finds
// uncapped, none truncated.
func TestCTRowCapIsSplitByLabel(t *testing.T) {
	l, e := startLab(t)
	full := labRun(t, l, e, discover.Options{})
	d0 := l.Domains()[0].Name
	rows := 0
	resp, err := (&http.Client{Transport: &http.Transport{DialContext: l.Dial}}).Get(l.CTURL + "?output=json&deduplicate=Y&q=" + url.QueryEscape("%."+d0))
	if err != nil {
		t.Fatal(err)
	}
	es, err := discover.DecodeCTForTest(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range es {
		rows += int(r.ResultCount)
	}
	capN := rows - 2
	l.SetCT(capN, 0)
	capped := labRun(t, l, e, discover.Options{CTRowCap: capN})
	if !maps.EqualFunc(full.Names, capped.Names, slices.Equal) {
		for d := range full.Names {
			if !slices.Equal(full.Names[d], capped.Names[d]) {
				t.Errorf("%s: capped %v, want %v", d, capped.Names[d], full.Names[d])
			}
		}
	}
	q := l.CTQueries()
	if q["%.team1."+d0] == 0 {
		t.Errorf("queries %v: team1.%s not asked for", q, d0)
	}
	if capped.CT.Truncated != 0 {
		t.Errorf("%d domains truncated, want none", capped.CT.Truncated)
	}
}

// recorder records the CT requests' query strings.
type recorder struct {
	rt http.RoundTripper
	mu sync.Mutex
	qs []url.Values
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.qs = append(r.qs, req.URL.Query())
	r.mu.Unlock()
	return r.rt.RoundTrip(req)
}

// TestCTCacheAsksForCurrentCertificatesBetweenFullSearches: the first run
// searches in full; the next asks only for current certificates (and
// finds a certificate logged since) while the names of expired ones come
// from the cache; once CTRefresh has passed, the search is full again.
func TestCTCacheAsksForCurrentCertificatesBetweenFullSearches(t *testing.T) {
	l, e := startLab(t)
	cache := &memCache{m: map[string]discover.CTCacheEntry{}}
	now := time.Now()
	run := func() (*discover.Result, []url.Values) {
		rec := &recorder{rt: &http.Transport{DialContext: l.Dial}}
		res := labRun(t, l, e, discover.Options{CTCache: cache, Now: func() time.Time { return now }, HTTP: &http.Client{Transport: rec}})
		return res, rec.qs
	}
	d0 := l.Domains()[0].Name
	first, qs := run()
	for _, q := range qs {
		if q.Has("exclude") {
			t.Fatalf("first search %v excludes expired certificates", q)
		}
	}
	if first.CT.Full == 0 || cache.m[d0].FullAt.IsZero() || cache.m[d0].MaxID == 0 {
		t.Fatalf("first run: stats %+v, cache %+v", first.CT, cache.m[d0])
	}
	maxID := cache.m[d0].MaxID
	l.AddCTCert(d0, "new-service."+d0)
	now = now.Add(24 * time.Hour)
	second, qs := run()
	for _, q := range qs {
		if q.Get("exclude") != "expired" {
			t.Errorf("second search %v: want exclude=expired", q)
		}
	}
	for _, n := range []string{"new-service." + d0, "old." + d0, "h1.team1." + d0} {
		if !slices.Contains(second.Names[d0], n) {
			t.Errorf("second run: %s missing from %v", n, second.Names[d0])
		}
	}
	if second.CT.NewCerts != 1 || second.CT.Full != 0 || cache.m[d0].MaxID <= maxID {
		t.Errorf("second run: stats %+v, max id %d (was %d); want one new certificate, no full search", second.CT, cache.m[d0].MaxID, maxID)
	}
	now = now.Add(7 * 24 * time.Hour)
	third, qs := run()
	if third.CT.Full == 0 || slices.ContainsFunc(qs, func(q url.Values) bool { return q.Has("exclude") }) {
		t.Errorf("after the refresh period: stats %+v, queries %v; want full searches", third.CT, qs)
	}
}

// TestCTTooManyRequestsIsWaitedOut: a 429 with Retry-After: 1 from the lab
// is waited out and the search completes.
func TestCTTooManyRequestsIsWaitedOut(t *testing.T) {
	l, e := startLab(t)
	l.SetCT(0, 1)
	start := time.Now()
	res := labRun(t, l, e, discover.Options{})
	if time.Since(start) < time.Second || len(res.Errors) > 0 || res.CT.Domains == 0 {
		t.Errorf("took %v, errors %v, stats %+v; want a wait of Retry-After and a complete search", time.Since(start), res.Errors, res.CT)
	}
	d0 := l.Domains()[0].Name
	if !slices.Contains(res.Names[d0], "www."+d0) || !strings.Contains(strings.Join(res.Names[d0], " "), "team2") {
		t.Errorf("names %v", res.Names[d0])
	}
}

type memCache struct {
	mu sync.Mutex
	m  map[string]discover.CTCacheEntry
}

func (c *memCache) CTEntry(_ context.Context, d string) (discover.CTCacheEntry, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[d]
	return e, ok, nil
}

func (c *memCache) PutCTEntry(_ context.Context, d string, e discover.CTCacheEntry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[d] = e
	return nil
}
