// Package dashboard serves the posture database read-only over HTTP: the
// board summary of the newest complete run, each organisation's report,
// each finding's history and evidence, and a search of the run's assets.
//
// Pages are html/template renderings with inline CSS and no scripts; every
// response forbids loading anything (Content-Security-Policy default-src
// 'none'), so text a scanned server sent, which reaches these pages through
// findings and evidence, is shown escaped and can run nothing. Values that
// look like secrets are hidden from evidence (see prettyEvidence). Only GET
// and HEAD are served. Protect adds access control.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/reports/storesource"
	"github.com/nhsx/posture/scanner/store"
)

// Page sizes: every list is bounded and paged.
const (
	historyPerPage     = 50
	searchPerPage      = 25
	findingsPerAsset   = 20
	orgHitsLimit       = 20
	maxQuery           = 200  // characters of a search
	maxText            = 2000 // characters of one message shown
	maxPage            = 100000
	contentSecurityPol = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"clip":     func(s string) string { return clip(s, maxText) },
	"datetime": datetime,
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2 Jan 2006")
	},
	"outcome":     reports.OutcomeLabel,
	"findingURL":  findingURL,
	"orgURL":      orgURL,
	"pageURL":     pageURL,
	"outcomeCls":  func(o check.Outcome) string { return "o-" + strings.ReplaceAll(string(o), "/", "") },
	"inForce":     func(t time.Time) bool { return t.After(time.Now()) },
	"plural":      plural,
	"kb":          func(n int) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) },
	"daysSince":   func(t time.Time) int { return int(time.Since(t) / (24 * time.Hour)) },
	"moreThan":    func(n int, fs []store.Finding) bool { return len(fs) > n },
	"firstN":      func(n int, fs []store.Finding) []store.Finding { return fs[:min(n, len(fs))] },
	"remaining":   func(n int, fs []store.Finding) int { return max(len(fs)-n, 0) },
	"severityCls": func(s check.Severity) string { return "sev-" + string(s) },
	"lifeStatus":  lifeStatus,
	"eventLabel":  eventLabel,
	"bar":         func(q string) barData { return barData{Q: q} },
}).ParseFS(templateFS, "templates/*.tmpl"))

// Dashboard is the read-only handler.
type Dashboard struct {
	st   *store.Store
	cat  []check.Meta
	meta map[string]check.Meta
	mux  *http.ServeMux
	log  *slog.Logger

	mu  sync.Mutex // held while a summary builds: one build at a time
	key string     // what the cached summary was built from
	sum *reports.Summary
	// page is the summary's rendered board, kept with it.
	page []byte
}

// New returns the dashboard over st, titling checks from the catalogue.
func New(st *store.Store, cat []check.Meta) http.Handler {
	d := &Dashboard{st: st, cat: cat, meta: map[string]check.Meta{}, mux: http.NewServeMux(), log: slog.Default()}
	for _, m := range cat {
		if _, dup := d.meta[m.ID]; !dup {
			d.meta[m.ID] = m
		}
	}
	d.mux.HandleFunc("GET /{$}", d.board)
	d.mux.HandleFunc("GET /org/{code}", d.org)
	d.mux.HandleFunc("GET /org/{code}/findings", d.orgFindings)
	d.mux.HandleFunc("GET /finding/{id}", d.finding)
	d.mux.HandleFunc("GET /search", d.search)
	d.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { d.notFound(w, "No such page.") })
	return d
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPol)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

// ServeHTTP serves GET and HEAD; any other method is 405.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the dashboard is read-only: GET and HEAD only", http.StatusMethodNotAllowed)
		return
	}
	d.mux.ServeHTTP(w, r)
}

// errNoRun: nothing to show yet.
var errNoRun = errors.New("dashboard: no complete run")

// summary returns the summary of the newest complete run, built once per
// run (and again when a risk acceptance changes the lifecycle).
func (d *Dashboard) summary(ctx context.Context) (*reports.Summary, error) {
	run, err := d.st.LatestComplete(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoRun
	}
	if err != nil {
		return nil, err
	}
	stamp, err := d.st.AcceptanceStamp(ctx)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%d/%d/%s", run.ID, run.Seq, stamp)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sum != nil && d.key == key {
		return d.sum, nil
	}
	// Every organisation's trend too: one summary serves the board and
	// every organisation's page (its chart).
	s, err := reports.Options{OrgTrends: true}.Build(ctx, storesource.Source{Store: d.st}, d.cat, run.ID)
	if err != nil {
		return nil, err
	}
	d.sum, d.key, d.page = s, key, nil
	return s, nil
}

// Warm builds the summary of the newest complete run now, so that the
// first reader after a run does not wait for it: the nightly service may
// call it when a run completes (through New's handler:
// h.(interface{ Warm(context.Context) error })).
func (d *Dashboard) Warm(ctx context.Context) error {
	_, err := d.summary(ctx)
	if errors.Is(err, errNoRun) {
		return nil
	}
	return err
}

// cached is the summary built last, if any (without waiting for a build).
func (d *Dashboard) cached() *reports.Summary {
	if !d.mu.TryLock() {
		return nil
	}
	defer d.mu.Unlock()
	return d.sum
}

func (d *Dashboard) links() reports.Links {
	return reports.Links{Org: orgURL, Finding: findingURL, Board: "/"}
}

func (d *Dashboard) board(w http.ResponseWriter, r *http.Request) {
	s, err := d.summary(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.mu.Lock()
	page := d.page
	d.mu.Unlock()
	if page == nil {
		var b bytes.Buffer
		if err := reports.WriteBoardWith(&b, s, d.links()); err != nil {
			d.fail(w, r, err)
			return
		}
		page = b.Bytes()
		d.mu.Lock()
		if d.sum == s {
			d.page = page
		}
		d.mu.Unlock()
	}
	d.writeReport(w, page, barData{})
}

func (d *Dashboard) org(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	s, err := d.summary(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if s.Org(code) == nil {
		d.notFound(w, "No organisation with that code in run "+strconv.FormatInt(s.Run.ID, 10)+".")
		return
	}
	var b bytes.Buffer
	if err := reports.WriteOrgReportWith(&b, s, code, d.links()); err != nil {
		d.fail(w, r, err)
		return
	}
	d.writeReport(w, b.Bytes(), barData{Link: orgURL(code) + "/findings", Label: "Every finding of this organisation"})
}

// barData is the dashboard's bar: home, an optional link, the search.
type barData struct {
	Q           string
	Link, Label string
}

// writeReport sends a report page with the dashboard's bar put in after
// the report's static <body> tag.
func (d *Dashboard) writeReport(w http.ResponseWriter, page []byte, bar barData) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, "bar", bar); err != nil {
		d.log.Error("dashboard: render bar", "err", err)
	}
	i := bytes.Index(page, []byte("<body>"))
	if i >= 0 {
		i += len("<body>")
	} else {
		i = 0
	}
	// page may be the cached board: written around, never changed.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(page[:i])
	w.Write(b.Bytes())
	w.Write(page[i:])
}

// findingIDPattern is check.FindingID's shape.
var findingIDPattern = regexp.MustCompile(`^[0-9a-f]{20}$`)

type findingPage struct {
	ID       string
	Meta     check.Meta
	Latest   store.HistoryEntry
	Life     *store.Life
	History  []store.HistoryEntry
	Pager    pager
	Evidence *evidenceView
	EvRun    int64
	EvErr    string
	Org      string // the owner's name, if the summary knows it
	OrgLink  bool
	Now      time.Time
}

type evidenceView struct {
	store.StoredEvidence
	Pretty string
	Cut    bool
	Shown  int
}

func (d *Dashboard) finding(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !findingIDPattern.MatchString(id) {
		d.notFound(w, "No finding with that id.")
		return
	}
	ctx := r.Context()
	page := pageOf(r)
	hist, total, err := d.st.FindingHistory(ctx, id, historyPerPage, (page-1)*historyPerPage)
	if errors.Is(err, store.ErrNotFound) {
		d.notFound(w, "No finding with that id.")
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	p := findingPage{ID: id, History: hist, Now: time.Now(),
		Pager: newPager("/finding/"+id, url.Values{}, page, historyPerPage, total)}
	latest := hist
	if page > 1 || len(hist) == 0 {
		if latest, _, err = d.st.FindingHistory(ctx, id, 1, 0); err != nil {
			d.fail(w, r, err)
			return
		}
	}
	p.Latest = latest[0]
	p.Meta = d.metaOf(p.Latest.Finding.CheckID)
	if l, err := d.st.LifeOf(ctx, id); err == nil {
		p.Life = &l
	} else if !errors.Is(err, store.ErrNotFound) {
		d.fail(w, r, err)
		return
	}
	// The owner's name from the summary at hand: a finding's page never
	// waits for a summary to build.
	if s := d.cached(); s != nil {
		if o := s.Org(p.Latest.Finding.Asset.Org); o != nil {
			p.Org, p.OrgLink = o.Name, true
		}
	}
	p.EvRun = p.Latest.RunID
	if v := r.URL.Query().Get("run"); v != "" {
		if p.EvRun, err = strconv.ParseInt(v, 10, 64); err != nil || p.EvRun <= 0 {
			d.notFound(w, "No such run.")
			return
		}
	}
	ev, err := d.st.EvidenceFor(ctx, id, p.EvRun)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.EvErr = fmt.Sprintf("Run %d did not evaluate this finding: no evidence.", p.EvRun)
	case err != nil:
		d.fail(w, r, err)
		return
	default:
		pretty, cut := prettyEvidence(ev.Data, maxEvidenceShown)
		p.Evidence = &evidenceView{StoredEvidence: ev, Pretty: pretty, Cut: cut, Shown: len(pretty)}
	}
	d.render(w, http.StatusOK, "finding", p)
}

func (d *Dashboard) metaOf(id string) check.Meta {
	if m, ok := d.meta[id]; ok {
		return m
	}
	return check.Meta{ID: id, Title: id}
}

type searchPage struct {
	Q       string
	Run     reports.Run
	Orgs    []*reports.OrgSummary
	OrgMore bool
	Hits    []store.AssetHit
	Total   int
	Pager   pager
	Limit   int
	Meta    func(string) check.Meta
}

func (d *Dashboard) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if utf8.RuneCountInString(q) > maxQuery {
		q = string([]rune(q)[:maxQuery])
	}
	s, err := d.summary(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	page := pageOf(r)
	p := searchPage{Q: q, Run: s.Run, Limit: findingsPerAsset, Meta: d.metaOf}
	if q != "" {
		lq := strings.ToLower(q)
		for _, o := range s.Orgs {
			if strings.Contains(strings.ToLower(o.Code), lq) || strings.Contains(strings.ToLower(o.Name), lq) {
				if len(p.Orgs) == orgHitsLimit {
					p.OrgMore = true
					break
				}
				p.Orgs = append(p.Orgs, o)
			}
		}
		p.Hits, p.Total, err = d.st.SearchAssets(r.Context(), s.Run.ID, q, searchPerPage, (page-1)*searchPerPage)
		if err != nil {
			d.fail(w, r, err)
			return
		}
	}
	p.Pager = newPager("/search", url.Values{"q": {q}}, page, searchPerPage, p.Total)
	d.render(w, http.StatusOK, "search", p)
}

func (d *Dashboard) render(w http.ResponseWriter, code int, name string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		d.log.Error("dashboard: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

type message struct{ Title, Text string }

func (d *Dashboard) notFound(w http.ResponseWriter, text string) {
	d.render(w, http.StatusNotFound, "message", message{"Not found", text})
}

func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errNoRun):
		d.render(w, http.StatusServiceUnavailable, "message", message{"No results yet",
			"No scan has completed yet: the dashboard shows the newest complete run."})
	case errors.Is(err, context.Canceled):
		// the client went away
	default:
		d.log.Error("dashboard", "path", r.URL.Path, "err", err)
		d.render(w, http.StatusInternalServerError, "message", message{"Something went wrong",
			"The page could not be built; the service log says why."})
	}
}

func findingURL(id string) string { return "/finding/" + url.PathEscape(id) }
func orgURL(code string) string   { return "/org/" + url.PathEscape(code) }

func pageOf(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return min(n, maxPage)
}

// pager is one page of a list and the links to its neighbours.
type pager struct {
	Page, Pages, Total, From, To int
	Prev, Next                   string
}

func newPager(path string, q url.Values, page, per, total int) pager {
	p := pager{Page: page, Total: total, Pages: max(1, (total+per-1)/per)}
	p.From = min((page-1)*per+1, total+1)
	p.To = min(page*per, total)
	if page > 1 {
		p.Prev = pageURL(path, q, min(page-1, p.Pages))
	}
	if page < p.Pages {
		p.Next = pageURL(path, q, page+1)
	}
	return p
}

func pageURL(path string, q url.Values, page int) string {
	v := url.Values{}
	for k, vs := range q {
		v[k] = vs
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

func datetime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2 Jan 2006 15:04 MST")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func eventLabel(kind string) string {
	switch kind {
	case "baseline":
		return "Open at the first run"
	case "new":
		return "New"
	case "regressed":
		return "Back again"
	case "resolved":
		return "Fixed"
	case "reopened":
		return "Reopened: its risk acceptance ended"
	}
	return ""
}

func lifeStatus(s store.LifeStatus) string {
	switch s {
	case store.StatusOpen:
		return "Open"
	case store.StatusPending:
		return "Pending: failing, but not yet for the runs the lifecycle waits before it announces a change"
	case store.StatusAccepted:
		return "Accepted: a risk acceptance is in force"
	case store.StatusResolved:
		return "Resolved"
	}
	return string(s)
}

// clip bounds a text to n runes, saying so, and hides what looks like a
// secret (as in evidence).
func clip(s string, n int) string {
	s = sensitiveValue.ReplaceAllStringFunc(s, redacted)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "… (cut)"
}
