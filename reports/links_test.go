package reports

import (
	"bytes"
	"strings"
	"testing"
)

func TestBoardWithLinksLinksOrganisationsAndFindings(t *testing.T) {
	s := mustSummary(t, fixture())
	links := Links{
		Org:     func(code string) string { return "/org/" + code },
		Finding: func(id string) string { return "/finding/" + id },
	}
	var b bytes.Buffer
	if err := WriteBoardWith(&b, s, links); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `<a href="/org/RJ7">`) {
		t.Error("the board does not link St George's (RJ7) to its page")
	}
	if len(s.Risks) == 0 || !strings.Contains(b.String(), `<a href="/finding/`+s.Risks[0].ID+`">`) {
		t.Error("the board does not link its worst risk to the finding's page")
	}
	var o bytes.Buffer
	if err := WriteOrgReportWith(&o, s, "QWE", links); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(o.String(), `<a href="/org/RVR">`) {
		t.Error("the ICB's report does not link its trust RVR")
	}
}

func TestBoardWithoutLinksHasNoLinks(t *testing.T) {
	s := mustSummary(t, fixture())
	for name, write := range map[string]func(*bytes.Buffer) error{
		"board": func(b *bytes.Buffer) error { return WriteBoard(b, s) },
		"org":   func(b *bytes.Buffer) error { return WriteOrgReport(b, s, "Y56") },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "<a ") {
			t.Errorf("%s with zero Links holds a link", name)
		}
	}
}

func TestLinksToScriptsAreDefused(t *testing.T) {
	s := mustSummary(t, fixture())
	var b bytes.Buffer
	bad := func(string) string { return "javascript:alert(1)" }
	if err := WriteBoardWith(&b, s, Links{Org: bad, Finding: bad}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "javascript:") {
		t.Error("a javascript: link reached the board")
	}
}
