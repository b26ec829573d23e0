package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/dnscheck"
	"github.com/nhsx/posture/scanner/lab"
)

// TestTrustAnchorFileThatDoesNotParseIsExit2WithItsLine: scan and reeval
// refuse a --trust-anchor file with a record that is not a DS or DNSKEY,
// one that does not parse, or none at all, naming file:line.
func TestTrustAnchorFileThatDoesNotParseIsExit2WithItsLine(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a-record.txt": "; anchors\n\nlab. IN A 192.0.2.1\n",
		"bad-ds.txt":   ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n. IN DS 38696 8 two 683D\n",
		"empty.txt":    "; nothing here\n",
	}
	wants := map[string]string{"a-record.txt": ":3: a A record", "bad-ds.txt": ":2: ", "empty.txt": ":1: no DS or DNSKEY record"}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range [][]string{{"scan", "--db", filepath.Join(dir, "x.db")}, {"reeval", "--db", filepath.Join(dir, "none.db")}} {
			code, out, errs := runCLI(t, append(cmd, "--trust-anchor", p)...)
			if want := p + wants[name]; code != 2 || !strings.Contains(out+errs, want) {
				t.Errorf("%s %s: exit %d, output %s%s; want exit 2 and %q", cmd[0], name, code, out, errs, want)
			}
		}
	}
}

// TestReevalWithAnotherTrustAnchorRejudgesDNSSEC: the demo's lab is
// stopped, so this needs no network. Judged with the root anchors given
// as --trust-anchor (instead of the lab anchor the run stored), the lab's domains (an island under nhs.uk) are unknown; with
// the lab's anchor in a --trust-anchor file, the signed lab domain passes
// and the broken ones fail again, from the stored DO answers.
func TestReevalWithAnotherTrustAnchorRejudgesDNSSEC(t *testing.T) {
	t.Parallel() // waits for the one shared demo run
	dir, db := demoCopy(t)
	count := func() map[string]int { return outcomes(t, db, "dns.dnssec") }
	scanned := count()
	if scanned["pass"] == 0 || scanned["fail"] == 0 || scanned["warn"] == 0 {
		t.Fatalf("dns.dnssec after the demo: %v, want passes, fails and warnings", scanned)
	}
	rootFile := filepath.Join(dir, "root-anchors.txt")
	if err := os.WriteFile(rootFile, []byte(strings.Join(dnscheck.Settings.Defaults().TrustAnchors, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "reeval", "--db", db, "--trust-anchor", rootFile); code != 0 {
		t.Fatalf("reeval: %s%s", out, errs)
	}
	if root := count(); root["pass"]+root["fail"]+root["warn"] != 0 || root["unknown"] == 0 {
		t.Fatalf("dns.dnssec judged with the root anchors: %v, want every verdict unknown", root)
	}
	anchors := filepath.Join(dir, "lab-anchor.txt")
	body := "; the lab's trust anchor\n" + strings.Join(dnscheck.Settings.Get((&lab.Lab{}).Policy()).TrustAnchors, "\n") + "\n"
	if err := os.WriteFile(anchors, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "reeval", "--db", db, "--trust-anchor", anchors); code != 0 {
		t.Fatalf("reeval --trust-anchor: %s%s", out, errs)
	}
	if again := count(); again["pass"] != scanned["pass"] || again["fail"] != scanned["fail"] || again["warn"] != scanned["warn"] {
		t.Fatalf("dns.dnssec with the lab's anchor again: %v, want %v", again, scanned)
	}
}
