package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHSTSPreloadBadFileIsAUsageErrorWithItsLine: scan and reeval refuse
// a list that does not parse, before any work, naming file:line.
func TestHSTSPreloadBadFileIsAUsageErrorWithItsLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "preload.tsv")
	os.WriteFile(bad, []byte("# Chromium HSTS preload list, 2026-09-01\nexample.nhs.uk\t1\nnot a line\n"), 0o644)
	for _, args := range [][]string{
		{"scan", "--db", filepath.Join(dir, "p.db"), "--hsts-preload", bad},
		{"reeval", "--db", filepath.Join(dir, "p.db"), "--hsts-preload", bad},
		{"reeval", "--db", filepath.Join(dir, "p.db"), "--hsts-preload", filepath.Join(dir, "missing.tsv")},
	} {
		code, out, errs := runCLI(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s%s", args, code, out, errs)
		}
		if want := args[len(args)-1]; !strings.Contains(errs, want) {
			t.Errorf("%v: stderr does not name the file: %s", args, errs)
		}
		if args[len(args)-1] == bad && !strings.Contains(errs, bad+":3:") {
			t.Errorf("%v: stderr does not name the line: %s", args, errs)
		}
	}
}

// TestReevalJudgesPreloadAgainstANewerList: reeval --hsts-preload FILE
// re-judges web.hsts.preload from stored evidence against that list and
// says which list it used.
func TestReevalJudgesPreloadAgainstANewerList(t *testing.T) {
	t.Parallel() // waits for the one shared demo run
	dir, db := demoCopy(t)
	const host = "lab-web-preload-not-ready.nhs.uk"
	find := func() exported {
		for _, f := range exportFindings(t, db) {
			if f.Check == "web.hsts.preload" && f.Asset.Name == host {
				return f
			}
		}
		t.Fatalf("no web.hsts.preload finding on %s", host)
		return exported{}
	}
	if f := find(); f.Outcome != "warn" {
		t.Fatalf("before: %s %s, want warn (asks for preload, not ready)", f.Outcome, f.Message)
	}
	list := filepath.Join(dir, "newer.tsv")
	os.WriteFile(list, []byte("# Chromium HSTS preload list, 2026-09-01\n"+host+"\t1\n"), 0o644)
	if code, out, errs := runCLI(t, "reeval", "--db", db, "--hsts-preload", list); code != 0 {
		t.Fatalf("reeval: %s%s", out, errs)
	}
	if f := find(); f.Outcome != "pass" || !strings.Contains(f.Message, "as of 2026-09-01") {
		t.Errorf("after: %s %s, want pass against the list of 2026-09-01", f.Outcome, f.Message)
	}
}

// exported are the demo database's findings as the JSONL export gives
// them.
type exported struct {
	Check   string `json:"check"`
	Outcome string `json:"outcome"`
	Message string `json:"message"`
	Asset   struct {
		Name string `json:"name"`
		Org  string `json:"org"`
	} `json:"asset"`
}

func exportFindings(t *testing.T, db string) []exported {
	t.Helper()
	code, out, errs := runCLI(t, "export", "--format", "jsonl", "--db", db)
	if code != 0 {
		t.Fatalf("export: %s", errs)
	}
	var fs []exported
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var f exported
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		fs = append(fs, f)
	}
	return fs
}
