package webcheck

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

func TestEmbeddedPreloadListIsDatedAndComplete(t *testing.T) {
	l, err := EmbeddedPreload()
	if err != nil {
		t.Fatal(err)
	}
	if l.Date() != "2026-06-01" || l.Date() != EmbeddedPreloadDate {
		t.Errorf("date %q, want 2026-06-01", l.Date())
	}
	if l.Len() < 90_000 {
		t.Errorf("%d entries, want the whole list (about 94,600)", l.Len())
	}
	for host, want := range map[string]string{"gov.uk": "0", "service.gov.uk": "1", "accurx.nhs.uk": "1", "app": "1"} {
		if v, ok := l.Lookup(host); !ok || v != want {
			t.Errorf("Lookup(%s) = %q, %v; want %q", host, v, ok, want)
		}
	}
	if _, ok := l.Lookup("nhs.uk"); ok {
		t.Error("nhs.uk is listed: the SOURCE says it was not at 2026-06-01")
	}
}

func TestPreloadLookupClimbsToIncludeSubdomainsParents(t *testing.T) {
	l, err := ParsePreload("t", strings.NewReader("# list 2026-07-01\nexample.nhs.uk\t1\nflat.nhs.uk\t0\napp\t1\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, entry string }{
		{"example.nhs.uk", "example.nhs.uk"},
		{"www.example.nhs.uk", "example.nhs.uk"},
		{"a.b.example.nhs.uk", "example.nhs.uk"},
		{"flat.nhs.uk", "flat.nhs.uk"},
		{"www.flat.nhs.uk", ""}, // a parent without include_subdomains covers only itself
		{"other.nhs.uk", ""},
		{"site.app", "app"}, // a whole gTLD
		{"EXAMPLE.NHS.UK.", "example.nhs.uk"},
	} {
		f := preloadLookup(l, "operator", tc.host)
		if f.Entry != tc.entry || f.Date != "2026-07-01" {
			t.Errorf("%s: entry %q (date %s), want %q", tc.host, f.Entry, f.Date, tc.entry)
		}
	}
}

func TestParsePreloadErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "f:1:"},
		{"example.nhs.uk\t1\n", "f:1: the first line must be a header"},
		{"# no date here\nexample.nhs.uk\t1\n", "f:1:"},
		{"# 2026-13-01\nexample.nhs.uk\t1\n", "f:1:"},
		{"# 2026-06-01\n", "no entries"},
		{"# 2026-06-01\nexample.nhs.uk\t1\nbad line\n", "f:3: want host<TAB>1"},
		{"# 2026-06-01\nexample.nhs.uk\t2\n", "f:2:"},
		{"# 2026-06-01\nExample.nhs.uk\t1\n", "f:2:"},
		{"# 2026-06-01\n<script>\t1\n", "f:2:"},
		{"# 2026-06-01\na..b\t1\n", "f:2:"},
		{"# 2026-06-01\nx.uk\t1\n\n# comment\nx.uk\t0\n", "f:5: x.uk is listed twice"},
		{"# 2026-06-01\n" + strings.Repeat("a", 600) + "\t1\n", "f:2: a line longer"},
	} {
		_, err := ParsePreload("f", strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePreload(%q): %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestLoadPreloadReadsGzipAndPlain(t *testing.T) {
	dir := t.TempDir()
	text := "# Chromium HSTS preload list, 2026-09-01. host<TAB>include_subdomains\nexample.nhs.uk\t1\r\n"
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(text))
	w.Close()
	for name, b := range map[string][]byte{"l.tsv": []byte(text), "l.tsv.gz": gz.Bytes()} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		l, err := LoadPreload(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if l.Date() != "2026-09-01" || l.Len() != 1 {
			t.Errorf("%s: date %s, %d entries", name, l.Date(), l.Len())
		}
	}
	if _, err := LoadPreload(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loaded")
	}
}

func FuzzParsePreload(f *testing.F) {
	f.Add([]byte("# 2026-06-01\nexample.nhs.uk\t1\nx.uk\t0\n"))
	f.Add([]byte("# 2026-06-01\n\n#c\na\t1\r\n"))
	f.Add(preloadEmbedded[:64])
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParsePreload("fuzz", bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(l.Date()) != 10 || l.Len() == 0 {
			t.Fatalf("parsed without a date or entries: %q %d", l.Date(), l.Len())
		}
		for h := range l.hosts {
			if preloadHostValid(h) != nil {
				t.Fatalf("kept an invalid host %q", h)
			}
			preloadLookup(l, "fuzz", "www."+h)
		}
	})
}

// preloadFindings collects and judges one host; env.Lists carries lists.
func preloadFindings(t *testing.T, env *check.Env, asset string, p *check.Policy) map[string]check.Finding {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := Check()
	a := check.Asset{Kind: check.KindHost, Name: asset, Domain: "example.nhs.uk"}
	ev, err := c.Collect(ctx, env, a)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]check.Finding{}
	for _, f := range c.Evaluate(ev, p) {
		got[f.CheckID] = f
	}
	return got
}

const preloadable = "max-age=31536000; includeSubDomains; preload"

func TestWebHSTSPreloadVerdicts(t *testing.T) {
	const apex = "example.nhs.uk"
	listed, err := ParsePreload("lab", strings.NewReader("# 2026-07-01\nlisted.nhs.uk\t1\nexample.nhs.uk\t1\n"))
	if err != nil {
		t.Fatal(err)
	}
	toApex := redirect("https://"+apex+"/", 301)
	for _, tc := range []struct {
		name  string
		asset string
		sites map[string]site
		lists map[string]check.List
		want  check.Outcome
		msg   string
	}{
		{"preload-ready, not listed", apex, map[string]site{apex: {toApex, page(preloadable)}}, nil, check.Pass, "not on Chromium's HSTS preload list as of 2026-06-01, but it is preload-ready"},
		{"preload-ready without port 80", apex, map[string]site{apex: {nil, page(preloadable)}}, nil, check.Pass, "preload-ready"},
		{"asks for preload with a short max-age", apex, map[string]site{apex: {toApex, page("max-age=86400; includeSubDomains; preload")}}, nil, check.Warn, "max-age 86400 is below 31536000"},
		{"asks for preload, redirects to www first", apex, map[string]site{apex: {redirect("https://www."+apex+"/", 301), page(preloadable)}, "www." + apex: {nil, page(preloadable)}}, nil, check.Warn, "not to https on the same host"},
		{"asks for preload, content over http", apex, map[string]site{apex: {page(), page(preloadable)}}, nil, check.Warn, "does not redirect"},
		{"asks for preload, four redirects", apex, map[string]site{apex: {toApex, chainOf(4, page(preloadable))}}, nil, check.Warn, "more than 3 redirects"},
		{"no preload directive", apex, map[string]site{apex: {toApex, page(good)}}, nil, check.NA, "does not ask for preload"},
		{"listed in the operator's list", apex, map[string]site{apex: {toApex, page(good)}}, map[string]check.List{PreloadListName: listed}, check.Pass, "on Chromium's HSTS preload list as of 2026-07-01, with include_subdomains"},
		{"a www host is not judged", "www." + apex, map[string]site{"www." + apex: {redirect("https://www."+apex+"/", 301), page(good)}}, map[string]check.List{PreloadListName: listed}, check.NA, "covered by the entry of example.nhs.uk"},
		{"no https", apex, map[string]site{apex: {toApex, nil}}, nil, check.NA, "serves no HTTPS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := envFor(t, tc.sites)
			env.Lists = tc.lists
			f := preloadFindings(t, env, tc.asset, nil)[HSTSPreload]
			if f.Outcome != tc.want || !strings.Contains(f.Message, tc.msg) {
				t.Errorf("%s (%s), want %s with %q", f.Outcome, f.Message, tc.want, tc.msg)
			}
			if f.Severity != check.Info {
				t.Errorf("severity %s, want info (record only)", f.Severity)
			}
		})
	}
}

// chainOf redirects n times on the same host before the final handler.
func chainOf(n int, final http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var k int
		if r.URL.Path != "/" {
			k = len(r.URL.Path) - 1
		}
		if k < n {
			w.Header().Set("Strict-Transport-Security", preloadable)
			http.Redirect(w, r, "/"+strings.Repeat("r", k+1), http.StatusMovedPermanently)
			return
		}
		final.ServeHTTP(w, r)
	})
}

// TestPreloadReevalJudgesAgainstTheGivenList: the stored fact stands
// unless the policy carries a list (reeval --hsts-preload), and evidence
// of version 1 (no fact) is looked up there or in the embedded list.
func TestPreloadReevalJudgesAgainstTheGivenList(t *testing.T) {
	const apex = "example.nhs.uk"
	env := envFor(t, map[string]site{apex: {redirect("https://"+apex+"/", 301), page(good)}})
	c := Check()
	a := check.Asset{Kind: check.KindHost, Name: apex, Domain: apex}
	ev, err := c.Collect(context.Background(), env, a)
	if err != nil {
		t.Fatal(err)
	}
	judge := func(ev check.Evidence, p *check.Policy) check.Finding {
		for _, f := range c.Evaluate(ev, p) {
			if f.CheckID == HSTSPreload {
				return f
			}
		}
		t.Fatal("no preload finding")
		return check.Finding{}
	}
	if f := judge(ev, nil); f.Outcome != check.NA || !strings.Contains(f.Message, "as of 2026-06-01") {
		t.Fatalf("stored fact: %s %s", f.Outcome, f.Message)
	}
	newer, _ := ParsePreload("newer", strings.NewReader("# 2026-08-01\nexample.nhs.uk\t1\n"))
	pol := Settings.Get(nil)
	pol.Preload = newer
	p := Settings.Set(check.DefaultPolicy(), pol)
	if f := judge(ev, p); f.Outcome != check.Pass || !strings.Contains(f.Message, "re-judged against the list of 2026-08-01") {
		t.Errorf("with the newer list: %s %s", f.Outcome, f.Message)
	}
	// Version 1 evidence: no fact recorded.
	var e Evidence
	json.Unmarshal(ev.Data, &e)
	e.Preload = nil
	v1 := ev
	v1.Version = 1
	v1.Data, _ = json.Marshal(e)
	if f := judge(v1, nil); f.Outcome != check.NA || !strings.Contains(f.Message, "looked up in the embedded list") {
		t.Errorf("version 1: %s %s", f.Outcome, f.Message)
	}
	if f := judge(v1, p); f.Outcome != check.Pass {
		t.Errorf("version 1 with the newer list: %s %s", f.Outcome, f.Message)
	}
}
