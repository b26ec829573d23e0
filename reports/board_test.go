package reports

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"golang.org/x/net/html"
)

// externalLoads lists everything in an HTML document that would make a
// browser fetch something or run code: scripts, stylesheets, frames,
// images and media, src/srcset/data/poster attributes, CSS url() and
// @import. Plain <a href> links are not loads.
func externalLoads(t *testing.T, doc []byte) []string {
	t.Helper()
	var bad []string
	z := html.NewTokenizer(bytes.NewReader(doc))
	inStyle := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatalf("tokenize: %v", z.Err())
			}
			return bad
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.Data {
			case "script", "link", "iframe", "frame", "img", "object", "embed", "video", "audio", "source", "image", "use", "base":
				bad = append(bad, "<"+tok.Data+">")
			case "style":
				inStyle = true
			}
			for _, a := range tok.Attr {
				switch {
				case a.Key == "src" || a.Key == "srcset" || a.Key == "data" || a.Key == "poster" || a.Key == "xlink:href":
					bad = append(bad, a.Key+"="+a.Val)
				case a.Key == "style" && strings.Contains(strings.ToLower(a.Val), "url("):
					bad = append(bad, "style="+a.Val)
				case strings.HasPrefix(a.Key, "on"):
					bad = append(bad, a.Key)
				}
			}
		case html.EndTagToken:
			if tok := z.Token(); tok.Data == "style" {
				inStyle = false
			}
		case html.TextToken:
			if inStyle {
				css := strings.ToLower(string(z.Text()))
				if strings.Contains(css, "url(") || strings.Contains(css, "@import") {
					bad = append(bad, "css url()/@import")
				}
			}
		}
	}
}

func TestBoardLoadsNothingFromTheNetwork(t *testing.T) {
	var b bytes.Buffer
	if err := WriteBoard(&b, mustSummary(t, fixture())); err != nil {
		t.Fatal(err)
	}
	if bad := externalLoads(t, b.Bytes()); len(bad) > 0 {
		t.Errorf("the board loads or runs: %v", bad)
	}
	// The same, by pattern, inside tags (escaped text such as a hostile
	// message's "&lt;img src=http://…" is text, not a tag).
	tag := regexp.MustCompile(`(?i)<[^>]*(src\s*=\s*["']?(https?:)?//|rel\s*=\s*["']?stylesheet|href\s*=\s*["']?https?://[^>]*rel)`)
	if m := tag.FindString(b.String()); m != "" {
		t.Errorf("the board contains %q", m)
	}
}

func TestBoardEscapesHostileText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteBoard(&b, mustSummary(t, fixture())); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "<script") || strings.Contains(out, "<img") {
		t.Error("a finding message came out as markup")
	}
	if !strings.Contains(out, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Error("the hostile message is not shown, escaped")
	}
	// The organisation name with CR/LF is folded onto one line.
	if !strings.Contains(out, "Imperial College Healthcare Bcc: attacker@evil.example") {
		t.Error("the organisation name is not folded onto one line")
	}
}

func TestBoardHasTheSectionsTheBoardReads(t *testing.T) {
	var b bytes.Buffer
	if err := WriteBoard(&b, mustSummary(t, fixture())); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"@media print",      // prints well
		"<svg", "<polyline", // inline trend chart
		"What changed since the last run",                  // changes
		"The worst risks",                                  // risks
		"The oldest open findings",                         // age
		"Compliance by standard",                           // standards
		"What could not be tested, and why",                // unknowns by reason
		"<td>No answer in time</td><td class=\"n\">1</td>", // the timeout, counted
		"League table",                                     // organisations ranked
		"St George&#39;s University Hospitals",             // the organisations
		// A finding names the standards it counts towards by title.
		`<td class="refs">GOV.UK Service Manual: HTTPS; NCSC Cyber Assessment Framework (evidence)</td>`,
		// DSPT beside the score: RJ7's published status, and none for a region.
		"22/23 Approaching Standards <span class=\"note\">30 Jun 2023</span>", "not in the 2022/23 list",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the board lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?i)dspt\W{0,3}fail`).MatchString(out) {
		t.Error(`the board says "DSPT fail"`)
	}
	// Rule files and sections are for the catalogue view only: no finding
	// row cites a section.
	if regexp.MustCompile(`<td class="refs">[^<]*(B3\.b|B4\.d)`).MatchString(out[:strings.Index(out, `class="catalogue"`)]) {
		t.Error("a finding in front of the board cites a section, not its standard's title")
	}
}

func TestBoardOfTheFirstRunHasNoTrendChart(t *testing.T) {
	src := &memSource{
		runs: []Run{{ID: 1, Started: day1}},
		findings: map[int64][]Finding{1: {
			fd("RJ7", check.KindDomain, "a.nhs.uk", "email.dmarc.record", check.Fail, "", time.Time{}, "x"),
		}},
	}
	var b bytes.Buffer
	if err := WriteBoard(&b, mustSummary(t, src)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<polyline") || !strings.Contains(b.String(), "after the second run") {
		t.Error("the first run draws a trend")
	}
}

func TestMarkdownEscapesHostileText(t *testing.T) {
	src := fixture()
	pipe := fd("RJ7", check.KindHost, "x.stgeorges.nhs.uk", "web.hsts.max-age", check.Fail, ChangeNew, day3,
		"a | b [click](http://evil.example) *bold*\n# heading www.evil.example mail x@evil.example")
	src.findings[3] = append(src.findings[3], pipe)
	var b bytes.Buffer
	if err := WriteMarkdown(&b, mustSummary(t, src)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// GitHub autolinks bare URLs, www. names and addresses: none survive.
	for _, bad := range []string{"<script", "<img", "[click](", "*bold*", "\n# heading", "http://evil", "www.evil", "x@evil"} {
		if strings.Contains(out, bad) {
			t.Errorf("markdown contains %q unescaped", bad)
		}
	}
	for _, want := range []string{`a \| b \[click\](http\://evil.example) \*bold\* # heading www\.evil.example mail x\@evil.example`, "&lt;script&gt;", `GOV.UK Service Manual\: HTTPS; NCSC Cyber Assessment Framework (evidence)`, "## Compliance by standard", "## League table"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	// Every row of a table has as many unescaped pipes as its header.
	pipes := regexp.MustCompile(`(^|[^\\])\|`)
	var header int
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "|") {
			header = 0
			continue
		}
		n := len(pipes.FindAllString(l, -1))
		if header == 0 {
			header = n
		} else if n != header {
			t.Errorf("row has %d cells' pipes, header %d: %s", n, header, l)
		}
	}
}

func TestOrgReportCoversTheOrganisationAndItsDescendants(t *testing.T) {
	s := mustSummary(t, fixture())
	var b bytes.Buffer
	if err := WriteOrgReport(&b, s, "QWE"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"South West London ICB", "www.stgeorges.nhs.uk", "epsom-sthelier.nhs.uk",
		"Part of London", "Could not check", "Accepted risks", "Fixed since the last run", "&lt;script&gt;"} {
		if !strings.Contains(out, want) {
			t.Errorf("the QWE report lacks %q", want)
		}
	}
	for _, not := range []string{"kingstonhospital", "imperial.nhs.uk", "<script"} {
		if strings.Contains(out, not) {
			t.Errorf("the QWE report contains %q", not)
		}
	}
	if bad := externalLoads(t, b.Bytes()); len(bad) > 0 {
		t.Errorf("the org report loads or runs: %v", bad)
	}
	b.Reset()
	if err := WriteOrgReport(&b, s, "RAX"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `<span class="tag">Needs attention</span>`) || !strings.Contains(b.String(), "max-age=86400") {
		t.Error("the RAX report does not list its warning as needing attention")
	}
	if err := WriteOrgReport(&b, s, "NOPE"); err == nil {
		t.Error("no error for an organisation not in the run")
	}
}
