package nuclei_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/nuclei"
	"github.com/nhsx/posture/scanner"
	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/store"
)

func writeTemplates(t *testing.T, ts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range ts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func collectOne(t *testing.T, env *check.Env, host string) (nuclei.Evidence, map[string]check.Finding) {
	t.Helper()
	l := sharedLab(t)
	c := nuclei.NewCheck(&nuclei.Runner{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev, err := c.Collect(ctx, env, check.Asset{Kind: check.KindHost, Name: host})
	if err != nil {
		t.Fatal(err)
	}
	var e nuclei.Evidence
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		t.Fatal(err)
	}
	fs := map[string]check.Finding{}
	for _, f := range c.Evaluate(ev, l.Policy()) {
		fs[f.CheckID] = f
	}
	return e, fs
}

// TestOperatorTemplatesAreFilteredAndJudgedUnderOneID: the operator's
// directory runs with its tag and severity filters; a match fails
// web.exposure.custom with the template's severity and id in the message;
// a template whose request errors (a closed port) is unknown, never pass.
func TestOperatorTemplatesAreFilteredAndJudgedUnderOneID(t *testing.T) {
	l := sharedLab(t)
	tmpl := func(id, sev, tags, word string) string {
		return "id: " + id + "\ninfo:\n  name: " + id + "\n  author: posture-test\n  severity: " + sev + "\n  tags: " + tags +
			"\nhttp:\n  - method: GET\n    path:\n      - \"{{BaseURL}}/\"\n    matchers:\n      - type: word\n        words:\n          - \"" + word + "\"\n"
	}
	closed := "id: closed-port\ninfo:\n  name: closed port\n  author: posture-test\n  severity: high\n  tags: trust\n" +
		"ssl:\n  - address: \"{{Host}}:1\"\n    matchers:\n      - type: dsl\n        dsl:\n          - \"len(tls_version) > 0\"\n"
	dir := writeTemplates(t, map[string]string{
		"notes.yaml":   tmpl("hardening-notes", "low", "trust", "Hardening notes"),
		"absent.yaml":  tmpl("absent-word", "medium", "trust", "no lab page says this"),
		"other.yaml":   tmpl("other-tag", "critical", "elsewhere", "Hardening notes"),
		"info.yaml":    tmpl("info-only", "info", "trust", "Hardening notes"),
		"closed.yaml":  closed,
		"notyaml.yaml": "this: is: not: a template",
	})
	host := "www.lab-exposure-mentions.nhs.uk"
	set := map[string]string{nuclei.SetTemplates: dir, nuclei.SetTags: "trust", nuclei.SetSeverity: "low,medium,high"}

	e, fs := collectOne(t, guardedEnv(l, set), host)
	got := map[string]string{}
	for _, r := range e.Templates {
		if r.Source == "user" {
			got[r.Template] = r.Outcome
		}
	}
	want := map[string]string{"hardening-notes": nuclei.Matched, "absent-word": nuclei.Clean, "closed-port": nuclei.Errored}
	for id, o := range want {
		if got[id] != o {
			t.Errorf("operator template %s: %q, want %q (all: %v)", id, got[id], o, got)
		}
	}
	for _, id := range []string{"other-tag", "info-only"} {
		if _, ran := got[id]; ran {
			t.Errorf("operator template %s ran despite the filters", id)
		}
	}
	f := fs[nuclei.CustomID]
	if f.Outcome != check.Fail || f.Severity != check.Low || !strings.Contains(f.Message, "hardening-notes") {
		t.Errorf("%s: %s (%s) %q, want fail (low) naming hardening-notes", nuclei.CustomID, f.Outcome, f.Severity, f.Message)
	}

	// Without the matching template, the closed port leaves it unknown.
	os.Remove(filepath.Join(dir, "notes.yaml"))
	_, fs = collectOne(t, guardedEnv(l, set), host)
	if f := fs[nuclei.CustomID]; f.Outcome != check.Unknown || !strings.Contains(f.Message, "closed-port") {
		t.Errorf("%s with a failing template: %s %q, want unknown naming closed-port", nuclei.CustomID, f.Outcome, f.Message)
	}

	// No directory: no custom finding at all.
	_, fs = collectOne(t, l.Env(), host)
	if f, ok := fs[nuclei.CustomID]; ok {
		t.Errorf("%s reported without a template directory: %s %q", nuclei.CustomID, f.Outcome, f.Message)
	}
}

// TestParentMemoryStaysFlatAcrossBatches: nuclei runs in the worker, so
// six batches leave the scanner's heap where the first left it.
func TestParentMemoryStaysFlatAcrossBatches(t *testing.T) {
	l := sharedLab(t)
	hosts := []string{"www.lab-exposure-git.nhs.uk", "www.lab-exposure-env.nhs.uk", "www.lab-exposure-listing.nhs.uk",
		"www.lab-exposure-backup.nhs.uk", "www.lab-exposure-soft404.nhs.uk", "www.lab-exposure-mentions.nhs.uk"}
	r := &nuclei.Runner{}
	c := nuclei.NewCheck(r)
	env, pol := l.Env(), l.Policy()
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var first uint64
	var sizes []uint64
	for i := range 6 {
		got := collectAll(t, c, env, pol, hosts)
		if f := got["www.lab-exposure-git.nhs.uk"]["web.exposure.git-config"]; f.Outcome != check.Fail {
			t.Fatalf("batch %d: git-config %s %q, want fail", i+1, f.Outcome, f.Message)
		}
		h := heap()
		sizes = append(sizes, h)
		if i == 0 {
			first = h
		}
	}
	if n := r.Starts.Load(); n != 6 {
		t.Errorf("%d worker processes for 6 batches", n)
	}
	t.Logf("heap after each batch (bytes): %v", sizes)
	if last := sizes[len(sizes)-1]; last > first+4<<20 {
		t.Errorf("the heap grew from %d to %d bytes over 6 batches", first, last)
	}
}

// TestOnlyTLSStartsNoWorker: a scan limited to the tls family selects no
// web collector, so nuclei never starts; the same scan of the web family
// starts one (the count means something).
func TestOnlyTLSStartsNoWorker(t *testing.T) {
	l := sharedLab(t)
	e, err := estate.Parse("lab-estate.yaml", l.EstateYAML())
	if err != nil {
		t.Fatal(err)
	}
	// One organisation with one domain whose www host has an exposure.
	const domain = "lab-exposure-git.nhs.uk"
	var orgs []estate.Organisation
	for _, o := range e.Organisations {
		if slices.Contains(o.Domains, domain) {
			o.Domains, o.GitHub = []string{domain}, nil
			orgs = append(orgs, o)
		}
	}
	if len(orgs) != 1 {
		t.Fatalf("%d organisations own %s", len(orgs), domain)
	}
	e.Organisations = orgs
	svc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: l.Dial}}
	gh := github.NewClient(svc)
	if gh.BaseURL, err = url.Parse(l.GitHubURL); err != nil {
		t.Fatal(err)
	}
	scan := func(family string) (int64, map[string]check.Outcome) {
		cfg := scanner.Config{
			Estate: e, Checks: checks.All(), Families: []string{family},
			DNS:  &dnsq.Resolver{Servers: []string{l.DNSAddr}, Timeout: 300 * time.Millisecond, Retries: 1},
			Dial: l.Dial, AllowPrivate: true, Roots: l.Roots, CTURL: "", GitHub: gh, ServiceHTTP: svc,
			Options: scanner.Options{Concurrency: 16, JobTimeout: 20 * time.Second, Policy: l.Policy()},
		}
		st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		before := nuclei.WorkerStarts()
		stats, err := scanner.Run(context.Background(), st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := st.Findings(context.Background(), stats.RunID)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]check.Outcome{}
		for _, f := range fs {
			got[f.Asset.Name+" "+f.CheckID] = f.Outcome
		}
		return nuclei.WorkerStarts() - before, got
	}
	n, got := scan("tls")
	if n != 0 {
		t.Errorf("a --only tls scan started %d nuclei workers", n)
	}
	if len(got) == 0 {
		t.Fatal("the --only tls scan found nothing: it proves nothing")
	}
	n, got = scan("web")
	if n == 0 || got["www."+domain+" web.exposure.git-config"] != check.Fail {
		t.Errorf("a --only web scan started %d workers and found web.exposure.git-config %q on www.%s, want a worker and fail",
			n, got["www."+domain+" web.exposure.git-config"], domain)
	}
}

// TestDNSTemplatesAskThroughTheRelay: a dns template's question reaches
// the scan's resolver (here the lab's DNS, which the worker cannot reach
// any other way) through the parent's relay.
func TestDNSTemplatesAskThroughTheRelay(t *testing.T) {
	l := sharedLab(t)
	dir := writeTemplates(t, map[string]string{"dns-a.yaml": `id: dns-a
info:
  name: the host's A record
  author: posture-test
  severity: low
dns:
  - name: "{{FQDN}}"
    type: A
    matchers:
      - type: regex
        regex:
          - 'IN\s+A\s+127\.1\.'
`})
	env := l.Env()
	env.Settings = map[string]string{nuclei.SetTemplates: dir}
	e, fs := collectOne(t, env, "www.lab-exposure-mentions.nhs.uk")
	if f := fs[nuclei.CustomID]; f.Outcome != check.Fail || !strings.Contains(f.Message, "dns-a") {
		t.Errorf("%s: %s %q, want fail naming dns-a (runs: %+v)", nuclei.CustomID, f.Outcome, f.Message, e.Templates)
	}
}
