package webcheck

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

func TestSoftwareOutdatedVerdicts(t *testing.T) {
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		kv        []string
		body      string
		want      check.Outcome
		inMessage string
	}{
		{"nothing named", nil, "", check.NA, ""},
		{"bare product", []string{"Server", "nginx"}, "", check.NA, ""},
		{"nginx old branch", []string{"Server", "nginx/1.25.3"}, "", check.Warn, "2024-05-29"},
		{"nginx current branch", []string{"Server", "nginx/1.28.0"}, "", check.Pass, "supported"},
		{"nginx newer than the table", []string{"Server", "nginx/1.31.2"}, "", check.Pass, "newer than 1.29"},
		{"nginx older than the table", []string{"Server", "nginx/1.10.3"}, "", check.Warn, "older than 1.22"},
		{"apache 2.4 with os", []string{"Server", "Apache/2.4.58 (Debian)"}, "", check.Pass, ""},
		{"apache 2.2", []string{"Server", "Apache/2.2.15 (CentOS)"}, "", check.Warn, "2017-07-11"},
		{"apache major only", []string{"Server", "Apache/2"}, "", check.NA, ""},
		{"php in server", []string{"Server", "Apache/2.4.41 (Ubuntu) PHP/7.4.3"}, "", check.Warn, "2022-11-28"},
		{"php 8.1 after its end", []string{"X-Powered-By", "PHP/8.1.2"}, "", check.Warn, "php.net"},
		{"php 8.2 before its end", []string{"X-Powered-By", "PHP/8.2.10"}, "", check.Pass, "supported until 2026-12-31"},
		{"php 8.5 newer than the table", []string{"X-Powered-By", "PHP/8.5.0"}, "", check.Pass, ""},
		{"iis 8.5", []string{"Server", "Microsoft-IIS/8.5"}, "", check.Fail, "2023-10-10"},
		{"iis 10", []string{"Server", "Microsoft-IIS/10.0"}, "", check.Pass, ""},
		{"aspnet 4 runtime cannot be told", []string{"X-AspNet-Version", "4.0.30319"}, "", check.NA, "ASP.NET"},
		{"aspnet 1.1", []string{"X-AspNet-Version", "1.1.4322"}, "", check.Fail, "2015-07-14"},
		{"script in headers", []string{"Server", "<script>alert(1)</script>", "X-Powered-By", `"><img src=x onerror=alert(1)>`}, "", check.NA, ""},
		{"wordpress old", nil, `<html><head><META Name="Generator" content="WordPress 4.6.1"></head>`, check.Fail, "2022-12-01"},
		{"wordpress current", nil, `<meta name=generator content='WordPress 6.4.2' />`, check.Pass, ""},
		{"drupal 7", nil, `<meta name="Generator" content="Drupal 7 (https://www.drupal.org)" />`, check.Fail, "2025-01-05"},
		{"drupal 10", nil, `<meta name="generator" content="Drupal 10 (https://www.drupal.org)">`, check.Pass, ""},
		{"joomla without version", nil, `<meta name="generator" content="Joomla! - Open Source Content Management">`, check.NA, ""},
		{"joomla 3", nil, `<meta name="generator" content="Joomla! 3.9 - Open Source Content Management">`, check.Fail, "2023-08-17"},
		{"generator of another product", nil, `<meta name="generator" content="Hugo 0.120.0">`, check.NA, ""},
		{"worst of several", []string{"Server", "nginx/1.28.0"}, `<meta name="generator" content="WordPress 4.5">`, check.Fail, "WordPress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hop := hdrHop("https://www.example.nhs.uk/", tc.kv...)
			if tc.body != "" {
				hop.Body = &webfetch.Body{Data: []byte(tc.body)}
			}
			got := evaluateSoftware(&hop, at)
			if got.Outcome != tc.want || !strings.Contains(got.Message, tc.inMessage) {
				t.Errorf("%s = %s (%s), want %s with %q", SoftwareOutdated, got.Outcome, got.Message, tc.want, tc.inMessage)
			}
		})
	}
}

func TestSoftwareGeneratorsReadMetaElements(t *testing.T) {
	body := `<META NAME="generator" CONTENT="A 1"><meta content="B 2" name='generator'><meta name=description content="x">` +
		`<meta name=generator content=C>` + "<meta\tname=\"generator\"\ncontent=\"D\">"
	want := []string{"A 1", "B 2", "C", "D"}
	if got := softwareGenerators([]byte(body)); !reflect.DeepEqual(got, want) {
		t.Errorf("softwareGenerators = %q, want %q", got, want)
	}
	// Bounded: a generator past the searched start is not read.
	late := strings.Repeat("x", softwareMaxBody) + `<meta name="generator" content="WordPress 4.0">`
	if got := softwareGenerators([]byte(late)); len(got) != 0 {
		t.Errorf("read past the bound: %q", got)
	}
}

func TestEveryEOLBranchIsDatedAndFound(t *testing.T) {
	for key, p := range eolTable {
		if p.name == "" || p.source == "" || len(p.branches) == 0 {
			t.Errorf("%s: name, source and branches required", key)
		}
		for _, b := range p.branches {
			if b.eol != "" {
				if _, err := time.Parse("2006-01-02", b.eol); err != nil {
					t.Errorf("%s %s: %v", key, b.branch, err)
				}
			}
			f := softwareFact{product: key, version: b.branch}
			if br, _, ok := eolJudge(f); !ok || br != b.branch {
				t.Errorf("%s %s judged as branch %q (%v)", key, b.branch, br, ok)
			}
		}
	}
}

// TestSoftwareReadsTheFinalPageThroughTheEvidence: evaluateHeaders judges
// the body of the final page.
func TestSoftwareReadsTheFinalPageThroughTheEvidence(t *testing.T) {
	h := http.Header{}
	hop := webfetch.Hop{URL: "https://www.example.nhs.uk/", TLS: true, Status: 200, Headers: webfetch.BoundHeaders(h),
		Body: &webfetch.Body{Data: []byte(`<meta name="generator" content="Drupal 9">`)}}
	ev := Evidence{Host: "www.example.nhs.uk", HTTP: Chain{Refused: true},
		HTTPS: Chain{Result: webfetch.Result{End: webfetch.EndFinal, Hops: []webfetch.Hop{hop}}}}
	if got := hdrEvaluate(ev)[SoftwareOutdated]; got.Outcome != check.Fail {
		t.Errorf("%s = %s (%s), want fail", SoftwareOutdated, got.Outcome, got.Message)
	}
}
