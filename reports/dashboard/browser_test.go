package dashboard_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/reports/browsertest"
	"github.com/nhsx/posture/scanner/lab"
	"github.com/nhsx/posture/scanner/store"
)

// screenshotDir is docs/img with POSTURE_SCREENSHOTS=1 (to refresh the
// README's pictures), else the test's temporary directory.
func screenshotDir(t *testing.T) string {
	if os.Getenv("POSTURE_SCREENSHOTS") == "1" {
		dir, err := filepath.Abs(filepath.Join("..", "..", "docs", "img"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// TestDashboardInChromium drives the dashboard in headless Chromium: the
// summary, an organisation reached by following the summary's link, and the
// xss host's finding with its evidence. Each page shows what it should as
// visible text (the server's script as text, not run), opens no dialog,
// runs no script at all, requests nothing beyond the dashboard, and is
// saved as a screenshot.
func TestDashboardInChromium(t *testing.T) {
	f := labFixture(t)
	b := browsertest.Start(t)
	srv := serve(t, f.st)
	dir := screenshotDir(t)
	xss := findingOf(t, f, func(x store.Finding) bool {
		return strings.HasPrefix(x.Asset.Name, "xss.") && x.Outcome == check.Fail && strings.Contains(x.Message, lab.HostileScript)
	})

	// clip is the height of each screenshot: the top of the page, as the
	// README shows it (the summary of even the tiny lab is metres long).
	clip := map[string]int{"summary": 1800, "org": 1800, "finding": 2400, "search": 1400, "search-hostile": 600}
	open := func(name, url string, want ...string) *browsertest.Page {
		t.Helper()
		p, err := b.Open(url)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		text := p.Text()
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s (%s) does not show %q", name, url, w)
			}
		}
		if d := p.Dialogs(); len(d) > 0 {
			t.Errorf("%s opened dialogs: %q", name, d)
		}
		if s := p.Scripts(); len(s) > 0 {
			t.Errorf("%s ran scripts: %v", name, s)
		}
		if r := p.RequestsNotTo(srv.URL + "/"); len(r) > 0 {
			t.Errorf("%s requested beyond the dashboard: %v", name, r)
		}
		// Nothing that could run script, load or navigate, but the
		// dashboard's own search form (GET /search).
		active, err := p.InertDOM()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		var forms []string
		if err := p.Eval(`Array.from(document.forms, f => f.getAttribute("method") + " " + f.getAttribute("action"))`, &forms); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(forms) != 1 || forms[0] != "get /search" {
			t.Errorf("%s: forms %q, want only the search (get /search)", name, forms)
		}
		for _, a := range active {
			if a != "<form>" {
				t.Errorf("%s holds an active element or attribute: %s", name, a)
			}
		}
		path := filepath.Join(dir, "dashboard-"+name+".png")
		if strings.HasSuffix(name, "-hostile") { // not a picture for the README
			path = filepath.Join(t.TempDir(), name+".png")
		}
		if err := p.ScreenshotTop(path, clip[name]); err != nil {
			t.Errorf("%s: %v", name, err)
		} else if st, err := os.Stat(path); err != nil || st.Size() < 10_000 {
			t.Errorf("%s: screenshot %s is missing or blank (%v)", name, path, err)
		}
		return p
	}

	summary := open("summary", srv.URL+"/", "posture dashboard", "Dorset County Hospitals NHS Foundation Trust")
	var orgURL string
	if err := summary.Eval(`(document.querySelector('a[href="/org/RBD"]') || {}).href || ""`, &orgURL); err != nil || orgURL == "" {
		t.Fatalf("the summary has no link to organisation RBD (%v)", err)
	}
	org := open("org", orgURL, "Dorset County Hospitals NHS Foundation Trust", "xss.lab-web-hostile.nhs.uk")
	var findingURL string
	if err := org.Eval(`(document.querySelector('a[href="/finding/`+xss+`"]') || {}).href || ""`, &findingURL); err != nil || findingURL == "" {
		t.Fatalf("the organisation's page has no link to the xss host's finding %s (%v)", xss, err)
	}
	open("finding", findingURL, "xss.lab-web-hostile.nhs.uk", "Evidence", "History", "Lifecycle",
		lab.HostileScript, `"Strict-Transport-Security"`)
	open("search", srv.URL+"/search?q=secrets-live", "lab-ry9/secrets-live-deploy-keys", "Search")
	// A search is reflected: as text.
	hostile := `"><script>alert(3)</script><img src=x onerror=alert(4)>`
	open("search-hostile", srv.URL+"/search?q="+url.QueryEscape(hostile), hostile)
	t.Logf("screenshots in %s", dir)
}
