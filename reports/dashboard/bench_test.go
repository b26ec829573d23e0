package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/reports/dashboard"
)

// BenchmarkPages times the dashboard's pages over the tiny lab's two runs
// (31 assets, about 500 findings a run), served in-process: the summary
// (cached after the first build), an organisation, a finding with its
// evidence, and a search.
func BenchmarkPages(b *testing.B) {
	f := labFixture(b)
	h := dashboard.New(f.st, checks.Catalogue())
	id := ""
	fs, err := f.st.Findings(b.Context(), f.runs[len(f.runs)-1])
	if err != nil {
		b.Fatal(err)
	}
	for _, x := range fs {
		if x.Outcome == check.Fail && strings.HasPrefix(x.Asset.Name, "xss.") {
			id = x.ID
		}
	}
	for _, c := range []struct{ name, path string }{
		{"summary", "/"}, {"org", "/org/RBD"}, {"finding", "/finding/" + id}, {"search", "/search?q=hostile"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d", c.path, rec.Code)
				}
			}
		})
	}
	// The first summary of a run: built, not cached.
	b.Run("summary-build", func(b *testing.B) {
		for b.Loop() {
			h := dashboard.New(f.st, checks.Catalogue())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
		}
	})
}
