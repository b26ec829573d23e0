package reports

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/nhsx/posture/checks/check"
)

// listLimit bounds each list of findings in the HTML and Markdown reports;
// the exports carry everything.
const listLimit = 50

// orgListLimit bounds each list in one organisation's report.
const orgListLimit = 500

type findingRows struct {
	V    *view
	Rows []Finding
}

var errNoSummary = errors.New("reports: no summary")

// Links make the reports link organisations and findings to other pages (a
// dashboard, a directory of organisation pages). A nil function, or one
// that returns "", gives no link. The zero Links links nothing.
type Links struct {
	Org     func(code string) string // the page of an organisation
	Finding func(id string) string   // the page of a finding (its evidence)
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
	v := &view{
		Links:     links,
		Summary:   s,
		Rows:      s.Orgs,
		Standards: s.Standards,
		Chart:     newChart(s.Trend, estateScores(s.Trend)),
		Limit:     listLimit,
	}
	return render(w, "board", v)
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
	root := s.Org(code)
	if root == nil {
		return fmt.Errorf("reports: no organisation %q in run %d", code, s.Run.ID)
	}
	v := &view{
		Links:   links,
		Summary: s,
		Root:    root,
		ByCheck: root.ByCheck,
		Chart:   newChart(s.Trend, root.Trend),
		Limit:   orgListLimit,
	}
	for _, o := range s.Orgs {
		if s.Within(o.Code, code) {
			row := *o
			row.Depth -= root.Depth
			v.Rows = append(v.Rows, &row)
		}
	}
	var mine []Finding
	for _, f := range s.Findings {
		if !s.Within(orgOf(f), code) {
			continue
		}
		mine = append(mine, f)
		switch {
		case f.Outcome.Counts() && f.Status == StatusAccepted:
			v.Accepted = append(v.Accepted, f)
		case f.Outcome.Counts():
			v.Open = append(v.Open, f)
		case f.Outcome == check.Unknown:
			v.Unknown = append(v.Unknown, f)
		}
	}
	for _, f := range s.Resolved {
		if s.Within(orgOf(f), code) {
			v.Fixed = append(v.Fixed, f)
		}
	}
	sortWorstFirst(v.Open)
	sortWorstFirst(v.Unknown)
	sortWorstFirst(v.Accepted)
	v.Standards = s.compliance(mine)
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
