package discover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/publicsuffix"
)

// Certificate Transparency through a crt.sh-compatible search
// (GET <base>?q=%25.<domain>&output=json).
//
// What crt.sh offers, from its source (crtsh/certwatch_db, fnc/web_apis.fnc):
// an identity search matches NAME_VALUE ILIKE '%'||q||'%' and stops at
// c_resultLimit = 10,000 identity rows (LIMIT inside the query, so a
// capped answer is an arbitrary subset, not the first or newest rows);
// exclude=expired drops certificates whose notAfter has passed (inside the
// limit); deduplicate=Y drops a certificate whose precertificate is listed
// (the same serial, issuer and TBS: the same names, so always asked);
// excludeCAs=<ids> drops issuers inside
// the limit. There is no "since" parameter. Certificate ids are assigned
// in insertion order, so an id greater than the greatest seen is a
// certificate crt.sh learnt of since.
//
// So the incremental search is: the first time, and every CTRefresh after
// (default 7 days), a full search (expired included: old names are where
// forgotten hosts hide); in between, a search with exclude=expired and
// deduplicate=Y (a new certificate is not yet expired, so every new one is
// in it, at a fraction of the rows), whose names are added to the cached
// ones. The cache keeps, per organisational domain, the names, the
// greatest id seen and when the last full search ran.
//
// A capped answer (rows' result_count adding up to the cap) is split: one
// query per label seen directly under the queried domain (%.<label>.<d>),
// each under the cap of its own, recursively, and the names directly under
// it asked again for current certificates only, within a per-domain budget
// of queries; what is still capped is reported as truncated (names from
// expired certificates directly under a domain with more than the cap's
// worth of them cannot be reached: crt.sh has no other partition inside
// its limit but excludeCAs, which only narrows by complement).

// CTCacheEntry is what the CT cache keeps for one organisational domain.
type CTCacheEntry struct {
	Names     []string  // cleaned names seen in CT under the domain
	MaxID     int64     // the greatest certificate id seen
	FullAt    time.Time // when the last full search (expired included) ran
	FetchedAt time.Time // when the last search ran
}

// CTCache keeps CT results between runs (scanner/store implements it).
type CTCache interface {
	CTEntry(ctx context.Context, domain string) (CTCacheEntry, bool, error)
	PutCTEntry(ctx context.Context, domain string, e CTCacheEntry) error
}

// CTRow is one crt.sh JSON result row.
type CTRow struct {
	IssuerCAID     int64  `json:"issuer_ca_id"`
	IssuerName     string `json:"issuer_name"`
	CommonName     string `json:"common_name"`
	NameValue      string `json:"name_value"`
	ID             int64  `json:"id"`
	EntryTimestamp string `json:"entry_timestamp"`
	NotBefore      string `json:"not_before"`
	NotAfter       string `json:"not_after"`
	SerialNumber   string `json:"serial_number"`
	ResultCount    int64  `json:"result_count"`
}

// Bounds on what one CT answer may hold (hostile or broken services).
const (
	maxCTBytes    = 32 << 20
	maxCTRows     = 200_000
	maxCTNames    = 100_000 // names per organisational domain, cache included
	maxCTNameLen  = 253
	ctDefaultCap  = 10_000 // crt.sh's c_resultLimit
	ctMaxAttempts = 4
)

// ErrCTRateLimited is returned when the CT service asks to wait longer
// than the client may (Retry-After past CTMaxWait).
var ErrCTRateLimited = errors.New("ct: rate limited")

// ctClient searches one CT service for a run: shared pause after a 429,
// bounded concurrency, backoff, splitting and the cache.
type ctClient struct {
	base       *url.URL
	http       *http.Client
	cache      CTCache
	now        func() time.Time
	refresh    time.Duration
	rowCap     int64
	maxQueries int
	maxWait    time.Duration
	backoff    time.Duration
	log        *slog.Logger
	sem        chan struct{}

	mu    sync.Mutex
	until time.Time // no request before (a 429's Retry-After)
}

// ctResult is what one organisational domain's search gave.
type ctResult struct {
	names     []string
	queries   int
	newCerts  int  // rows with an id above the cached greatest
	full      bool // a full search (expired included)
	truncated bool // some query stayed capped after splitting
	cached    bool // served from the cache after the service failed
}

func newCTClient(o Options) (*ctClient, error) {
	u, err := url.Parse(o.CTURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ct: bad URL %q", o.CTURL)
	}
	c := &ctClient{base: u, http: o.HTTP, cache: o.CTCache, now: o.Now, refresh: o.CTRefresh,
		rowCap: int64(o.CTRowCap), maxQueries: o.CTMaxQueries, maxWait: o.CTMaxWait, backoff: o.CTBackoff,
		log: o.Log, sem: make(chan struct{}, max(1, o.CTConcurrency))}
	return c, nil
}

// search returns the names CT knows under dom (an organisational domain).
func (c *ctClient) search(ctx context.Context, dom string) (ctResult, error) {
	var prev CTCacheEntry
	var have bool
	if c.cache != nil {
		var err error
		if prev, have, err = c.cache.CTEntry(ctx, dom); err != nil {
			c.log.Warn("ct cache unreadable: full search", "domain", dom, "err", err)
			have = false
		}
	}
	res := ctResult{full: !have || c.now().Sub(prev.FullAt) >= c.refresh}
	budget := c.maxQueries
	rows, truncated, err := c.split(ctx, dom, !res.full, &budget)
	res.queries = c.maxQueries - budget
	if err != nil {
		if have {
			// The service failed: last run's names are better than none.
			res.names, res.cached = prev.Names, true
			return res, err
		}
		return res, err
	}
	res.truncated = truncated
	seen := map[string]bool{}
	var names []string
	addName := func(n string) {
		if len(names) < maxCTNames && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	maxID := prev.MaxID
	for _, r := range rows {
		if r.ID > prev.MaxID {
			res.newCerts++
		}
		maxID = max(maxID, r.ID)
		for _, n := range rowNames(r) {
			addName(n)
		}
	}
	if !res.full {
		for _, n := range prev.Names {
			addName(n)
		}
	}
	sort.Strings(names)
	res.names = names
	if c.cache != nil {
		e := CTCacheEntry{Names: names, MaxID: maxID, FullAt: prev.FullAt, FetchedAt: c.now()}
		if res.full && !truncated {
			e.FullAt = c.now()
		}
		if err := c.cache.PutCTEntry(ctx, dom, e); err != nil {
			c.log.Warn("ct cache not written", "domain", dom, "err", err)
		}
	}
	return res, nil
}

// rowNames are a row's names, cleaned: lower case, no trailing dot,
// one per line of name_value, plus the common name; bounded.
func rowNames(r CTRow) []string {
	var out []string
	for _, n := range append(strings.Split(r.NameValue, "\n"), r.CommonName) {
		n = strings.ToLower(strings.TrimRight(strings.TrimSpace(n), "."))
		if n == "" || len(n) > maxCTNameLen || slices.Contains(out, n) {
			continue
		}
		out = append(out, n)
		if len(out) >= 1000 {
			break
		}
	}
	return out
}

// split asks for %.dom. A capped answer is an arbitrary subset: the
// labels it shows directly under dom give smaller queries (%.<label>.<dom>,
// recursively), and the names directly under dom are asked again for
// current certificates only; what is still capped is truncated. All
// within the budget of queries.
func (c *ctClient) split(ctx context.Context, dom string, current bool, budget *int) ([]CTRow, bool, error) {
	if *budget <= 0 {
		return nil, true, nil
	}
	*budget--
	rows, err := c.query(ctx, dom, current)
	if err != nil {
		return nil, false, err
	}
	if !c.capped(rows) {
		return rows, false, nil
	}
	var labels []string
	for _, r := range rows {
		for _, n := range rowNames(r) {
			n = strings.TrimPrefix(n, "*.")
			rest, ok := strings.CutSuffix(n, "."+dom)
			if !ok {
				continue
			}
			if i := strings.LastIndexByte(rest, '.'); i >= 0 {
				rest = rest[i+1:]
			}
			if rest != "" && !slices.Contains(labels, rest) {
				labels = append(labels, rest)
			}
		}
	}
	sort.Strings(labels)
	c.log.Info("ct answer capped: splitting", "domain", dom, "rows", len(rows), "labels", len(labels))
	truncated := false
	for _, l := range labels {
		if *budget <= 0 {
			truncated = true
			break
		}
		sub, tr, err := c.split(ctx, l+"."+dom, current, budget)
		if err != nil {
			return nil, false, err
		}
		truncated = truncated || tr
		rows = append(rows, sub...)
		if len(rows) > maxCTRows {
			return rows[:maxCTRows], true, nil
		}
	}
	// The names directly under dom: from current certificates only (a
	// new certificate is current; expired ones beyond the cap are lost).
	switch {
	case current || *budget <= 0:
		truncated = true
	default:
		*budget--
		cur, err := c.query(ctx, dom, true)
		if err != nil {
			return nil, false, err
		}
		truncated = truncated || c.capped(cur)
		rows = append(rows, cur...)
	}
	return rows, truncated, nil
}

// capped says whether an answer reached the row cap (crt.sh counts
// identity rows: a certificate's result_count).
func (c *ctClient) capped(rows []CTRow) bool {
	var total int64
	for _, r := range rows {
		total += max(1, r.ResultCount)
	}
	return total >= c.rowCap || int64(len(rows)) >= c.rowCap
}

// query asks once (with retries on 429 and 5xx) for %.dom.
func (c *ctClient) query(ctx context.Context, dom string, current bool) ([]CTRow, error) {
	u := *c.base
	q := u.Query()
	q.Set("q", "%."+dom)
	q.Set("output", "json")
	// A precertificate and its certificate name the same names: one row.
	q.Set("deduplicate", "Y")
	if current {
		q.Set("exclude", "expired")
	}
	u.RawQuery = q.Encode()
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	var last error
	for attempt := 0; attempt < ctMaxAttempts; attempt++ {
		if err := c.wait(ctx); err != nil {
			return nil, err
		}
		rows, retryAfter, err := c.once(ctx, u.String())
		if err == nil {
			return rows, nil
		}
		last = err
		var st *ctStatusError
		if !errors.As(err, &st) || (st.code != http.StatusTooManyRequests && st.code < 500) {
			return nil, err // the transport failed (the breaker decides) or a 4xx
		}
		d := retryAfter
		if d < 0 {
			d = c.backoff << attempt
		}
		if d > c.maxWait {
			return nil, fmt.Errorf("%w: asked to wait %s (limit %s): %v", ErrCTRateLimited, d, c.maxWait, err)
		}
		c.pause(d)
		c.log.Info("ct service busy: backing off", "domain", dom, "status", st.code, "wait", d)
	}
	return nil, fmt.Errorf("ct: %d attempts: %w", ctMaxAttempts, last)
}

// pause makes every query of the run wait d (a 429 is about the client,
// not one query).
func (c *ctClient) pause(d time.Duration) {
	c.mu.Lock()
	if t := time.Now().Add(d); t.After(c.until) {
		c.until = t
	}
	c.mu.Unlock()
}

func (c *ctClient) wait(ctx context.Context) error {
	c.mu.Lock()
	d := time.Until(c.until)
	c.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type ctStatusError struct{ code int }

func (e *ctStatusError) Error() string { return fmt.Sprintf("ct: HTTP %d", e.code) }

// once makes one request. retryAfter is the server's Retry-After (-1: none).
func (c *ctClient) once(ctx context.Context, u string) (rows []CTRow, retryAfter time.Duration, err error) {
	retryAfter = -1
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, retryAfter, fmt.Errorf("ct: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, retryAfter, fmt.Errorf("ct: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), &ctStatusError{resp.StatusCode}
	}
	rows, err = decodeCT(io.LimitReader(resp.Body, maxCTBytes+1))
	return rows, retryAfter, err
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3); -1 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return -1
		}
		if n > 1<<31 {
			n = 1 << 31
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now))
	}
	return -1
}

// decodeCT reads a crt.sh JSON answer: an array of rows, streamed, at most
// maxCTRows rows and maxCTBytes bytes.
func decodeCT(r io.Reader) ([]CTRow, error) {
	lr := &countingReader{r: r}
	dec := json.NewDecoder(lr)
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("ct: decode: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("ct: decode: want a JSON array, got %v", tok)
	}
	var rows []CTRow
	for dec.More() {
		if len(rows) >= maxCTRows {
			return nil, fmt.Errorf("ct: more than %d rows", maxCTRows)
		}
		var row CTRow
		if err := dec.Decode(&row); err != nil {
			if lr.n > maxCTBytes {
				return nil, fmt.Errorf("ct: response larger than %d bytes", maxCTBytes)
			}
			return nil, fmt.Errorf("ct: decode: %w", err)
		}
		rows = append(rows, row)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("ct: decode: %w", err)
	}
	if lr.n > maxCTBytes {
		return nil, fmt.Errorf("ct: response larger than %d bytes", maxCTBytes)
	}
	return rows, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// OrgDomain is the organisational domain of an estate domain: its
// registrable domain (public suffix plus one label: a.example.nhs.uk gives
// example.nhs.uk, as nhs.uk is a public suffix), or the domain itself when
// it is a public suffix (or has none).
func OrgDomain(dom string) string {
	if e, err := publicsuffix.EffectiveTLDPlusOne(dom); err == nil {
		return e
	}
	return dom
}
