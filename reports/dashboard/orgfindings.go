package dashboard

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/reports"
)

// orgFindingsPerPage bounds the list of an organisation's findings; the
// organisation's report lists the first few hundred of each kind.
const orgFindingsPerPage = 100

// findingFilters are the lists of an organisation's findings, by outcome.
var findingFilters = []struct{ Key, Label string }{
	{"problems", "Failing or needing attention"},
	{"unknown", "Could not check"},
	{"pass", "Passing"},
	{"all", "All"},
}

func filterKeeps(key string, o check.Outcome) bool {
	switch key {
	case "unknown":
		return o == check.Unknown
	case "pass":
		return o == check.Pass || o == check.NA
	case "all":
		return true
	}
	return o.Counts()
}

type orgFindingsPage struct {
	Org     *reports.OrgSummary
	Run     reports.Run
	Filter  string
	Filters []filterTab
	Rows    []orgFindingRow
	Pager   pager
}

type filterTab struct {
	Label, URL string
	Current    bool
	N          int
}

type orgFindingRow struct {
	reports.Finding
	Title    string
	DaysOpen int
}

// orgFindings lists every finding of an organisation and those below it in
// the summary's run, worst first, a page at a time.
func (d *Dashboard) orgFindings(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	s, err := d.summary(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	org := s.Org(code)
	if org == nil {
		d.notFound(w, "No organisation with that code in run "+strconv.FormatInt(s.Run.ID, 10)+".")
		return
	}
	filter := r.URL.Query().Get("show")
	if !slices.ContainsFunc(findingFilters, func(f struct{ Key, Label string }) bool { return f.Key == filter }) {
		filter = "problems"
	}
	p := orgFindingsPage{Org: org, Run: s.Run, Filter: filter}
	counts := map[string]int{}
	var rows []reports.Finding
	for _, f := range s.Findings {
		owner := f.Asset.Org
		if owner == "" {
			owner = reports.UnassignedCode
		}
		if !s.Within(owner, code) {
			continue
		}
		for _, ff := range findingFilters {
			if filterKeeps(ff.Key, f.Outcome) {
				counts[ff.Key]++
			}
		}
		if filterKeeps(filter, f.Outcome) {
			rows = append(rows, f)
		}
	}
	path := orgURL(code) + "/findings"
	for _, ff := range findingFilters {
		p.Filters = append(p.Filters, filterTab{Label: ff.Label, URL: pageURL(path, url.Values{"show": {ff.Key}}, 1),
			Current: ff.Key == filter, N: counts[ff.Key]})
	}
	slices.SortStableFunc(rows, func(a, b reports.Finding) int {
		return cmp.Or(cmp.Compare(outcomeOrder(b.Outcome), outcomeOrder(a.Outcome)),
			cmp.Compare(b.Severity.Rank(), a.Severity.Rank()),
			cmp.Compare(s.DaysOpen(b), s.DaysOpen(a)),
			strings.Compare(a.Asset.Name, b.Asset.Name), strings.Compare(a.CheckID, b.CheckID))
	})
	page := pageOf(r)
	p.Pager = newPager(path, url.Values{"show": {filter}}, page, orgFindingsPerPage, len(rows))
	from := min((page-1)*orgFindingsPerPage, len(rows))
	for _, f := range rows[from:min(from+orgFindingsPerPage, len(rows))] {
		p.Rows = append(p.Rows, orgFindingRow{Finding: f, Title: d.metaOf(f.CheckID).Title, DaysOpen: s.DaysOpen(f)})
	}
	d.render(w, http.StatusOK, "orgfindings", p)
}

func outcomeOrder(o check.Outcome) int {
	switch o {
	case check.Fail:
		return 5
	case check.Warn:
		return 4
	case check.Unknown:
		return 3
	case check.Pass:
		return 2
	}
	return 1
}
