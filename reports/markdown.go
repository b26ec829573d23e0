package reports

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/nhsx/posture/checks/check"
)

// WriteMarkdown renders the board summary as Markdown (GitHub-flavoured
// tables). Every text from the store is escaped with mdEscape: no links,
// raw HTML, emphasis or table breaks can come from a scanned server.
func WriteMarkdown(w io.Writer, s *Summary) error {
	if s == nil || s.Estate == nil {
		return errNoSummary
	}
	v := &view{Summary: s, Rows: s.Orgs, Standards: s.Standards, Limit: listLimit}
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	e := mdEscape

	p("# Security posture of the estate\n\n")
	p("Run %d, started %s", s.Run.ID, s.Run.Started.UTC().Format("2 Jan 2006 15:04 MST"))
	if s.Previous != nil {
		p("; compared with run %d of %s", s.Previous.ID, s.Previous.Started.UTC().Format("2 Jan 2006"))
	} else {
		p("; the first run, so there is nothing to compare with yet")
	}
	p(".\n\n## Summary\n\n")
	t := s.Estate.Total
	p("| Score | Failing | Needs attention | Could not check | Passing | Assets |\n|---:|---:|---:|---:|---:|---:|\n")
	p("| %s %s | %d | %d | %d | %d | %d |\n\n", s.Estate.Score, v.Delta(s.Estate), t.Fail, t.Warn, t.Unknown, t.Pass, s.Estate.Assets)
	p("The score is the share of checks passing. Only failing and needs-attention results count against it; " +
		"\"could not check\" is shown apart and never counted as a failure.\n\n")
	if len(s.Trend) > 1 {
		p("### Score over recent runs\n\n| Run | Started | Score | Failing | Needs attention | Could not check |\n|---:|---|---:|---:|---:|---:|\n")
		for _, tp := range s.Trend {
			p("| %d | %s | %s | %d | %d | %d |\n", tp.Run.ID, tp.Run.Started.UTC().Format("2 Jan 2006"), tp.Score, tp.Counts.Fail, tp.Counts.Warn, tp.Counts.Unknown)
		}
		p("\n")
	}

	c := s.Estate.Changes
	p("## What changed since the last run\n\n")
	p("- New problems: %d\n- Back again: %d\n- Fixed: %d\n- Still open: %d\n", c.New, c.Regressed, c.Resolved, c.StillOpen)
	if c.Accepted > 0 {
		p("- Accepted risks: %d\n", c.Accepted)
	}
	p("\n")
	for _, up := range []bool{true, false} {
		ms := v.Movers(up, 5)
		if len(ms) == 0 {
			continue
		}
		if up {
			p("### Improving most\n\n")
		} else {
			p("### Declining most\n\n")
		}
		p("| Organisation | Score | Change |\n|---|---:|---:|\n")
		for _, o := range ms {
			p("| %s | %s | %s |\n", e(v.OrgName(o.Code)), o.Score, v.Delta(o))
		}
		p("\n")
	}
	if len(s.New) > 0 {
		p("### New and returning problems\n\n")
		mdFindings(&b, v, take(listLimit, s.New))
		if n := len(s.New) - listLimit; n > 0 {
			p("And %d more: see the organisation reports or the export.\n\n", n)
		}
	}
	if len(s.Resolved) > 0 {
		p("### Fixed since the last run\n\n| Organisation | Asset | Check | Relevant to |\n|---|---|---|---|\n")
		for _, f := range take(listLimit, s.Resolved) {
			p("| %s | %s | %s | %s |\n", e(v.Owner(f)), e(f.Asset.Name), e(s.Title(f.CheckID)), relevantMD(v, f))
		}
		if n := len(s.Resolved) - listLimit; n > 0 {
			p("\nAnd %d more.\n", n)
		}
		p("\n")
	}

	p("## The worst risks\n\n")
	if len(s.Risks) == 0 {
		p("No open failures.\n\n")
	} else {
		p("Open failures, most severe and longest open first")
		if s.RiskTotal > len(s.Risks) {
			p(": the first %d of %d", len(s.Risks), s.RiskTotal)
		}
		p(". Accepted risks are left out.\n\n")
		mdFindings(&b, v, s.Risks)
	}

	p("## Compliance by standard\n\n")
	p("Share of assets passing every check that cites the standard. These are findings relevant to the " +
		"standard, not a verdict on it: CAF and DSPT outcomes are judged by people. † marks a citation not yet " +
		"confirmed from the primary document.\n\n")
	if len(s.Standards) > 0 {
		p("| Standard | Passing | Failing | Could not check | Share passing |\n|---|---:|---:|---:|---:|\n")
		for _, st := range s.Standards {
			for i, r := range append([]Compliance{st}, st.Sections...) {
				label := e(r.Label())
				if i == 0 {
					label = "**" + label + "**"
				} else {
					label = "  " + label
				}
				if r.Unverified {
					label += " †"
				}
				p("| %s | %d | %d | %d | %s |\n", label, r.Passing, r.Failing, r.Unknown, r.Share)
			}
		}
		p("\n")
	}

	p("## Organisations\n\nEach row includes the organisations below it.\n\n")
	p("| Organisation | Assets | Score | Change | Failing | Needs attention | Could not check | Passing | New | Fixed |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, o := range s.Orgs {
		p("| %s%s | %d | %s | %s | %d | %d | %d | %d | %d | %d |\n", strings.Repeat("» ", min(o.Depth, 6)), e(v.OrgName(o.Code)),
			o.Assets, o.Score, v.Delta(o), o.Total.Fail, o.Total.Warn, o.Total.Unknown, o.Total.Pass, o.Changes.New, o.Changes.Resolved)
	}
	p("\n## Organisations and checks\n\n")
	p("Each cell counts the assets by result: ✗ failing, ! needs attention, ? could not check, ✓ passing.\n\n")
	p("| Organisation |")
	for _, m := range s.Checks {
		p(" %s |", e(m.ID))
	}
	p("\n|---|%s\n", strings.Repeat(":---:|", len(s.Checks)))
	for _, o := range s.Orgs {
		p("| %s%s |", strings.Repeat("» ", min(o.Depth, 6)), e(o.Name))
		for _, m := range s.Checks {
			p(" %s |", countsText(o.ByCheck[m.ID]))
		}
		p("\n")
	}
	p("\n### The checks\n\n| Check | Title | Severity | Relevant to |\n|---|---|---|---|\n")
	for _, m := range s.Checks {
		p("| %s | %s | %s | %s |\n", e(m.ID), e(m.Title), severityLabel(m.Severity), e(v.RefsOf(m)))
	}
	_, err := b.WriteTo(w)
	if err != nil {
		return fmt.Errorf("reports: write markdown: %w", err)
	}
	return nil
}

func mdFindings(b *bytes.Buffer, v *view, fs []Finding) {
	e := mdEscape
	b.WriteString("| Severity | Organisation | Asset | Check | What we saw | What to do | Relevant to | Open for |\n|---|---|---|---|---|---|---|---:|\n")
	for _, f := range fs {
		sev := severityLabel(f.Severity)
		if f.Outcome == check.Warn {
			sev += ", " + strings.ToLower(outcomeLabel(f.Outcome))
		}
		if t := changeLabel(f.Change); t != "" {
			sev += " (" + t + ")"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %d days |\n", sev, e(v.Owner(f)), e(f.Asset.Name),
			e(v.Title(f.CheckID)), e(f.Message), e(f.Remediation), relevantMD(v, f), v.DaysOpen(f))
	}
	b.WriteString("\n")
}

func relevantMD(v *view, f Finding) string {
	if r := v.Relevant(f); r != "" {
		return "finding relevant to " + mdEscape(r)
	}
	return ""
}

// countsText is a grid cell: "✗2 !1 ?1 ✓5".
func countsText(c Counts) string {
	var parts []string
	for _, x := range []struct {
		sym string
		n   int
	}{{"✗", c.Fail}, {"!", c.Warn}, {"?", c.Unknown}, {"✓", c.Pass}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%s%d", x.sym, x.n))
		}
	}
	return strings.Join(parts, " ")
}
