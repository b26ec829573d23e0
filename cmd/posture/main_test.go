package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nhsx/posture/scanner/store"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("scope: {suffixes: [nhs.uk]}\norganisations:\n  - code: RXX\n    name: A\n    domian: [a.nhs.uk]\n"), 0o644)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("scope: {suffixes: [nhs.uk]}\norganisations:\n  - {code: RXX, name: A, domains: [a.nhs.uk]}\n"), 0o644)
	tests := []struct {
		name   string
		args   []string
		code   int
		output string // in stdout or stderr
	}{
		{"checks lists the catalogue", []string{"checks"}, 0, "email.dmarc.policy"},
		{"estate validate ok", []string{"estate", "validate", good}, 0, "1 organisations, 1 domains"},
		{"estate validate bad file is exit 2 with file:line", []string{"estate", "validate", bad}, 2, bad + ":5: organisation: unknown key \"domian\""},
		{"missing estate file is exit 2", []string{"estate", "validate", filepath.Join(dir, "nope.yaml")}, 2, "no such file"},
		{"unknown flag is exit 2", []string{"scan", "--no-such-flag"}, 2, "unknown flag"},
		{"unknown command is exit 2", []string{"frobnicate"}, 2, "unknown command"},
		{"bad family is exit 2", []string{"scan", "--only", "dns,bogus", "--db", filepath.Join(dir, "x.db")}, 2, `--only "bogus"`},
		{"report on a missing database is exit 2", []string{"report", "board", "--db", filepath.Join(dir, "none.db")}, 2, "none.db"},
		{"notify needs exactly one destination", []string{"notify", "--db", filepath.Join(dir, "none.db")}, 2, "exactly one of"},
		{"export rejects an unknown format", []string{"export", "--format", "xml", "--db", filepath.Join(dir, "none.db")}, 2, "want jsonl, csv, sarif or scores"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(out+errs, tt.output) {
				t.Fatalf("exit %d, output:\n%s%s\nwant exit %d and %q", code, out, errs, tt.code, tt.output)
			}
		})
	}
}

// TestDemoThenReportExportNotifyReeval runs the newcomer's path: the demo,
// then every reading command on the database it left.
func TestDemoThenReportExportNotifyReeval(t *testing.T) {
	t.Parallel() // waits for the one shared demo run
	dir, db := demoCopy(t)
	demoDir, out := demoOnce.dir, demoOnce.out
	for _, want := range []string{"ground truth:", "board report: " + filepath.Join(demoDir, "board-night-2.html"),
		"since night 1: 1 new, 2 fixed", "emails:"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "differs:") {
		t.Errorf("demo verdicts differ from the lab's ground truth:\n%s", out)
	}
	for _, night := range []string{"night-1", "night-2"} {
		mails, _ := filepath.Glob(filepath.Join(demoDir, "mail", night, "*.eml"))
		if len(mails) == 0 {
			t.Errorf("no emails saved under %s/mail/%s", demoDir, night)
		}
	}
	steps := []struct {
		args []string
		file string
		want string
	}{
		{[]string{"report", "board", "--db", db, "-o", filepath.Join(dir, "b2.html")}, "b2.html", "<html"},
		{[]string{"report", "board", "--markdown", "--db", db, "-o", filepath.Join(dir, "b.md")}, "b.md", "#"},
		{[]string{"report", "org", "R0A", "--db", db, "-o", filepath.Join(dir, "r0a.html")}, "r0a.html", "Manchester University NHS Foundation Trust"},
		{[]string{"export", "--format", "jsonl", "--db", db, "-o", filepath.Join(dir, "f.jsonl")}, "f.jsonl", `"check":"email.spf.record"`},
		{[]string{"export", "--format", "csv", "--db", db, "-o", filepath.Join(dir, "f.csv")}, "f.csv", "email.dmarc.policy"},
		{[]string{"notify", "--db", db, "--dry-run", filepath.Join(dir, "dry")}, "", ""},
		{[]string{"reeval", "--db", db}, "", ""},
	}
	for _, s := range steps {
		code, out, errs := runCLI(t, s.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", s.args, code, out, errs)
		}
		if s.file != "" {
			b, err := os.ReadFile(filepath.Join(dir, s.file))
			if err != nil || !strings.Contains(string(b), s.want) {
				t.Errorf("%v: %s lacks %q (err %v)", s.args, s.file, s.want, err)
			}
		}
	}
	dry, _ := filepath.Glob(filepath.Join(dir, "dry", "*.eml"))
	if len(dry) == 0 {
		t.Error("notify --dry-run wrote no .eml files")
	}
	// --digest also reminds organisations whose open findings did not change.
	if code, out, errs := runCLI(t, "notify", "--db", db, "--digest", "--dry-run", filepath.Join(dir, "digest")); code != 0 {
		t.Fatalf("notify --digest: %s%s", out, errs)
	}
	if digest, _ := filepath.Glob(filepath.Join(dir, "digest", "*.eml")); len(digest) <= len(dry) {
		t.Errorf("notify --digest wrote %d emails, want more than the %d of changes only", len(digest), len(dry))
	}
}

// TestReevalAppliesAChangedPolicy: quarantine passes under a policy that
// does not warn on it, without a new scan.
func TestReevalAppliesAChangedPolicy(t *testing.T) {
	t.Parallel() // waits for the one shared demo run
	dir, db := demoCopy(t)
	count := func() int { return outcomes(t, db, "email.dmarc.policy")["warn"] }
	before := count()
	if before == 0 {
		t.Fatal("the lab has no quarantine domain warning on email.dmarc.policy")
	}
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte("email:\n  dmarc_quarantine_warn: false\n"), 0o644)
	if code, out, errs := runCLI(t, "reeval", "--db", db, "--policy", pol); code != 0 {
		t.Fatalf("reeval: %s%s", out, errs)
	}
	if after := count(); after >= before {
		t.Fatalf("email.dmarc.policy warnings: %d before, %d after reeval with quarantine allowed", before, after)
	}
}

// TestAcceptMarksAFindingAccepted: an accepted risk shows in the export
// with status accepted; a bad date or an unknown id is exit 2.
func TestAcceptMarksAFindingAccepted(t *testing.T) {
	t.Parallel() // waits for the one shared demo run
	_, db := demoCopy(t)
	_, out, _ := runCLI(t, "export", "--format", "jsonl", "--db", db)
	var id string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"check":"email.spf.record"`) && strings.Contains(l, `"outcome":"fail"`) {
			id = l[strings.Index(l, `"id":"`)+6:]
			id = id[:strings.IndexByte(id, '"')]
			break
		}
	}
	if id == "" {
		t.Fatal("no failing email.spf.record finding in the demo")
	}
	if code, _, errs := runCLI(t, "accept", id, "--db", db, "--until", "2999-01-01"); code != 2 || !strings.Contains(errs, "--reason") {
		t.Fatalf("accept without a reason: exit %d %s, want 2", code, errs)
	}
	if code, _, _ := runCLI(t, "accept", "no-such-id", "--db", db, "--until", "2999-01-01", "--reason", "x"); code != 2 {
		t.Fatalf("accept of an unknown id: exit %d, want 2", code)
	}
	if code, out, errs := runCLI(t, "accept", id, "--db", db, "--until", "2999-01-01", "--reason", "legacy domain, retiring", "--by", "ciso"); code != 0 {
		t.Fatalf("accept: exit %d %s%s", code, out, errs)
	}
	_, out, _ = runCLI(t, "export", "--format", "jsonl", "--db", db)
	found := false
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"id":"`+id+`"`) {
			found = true
			if !strings.Contains(l, `"status":"accepted"`) {
				t.Fatalf("after accept, the finding exports as %s", l)
			}
		}
	}
	if !found {
		t.Fatalf("finding %s is not in the export after accept", id)
	}
}

var demoOnce struct {
	sync.Once
	dir, out string
	logs     string // the demo's stderr
	err      string
}

// demoCopy gives a test its own copy of the database a demo left, so the
// tests that only need a database with two nights in it run the demo once.
func demoCopy(t *testing.T) (dir, db string) {
	t.Helper()
	demoOnce.Do(func() {
		d, err := os.MkdirTemp("", "posture-demo-*")
		if err != nil {
			demoOnce.err = err.Error()
			return
		}
		demoOnce.dir = d
		code, out, errs := runCLI(t, "demo", "--dir", d)
		if code != 0 {
			demoOnce.err = out + errs
		}
		demoOnce.out, demoOnce.logs = out, errs
	})
	if demoOnce.err != "" {
		t.Fatalf("demo: %s", demoOnce.err)
	}
	dir = t.TempDir()
	b, err := os.ReadFile(filepath.Join(demoOnce.dir, "posture.db"))
	if err != nil {
		t.Fatal(err)
	}
	db = filepath.Join(dir, "posture.db")
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, db
}

// TestSecondScanOnTheSameDatabaseIsRefused: an overrunning nightly scan and
// the next night's must not work on the same run at once.
func TestSecondScanOnTheSameDatabaseIsRefused(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	unlock, err := store.LockScans(db)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	code, out, errs := runCLI(t, "scan", "--db", db, "--ct-url", "", "--only", "email")
	if code != exitError || !strings.Contains(out+errs, "another scan is running on this database") {
		t.Fatalf("exit %d:\n%s%s\nwant exit 1 saying another scan is running", code, out, errs)
	}
}

// TestReevalRejudgesCertificatesFromStoredEvidence: the demo's lab is
// stopped once the demo returns, so this re-evaluation has no network. A
// certificate warning window of 4000 days turns every lab certificate's
// expiry verdict from pass into warn: the certificates are judged from the
// stored evidence against its collection time.
func TestReevalRejudgesCertificatesFromStoredEvidence(t *testing.T) {
	t.Parallel() // waits for the one shared demo run
	dir, db := demoCopy(t)
	count := func() map[string]int { return outcomes(t, db, "tls.cert.expiry") }
	before := count()
	if before["pass"] == 0 {
		t.Fatalf("no lab certificate passes tls.cert.expiry before reeval: %v", before)
	}
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte("tls:\n  cert_warn_days: 4000\n"), 0o644)
	if code, out, errs := runCLI(t, "reeval", "--db", db, "--policy", pol); code != 0 {
		t.Fatalf("reeval: %s%s", out, errs)
	}
	after := count()
	if after["pass"] != 0 || after["warn"] != before["warn"]+before["pass"] {
		t.Fatalf("tls.cert.expiry before %v, after %v: want every pass turned into a warning", before, after)
	}
}

// TestPolicyOutOfRangeIsAUsageErrorWithItsLine: a threshold that would
// fail every domain is a typo, reported with file:line and exit 2.
func TestPolicyOutOfRangeIsAUsageErrorWithItsLine(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte("email:\n  spf_max_lookups: 0\ntls:\n  cert_warn_days: -3\n"), 0o644)
	for _, cmd := range [][]string{{"reeval", "--db", filepath.Join(dir, "none.db")}, {"scan", "--db", filepath.Join(dir, "x.db")}} {
		code, out, errs := runCLI(t, append(cmd, "--policy", pol)...)
		for _, want := range []string{pol + ":2: email.spf_max_lookups", pol + ":4: tls.cert_warn_days"} {
			if code != 2 || !strings.Contains(out+errs, want) {
				t.Errorf("%v: exit %d, output %s%s; want exit 2 and %q", cmd, code, out, errs, want)
			}
		}
	}
}

// TestReevalKeepsTheRunsTrustAnchors: the demo scanned its DNSSEC island
// with the lab's anchor; a re-evaluation with no --trust-anchor judges with
// the anchor the run stored, not the root's, so the signed lab zone still
// passes and the bogus one still fails.
func TestReevalKeepsTheRunsTrustAnchors(t *testing.T) {
	t.Parallel() // waits for the one shared demo run
	_, db := demoCopy(t)
	if code, out, errs := runCLI(t, "reeval", "--db", db); code != 0 {
		t.Fatalf("reeval: %s%s", out, errs)
	}
	code, out, errs := runCLI(t, "export", "--format", "jsonl", "--db", db)
	if code != 0 {
		t.Fatalf("export: %s", errs)
	}
	want := map[string]string{"lab-dnssec-signed.nhs.uk": "pass", "lab-dnssec-bad-signature.nhs.uk": "fail"}
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, `"check":"dns.dnssec"`) {
			continue
		}
		for dom, o := range want {
			if strings.Contains(l, `"name":"`+dom+`"`) {
				if !strings.Contains(l, `"outcome":"`+o+`"`) {
					t.Errorf("after reeval, dns.dnssec on %s: %s, want %s", dom, l, o)
				}
				delete(want, dom)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("no dns.dnssec finding for %v", want)
	}
}

// outcomes counts the findings of one check id in the newest run, by
// outcome, from the JSONL export.
func outcomes(t *testing.T, db, checkID string) map[string]int {
	t.Helper()
	code, out, errs := runCLI(t, "export", "--format", "jsonl", "--db", db)
	if code != 0 {
		t.Fatalf("export: %s", errs)
	}
	n := map[string]int{}
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, `"check":"`+checkID+`"`) {
			continue
		}
		for _, o := range []string{"pass", "warn", "fail", "unknown", "n/a"} {
			if strings.Contains(l, `"outcome":"`+o+`"`) {
				n[o]++
			}
		}
	}
	return n
}
