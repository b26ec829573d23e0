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
