package reports

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// WriteMarkdown renders the board summary as Markdown (GitHub-flavoured
// tables) from the same view as the HTML board. Every text goes through
// mdEscape: no links, raw HTML, emphasis or table breaks can come from a
// scanned server.
func WriteMarkdown(w io.Writer, s *Summary) error {
	if s == nil || s.Estate == nil {
		return errNoSummary
	}
	v := newBoardView(s, Links{})
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	e := mdEscape

	p("# Security posture of the estate\n\n%s\n\n## Summary\n\n", e(v.Lede))
	var heads, cells []string
	for _, t := range v.Tiles {
		heads = append(heads, e(t.Label))
		c := e(t.Value)
		if t.Note != "" {
			c += " (" + e(t.Note) + ")"
		}
		cells = append(cells, c)
	}
	mdRow(&b, heads...)
	mdRule(&b, len(heads), true)
	mdRow(&b, cells...)
	p("\n%s\n\n", e(v.ScoreNote))
	if v.HasTrend {
		p("### Score over time\n\n")
		mdRow(&b, "Now", e(v.Windows[0])+" ago", e(v.Windows[1])+" ago", e(v.Windows[2])+" ago", e(v.Windows[3])+" ago")
		mdRule(&b, 5, true)
		row := []string{s.Estate.Score.String()}
		for i := range Windows {
			row = append(row, s.Estate.ScoreAgo(i, AllChecks).String())
		}
		mdRow(&b, row...)
		p("\n")
	}

	p("## Compliance by standard\n\n")
	p("Weighted score of the checks that cite each standard, and its change in points. These are findings relevant to " +
		"the standard, not a verdict on it: CAF and DSPT outcomes are judged by people.\n\n")
	if len(v.Standards) == 0 {
		p("No check of this run counts towards a standard.\n\n")
	} else {
		mdRow(&b, "Standard", "Score", e(v.Windows[0]), e(v.Windows[1]), e(v.Windows[2]), e(v.Windows[3]), "Failing", "Needs attention", "Could not check", "Passing")
		mdRule(&b, 10, false)
		for _, r := range v.Standards {
			mdRow(&b, "**"+e(r.Title)+"**", r.Score, r.Changes[0].Text, r.Changes[1].Text, r.Changes[2].Text, r.Changes[3].Text,
				fmt.Sprint(r.Fail), fmt.Sprint(r.Warn), fmt.Sprint(r.Unknown), fmt.Sprint(r.Pass))
		}
		p("\n")
	}

	p("## League table\n\nOrganisations by score, best first; the change is over 7 days. %s\n\n", e(v.DSPTNote))
	mdRow(&b, "Rank", "Organisation", "Score", "7 days", "DSPT 2022/23", "Failing", "Needs attention", "Could not check", "Assets")
	mdRule(&b, 9, false)
	for _, r := range v.League {
		rank := "–"
		if r.Rank > 0 {
			rank = fmt.Sprint(r.Rank)
		}
		mdRow(&b, rank, mdOrg(r.Org), r.Score, r.Week.Text, mdDSPT(r), fmt.Sprint(r.Fail), fmt.Sprint(r.Warn), fmt.Sprint(r.Unknown), fmt.Sprint(r.Assets))
	}
	p("\n")
	if len(v.Groups) > 0 {
		p("### Regions and ICBs\n\nEach row adds up the organisations below it.\n\n")
		mdRow(&b, "Organisation", "Score", "7 days", "DSPT 2022/23", "Failing", "Needs attention", "Could not check", "Assets")
		mdRule(&b, 8, false)
		for _, r := range v.Groups {
			mdRow(&b, strings.Repeat("» ", min(r.Depth, 6))+mdOrg(r.Org), r.Score, r.Week.Text, mdDSPT(r), fmt.Sprint(r.Fail),
				fmt.Sprint(r.Warn), fmt.Sprint(r.Unknown), fmt.Sprint(r.Assets))
		}
		p("\n")
	}

	p("## What changed since the last run\n\n")
	for _, t := range v.Changes {
		p("- %s: %s\n", e(t.Label), e(t.Value))
	}
	p("\n")
	for _, m := range []struct {
		title string
		rows  []leagueRow
	}{{"Improving most (7 days)", v.Improving}, {"Declining most (7 days)", v.Declining}} {
		if len(m.rows) == 0 {
			continue
		}
		p("### %s\n\n", m.title)
		mdRow(&b, "Organisation", "Score", "Change")
		mdRule(&b, 3, false)
		for _, r := range m.rows {
			mdRow(&b, mdOrg(r.Org), r.Score, r.Week.Text)
		}
		p("\n")
	}
	mdList(&b, "### New and returning problems", v.New, "")
	mdList(&b, "### Fixed since the last run", v.Fixed, "")

	p("## The worst risks\n\n")
	if len(v.Risks.Rows) == 0 {
		p("No open failures.\n\n")
	} else {
		p("Open failures, most severe and longest open first. Accepted risks are left out.\n\n")
		mdList(&b, "", v.Risks, "")
	}
	p("## The oldest open findings\n\n")
	if len(v.Oldest.Rows) == 0 {
		p("Nothing open.\n\n")
	} else {
		p("Failures and warnings open longest. Accepted risks are left out.\n\n")
		mdList(&b, "", v.Oldest, "")
	}

	p("## What could not be tested, and why\n\n")
	if len(v.Untested) == 0 {
		p("Every check reached a verdict.\n\n")
	} else {
		p("%d results could not be told (unknown). They are never counted as failures; they are tried again at the next run.\n\n", v.UntestedTotal)
		mdRow(&b, "Why", "Results", "Checks most affected", "Reasons recorded")
		mdRule(&b, 4, false)
		for _, r := range v.Untested {
			mdRow(&b, e(r.Label), fmt.Sprint(r.Count), e(r.Checks), e(r.Reasons))
		}
		p("\n")
	}

	if v.UnownedTotal > 0 {
		p("## Unowned assets\n\n%d names in scope that no organisation's domain covers: discovery found them, the scan left them alone. Who owns them?\n\n", v.UnownedTotal)
		mdRow(&b, "Found by", "Names", "For example")
		mdRule(&b, 3, false)
		for _, g := range v.Unowned {
			var ex []string
			for _, n := range g.Examples {
				ex = append(ex, e(n))
			}
			mdRow(&b, e(g.Source), fmt.Sprint(g.Count), strings.Join(ex, ", "))
		}
		p("\n")
	}

	p("## The checks\n\n")
	mdRow(&b, "Check", "Title", "Severity", "Weight", "Cites")
	mdRule(&b, 5, false)
	for _, c := range v.Checks {
		mdRow(&b, e(c.ID), e(c.Title), e(c.Severity), fmt.Sprint(c.Weight), e(c.Refs))
	}
	p("\n%s\n", e(v.Footer))
	if _, err := b.WriteTo(w); err != nil {
		return fmt.Errorf("reports: write markdown: %w", err)
	}
	return nil
}

// mdRow writes one table row of cells that are already escaped.
func mdRow(b *bytes.Buffer, cells ...string) {
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

func mdRule(b *bytes.Buffer, n int, numeric bool) {
	cell := "---"
	if numeric {
		cell = "---:"
	}
	b.WriteString("|" + strings.Repeat(cell+"|", n) + "\n")
}

func mdOrg(o orgRef) string {
	if o.Name == o.Code {
		return mdEscape(o.Name)
	}
	return mdEscape(o.Name) + " (" + mdEscape(o.Code) + ")"
}

func mdDSPT(r leagueRow) string {
	if r.DSPTDate == "" || r.DSPTDate == "–" {
		return mdEscape(r.DSPT)
	}
	return mdEscape(r.DSPT) + ", " + mdEscape(r.DSPTDate)
}

func mdList(b *bytes.Buffer, heading string, l findingList, _ string) {
	if len(l.Rows) == 0 {
		return
	}
	e := mdEscape
	if heading != "" {
		b.WriteString(heading + "\n\n")
	}
	mdRow(b, "Severity", "Organisation", "Asset", "Check", "What we saw", "What to do", "Relevant to", "Open for")
	mdRule(b, 8, false)
	for _, r := range l.Rows {
		sev := e(r.Severity)
		if len(r.Tags) > 0 {
			sev += " (" + e(strings.Join(r.Tags, ", ")) + ")"
		}
		mdRow(b, sev, mdOrg(r.Org), e(r.Asset), e(r.Check), e(r.Message), e(r.Remediation), e(r.Relevant), e(r.Open))
	}
	if l.More > 0 {
		fmt.Fprintf(b, "\nAnd %d more: see the organisation reports or the export.\n", l.More)
	}
	b.WriteString("\n")
}
