package ghhttp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

type memCache struct {
	mu sync.Mutex
	m  map[string]entry
}

func (c *memCache) GitHubCacheGet(_ context.Context, key string) (string, http.Header, []byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e.etag, e.header, e.body, ok, nil
}

func (c *memCache) GitHubCachePut(_ context.Context, key, etag string, h http.Header, body []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]entry{}
	}
	c.m[key] = entry{etag, h, body}
	return nil
}

// etagServer answers body with an ETag, 304 to a matching If-None-Match,
// and counts what GitHub would charge (a 304 to a request with a token is
// free).
func etagServer(t *testing.T, body *atomic.Value) (*httptest.Server, *atomic.Int64) {
	var spent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := body.Load().(string)
		sum := sha256.Sum256([]byte(b))
		etag := `W/"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("X-RateLimit-Remaining", "4000")
		if r.Header.Get("If-None-Match") == etag {
			if r.Header.Get("Authorization") == "" {
				spent.Add(1)
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		spent.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, b)
	}))
	t.Cleanup(srv.Close)
	return srv, &spent
}

func get(t *testing.T, c *http.Client, url, token string) (int, string, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestSecondRunOnUnchangedDataCostsNoRateLimit(t *testing.T) {
	var body atomic.Value
	body.Store(`{"name":"one"}`)
	srv, spent := etagServer(t, &body)
	cache := &memCache{}
	run := func() (*Transport, string) {
		tr := &Transport{Cache: cache}
		_, b, err := get(t, &http.Client{Transport: tr}, srv.URL+"/repos/o/r", "tok")
		if err != nil {
			t.Fatal(err)
		}
		return tr, b
	}
	_, b1 := run()
	if spent.Load() != 1 || b1 != `{"name":"one"}` {
		t.Fatalf("first run: spent %d, body %q", spent.Load(), b1)
	}
	tr, b2 := run()
	if spent.Load() != 1 || b2 != b1 || tr.Stats().NotModified != 1 {
		t.Fatalf("second run: spent %d (want still 1), body %q, stats %+v", spent.Load(), b2, tr.Stats())
	}
	body.Store(`{"name":"two"}`)
	_, b3 := run()
	if spent.Load() != 2 || b3 != `{"name":"two"}` {
		t.Fatalf("after a change: spent %d, body %q", spent.Load(), b3)
	}
}

func TestARunFetchesAURLOnce(t *testing.T) {
	var body atomic.Value
	body.Store(`{}`)
	srv, _ := etagServer(t, &body)
	tr := &Transport{}
	c := &http.Client{Transport: tr}
	for range 3 {
		if _, _, err := get(t, c, srv.URL+"/repos/o/.github/contents/SECURITY.md", ""); err != nil {
			t.Fatal(err)
		}
	}
	if s := tr.Stats(); s.Requests != 1 || s.Memo != 2 {
		t.Fatalf("stats %+v, want 1 request and 2 from the memo", s)
	}
}

func TestCacheKeyTellsTokensApartWithoutHoldingThem(t *testing.T) {
	r1, _ := http.NewRequest("GET", "https://api.github.com/orgs/x", nil)
	r2 := r1.Clone(context.Background())
	r1.Header.Set("Authorization", "Bearer ghp_secretone")
	r2.Header.Set("Authorization", "Bearer ghp_secrettwo")
	r3, _ := http.NewRequest("GET", "https://api.github.com/orgs/x", nil)
	k1, k2, k3 := Key(r1), Key(r2), Key(r3)
	if k1 == k2 || k1 == k3 || strings.Contains(k1, "secret") || strings.Contains(k2, "secret") {
		t.Fatalf("keys %q %q %q", k1, k2, k3)
	}
}

// limitServer answers the first n requests with the response limited
// writes, then 200.
func limitServer(t *testing.T, n int, limited func(w http.ResponseWriter)) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= int64(n) {
			limited(w)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  []time.Duration
	wakeup chan struct{}
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return nil
}

func TestRateLimits(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	secondary := func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"You have exceeded a secondary rate limit."}`)
	}
	primary := func(in time.Duration) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(start.Add(in).Unix(), 10))
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"API rate limit exceeded"}`)
		}
	}
	secondaryNoHeader := func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`)
	}
	forbidden := func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"Resource not accessible by integration"}`)
	}
	for _, tc := range []struct {
		name      string
		limited   func(w http.ResponseWriter)
		maxWait   time.Duration
		wantCode  int
		wantErr   bool
		wantSlept time.Duration
		wantCalls int64
	}{
		{"secondary limit: waits Retry-After and retries", secondary, time.Minute, 200, false, 7 * time.Second, 2},
		{"primary limit reset soon: waits for the reset", primary(30 * time.Second), time.Minute, 200, false, 31 * time.Second, 2},
		{"primary limit reset an hour away: rate-limited at once", primary(time.Hour), 5 * time.Minute, 0, true, 0, 1},
		{"a 403 without rate-limit headers is a permission answer", forbidden, time.Minute, 403, false, 0, 1},
		{"secondary limit without Retry-After: waits a minute", secondaryNoHeader, 2 * time.Minute, 200, false, time.Minute, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := limitServer(t, 1, tc.limited)
			clk := &fakeClock{now: start}
			tr := &Transport{MaxWait: tc.maxWait, Now: clk.Now, Sleep: clk.Sleep}
			code, _, err := get(t, &http.Client{Transport: tr}, srv.URL+"/x", "tok")
			if (err != nil) != tc.wantErr || code != tc.wantCode {
				t.Fatalf("code %d, err %v", code, err)
			}
			if tc.wantErr && check.Classify(err) != "rate-limited" {
				t.Errorf("class %q, want rate-limited", check.Classify(err))
			}
			var slept time.Duration
			for _, d := range clk.slept {
				slept += d
			}
			if slept != tc.wantSlept || calls.Load() != tc.wantCalls {
				t.Errorf("slept %v, calls %d; want %v, %d", slept, calls.Load(), tc.wantSlept, tc.wantCalls)
			}
			if tc.wantErr {
				// Until the reset, nothing more is sent.
				_, _, err := get(t, &http.Client{Transport: tr}, srv.URL+"/y", "tok")
				var rl *RateLimitedError
				if !errors.As(err, &rl) || calls.Load() != tc.wantCalls || tr.Stats().Refused != 1 {
					t.Errorf("after: err %v, calls %d, stats %+v", err, calls.Load(), tr.Stats())
				}
			}
		})
	}
}

func TestAPermissionAnswerPassesThroughWhole(t *testing.T) {
	body := `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/repos/repos#get-a-repository"}`
	srv, _ := limitServer(t, 1, func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, body)
	})
	code, got, err := get(t, &http.Client{Transport: &Transport{}}, srv.URL+"/x", "tok")
	if err != nil || code != 403 || got != body {
		t.Fatalf("code %d, body %q, err %v", code, got, err)
	}
}
