package reports

import (
	"embed"
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
)

//go:embed templates/*.tmpl templates/email.txt
var templateFS embed.FS

// funcs are the template helpers that need no summary. Every text that may
// come from a scanned server goes through line (one line, bounded) and then
// html/template's contextual escaping.
var funcs = template.FuncMap{
	"line":      line,
	"date":      fmtDate,
	"datetime":  fmtDateTime,
	"outcome":   OutcomeLabel,
	"sevLabel":  severityLabel,
	"indent":    func(d int) int { return min(d, 6) },
	"take":      take,
	"item":      func(v *emailView, f Finding, full bool) emailItem { return emailItem{v, f, full} },
	"more":      func(n int, fs []Finding) int { return max(len(fs)-n, 0) },
	"pctWidth":  func(s Score) int { return int(math.Round(s.Value)) },
	"changeTag": changeLabel,
	"stdTable": func(rows []standardRow, windows [len(Windows)]string, spark bool) stdTable {
		return stdTable{rows, windows, spark}
	},
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, one)
		}
		return fmt.Sprintf("%d %s", n, many)
	},
}

var templates = template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.tmpl"))

type stdTable struct {
	Rows    []standardRow
	Windows [len(Windows)]string
	Spark   bool
}

func take(n int, fs []Finding) []Finding { return fs[:min(n, len(fs))] }

func fmtDate(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2 Jan 2006")
}

func fmtDateTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2 Jan 2006 15:04 MST")
}

// OutcomeLabel words outcomes for readers who are not engineers (the
// reports and the dashboard).
func OutcomeLabel(o check.Outcome) string {
	switch o {
	case check.Fail:
		return "Failing"
	case check.Warn:
		return "Needs attention"
	case check.Unknown:
		return "Could not check"
	case check.Pass:
		return "Passing"
	case check.NA:
		return "Not applicable"
	}
	return "–"
}

func severityLabel(s check.Severity) string {
	if s.Rank() < 0 {
		return "–"
	}
	return strings.ToUpper(string(s[:1])) + string(s[1:])
}

func changeLabel(c string) string {
	switch c {
	case ChangeNew:
		return "New"
	case ChangeRegressed:
		return "Back again"
	case ChangeStillOpen:
		return "Still open"
	case ChangeResolved:
		return "Fixed"
	case ChangeReopened:
		return "Acceptance lapsed"
	}
	return ""
}

// refsText words citations in full, sections and rule files included, as
// the catalogue view shows them: "CAF B3.b; BOD 18-01". A finding is
// relevant to a standard, never a verdict on it.
func refsText(refs []check.Ref) string {
	var parts []string
	seen := map[string]bool{}
	for _, r := range refs {
		l := refLabel(r)
		if l == "" || seen[l] {
			continue
		}
		seen[l] = true
		if r.Status != "" {
			l += " †"
		}
		parts = append(parts, l)
	}
	return clip(strings.Join(parts, "; "), maxLine)
}

// orgView is one organisation's report: it and everything below it.
type orgView struct {
	Title, Heading, Code, Lede string
	BoardHref                  string
	Tiles                      []tile
	ScoreNote                  string
	Trend                      chart
	HasTrend                   bool
	Windows                    [len(Windows)]string
	WindowRuns                 [len(Windows)]string
	DSPT, DSPTDate             string
	DSPTNote                   string
	Standards                  []standardRow
	Open, Fixed, Accepted      findingList
	Unknown                    findingList
	Untested                   []untestedRow
	UntestedTotal              int
	ByCheck                    []byCheckRow
	Rows                       []leagueRow
	Footer                     string
}

type byCheckRow struct {
	Title, ID string
	Counts
}

func newOrgView(s *Summary, code string, links Links) (*orgView, error) {
	root := s.Org(code)
	if root == nil {
		return nil, fmt.Errorf("reports: no organisation %q in run %d", code, s.Run.ID)
	}
	v := &orgView{Heading: line(root.Name), Code: line(root.Code), ScoreNote: scoreNote, BoardHref: links.Board}
	v.Title = fmt.Sprintf("Security posture: %s (%s), run %d", v.Heading, v.Code, s.Run.ID)
	var lede strings.Builder
	if as := s.Ancestors(code); len(as) > 0 {
		lede.WriteString("Part of ")
		for i, a := range as {
			if i > 0 {
				lede.WriteString(" → ")
			}
			lede.WriteString(line(a.Name))
		}
		lede.WriteString(". ")
	}
	fmt.Fprintf(&lede, "Run %d, started %s", s.Run.ID, fmtDateTime(s.Run.Started))
	if s.Previous != nil {
		fmt.Fprintf(&lede, "; compared with run %d of %s", s.Previous.ID, fmtDate(s.Previous.Started))
	}
	lede.WriteString(".")
	v.Lede = lede.String()
	week := changeDelta(root, 0, AllChecks)
	t := root.Total
	v.Tiles = []tile{
		{Label: "Score", Value: root.Score.String(), Note: weekNote(week), NoteClass: week.Class},
		{Label: "Failing", Value: fmt.Sprint(t.Fail), Class: "fail"},
		{Label: "Needs attention", Value: fmt.Sprint(t.Warn), Class: "warn"},
		{Label: "Could not check", Value: fmt.Sprint(t.Unknown), Class: "unknown"},
		{Label: "Passing", Value: fmt.Sprint(t.Pass), Class: "pass"},
		{Label: "New", Value: fmt.Sprint(root.Changes.New + root.Changes.Regressed)},
		{Label: "Fixed", Value: fmt.Sprint(root.Changes.Resolved)},
	}
	if len(root.Trend) == len(s.Trend) && len(s.Trend) > 1 {
		v.HasTrend = true
		v.Trend = newChart(s.Trend, root.Trend, markRuns(s))
	}
	v.Windows, v.WindowRuns = windowHeads(s)
	if !root.Implicit {
		v.DSPT = "not in the 2022/23 list"
		if d, ok := DSPTOf(root.Code); ok {
			v.DSPT, v.DSPTDate = line(d.Status), fmtDate(d.Published)
		}
		v.DSPTNote = "Data Security and Protection Toolkit self-assessment, from " + DSPTList + "."
	}
	for _, st := range s.Standards {
		if _, ok := root.Tallies[st.ID]; ok {
			v.Standards = append(v.Standards, standardRowOf(s, st.BoardStandard, root, nil, st.Checks, nil))
		}
	}
	var open, accepted, unknown []Finding
	mine, fixed := s.findingsBelow(code)
	for _, f := range mine {
		switch {
		case f.Outcome.Counts() && f.Status == StatusAccepted:
			accepted = append(accepted, f)
		case f.Outcome.Counts():
			open = append(open, f)
		case f.Outcome == check.Unknown:
			unknown = append(unknown, f)
		}
	}
	sortWorstFirst(fixed)
	sortWorstFirst(open)
	sortWorstFirst(unknown)
	sortWorstFirst(accepted)
	v.Open = findingsOf2(s, open, orgListLimit, len(open), links)
	v.Fixed = findingsOf2(s, fixed, orgListLimit, len(fixed), links)
	v.Accepted = findingsOf2(s, accepted, orgListLimit, len(accepted), links)
	v.Unknown = findingsOf2(s, unknown, orgListLimit, len(unknown), links)
	v.Untested, v.UntestedTotal = untestedRows(s, groupUntested(mine))
	for _, m := range s.Checks {
		if c := root.ByCheck[m.ID]; c.Total() > 0 {
			v.ByCheck = append(v.ByCheck, byCheckRow{Title: line(s.Title(m.ID)), ID: line(m.ID), Counts: c})
		}
	}
	// The organisation and those under it, in hierarchy order.
	var walk func(o *OrgSummary)
	walk = func(o *OrgSummary) {
		r := leagueRowOf(s, o, links)
		r.Depth -= root.Depth
		v.Rows = append(v.Rows, r)
		for _, c := range o.Children {
			if n := s.Org(c); n != nil && len(v.Rows) <= len(s.Orgs) {
				walk(n)
			}
		}
	}
	walk(root)
	v.Footer = fmt.Sprintf("Generated by posture from run %d. This file is self-contained: it loads nothing from the network.", s.Run.ID)
	return v, nil
}

// chart is an inline SVG line chart of scores over runs.
type chart struct {
	W, H          int
	Left, Bottom  int
	Right         int
	Line          string
	Dots          []dot
	XTicks, YTick []tick
	Title         string
	// Marks are the runs compared with (7, 30, 90 days and a year
	// before), as dotted vertical lines.
	Marks []tick
	Top   float64 // of the plot, for the marks
}

// markRuns finds the trend positions of the runs compared with.
func markRuns(s *Summary) map[int]string {
	at := map[int64]int{}
	for i, p := range s.Trend {
		at[p.Run.ID] = i
	}
	heads, _ := windowHeads(s)
	out := map[int]string{}
	for i, c := range s.Ago {
		if c.Run == nil {
			continue
		}
		if j, ok := at[c.Run.ID]; ok {
			if _, dup := out[j]; !dup {
				out[j] = heads[i] + " ago"
			}
		}
	}
	return out
}

type dot struct {
	X, Y  float64
	Title string
}

type tick struct {
	X, Y  float64
	Label string
}

// maxDots is the most points a chart marks with a dot (and a tooltip);
// longer trends draw the line only.
const maxDots = 60

// newChart plots scores (0–100) at run times. Runs with no score leave a
// gap in the dots and are skipped by the line.
func newChart(points []TrendPoint, scores []Score, marks map[int]string) chart {
	c := chart{W: 640, H: 200, Left: 40, Bottom: 24, Title: "Score over time", Top: 10}
	c.Right = c.W - 10
	// Room on the right for the last date label, centred on its point.
	plotW, plotH := float64(c.W-c.Left-30), float64(c.H-c.Bottom-10)
	for _, y := range []int{0, 50, 100} {
		c.YTick = append(c.YTick, tick{X: float64(c.Left), Y: 10 + plotH*(1-float64(y)/100), Label: fmt.Sprintf("%d%%", y)})
	}
	n := len(points)
	var pts []string
	for i, p := range points {
		x := float64(c.Left) + plotW/2
		if n > 1 {
			x = float64(c.Left) + plotW*float64(i)/float64(n-1)
		}
		if i == 0 || i == n-1 || (n <= 8 || i%((n+5)/6) == 0) && n-1-i > n/12 {
			c.XTicks = append(c.XTicks, tick{X: x, Y: float64(c.H - 6), Label: p.Run.Started.UTC().Format("2 Jan")})
		}
		if l, ok := marks[i]; ok && i < n-1 {
			// Marks closer than a label's width share the first label.
			if k := len(c.Marks); k > 0 && x-c.Marks[k-1].X < 48 || x-float64(c.Left) < 30 {
				l = ""
			}
			c.Marks = append(c.Marks, tick{X: x, Y: float64(c.H - c.Bottom), Label: l})
		}
		if i >= len(scores) || !scores[i].Valid {
			continue
		}
		y := 10 + plotH*(1-scores[i].Value/100)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		if n <= maxDots {
			c.Dots = append(c.Dots, dot{X: x, Y: y, Title: fmt.Sprintf("Run %d, %s: %s", p.Run.ID, p.Run.Started.UTC().Format("2 Jan 2006"), scores[i])})
		}
	}
	c.Line = strings.Join(pts, " ")
	return c
}

// newSpark is a small chart of scores (0–100), oldest first, with no axes.
func newSpark(scores []Score, marks map[int]string) chart {
	c := chart{W: 160, H: 36}
	n := len(scores)
	var pts []string
	for i, s := range scores {
		x := 2 + 156*float64(i)/float64(max(n-1, 1))
		if l, ok := marks[i]; ok && i < n-1 {
			c.Marks = append(c.Marks, tick{X: x, Y: float64(c.H), Label: l})
		}
		if !s.Valid {
			continue
		}
		y := 2 + 32*(1-s.Value/100)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
	}
	c.Line = strings.Join(pts, " ")
	return c
}
