package reports

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

func TestCSVCellDefusesFormulas(t *testing.T) {
	tests := []struct{ in, want string }{
		{"=HYPERLINK(\"http://evil.example\",\"x\")", "'=HYPERLINK(\"http://evil.example\",\"x\")"},
		{"+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1:A2)", "'@SUM(A1:A2)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"＝1+1", "'＝1+1"},
		{"＋1", "'＋1"},
		{"－1", "'－1"},
		{"＠SUM(A1)", "'＠SUM(A1)"},
		{"\n=1", "'\n=1"},
		{"p=none", "p=none"}, // a formula character later in the cell is harmless
		{"example.nhs.uk", "example.nhs.uk"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := csvCell(tt.in); got != tt.want {
			t.Errorf("csvCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriteCSVEscapesEveryColumnAndParsesBack(t *testing.T) {
	f := fd("RJ7", check.KindHost, "=cmd|'/C calc'!A0.stgeorges.nhs.uk", "web.hsts.max-age", check.Fail, ChangeNew, day3,
		"@SUM(1+1)\r\nsecond line, with \"quotes\"")
	f.Remediation = "-set max-age"
	f.LastSeen, f.DaysOpen, f.Regressions = day3, 14, 2
	f.Acceptance = &Acceptance{Reason: "=HYPERLINK(\"http://evil.example\")", By: "＠ciso", Until: day3.AddDate(0, 1, 0)}
	var b bytes.Buffer
	if err := WriteExcelCSV(&b, []Finding{f}); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte("\uFEFF")) {
		t.Error("no byte order mark for Excel")
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(b.String(), "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || len(rows[0]) != len(CSVHeader) {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	row := map[string]string{}
	for i, h := range rows[0] {
		row[h] = rows[1][i]
	}
	for col, want := range map[string]string{
		"asset":       "'=cmd|'/C calc'!A0.stgeorges.nhs.uk",
		"message":     "'@SUM(1+1)\nsecond line, with \"quotes\"", // the CSV reader folds CRLF
		"remediation": "'-set max-age",
		"id":          f.Finding.ID(),
		"standards":   "Service Manual: Using HTTPS; CAF B3.b",
		"first_seen":  day3.Format(time.RFC3339),
		"change":      "new",
		// The lifecycle: when last seen, for how long, how often back,
		// and the risk acceptance, escaped like everything else.
		"last_seen":       day3.Format(time.RFC3339),
		"days_open":       "14",
		"regressions":     "2",
		"accepted_reason": "'=HYPERLINK(\"http://evil.example\")",
		"accepted_by":     "'＠ciso",
		"accepted_until":  day3.AddDate(0, 1, 0).Format(time.RFC3339),
	} {
		if row[col] != want {
			t.Errorf("%s = %q, want %q", col, row[col], want)
		}
	}
	for _, cell := range rows[1] {
		if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
			t.Errorf("cell %q starts a formula", cell)
		}
	}

	b.Reset()
	if err := WriteCSV(&b, nil); err != nil {
		t.Fatal(err)
	}
	if b.String() != strings.Join(CSVHeader, ",")+"\r\n" {
		t.Errorf("empty export %q: want the header only, no BOM", b.String())
	}
}

func TestWriteJSONLOneFindingPerLineWithStableID(t *testing.T) {
	s := mustSummary(t, fixture())
	var b bytes.Buffer
	if err := WriteJSONL(&b, s.Findings); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&b)
	n := 0
	for sc.Scan() {
		var got map[string]any
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		f := s.Findings[n]
		if got["id"] != f.Finding.ID() || got["check"] != f.CheckID || got["outcome"] != string(f.Outcome) {
			t.Errorf("line %d: %v", n+1, got)
		}
		if strings.Contains(sc.Text(), "<script>") {
			t.Errorf("line %d: HTML not escaped in JSON", n+1)
		}
		n++
	}
	if n != len(s.Findings) {
		t.Errorf("%d lines, want %d", n, len(s.Findings))
	}
	// An id the source left empty is filled in.
	b.Reset()
	f := fd("RJ7", check.KindDomain, "a.nhs.uk", "email.dmarc.record", check.Fail, "", time.Time{}, "x")
	if err := WriteJSONL(&b, []Finding{f}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"id":"`+f.Finding.ID()+`"`) {
		t.Errorf("no stable id in %s", b.String())
	}
}

func TestWriteJSONLCarriesTheLifecycle(t *testing.T) {
	f := fd("RJ7", check.KindDomain, "a.nhs.uk", "email.dmarc.record", check.Fail, ChangeStillOpen, day1, "x")
	f.LastSeen, f.DaysOpen, f.Regressions = day3, 14, 1
	f.Acceptance = &Acceptance{Reason: "supplier fix due", By: "ciso@nhs.net", Until: day3}
	var b bytes.Buffer
	if err := WriteJSONL(&b, []Finding{f}); err != nil {
		t.Fatal(err)
	}
	var got Finding
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != f.Finding.ID() || !got.FirstSeen.Equal(day1) || !got.LastSeen.Equal(day3) || got.DaysOpen != 14 ||
		got.Regressions != 1 || got.Acceptance == nil || got.Acceptance.By != "ciso@nhs.net" || got.Change != ChangeStillOpen {
		t.Errorf("read back %+v", got)
	}
}

func TestWriteScoresCSVIsOneRowPerRunOrganisationAndStandard(t *testing.T) {
	src := fixture()
	src.orgs[0].Name = "=London" // names come from the estate file: escaped too
	var rows []ScoreRow
	for _, r := range src.runs {
		rows = append(rows, RunScores(r.ID, src.findings[r.ID], src.orgs, testCatalogue())...)
	}
	var b bytes.Buffer
	if err := WriteScoresCSV(&b, src.runs, src.orgs, rows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(rows)+1 || strings.Join(recs[0], ",") != strings.Join(ScoresCSVHeader, ",") {
		t.Fatalf("%d records for %d rows; header %v", len(recs), len(rows), recs[0])
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var nation3, london []string
	for _, r := range recs[1:] {
		if r[col["run"]] == "3" && r[col["org"]] == "" && r[col["standard"]] == "" {
			nation3 = r
		}
		if r[col["org"]] == "Y56" {
			london = r
		}
	}
	// Run 3 over every check: 76 of 160 half points (TestSummaryTrendAndScores).
	if nation3 == nil || nation3[col["score"]] != "47.5" || nation3[col["points_earned"]] != "38" ||
		nation3[col["points_possible"]] != "80" || nation3[col["kind"]] != "national" || nation3[col["standard_title"]] != "All checks" {
		t.Errorf("the nation at run 3: %v", nation3)
	}
	if london == nil || london[col["name"]] != "'=London" {
		t.Errorf("London's row %v: the name is not escaped", london)
	}
}
