package discover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", -1},
		{"0", 0},
		{"120", 2 * time.Minute},
		{" 7 ", 7 * time.Second},
		{"-3", -1},
		{"soon", -1},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0}, // a date passed: go now
		{"99999999999999999999", -1},                     // overflows int64: unreadable
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestOrgDomainIsTheRegistrableDomain(t *testing.T) {
	tests := map[string]string{
		"a.example.nhs.uk": "example.nhs.uk", // nhs.uk is a public suffix
		"example.nhs.uk":   "example.nhs.uk",
		"x.y.nhs.net":      "nhs.net",
		"nhs.uk":           "nhs.uk", // itself a suffix: as it is
		"england.nhs.uk":   "england.nhs.uk",
	}
	for in, want := range tests {
		if got := OrgDomain(in); got != want {
			t.Errorf("OrgDomain(%s) = %s, want %s", in, got, want)
		}
	}
}

func testCT(t *testing.T, h http.HandlerFunc) *ctClient {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := newCTClient(Options{CTURL: srv.URL + "/", HTTP: srv.Client(), Now: time.Now, CTRefresh: time.Hour,
		CTRowCap: 100, CTMaxQueries: 10, CTMaxWait: time.Second, CTBackoff: time.Millisecond, CTConcurrency: 2,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const ctOneRow = `[{"issuer_ca_id":1,"issuer_name":"C=US, O=Let's Encrypt, CN=R3","common_name":"www.a.nhs.uk",` +
	`"name_value":"www.a.nhs.uk\n*.a.nhs.uk","id":7,"entry_timestamp":"2026-01-01T00:00:00.123",` +
	`"not_before":"2026-01-01T00:00:00","not_after":"2026-04-01T00:00:00","serial_number":"0a","result_count":2}]`

// TestCTBacksOffOn429And5xxThenAnswers: a 429 with Retry-After and a 503
// without are retried (the latter after the backoff); the third answer
// is read.
func TestCTBacksOffOn429And5xxThenAnswers(t *testing.T) {
	var n atomic.Int64
	c := testCT(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			if r.URL.Query().Get("q") != "%.a.nhs.uk" || r.URL.Query().Get("deduplicate") != "Y" {
				t.Errorf("query %s", r.URL.RawQuery)
			}
			fmt.Fprint(w, ctOneRow)
		}
	})
	res, err := c.search(context.Background(), "a.nhs.uk")
	if err != nil || n.Load() != 3 || strings.Join(res.names, ",") != "*.a.nhs.uk,www.a.nhs.uk" {
		t.Fatalf("names %v, err %v after %d requests; want the two names after 3", res.names, err, n.Load())
	}
}

// TestCTGivesUpWhenAskedToWaitTooLong: a Retry-After past CTMaxWait is
// not waited out (a nightly run must not sleep an hour): rate limited,
// after one request.
func TestCTGivesUpWhenAskedToWaitTooLong(t *testing.T) {
	var n atomic.Int64
	c := testCT(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	start := time.Now()
	_, err := c.search(context.Background(), "a.nhs.uk")
	if !errors.Is(err, ErrCTRateLimited) || n.Load() != 1 || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("err %v after %d requests and %v; want rate limited at once", err, n.Load(), time.Since(start))
	}
}

// TestCTRetriesAreBounded: a service that always answers 502 is asked
// ctMaxAttempts times, then the error says so.
func TestCTRetriesAreBounded(t *testing.T) {
	var n atomic.Int64
	c := testCT(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	})
	_, err := c.search(context.Background(), "a.nhs.uk")
	var st *ctStatusError
	if !errors.As(err, &st) || st.code != 502 || n.Load() != ctMaxAttempts {
		t.Fatalf("err %v after %d requests, want HTTP 502 after %d", err, n.Load(), ctMaxAttempts)
	}
}

// TestCTAnswerServedFromTheCacheWhenTheServiceFails: last run's names
// stand in for a failed search, and the failure is still reported.
func TestCTAnswerServedFromTheCacheWhenTheServiceFails(t *testing.T) {
	c := testCT(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	mc := &memCache{m: map[string]CTCacheEntry{"a.nhs.uk": {Names: []string{"old.a.nhs.uk"}, MaxID: 9, FullAt: time.Now()}}}
	c.cache = mc
	res, err := c.search(context.Background(), "a.nhs.uk")
	if err == nil || !res.cached || len(res.names) != 1 || res.names[0] != "old.a.nhs.uk" {
		t.Fatalf("res %+v, err %v; want the cached name and the error", res, err)
	}
}

func TestDecodeCTRejectsWhatIsNotARowArray(t *testing.T) {
	for _, in := range []string{``, `{}`, `"x"`, `[1]`, `[{"id":"x"}]`, `[{}`, `[{}]]`} {
		if rows, err := decodeCT(strings.NewReader(in)); err == nil && in != `[{}]]` {
			t.Errorf("decodeCT(%q) = %v, want an error", in, rows)
		}
	}
	rows, err := decodeCT(strings.NewReader(ctOneRow))
	if err != nil || len(rows) != 1 || rows[0].ID != 7 || rows[0].ResultCount != 2 {
		t.Errorf("decodeCT(one row) = %+v, %v", rows, err)
	}
}

// FuzzDecodeCT: any answer decodes or fails, within the bounds, and the
// names of what decodes are clean.
func FuzzDecodeCT(f *testing.F) {
	f.Add(ctOneRow)
	f.Add(`[]`)
	f.Add(`[{"name_value":"a\nb\n\n*.c.","common_name":"` + strings.Repeat("x", 300) + `"}]`)
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := decodeCT(strings.NewReader(in))
		if err != nil {
			return
		}
		if len(rows) > maxCTRows {
			t.Fatalf("%d rows", len(rows))
		}
		for _, r := range rows {
			for _, n := range rowNames(r) {
				if n == "" || len(n) > maxCTNameLen || n != strings.ToLower(n) || strings.HasSuffix(n, ".") {
					t.Fatalf("unclean name %q", n)
				}
			}
		}
	})
}

type memCache struct{ m map[string]CTCacheEntry }

func (c *memCache) CTEntry(_ context.Context, d string) (CTCacheEntry, bool, error) {
	e, ok := c.m[d]
	return e, ok, nil
}

func (c *memCache) PutCTEntry(_ context.Context, d string, e CTCacheEntry) error {
	c.m[d] = e
	return nil
}

// FuzzParseRetryAfter: any header value gives a wait of at least zero or
// -1 (none), never a panic.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "9999999999999", " 5 "} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < -1 {
			t.Fatalf("parseRetryAfter(%q) = %v", v, d)
		}
	})
}
