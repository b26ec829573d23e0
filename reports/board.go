package reports

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/nhsx/posture/checks/check"
)

// listLimit bounds each list of findings in the HTML and Markdown reports;
// the exports carry everything.
const listLimit = 50

// orgListLimit bounds each list in one organisation's report.
const orgListLimit = 500

var errNoSummary = errors.New("reports: no summary")

// Links make the reports link organisations and findings to other pages (a
// dashboard, a directory of organisation pages). A nil function, or one
// that returns "", gives no link. The zero Links links nothing.
type Links struct {
	Org     func(code string) string // the page of an organisation
	Finding func(id string) string   // the page of a finding (its evidence)
	// Board is the board's page, linked from organisation pages ("": none).
	Board string
}

func (l Links) org(code string) string {
	if l.Org == nil || code == "" {
		return ""
	}
	return l.Org(code)
}

func (l Links) finding(id string) string {
	if l.Finding == nil || id == "" {
		return ""
	}
	return l.Finding(id)
}

// WriteBoard writes the board summary: one self-contained HTML file (inline
// CSS and SVG, no scripts, nothing loaded from the network) that prints on
// A4 landscape.
func WriteBoard(w io.Writer, s *Summary) error { return WriteBoardWith(w, s, Links{}) }

// WriteBoardWith is WriteBoard with links to organisation and finding
// pages. Link targets go through html/template's URL escaping.
func WriteBoardWith(w io.Writer, s *Summary, links Links) error {
	if s == nil || s.Estate == nil {
		return errNoSummary
	}
	return render(w, "board", newBoardView(s, links))
}

// WriteOrgReport writes one organisation's report (HTML), covering it and
// the organisations below it.
func WriteOrgReport(w io.Writer, s *Summary, code string) error {
	return WriteOrgReportWith(w, s, code, Links{})
}

// WriteOrgReportWith is WriteOrgReport with links to organisation and
// finding pages.
func WriteOrgReportWith(w io.Writer, s *Summary, code string, links Links) error {
	if s == nil || s.Estate == nil {
		return errNoSummary
	}
	v, err := newOrgView(s, code, links)
	if err != nil {
		return err
	}
	return render(w, "org", v)
}

// render executes into a buffer first, so that a template error leaves no
// half-written report behind.
func render(w io.Writer, name string, v any) error {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, v); err != nil {
		return fmt.Errorf("reports: render %s: %w", name, err)
	}
	if _, err := b.WriteTo(w); err != nil {
		return fmt.Errorf("reports: write %s: %w", name, err)
	}
	return nil
}

// The view model. Everything a reader sees is decided here, once, as
// bounded one-line text and numbers; board.tmpl renders it as HTML (with
// html/template's escaping) and WriteMarkdown as Markdown (with mdEscape),
// so the two never disagree.

// boardView is the board summary.
type boardView struct {
	Title, Lede string
	RunID       int64
	Tiles       []tile
	ScoreNote   string
	Trend       chart
	HasTrend    bool
	// Windows head the columns of change: "7 days", …; WindowRuns say
	// which run each compares with.
	Windows    [len(Windows)]string
	WindowRuns [len(Windows)]string
	Standards  []standardRow
	League     []leagueRow
	Groups     []leagueRow
	Changes    []tile
	Improving  []leagueRow
	Declining  []leagueRow
	New        findingList
	Fixed      findingList
	Risks      findingList
	Oldest     findingList
	Untested   []untestedRow
	// UntestedTotal counts the unknown results.
	UntestedTotal int
	Unowned       []UnownedGroup
	UnownedTotal  int
	Checks        []checkRow
	DSPTNote      string
	Footer        string
}

type tile struct{ Label, Value, Class, Note, NoteClass string }

// delta is a change in points, worded: "▲ 3" (class up), "▼ 2" (down),
// "=" or "–" (no comparison).
type delta struct {
	Text, Class string
	points      float64 // rounded as shown
}

type standardRow struct {
	Title, About string
	Score        string
	Valid        bool
	Bar          int // 0–100
	Changes      [len(Windows)]delta
	Fail, Warn   int
	Unknown      int
	Pass         int
	Checks       string
	Spark        chart
}

type leagueRow struct {
	Rank     int
	Depth    int
	Org      orgRef
	Kind     string
	Score    string
	Valid    bool
	Week     delta // since 7 days ago
	Previous delta // since the previous run
	DSPT     string
	DSPTDate string
	Assets   int
	Fail     int
	Warn     int
	Unknown  int
	Pass     int
	New      int
	Fixed    int
}

type findingRow struct {
	Severity, SevClass string
	Tags               []string
	Org                orgRef
	Asset, AssetHref   string
	Check, CheckID     string
	Message            string
	Remediation        string
	Relevant           string
	Reason             string
	Open               string // "12 days"
	FirstSeen          string
}

type findingList struct {
	Rows []findingRow
	More int // listed elsewhere (organisation pages, exports)
}

type untestedRow struct {
	Label   string
	Count   int
	Checks  string
	Reasons string
}

type checkRow struct {
	ID, Title, Description string
	Severity               string
	Weight                 int64
	Refs                   string
}

// orgRef is an organisation's name for a template, with its link.
type orgRef struct{ Href, Name, Code string }

func (s *Summary) orgRef(code string, links Links) orgRef {
	r := orgRef{Href: links.org(code), Name: line(code), Code: line(code)}
	if o := s.Org(code); o != nil {
		r.Name = line(o.Name)
	}
	return r
}

// ScoreNote explains the score to a board.
const scoreNote = "The score is the share of the checks that apply which pass, weighted by severity: a critical check " +
	"counts 8, high 4, medium 2, low 1 (informational checks are recorded, not scored). A check that passes with a " +
	"warning (\"needs attention\") earns half its weight. \"Could not check\" (a timeout, a refused probe) and " +
	"\"not applicable\" are left out: never counted as a failure, nor as a pass. Organisations above a trust (ICB, " +
	"region, the nation) add up the checks of every organisation below them."

func newBoardView(s *Summary, links Links) *boardView {
	v := &boardView{RunID: s.Run.ID, ScoreNote: scoreNote}
	v.Title = fmt.Sprintf("Security posture of the estate: run %d, %s", s.Run.ID, fmtDate(s.Run.Started))
	v.Lede = fmt.Sprintf("Run %d, started %s", s.Run.ID, fmtDateTime(s.Run.Started))
	if s.Previous != nil {
		v.Lede += fmt.Sprintf("; compared with run %d of %s", s.Previous.ID, fmtDate(s.Previous.Started))
	} else {
		v.Lede += "; the first run, so there is nothing to compare with yet"
	}
	v.Lede += "."
	e := s.Estate
	t := e.Total
	week := changeDelta(e, 0, AllChecks)
	v.Tiles = []tile{
		{Label: "Score", Value: e.Score.String(), Note: weekNote(week), NoteClass: week.Class},
		{Label: "Failing", Value: fmt.Sprint(t.Fail), Class: "fail"},
		{Label: "Needs attention", Value: fmt.Sprint(t.Warn), Class: "warn"},
		{Label: "Could not check", Value: fmt.Sprint(t.Unknown), Class: "unknown"},
		{Label: "Passing", Value: fmt.Sprint(t.Pass), Class: "pass"},
		{Label: "Assets", Value: fmt.Sprint(e.Assets)},
		{Label: "Organisations", Value: fmt.Sprint(countLeaves(s))},
	}
	v.HasTrend = len(s.Trend) > 1
	marks := markRuns(s)
	v.Trend = newChart(s.Trend, e.Trend, marks)
	v.Windows, v.WindowRuns = windowHeads(s)
	for _, st := range s.Standards {
		v.Standards = append(v.Standards, standardRowOf(s, st.BoardStandard, s.Estate, st.Trend, st.Checks, marks))
	}
	v.League, v.Groups = leagueOf(s, s.Orgs, links)
	v.Improving, v.Declining = movers(v.League, 5)
	c := e.Changes
	v.Changes = []tile{
		{Label: "New problems", Value: fmt.Sprint(c.New), Class: "fail"},
		{Label: "Back again", Value: fmt.Sprint(c.Regressed), Class: "fail"},
		{Label: "Fixed", Value: fmt.Sprint(c.Resolved), Class: "pass"},
		{Label: "Still open", Value: fmt.Sprint(c.StillOpen), Class: "warn"},
	}
	if c.Reopened > 0 {
		v.Changes = append(v.Changes, tile{Label: "Acceptance lapsed", Value: fmt.Sprint(c.Reopened), Class: "fail"})
	}
	if c.Accepted > 0 {
		v.Changes = append(v.Changes, tile{Label: "Accepted risks", Value: fmt.Sprint(c.Accepted)})
	}
	v.New = findingsOf2(s, s.New, listLimit, len(s.New), links)
	v.Fixed = findingsOf2(s, s.Resolved, listLimit, len(s.Resolved), links)
	v.Risks = findingsOf2(s, s.Risks, len(s.Risks), s.RiskTotal, links)
	v.Oldest = findingsOf2(s, s.Oldest, len(s.Oldest), s.OpenTotal, links)
	v.Untested, v.UntestedTotal = untestedRows(s, s.Untested)
	v.Unowned, v.UnownedTotal = s.UnownedBySource, s.UnownedTotal
	for _, m := range s.Checks {
		v.Checks = append(v.Checks, checkRow{ID: line(m.ID), Title: line(m.Title), Description: clip(oneLine(m.Description), 2*maxLine),
			Severity: severityLabel(m.Severity), Weight: Weight(m.Severity), Refs: refsText(m.Standards)})
	}
	v.DSPTNote = "DSPT is each organisation's Data Security and Protection Toolkit self-assessment, as published in " +
		DSPTList + ", matched by ODS code: what the organisation declared, shown beside what this scan measured."
	v.Footer = fmt.Sprintf("Generated by posture from run %d. This file is self-contained: it loads nothing from the network.", s.Run.ID)
	return v
}

func weekNote(d delta) string {
	if d.Class == "" && d.Text != "=" {
		return ""
	}
	return d.Text + " in 7 days"
}

// countLeaves counts the organisations that are not groups of others.
func countLeaves(s *Summary) int {
	n := 0
	for _, o := range s.Orgs {
		if len(o.Children) == 0 && !o.Implicit {
			n++
		}
	}
	return n
}

func windowHeads(s *Summary) (heads, runs [len(Windows)]string) {
	for i, d := range Windows {
		switch d {
		case 365:
			heads[i] = "1 year"
		default:
			heads[i] = fmt.Sprintf("%d days", d)
		}
		if r := s.Ago[i].Run; r != nil {
			runs[i] = fmt.Sprintf("run %d of %s", r.ID, fmtDate(r.Started))
		} else {
			runs[i] = "no run that long ago yet"
		}
	}
	return heads, runs
}

// pointsDelta words a change in points, to one decimal.
func pointsDelta(d float64, ok bool) delta {
	if !ok {
		return delta{Text: "–"}
	}
	switch r := math.Round(d*10) / 10; {
	case r > 0:
		return delta{Text: fmt.Sprintf("▲ %.1f", r), Class: "up", points: r}
	case r < 0:
		return delta{Text: fmt.Sprintf("▼ %.1f", -r), Class: "down", points: r}
	}
	return delta{Text: "="}
}

func changeDelta(o *OrgSummary, i int, std string) delta { return pointsDelta(o.Change(i, std)) }

func standardRowOf(s *Summary, b BoardStandard, o *OrgSummary, trend []Score, checks []string, marks map[int]string) standardRow {
	t := o.Tallies[b.ID]
	sc := t.Score()
	r := standardRow{Title: b.Title, About: b.About, Score: sc.String(), Valid: sc.Valid, Bar: int(math.Round(sc.Value)),
		Fail: t.Fail, Warn: t.Warn, Unknown: t.Unknown, Pass: t.Pass}
	for i := range Windows {
		r.Changes[i] = changeDelta(o, i, b.ID)
	}
	var titles []string
	for _, id := range checks {
		titles = append(titles, s.Title(id))
	}
	r.Checks = clip(oneLine(strings.Join(titles, "; ")), 2*maxLine)
	if len(trend) > 1 {
		r.Spark = newSpark(trend, marks)
	}
	return r
}

func leagueRowOf(s *Summary, o *OrgSummary, links Links) leagueRow {
	r := leagueRow{Depth: o.Depth, Org: s.orgRef(o.Code, links), Kind: line(o.Kind), Score: o.Score.String(), Valid: o.Score.Valid,
		Week: changeDelta(o, 0, AllChecks), Previous: pointsDelta(o.Delta()), Assets: o.Assets,
		Fail: o.Total.Fail, Warn: o.Total.Warn, Unknown: o.Total.Unknown, Pass: o.Total.Pass,
		New: o.Changes.New + o.Changes.Regressed + o.Changes.Reopened, Fixed: o.Changes.Resolved}
	if !o.Implicit {
		r.DSPT, r.DSPTDate = "not in the 2022/23 list", ""
		if d, ok := DSPTOf(o.Code); ok {
			r.DSPT, r.DSPTDate = line(d.Status), fmtDate(d.Published)
		}
	}
	return r
}

// leagueOf ranks the organisations that group no others (trusts and the
// like) by score, best first (those with nothing scored last), and lists
// the groups (ICBs, regions) in hierarchy order.
func leagueOf(s *Summary, orgs []*OrgSummary, links Links) (league, groups []leagueRow) {
	for _, o := range orgs {
		r := leagueRowOf(s, o, links)
		if len(o.Children) > 0 {
			groups = append(groups, r)
			continue
		}
		league = append(league, r)
	}
	score := map[string]float64{}
	for _, o := range orgs {
		score[o.Code] = o.Score.Value
	}
	slices.SortStableFunc(league, func(a, b leagueRow) int {
		return cmp.Or(cmp.Compare(b2i(b.Valid), b2i(a.Valid)), cmp.Compare(score[b.Org.Code], score[a.Org.Code]),
			cmp.Compare(strings.ToLower(a.Org.Name), strings.ToLower(b.Org.Name)), cmp.Compare(a.Org.Code, b.Org.Code))
	})
	for i := range league {
		if league[i].Valid {
			league[i].Rank = i + 1
		}
	}
	return league, groups
}

// movers are the n organisations whose score rose most, and fell most,
// over 7 days.
func movers(league []leagueRow, n int) (up, down []leagueRow) {
	for _, r := range league {
		switch {
		case r.Week.points > 0:
			up = append(up, r)
		case r.Week.points < 0:
			down = append(down, r)
		}
	}
	slices.SortStableFunc(up, func(a, b leagueRow) int { return cmp.Compare(b.Week.points, a.Week.points) })
	slices.SortStableFunc(down, func(a, b leagueRow) int { return cmp.Compare(a.Week.points, b.Week.points) })
	return up[:min(n, len(up))], down[:min(n, len(down))]
}

func findingsOf2(s *Summary, fs []Finding, limit, total int, links Links) findingList {
	l := findingList{More: max(total-min(limit, len(fs)), 0)}
	for _, f := range fs[:min(limit, len(fs))] {
		l.Rows = append(l.Rows, findingRowOf(s, f, links))
	}
	return l
}

func findingRowOf(s *Summary, f Finding, links Links) findingRow {
	r := findingRow{Severity: severityLabel(f.Severity), SevClass: string(f.Severity), Org: s.orgRef(orgOf(f), links),
		Asset: line(f.Asset.Name), AssetHref: links.finding(f.ID), Check: line(s.Title(f.CheckID)), CheckID: line(f.CheckID),
		Message: line(f.Message), Remediation: line(f.Remediation), Reason: line(f.Reason),
		Relevant: clip(strings.Join(s.StandardsOf(f), "; "), maxLine)}
	if f.Severity.Rank() < 0 {
		r.SevClass = ""
	}
	if t := changeLabel(f.Change); t != "" {
		r.Tags = append(r.Tags, t)
	}
	if pending(f) {
		r.Tags = append(r.Tags, "Not yet confirmed")
	}
	if f.Outcome == check.Warn {
		r.Tags = append(r.Tags, OutcomeLabel(f.Outcome))
	}
	if f.Outcome.Counts() || f.Change == ChangeResolved {
		d := s.DaysOpen(f)
		r.Open = fmt.Sprintf("%d days", d)
		if d == 1 {
			r.Open = "1 day"
		}
		r.FirstSeen = fmtDate(f.FirstSeen)
	}
	return r
}

func untestedRows(s *Summary, gs []UntestedGroup) ([]untestedRow, int) {
	var out []untestedRow
	total := 0
	for _, g := range gs {
		var titles []string
		for _, id := range g.Checks {
			titles = append(titles, s.Title(id))
		}
		out = append(out, untestedRow{Label: g.Label, Count: g.Count, Checks: clip(oneLine(strings.Join(titles, "; ")), maxLine),
			Reasons: clip(oneLine(strings.Join(g.Reasons, ", ")), maxLine)})
		total += g.Count
	}
	return out, total
}
