package main

import (
	"os"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks"
)

const (
	checksBegin = "<!-- checks:begin (generated: posture checks --markdown) -->\n"
	checksEnd   = "<!-- checks:end -->"
)

// TestCheckTablesAreGenerated keeps the check tables of the README and of
// docs/checks.md equal to `posture checks --markdown`, the catalogue's one
// source: regenerate both with `make checks-md`.
func TestCheckTablesAreGenerated(t *testing.T) {
	code, out, errs := runCLI(t, "checks", "--markdown")
	if code != 0 {
		t.Fatal(errs)
	}
	for _, path := range []string{"../../README.md", "../../docs/checks.md"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		i, j := strings.Index(s, checksBegin), strings.Index(s, checksEnd)
		if i < 0 || j < i {
			t.Fatalf("%s lacks the checks:begin/checks:end markers", path)
		}
		if got := s[i+len(checksBegin) : j]; got != out {
			t.Errorf("%s's check table is stale: run `make checks-md`", path)
		}
	}
}

// TestEveryCheckIsSpecified: every id the scanner emits has its row in the
// specification tables of docs/checks.md (the catalogue of record), so an
// implemented check cannot drift away from what was specified.
func TestEveryCheckIsSpecified(t *testing.T) {
	b, err := os.ReadFile("../../docs/checks.md")
	if err != nil {
		t.Fatal(err)
	}
	spec := string(b)
	if i, j := strings.Index(spec, checksBegin), strings.Index(spec, checksEnd); i >= 0 && j > i {
		spec = spec[:i] + spec[j:] // the generated table does not count
	}
	for _, m := range checks.Catalogue() {
		if !strings.Contains(spec, "| `"+m.ID+"` |") {
			t.Errorf("%s is not specified in docs/checks.md", m.ID)
		}
	}
}
