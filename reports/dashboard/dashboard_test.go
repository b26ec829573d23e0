package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/reports/dashboard"
	"github.com/nhsx/posture/scanner/lab"
	"github.com/nhsx/posture/scanner/store"
)

// The raw payloads the lab's xss host sends, and how HTML shows them.
var (
	rawPayloads    = []string{lab.HostileScript, "<script", `<img src=x onerror`, "<b>risk</b>"}
	escapedPayload = "&lt;script&gt;alert(1)&lt;/script&gt;"
)

func serve(t *testing.T, st *store.Store) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(dashboard.New(st, checks.Catalogue()))
	t.Cleanup(srv.Close)
	return srv
}

type page struct {
	path   string
	status int
	header http.Header
	body   string
}

func get(t *testing.T, srv *httptest.Server, path string) page {
	t.Helper()
	return do(t, srv, http.MethodGet, path)
}

func do(t *testing.T, srv *httptest.Server, method, path string) page {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{path, resp.StatusCode, resp.Header, string(b)}
}

var hrefPattern = regexp.MustCompile(`href="([^"#]*)"`)

// crawl follows every same-site link from / (unescaping &amp;), up to max
// pages, and returns each page once.
func crawl(t *testing.T, srv *httptest.Server, max int) map[string]page {
	t.Helper()
	seen := map[string]page{}
	queue := []string{"/", "/search?q=lab"} // the search is a form, not a link
	for len(queue) > 0 && len(seen) < max {
		p := queue[0]
		queue = queue[1:]
		if _, ok := seen[p]; ok {
			continue
		}
		pg := get(t, srv, p)
		seen[p] = pg
		for _, m := range hrefPattern.FindAllStringSubmatch(pg.body, -1) {
			link := strings.ReplaceAll(m[1], "&amp;", "&")
			if strings.HasPrefix(link, "/") && !strings.HasPrefix(link, "//") {
				if _, ok := seen[link]; !ok {
					queue = append(queue, link)
				}
			}
		}
	}
	return seen
}

var (
	crawlOnce  = map[*store.Store]map[string]page{}
	crawlLimit = 600
)

func crawled(t *testing.T) map[string]page {
	t.Helper()
	f := labFixture(t)
	if pages, ok := crawlOnce[f.st]; ok {
		return pages
	}
	pages := crawl(t, serve(t, f.st), crawlLimit)
	crawlOnce[f.st] = pages
	return pages
}

// TestEveryLinkedPageAnswers200 follows the links from the summary through
// organisations, findings (with their evidence of each run) and searches:
// every page answers 200, as HTML, with the security headers.
func TestEveryLinkedPageAnswers200(t *testing.T) {
	pages := crawled(t)
	kinds := map[string]int{}
	for p, pg := range pages {
		kind := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)[0]
		kind, _, _ = strings.Cut(kind, "?")
		kinds[kind]++
		if pg.status != http.StatusOK {
			t.Errorf("%s: status %d", p, pg.status)
		}
		if ct := pg.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", p, ct)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
		} {
			if got := pg.header.Get(k); !strings.HasPrefix(got, want) {
				t.Errorf("%s: %s is %q, want %q", p, k, got, want)
			}
		}
	}
	// The crawl reached every kind of page, or it proved little.
	for _, k := range []string{"", "org", "finding", "search"} {
		if kinds[k] == 0 {
			t.Errorf("the crawl reached no %q page (%v)", k, kinds)
		}
	}
	if kinds["org"] < len(labFixture(t).orgs) {
		t.Errorf("the crawl reached %d organisation pages, want all %d", kinds["org"], len(labFixture(t).orgs))
	}
	t.Logf("crawled %d pages: %v", len(pages), kinds)
}

// TestServerTextIsShownOnlyEscaped: what the lab's xss host sent (script
// in header values and its title, quoted by findings and kept in evidence)
// appears on no page raw, and the finding and evidence pages show it
// escaped.
func TestServerTextIsShownOnlyEscaped(t *testing.T) {
	f := labFixture(t)
	pages := crawled(t)
	for p, pg := range pages {
		for _, raw := range rawPayloads {
			if i := strings.Index(pg.body, raw); i >= 0 {
				t.Errorf("%s holds %q raw: …%s…", p, raw, pg.body[max(0, i-80):min(len(pg.body), i+80)])
			}
		}
	}
	srv := serve(t, f.st)
	id := findingOf(t, f, func(x store.Finding) bool {
		return strings.HasPrefix(x.Asset.Name, "xss.") && strings.Contains(x.Message, lab.HostileScript)
	})
	pg := get(t, srv, "/finding/"+id)
	if pg.status != http.StatusOK {
		t.Fatalf("finding %s: status %d", id, pg.status)
	}
	evidence := pg.body[strings.Index(pg.body, "<h2>Evidence</h2>"):]
	for what, s := range map[string]string{"finding page": pg.body, "its evidence": evidence} {
		if !strings.Contains(s, escapedPayload) {
			t.Errorf("the %s does not show the xss host's script escaped (%q)", what, escapedPayload)
		}
	}
	// The acceptance's text (typed by a person, but shown as text too).
	acc := findingOf(t, f, func(x store.Finding) bool {
		return x.Outcome == check.Fail && strings.HasPrefix(x.CheckID, "email.dmarc")
	})
	if pg := get(t, srv, "/finding/"+acc); !strings.Contains(pg.body, "&lt;script&gt;alert(&#39;accept&#39;)&lt;/script&gt;") {
		t.Errorf("the accepted finding's page does not show the acceptance reason escaped")
	}
}

// TestSecretsAreNeverShown: no page shows a secret the lab planted in a
// repository's history, while the secrets finding's page shows what the
// store keeps instead: the keyed hash and the redacted excerpt.
func TestSecretsAreNeverShown(t *testing.T) {
	f := labFixture(t)
	secrets := lab.GitSecrets().All()
	if len(secrets) == 0 {
		t.Fatal("the lab plants no secrets: the test would prove nothing")
	}
	pages := crawled(t)
	id := findingOf(t, f, func(x store.Finding) bool {
		return x.CheckID == "repo.secrets.history" && x.Outcome == check.Fail
	})
	pg := get(t, serve(t, f.st), "/finding/"+id)
	pages["/finding/"+id] = pg
	for p, pg := range pages {
		for _, s := range secrets {
			if strings.Contains(pg.body, s) || strings.Contains(pg.body, strings.TrimSpace(firstLine(s))) && len(firstLine(s)) > 30 {
				t.Errorf("%s shows a planted secret (%.8s…)", p, s)
			}
		}
	}
	for _, want := range []string{"hmac-sha256:", "redacted]", "github-pat"} {
		if !strings.Contains(pg.body, want) {
			t.Errorf("the secrets finding's page lacks %q: the evidence is not shown", want)
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// findingOf returns the id of the newest run's first finding matching.
func findingOf(t *testing.T, f *fixture, match func(store.Finding) bool) string {
	t.Helper()
	fs, err := f.st.Findings(context.Background(), f.runs[len(f.runs)-1])
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range fs {
		if match(x) {
			return x.ID
		}
	}
	t.Fatal("no finding of the lab scan matches: the test would prove nothing")
	return ""
}

// TestUnknownPagesAre404 covers ids and codes that do not exist or are
// malformed, and paths the dashboard does not serve.
func TestUnknownPagesAre404(t *testing.T) {
	srv := serve(t, labFixture(t).st)
	for _, p := range []string{
		"/finding/00000000000000000000", "/finding/zz", "/finding/" + strings.Repeat("a", 64),
		"/finding/%3Cscript%3E", "/org/NOPE", "/org/%3Cscript%3E", "/nope", "/static/style.css", "/finding/",
	} {
		pg := get(t, srv, p)
		if pg.status != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, pg.status)
		}
		if strings.Contains(pg.body, "<script") {
			t.Errorf("%s: the 404 page reflects the path raw", p)
		}
		if pg.header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: no Content-Security-Policy on the 404", p)
		}
	}
	// A run that did not evaluate the finding: the page says so.
	id := findingOf(t, labFixture(t), func(x store.Finding) bool { return x.Outcome == check.Fail })
	if pg := get(t, srv, "/finding/"+id+"?run=999"); pg.status != http.StatusOK || !strings.Contains(pg.body, "Run 999 did not evaluate this finding") {
		t.Errorf("evidence of a run that did not evaluate it: status %d", pg.status)
	}
}

// TestOnlyGetAndHeadAreServed: the dashboard changes nothing.
func TestOnlyGetAndHeadAreServed(t *testing.T) {
	srv := serve(t, labFixture(t).st)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		for _, p := range []string{"/", "/search?q=x", "/org/RBD"} {
			pg := do(t, srv, m, p)
			if pg.status != http.StatusMethodNotAllowed || pg.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: status %d, Allow %q; want 405, GET, HEAD", m, p, pg.status, pg.header.Get("Allow"))
			}
		}
	}
	if pg := do(t, srv, http.MethodHead, "/"); pg.status != http.StatusOK || pg.body != "" {
		t.Errorf("HEAD /: status %d, %d bytes of body", pg.status, len(pg.body))
	}
}

// TestSearchFindsAssetsByPartOfTheirName: substring, any case; organisations
// by name or code; LIKE's wildcards are literal; results are paged.
func TestSearchFindsAssetsByPartOfTheirName(t *testing.T) {
	f := labFixture(t)
	srv := serve(t, f.st)
	search := func(q string, page int) string {
		v := url.Values{"q": {q}}
		if page > 1 {
			v.Set("page", fmt.Sprint(page))
		}
		pg := get(t, srv, "/search?"+v.Encode())
		if pg.status != http.StatusOK {
			t.Fatalf("search %q: status %d", q, pg.status)
		}
		return pg.body
	}
	cases := []struct {
		q       string
		want    []string
		notWant []string
	}{
		{"xss.lab-web-hostile", []string{"xss.lab-web-hostile.nhs.uk", "/finding/"}, []string{"bomb.lab-web-hostile.nhs.uk"}},
		{"WEB-HOSTILE", []string{"bomb.lab-web-hostile.nhs.uk", "xss.lab-web-hostile.nhs.uk"}, nil},
		{"secrets-live-deploy", []string{"lab-ry9/secrets-live-deploy-keys", "repo.secrets.history"}, nil},
		{"dorset county", []string{`href="/org/RBD"`}, nil},
		{"%", []string{"has “%” in its name"}, []string{"/finding/"}},
		{"lab_web", []string{"has “lab_web” in its name"}, []string{"/finding/"}},
		{"no-such-asset-anywhere", []string{"has “no-such-asset-anywhere” in its name"}, []string{"/finding/"}},
		{"<script>alert(2)</script>", []string{"&lt;script&gt;alert(2)&lt;/script&gt;"}, []string{"<script>alert(2)"}},
	}
	for _, c := range cases {
		body := search(c.q, 1)
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("search %q: the results lack %q", c.q, w)
			}
		}
		for _, w := range c.notWant {
			if strings.Contains(body, w) {
				t.Errorf("search %q: the results hold %q", c.q, w)
			}
		}
	}
	// "lab" matches every asset of the tiny lab: more than a page.
	p1, p2 := search("lab", 1), search("lab", 2)
	if !strings.Contains(p1, "Page 1 of") || !strings.Contains(p2, "Page 2 of") {
		t.Fatalf("search lab: not paged (page 1 says %q)", between(p1, `class="pager"`, "</p>"))
	}
	h1, h2 := assetHeadings(p1), assetHeadings(p2)
	if len(h1) != 25 || len(h2) == 0 {
		t.Errorf("search lab: %d assets on page 1 (want 25), %d on page 2", len(h1), len(h2))
	}
	for _, h := range h2 {
		for _, g := range h1 {
			if h == g {
				t.Errorf("search lab: %q on both pages", h)
			}
		}
	}
}

var headingPattern = regexp.MustCompile(`<h3 class="msg">([^<]*)`)

func assetHeadings(body string) []string {
	var out []string
	for _, m := range headingPattern.FindAllStringSubmatch(body, -1) {
		out = append(out, strings.TrimSpace(m[1]))
	}
	return out
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i:]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

// TestFindingPageShowsItsHistoryAndLifecycle: the outcome of each run, the
// lifecycle's first and last seen, and the risk acceptance.
func TestFindingPageShowsItsHistoryAndLifecycle(t *testing.T) {
	f := labFixture(t)
	srv := serve(t, f.st)
	id := findingOf(t, f, func(x store.Finding) bool {
		return x.Outcome == check.Fail && strings.HasPrefix(x.CheckID, "email.dmarc")
	})
	body := get(t, srv, "/finding/"+id).body
	hist := between(body, "<h2>History</h2>", "</table>")
	for _, run := range f.runs {
		if !strings.Contains(hist, fmt.Sprintf(`<td class="n">%d</td>`, run)) {
			t.Errorf("the history lacks run %d", run)
		}
	}
	if !strings.Contains(hist, "Open at the first run") {
		t.Error("the history does not say the first run opened it (the baseline)")
	}
	if n := strings.Count(hist, "Failing"); n != len(f.runs) {
		t.Errorf("the history shows %d failing runs, want %d", n, len(f.runs))
	}
	life := between(body, "<h2>Lifecycle</h2>", "</section>")
	for _, want := range []string{"Accepted: a risk acceptance is in force", "run " + fmt.Sprint(f.runs[0]), "In force until", "Board &lt;b&gt;risk&lt;/b&gt; panel"} {
		if !strings.Contains(life, want) {
			t.Errorf("the lifecycle lacks %q:\n%s", want, life)
		}
	}
	// The older run's evidence is a link away, and shown when asked for.
	old := fmt.Sprintf("/finding/%s?run=%d", id, f.runs[0])
	if !strings.Contains(body, `href="`+old+`"`) {
		t.Errorf("no link to run %d's evidence", f.runs[0])
	}
	if b := get(t, srv, old).body; !strings.Contains(b, fmt.Sprintf("in run %d, collected", f.runs[0])) {
		t.Errorf("%s does not show run %d's evidence", old, f.runs[0])
	}
}

// TestSummaryFollowsTheNewestCompleteRun: the cached summary is rebuilt
// when a run completes, and not shown for a run still going.
func TestSummaryFollowsTheNewestCompleteRun(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/p.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := serve(t, st)
	if pg := get(t, srv, "/"); pg.status != http.StatusServiceUnavailable || !strings.Contains(pg.body, "No scan has completed yet") {
		t.Fatalf("empty store: status %d", pg.status)
	}
	night := func(host string, finish bool) int64 {
		run, _, err := st.BeginRun(ctx, fmt.Sprint("key-", host), "")
		if err != nil {
			t.Fatal(err)
		}
		a := check.Asset{Kind: check.KindHost, Name: host, Org: "RBD"}
		ev := check.Evidence{CheckID: "web.https", Asset: a, CollectedAt: time.Now(), Data: json.RawMessage(`{"host":"` + host + `"}`)}
		fs := []check.Finding{{CheckID: "web.hsts.present", Rule: "hsts-present", Asset: a, Outcome: check.Fail, Severity: check.High, Message: "no HSTS on " + host}}
		if err := st.PutOrganisations(ctx, []store.Org{{Code: "RBD", Name: "Dorset County"}}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutResult(ctx, run.ID, ev, fs); err != nil {
			t.Fatal(err)
		}
		if finish {
			if err := st.FinishRun(ctx, run.ID, store.Complete); err != nil {
				t.Fatal(err)
			}
		}
		return run.ID
	}
	// The board says which run it speaks for ("Run N, started …").
	speaksFor := func(run int64) bool {
		return strings.Contains(get(t, srv, "/").body, fmt.Sprintf(`<p class="lede">Run %d, started`, run))
	}
	first := night("first.example.nhs.uk", true)
	if !speaksFor(first) {
		t.Fatal("the summary is not of the only complete run")
	}
	if running := night("running.example.nhs.uk", false); speaksFor(running) {
		t.Error("the summary shows a run that has not completed")
	}
	if !speaksFor(first) {
		t.Error("a run still going replaced the summary of the complete one")
	}
	if second := night("second.example.nhs.uk", true); !speaksFor(second) {
		t.Error("the summary was not rebuilt when a new run completed")
	}
	// The service warms the summary when a run completes.
	h := dashboard.New(st, checks.Catalogue())
	w, ok := h.(interface{ Warm(context.Context) error })
	if !ok {
		t.Fatal("the dashboard has no Warm")
	}
	if err := w.Warm(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTruncatedEvidenceSaysSo: evidence over the store's cap is kept as
// its beginning, and the page says it was truncated.
func TestTruncatedEvidenceSaysSo(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/p.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, _, err := st.BeginRun(ctx, "k", "")
	if err != nil {
		t.Fatal(err)
	}
	a := check.Asset{Kind: check.KindHost, Name: "many.example.nhs.uk", Org: "RBD"}
	big := `{"headers":"` + strings.Repeat("<script>x</script>", store.MaxEvidenceBytes/10) + `"}`
	ev := check.Evidence{CheckID: "web.https", Asset: a, CollectedAt: time.Now(), Data: json.RawMessage(big)}
	fd := check.Finding{CheckID: "web.hsts.present", Rule: "hsts-present", Asset: a, Outcome: check.Unknown, Reason: "too-large"}
	if err := st.PutResult(ctx, run.ID, ev, []check.Finding{fd}); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRun(ctx, run.ID, store.Complete); err != nil {
		t.Fatal(err)
	}
	pg := get(t, serve(t, st), "/finding/"+fd.ID())
	if pg.status != http.StatusOK {
		t.Fatalf("status %d", pg.status)
	}
	for _, want := range []string{"was truncated when stored", "Evidence shown only in part", "&lt;script&gt;x&lt;/script&gt;"} {
		if !strings.Contains(pg.body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(pg.body, "<script>") {
		t.Error("the truncated evidence is shown raw")
	}
	if len(pg.body) > 400<<10 {
		t.Errorf("the page is %d bytes: the evidence shown is not bounded", len(pg.body))
	}
}

var (
	findingLinkPattern = regexp.MustCompile(`<td><a href="/finding/([0-9a-f]{20})">`)
	outcomeCellPattern = regexp.MustCompile(`<tr><td class="o-([a-z]+)">`)
)

// TestOrganisationFindingsArePaged: an organisation's list covers every
// finding of the run on its assets and those below it, once each, a
// hundred a page, filtered by outcome.
func TestOrganisationFindingsArePaged(t *testing.T) {
	f := labFixture(t)
	srv := serve(t, f.st)
	fs, err := f.st.Findings(context.Background(), f.runs[len(f.runs)-1])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]check.Outcome{}
	for _, x := range fs {
		want[x.ID] = check.Worst(want[x.ID], x.Outcome)
	}
	if len(want) <= 100 {
		t.Fatalf("the run has %d findings: one page, the paging proves nothing", len(want))
	}
	root := f.orgs[0] // X24, the nation: every organisation is below it
	seen := map[string]int{}
	pages := 0
	for page := 1; ; page++ {
		pg := get(t, srv, fmt.Sprintf("/org/%s/findings?show=all&page=%d", root, page))
		if pg.status != http.StatusOK {
			t.Fatalf("page %d: status %d", page, pg.status)
		}
		ids := findingLinkPattern.FindAllStringSubmatch(pg.body, -1)
		if len(ids) > 100 {
			t.Errorf("page %d lists %d findings, over 100", page, len(ids))
		}
		for _, m := range ids {
			seen[m[1]]++
		}
		pages++
		if !strings.Contains(pg.body, `rel="next"`) || pages > 50 {
			break
		}
	}
	for id := range want {
		if seen[id] == 0 {
			t.Errorf("finding %s is on no page", id)
		}
	}
	for id := range seen {
		if want[id] == "" {
			t.Errorf("finding %s is listed but not in the run", id)
		}
	}
	if pages < 2 {
		t.Errorf("%d pages for %d findings", pages, len(want))
	}
	// The default list: failing and needing attention only, worst first.
	body := get(t, srv, "/org/"+root+"/findings").body
	ids := findingLinkPattern.FindAllStringSubmatch(body, -1)
	if len(ids) == 0 {
		t.Fatal("no failing finding listed")
	}
	for _, m := range ids {
		if o := want[m[1]]; !o.Counts() {
			t.Errorf("the problems list holds %s, which is %s", m[1], o)
		}
	}
	rank := map[string]int{"fail": 2, "warn": 1}
	last := 3
	cells := outcomeCellPattern.FindAllStringSubmatch(body, -1)
	if len(cells) != len(ids) {
		t.Errorf("%d outcome cells for %d findings listed", len(cells), len(ids))
	}
	for _, m := range cells {
		r := rank[m[1]]
		if r == 0 || r > last {
			t.Errorf("the problems list is not worst first: %s after a better outcome", m[1])
		}
		last = r
	}
	// The organisation's report links to the list and back to the board;
	// unknown codes are 404.
	orgPage := get(t, srv, "/org/"+root).body
	if !strings.Contains(orgPage, `href="/org/`+root+`/findings"`) {
		t.Error("the organisation's report does not link to its findings")
	}
	if !strings.Contains(orgPage, `<a href="/">← The board</a>`) {
		t.Error("the organisation's report does not link back to the board")
	}
	if pg := get(t, srv, "/org/NOPE/findings"); pg.status != http.StatusNotFound {
		t.Errorf("unknown organisation: status %d", pg.status)
	}
}

// TestOrganisationPageChartsItsTrend: the one cached summary carries every
// organisation's trend, so each organisation's page has its chart, as
// `posture report org` writes it.
func TestOrganisationPageChartsItsTrend(t *testing.T) {
	f := labFixture(t)
	srv := serve(t, f.st)
	get(t, srv, "/") // the board first: its summary serves the organisations
	for _, code := range f.orgs {
		if b := get(t, srv, "/org/"+code).body; !strings.Contains(b, "Score over time") || !strings.Contains(b, "<polyline") {
			t.Errorf("organisation %s: no chart of its score over the %d runs", code, len(f.runs))
		}
	}
}
