package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEChecksTableIsGenerated keeps the README's check table equal to
// `posture checks --markdown`: regenerate it with `make checks-md`.
func TestREADMEChecksTableIsGenerated(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- checks:begin (generated: posture checks --markdown) -->\n", "<!-- checks:end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README.md lacks the checks:begin/checks:end markers")
	}
	code, out, errs := runCLI(t, "checks", "--markdown")
	if code != 0 {
		t.Fatal(errs)
	}
	if got := s[i+len(begin) : j]; got != out {
		t.Fatalf("README.md's check table is stale: run `make checks-md`")
	}
}
