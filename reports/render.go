package reports

import (
	"cmp"
	"embed"
	"fmt"
	"html/template"
	"math"
	"slices"
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
	"line": line,
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2 Jan 2006")
	},
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2 Jan 2006 15:04 MST")
	},
	"outcome":   outcomeLabel,
	"sevLabel":  severityLabel,
	"indent":    func(d int) int { return min(d, 6) },
	"take":      take,
	"rows":      func(v *view, fs []Finding) findingRows { return findingRows{v, fs} },
	"item":      func(v *emailView, f Finding, full bool) emailItem { return emailItem{v, f, full} },
	"more":      func(n int, fs []Finding) int { return max(len(fs)-n, 0) },
	"pctWidth":  func(s Score) int { return int(math.Round(s.Value)) },
	"changeTag": changeLabel,
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, one)
		}
		return fmt.Sprintf("%d %s", n, many)
	},
}

var templates = template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.tmpl"))

func take(n int, fs []Finding) []Finding { return fs[:min(n, len(fs))] }

// outcomeLabel words outcomes for readers who are not engineers.
func outcomeLabel(o check.Outcome) string {
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
	}
	return ""
}

// view wraps a summary with the helpers templates call on it.
type view struct {
	*Summary
	Links Links
	// Root is the organisation an org report is about ("" on the board).
	Root *OrgSummary
	// Orgs in the view: all (board), or the root and its descendants.
	Rows      []*OrgSummary
	Open      []Finding // fail and warn, not accepted
	Unknown   []Finding
	Accepted  []Finding
	Fixed     []Finding
	Standards []Compliance
	ByCheck   map[string]Counts
	Chart     chart
	Limit     int // rows listed per section before "and N more"
}

// Relevant words the standards of a finding as "CAF B3.b; BOD 18-01":
// a finding is relevant to a standard, never a verdict on it.
func (v *view) Relevant(f Finding) string { return refsText(v.refsOf(f)) }

// RefsOf words the standards of a catalogue entry.
func (v *view) RefsOf(m check.Meta) string { return refsText(m.Standards) }

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

// Cell is the counts of one organisation on one check id.
func (v *view) Cell(o *OrgSummary, id string) Counts { return o.ByCheck[id] }

// CellTitle spells a cell's counts out.
func (v *view) CellTitle(c Counts) string {
	return fmt.Sprintf("%d failing, %d needing attention, %d could not be checked, %d passing, %d not applicable",
		c.Fail, c.Warn, c.Unknown, c.Pass, c.NA)
}

// Delta is the change in an organisation's score since the previous run.
func (v *view) Delta(o *OrgSummary) string {
	d, ok := o.Delta()
	if !ok {
		return ""
	}
	switch r := math.Round(d); {
	case r > 0:
		return fmt.Sprintf("▲ %.0f", r)
	case r < 0:
		return fmt.Sprintf("▼ %.0f", -r)
	}
	return "="
}

// DeltaClass is "up", "down" or "".
func (v *view) DeltaClass(o *OrgSummary) string {
	d, ok := o.Delta()
	switch {
	case !ok || math.Round(d) == 0:
		return ""
	case d > 0:
		return "up"
	}
	return "down"
}

// OrgHref is the link to an organisation's page, or "".
func (v *view) OrgHref(code string) string { return v.Links.org(code) }

// FindingHref is the link to a finding's page, or "".
func (v *view) FindingHref(f Finding) string { return v.Links.finding(f.ID) }

// orgRef is an organisation's name for a template, with its link.
type orgRef struct{ Href, Name, Code string }

// OrgRef names an organisation with its link (if Links gives one).
func (v *view) OrgRef(code string) orgRef {
	r := orgRef{Href: v.OrgHref(code), Name: line(code), Code: line(code)}
	if o := v.Org(code); o != nil {
		r.Name = line(o.Name)
	}
	return r
}

// OwnerCode is the code of the organisation that owns a finding's asset.
func (v *view) OwnerCode(f Finding) string { return orgOf(f) }

// Owner names the organisation that owns a finding's asset.
func (v *view) Owner(f Finding) string { return v.OrgName(orgOf(f)) }

// OrgName is "Name (CODE)" for an organisation code.
func (v *view) OrgName(code string) string {
	if o := v.Org(code); o != nil && o.Name != o.Code {
		return line(o.Name) + " (" + line(o.Code) + ")"
	}
	return line(code)
}

// Movers lists the organisations whose score moved most since the previous
// run: up to n improving (up) or declining (!up).
func (v *view) Movers(up bool, n int) []*OrgSummary {
	var out []*OrgSummary
	for _, o := range v.Rows {
		if d, ok := o.Delta(); ok && math.Round(d) != 0 && (d > 0) == up {
			out = append(out, o)
		}
	}
	sortByDelta(out, up)
	return out[:min(n, len(out))]
}

func sortByDelta(os []*OrgSummary, up bool) {
	slices.SortStableFunc(os, func(a, b *OrgSummary) int {
		da, _ := a.Delta()
		db, _ := b.Delta()
		if up {
			return cmp.Compare(db, da)
		}
		return cmp.Compare(da, db)
	})
}

// chart is an inline SVG line chart of scores over runs.
type chart struct {
	W, H          int
	Left, Bottom  int
	Line          string
	Dots          []dot
	XTicks, YTick []tick
}

type dot struct {
	X, Y  float64
	Title string
}

type tick struct {
	X, Y  float64
	Label string
}

// newChart plots scores (0–100) at run times. Runs with no score leave a
// gap in the dots and are skipped by the line.
func newChart(points []TrendPoint, scores []Score) chart {
	c := chart{W: 640, H: 200, Left: 40, Bottom: 24}
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
		if i == 0 || i == n-1 || n <= 8 || i%((n+5)/6) == 0 {
			c.XTicks = append(c.XTicks, tick{X: x, Y: float64(c.H - 6), Label: p.Run.Started.UTC().Format("2 Jan")})
		}
		if i >= len(scores) || !scores[i].Valid {
			continue
		}
		y := 10 + plotH*(1-scores[i].Value/100)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		c.Dots = append(c.Dots, dot{X: x, Y: y, Title: fmt.Sprintf("Run %d, %s: %s", p.Run.ID, p.Run.Started.UTC().Format("2 Jan 2006"), scores[i])})
	}
	c.Line = strings.Join(pts, " ")
	return c
}

func estateScores(t []TrendPoint) []Score {
	out := make([]Score, len(t))
	for i, p := range t {
		out[i] = p.Score
	}
	return out
}
