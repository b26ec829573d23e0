// Package ghhttp is the HTTP transport posture reaches the GitHub REST API
// through, under go-github: conditional requests with ETags kept between
// runs (an unchanged resource is answered 304, which costs no rate limit
// when the request carries a token), a memo of what this run has already
// fetched (the organisation's .github SECURITY.md is read once, not once
// per repository), and GitHub's rate limits: a secondary limit's
// Retry-After is honoured, and an exhausted primary limit is waited out
// when its reset is within MaxWait; beyond that every further request
// fails at once with a RateLimitedError (class "rate-limited") until the
// reset, so the checks say unknown instead of waiting an hour.
//
// GitHub's documentation: "Best practices for using the REST API"
// (conditional requests; secondary rate limits: Retry-After, then
// x-ratelimit-reset, else at least a minute) and "Rate limits for the REST
// API" (a 304 to an authorized request does not count).
package ghhttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cache keeps responses between runs (scanner/store implements it). nil:
// this run's memo only.
type Cache interface {
	GitHubCacheGet(ctx context.Context, key string) (etag string, header http.Header, body []byte, ok bool, err error)
	GitHubCachePut(ctx context.Context, key, etag string, header http.Header, body []byte) error
}

// Transport is an http.RoundTripper for the GitHub API. Use one per run:
// its memo makes a second request for the same URL in the run free.
type Transport struct {
	Base  http.RoundTripper // nil: http.DefaultTransport
	Cache Cache
	// MaxWait is the longest wait for a rate limit to reset (primary) or
	// for a Retry-After (secondary). 0: DefaultMaxWait; negative: never
	// wait.
	MaxWait time.Duration
	// MaxBody bounds a cached response body (0: 32 MiB). Larger
	// responses pass through uncached.
	MaxBody int64
	// Now and Sleep are the clock (tests).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Retries bounds the attempts after a rate limit (0: 3).
	Retries int

	mu        sync.Mutex
	memo      map[string]*entry
	exhausted time.Time // the primary limit is out until then
	stats     Stats
}

// DefaultMaxWait is how long a run waits for a rate limit at most: long
// enough for a secondary limit or a reset a few minutes ahead, short enough
// that a reset an hour away does not hold up a nightly run.
const DefaultMaxWait = 5 * time.Minute

// Stats count what the transport did.
type Stats struct {
	Requests    int // sent to GitHub
	NotModified int // answered 304 (free with a token)
	Memo        int // served from this run's memo, not sent
	Waits       int // rate-limit waits
	Refused     int // refused at once: the limit was out beyond MaxWait
}

// Stats returns the counts so far.
func (t *Transport) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// RateLimitedError is returned when GitHub's rate limit is exhausted until
// a reset further away than MaxWait.
type RateLimitedError struct {
	Until     time.Time
	Secondary bool
}

func (e *RateLimitedError) Error() string {
	kind := "primary"
	if e.Secondary {
		kind = "secondary"
	}
	return fmt.Sprintf("github: %s rate limit exhausted until %s", kind, e.Until.UTC().Format(time.RFC3339))
}

// Class makes check.Classify report "rate-limited".
func (e *RateLimitedError) Class() string { return "rate-limited" }

type entry struct {
	etag   string
	header http.Header
	body   []byte
}

// keptHeaders are the response headers a cached entry keeps.
var keptHeaders = []string{"Content-Type", "Link", "Last-Modified", "ETag"}

// Key is the cache key of a request: method, URL, the Accept header and a
// hash of the credentials (a token's view differs from an anonymous one).
func Key(r *http.Request) string {
	who := "anonymous"
	if a := r.Header.Get("Authorization"); a != "" {
		sum := sha256.Sum256([]byte("posture github cache\x00" + a))
		who = hex.EncodeToString(sum[:12])
	}
	return r.Method + " " + r.URL.String() + " " + r.Header.Get("Accept") + " " + who
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	if t.Sleep != nil {
		return t.Sleep(ctx, d)
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

func (t *Transport) maxWait() time.Duration {
	switch {
	case t.MaxWait < 0:
		return 0
	case t.MaxWait == 0:
		return DefaultMaxWait
	}
	return t.MaxWait
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	cacheable := req.Method == http.MethodGet && req.Header.Get("Range") == ""
	key := Key(req)
	if cacheable {
		t.mu.Lock()
		e := t.memo[key]
		if e != nil {
			t.stats.Memo++
		}
		t.mu.Unlock()
		if e != nil {
			return e.response(req, nil), nil
		}
	}
	var stored *entry
	if cacheable && t.Cache != nil {
		etag, h, body, ok, err := t.Cache.GitHubCacheGet(ctx, key)
		if err == nil && ok && etag != "" {
			stored = &entry{etag: etag, header: h, body: body}
		}
	}
	retries := t.Retries
	if retries <= 0 {
		retries = 3
	}
	for attempt := 0; ; attempt++ {
		if err := t.refuseIfExhausted(); err != nil {
			return nil, err
		}
		r := req
		if stored != nil {
			r = req.Clone(ctx)
			r.Header.Set("If-None-Match", stored.etag)
		}
		if attempt > 0 && req.Body != nil && req.GetBody != nil {
			b, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = r.Clone(ctx)
			r.Body = b
		}
		t.mu.Lock()
		t.stats.Requests++
		t.mu.Unlock()
		resp, err := t.base().RoundTrip(r)
		if err != nil {
			return nil, err
		}
		wait, limited, secondary := t.rateLimit(resp)
		if limited {
			drain(resp)
			if attempt >= retries || wait > t.maxWait() {
				until := t.now().Add(wait)
				if !secondary {
					t.mu.Lock()
					if until.After(t.exhausted) {
						t.exhausted = until
					}
					t.mu.Unlock()
				}
				return nil, &RateLimitedError{Until: until, Secondary: secondary}
			}
			t.mu.Lock()
			t.stats.Waits++
			t.mu.Unlock()
			if err := t.sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		switch {
		case resp.StatusCode == http.StatusNotModified && stored != nil:
			drain(resp)
			t.remember(key, stored)
			t.mu.Lock()
			t.stats.NotModified++
			t.mu.Unlock()
			return stored.response(req, resp.Header), nil
		case resp.StatusCode == http.StatusOK && cacheable && resp.Header.Get("ETag") != "":
			return t.keep(ctx, req, key, resp)
		}
		return resp, nil
	}
}

func (t *Transport) refuseIfExhausted() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if until := t.exhausted; !until.IsZero() && t.now().Before(until) {
		t.stats.Refused++
		return &RateLimitedError{Until: until}
	}
	return nil
}

// rateLimit reads a 403 or 429: a secondary limit (Retry-After, or no
// remaining count at all: at least a minute, as GitHub asks) or an
// exhausted primary limit (X-RateLimit-Remaining: 0 until
// X-RateLimit-Reset). A 403 that is neither is a permission answer.
func (t *Transport) rateLimit(resp *http.Response) (wait time.Duration, limited, secondary bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false, false
	}
	h := resp.Header
	if ra := h.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true, true
		}
		if at, err := http.ParseTime(ra); err == nil {
			return max(0, at.Sub(t.now())), true, true
		}
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			// One second of slack: the reset is given in whole seconds.
			return max(0, time.Unix(s, 0).Sub(t.now())) + time.Second, true, false
		}
		return time.Minute, true, false
	}
	if resp.StatusCode == http.StatusTooManyRequests || secondaryDoc(resp) {
		// "Otherwise, wait for at least one minute before retrying."
		return time.Minute, true, true
	}
	return 0, false, false
}

// secondaryDoc reports whether a 403's documentation_url is GitHub's page
// on secondary (formerly abuse) rate limits, as go-github tells them apart:
// a typed field, not the message's wording. The body is put back.
func secondaryDoc(resp *http.Response) bool {
	if resp.Body == nil {
		return false
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
	var e struct {
		Doc string `json:"documentation_url"`
	}
	if json.Unmarshal(b, &e) != nil {
		return false
	}
	return strings.HasSuffix(e.Doc, "#secondary-rate-limits") || strings.HasSuffix(e.Doc, "#abuse-rate-limits") ||
		strings.HasSuffix(e.Doc, "#about-secondary-rate-limits")
}

func (t *Transport) remember(key string, e *entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.memo == nil {
		t.memo = map[string]*entry{}
	}
	t.memo[key] = e
}

func (t *Transport) keep(ctx context.Context, req *http.Request, key string, resp *http.Response) (*http.Response, error) {
	limit := t.MaxBody
	if limit <= 0 {
		limit = 32 << 20
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("github: read %s: %w", req.URL.Path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("github: %s: response larger than %d bytes", req.URL.Path, limit)
	}
	e := &entry{etag: resp.Header.Get("ETag"), header: http.Header{}, body: body}
	for _, k := range keptHeaders {
		if v := resp.Header.Values(k); len(v) > 0 {
			e.header[k] = v
		}
	}
	t.remember(key, e)
	if t.Cache != nil {
		// A cache that cannot write costs the next run some rate limit,
		// not this run its answer.
		_ = t.Cache.GitHubCachePut(context.WithoutCancel(ctx), key, e.etag, e.header, body)
	}
	return resp, nil
}

// response builds a 200 from a kept entry, with the rate-limit headers of
// the 304 that validated it (go-github tracks them).
func (e *entry) response(req *http.Request, live http.Header) *http.Response {
	h := e.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	for k, v := range live {
		if len(k) > 12 && http.CanonicalHeaderKey(k[:12]) == "X-Ratelimit-" {
			h[k] = v
		}
	}
	return &http.Response{Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(e.body)), ContentLength: int64(len(e.body)), Request: req}
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// IsRateLimited reports whether err is a rate limit the transport gave up
// waiting for.
func IsRateLimited(err error) bool {
	var rl *RateLimitedError
	return errors.As(err, &rl)
}
