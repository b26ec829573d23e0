package reports

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// UnassignedCode is the organisation code under which findings on assets
// with no owning organisation are counted.
const UnassignedCode = "unassigned"

// ErrNoRuns is returned when the store holds no run to report on.
var ErrNoRuns = errors.New("reports: the store holds no runs")

// Options tune BuildSummary. Zero values take the defaults.
type Options struct {
	TrendRuns int // runs in the trend, the reported one included (default 12, at least 2)
	MaxRisks  int // worst risks listed (default 25)
}

func (o Options) withDefaults() Options {
	if o.TrendRuns <= 0 {
		o.TrendRuns = 12
	}
	o.TrendRuns = max(o.TrendRuns, 2)
	if o.MaxRisks <= 0 {
		o.MaxRisks = 25
	}
	return o
}

// Counts are asset × check cells by their worst outcome. Accepted counts the
// fail and warn cells under a risk acceptance; they stay in Fail and Warn,
// because accepting a risk does not remove it.
type Counts struct {
	Pass     int `json:"pass"`
	Warn     int `json:"warn"`
	Fail     int `json:"fail"`
	Unknown  int `json:"unknown"`
	NA       int `json:"na"`
	Accepted int `json:"accepted,omitempty"`
}

func (c *Counts) add(o check.Outcome, accepted bool) {
	switch o {
	case check.Pass:
		c.Pass++
	case check.Warn:
		c.Warn++
	case check.Fail:
		c.Fail++
	case check.NA:
		c.NA++
	default:
		c.Unknown++
	}
	if accepted && o.Counts() {
		c.Accepted++
	}
}

// Plus returns the sum of two counts.
func (c Counts) Plus(d Counts) Counts {
	return Counts{c.Pass + d.Pass, c.Warn + d.Warn, c.Fail + d.Fail, c.Unknown + d.Unknown, c.NA + d.NA, c.Accepted + d.Accepted}
}

// Total is the number of cells.
func (c Counts) Total() int { return c.Pass + c.Warn + c.Fail + c.Unknown + c.NA }

// Assessed is the number of cells with a verdict that bears on posture:
// pass, warn or fail. Unknown and n/a are left out, never counted as fail.
func (c Counts) Assessed() int { return c.Pass + c.Warn + c.Fail }

// Score is the share of assessed cells that pass.
func (c Counts) Score() Score {
	if c.Assessed() == 0 {
		return Score{}
	}
	return Score{Value: 100 * float64(c.Pass) / float64(c.Assessed()), Valid: true}
}

// Worst is the worst outcome present, or "" for none.
func (c Counts) Worst() check.Outcome {
	switch {
	case c.Fail > 0:
		return check.Fail
	case c.Warn > 0:
		return check.Warn
	case c.Unknown > 0:
		return check.Unknown
	case c.Pass > 0:
		return check.Pass
	case c.NA > 0:
		return check.NA
	}
	return ""
}

// Score is a percentage of assessed checks passing; Valid is false when
// nothing could be assessed.
type Score struct {
	Value float64 `json:"value"`
	Valid bool    `json:"valid"`
}

func (s Score) String() string {
	if !s.Valid {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", s.Value)
}

// ChangeCounts count findings by their change since the previous run.
// Findings under a risk acceptance are counted in Accepted only.
type ChangeCounts struct {
	New       int `json:"new"`
	Regressed int `json:"regressed"`
	Resolved  int `json:"resolved"`
	StillOpen int `json:"still_open"`
	Accepted  int `json:"accepted,omitempty"`
}

// Plus returns the sum of two change counts.
func (c ChangeCounts) Plus(d ChangeCounts) ChangeCounts {
	return ChangeCounts{c.New + d.New, c.Regressed + d.Regressed, c.Resolved + d.Resolved, c.StillOpen + d.StillOpen, c.Accepted + d.Accepted}
}

// Any reports whether anything changed: new, regressed or resolved.
func (c ChangeCounts) Any() bool { return c.New+c.Regressed+c.Resolved > 0 }

// OrgSummary is one organisation with everything below it rolled up.
type OrgSummary struct {
	Org
	// Implicit nodes are codes no organisation in the estate declares: a
	// parent that is only named, or the owner of unassigned assets.
	Implicit bool     `json:"implicit,omitempty"`
	Depth    int      `json:"depth"`
	Children []string `json:"children,omitempty"`
	// Assets counts distinct assets, rolled up.
	Assets int `json:"assets"`
	// Own counts the organisation's own assets; Total rolls up its
	// descendants too, as do ByCheck and Changes.
	Own      Counts            `json:"own"`
	Total    Counts            `json:"total"`
	ByCheck  map[string]Counts `json:"by_check"`
	Changes  ChangeCounts      `json:"changes"`
	Score    Score             `json:"score"`
	Previous Score             `json:"previous"` // score at the previous run
	// Trend is the rolled-up score at each run of Summary.Trend.
	Trend []Score `json:"trend"`
}

// Delta is the change in score since the previous run, in points.
func (o *OrgSummary) Delta() (float64, bool) {
	if !o.Score.Valid || !o.Previous.Valid {
		return 0, false
	}
	return o.Score.Value - o.Previous.Value, true
}

// TrendPoint is the estate at one run.
type TrendPoint struct {
	Run    Run    `json:"run"`
	Counts Counts `json:"counts"`
	Score  Score  `json:"score"`
}

// Summary is one run, ready to render.
type Summary struct {
	Run      Run  `json:"run"`
	Previous *Run `json:"previous,omitempty"`
	// Checks are the catalogue entries with findings in this run, in
	// catalogue order (ids missing from the catalogue last).
	Checks []check.Meta `json:"checks"`
	// Estate is the national roll-up of every organisation.
	Estate *OrgSummary `json:"estate"`
	// Orgs in hierarchy order: each organisation before its children.
	Orgs []*OrgSummary `json:"orgs"`
	// New lists the new and regressed findings, worst first.
	New []Finding `json:"new"`
	// Resolved lists the findings resolved at this run.
	Resolved []Finding `json:"resolved"`
	// Risks are the worst open failures, by severity then age; RiskTotal
	// counts all open failures.
	Risks     []Finding    `json:"risks"`
	RiskTotal int          `json:"risk_total"`
	Standards []Compliance `json:"standards"`
	// Trend is the estate over the last runs, oldest first.
	Trend []TrendPoint `json:"trend"`
	// Findings are every finding of the run.
	Findings []Finding `json:"-"`
	// Unowned are the first maxUnowned names in scope that no estate
	// domain owns (UnownedSource); UnownedTotal counts them all.
	Unowned      []Unowned `json:"unowned,omitempty"`
	UnownedTotal int       `json:"unowned_total,omitempty"`

	byCode map[string]*OrgSummary
	parent map[string]string
	meta   map[string]check.Meta
}

// Org returns the organisation with the code, or nil.
func (s *Summary) Org(code string) *OrgSummary { return s.byCode[code] }

// Meta returns the catalogue entry of a check id (a bare one if unknown).
func (s *Summary) Meta(id string) check.Meta {
	if m, ok := s.meta[id]; ok {
		return m
	}
	return check.Meta{ID: id, Title: id}
}

// Title is the catalogue title of a check id, or the id.
func (s *Summary) Title(id string) string {
	if t := s.Meta(id).Title; t != "" {
		return t
	}
	return id
}

// At is the time the report speaks for: the start of the run.
func (s *Summary) At() time.Time { return s.Run.Started }

// DaysOpen is how long a finding has been failing at this run, in days.
func (s *Summary) DaysOpen(f Finding) int {
	if f.FirstSeen.IsZero() || !f.FirstSeen.Before(s.At()) {
		return 0
	}
	return int(s.At().Sub(f.FirstSeen) / (24 * time.Hour))
}

// Within reports whether the organisation code is root or below it.
func (s *Summary) Within(code, root string) bool {
	for i := 0; code != "" && i <= len(s.byCode); i++ {
		if code == root {
			return true
		}
		code = s.parent[code]
	}
	return false
}

// Ancestors lists the organisations above code, nearest first.
func (s *Summary) Ancestors(code string) []*OrgSummary {
	var out []*OrgSummary
	for p := s.parent[code]; p != "" && len(out) <= len(s.byCode); p = s.parent[p] {
		out = append(out, s.byCode[p])
	}
	return out
}

// BuildSummary builds the summary of a run (runID 0: the newest) with the
// default Options.
func BuildSummary(ctx context.Context, src Source, catalogue []check.Meta, runID int64) (*Summary, error) {
	return Options{}.Build(ctx, src, catalogue, runID)
}

// Build builds the summary of a run (runID 0: the newest).
//
// Counts are per asset × check id, by the worst outcome of its findings.
// Changes are the source's (Finding.Change); when the source keeps no
// lifecycle (no change, first-seen time or resolved finding at all), they
// are derived from the previous run (see deriveChanges).
// Older runs are read one at a time for the trend, so memory holds at most
// two runs' findings.
func (o Options) Build(ctx context.Context, src Source, catalogue []check.Meta, runID int64) (*Summary, error) {
	o = o.withDefaults()
	runs, err := src.Runs(ctx)
	if err != nil {
		return nil, fmt.Errorf("reports: runs: %w", err)
	}
	if len(runs) == 0 {
		return nil, ErrNoRuns
	}
	idx := 0
	if runID != 0 {
		idx = slices.IndexFunc(runs, func(r Run) bool { return r.ID == runID })
		if idx < 0 {
			return nil, fmt.Errorf("reports: run %d not found", runID)
		}
	}
	// The trend takes the reported run and the finished runs before it;
	// an interrupted run's partial results would distort it.
	trendRuns := []Run{runs[idx]}
	for _, r := range runs[idx+1:] {
		if len(trendRuns) == o.TrendRuns {
			break
		}
		if !r.Finished.IsZero() {
			trendRuns = append(trendRuns, r)
		}
	}
	s := &Summary{Run: runs[idx], meta: map[string]check.Meta{}}
	if len(trendRuns) > 1 {
		s.Previous = &trendRuns[1]
	}
	for _, m := range catalogue {
		if _, dup := s.meta[m.ID]; !dup {
			s.meta[m.ID] = m
		}
	}
	orgs, err := src.Organisations(ctx)
	if err != nil {
		return nil, fmt.Errorf("reports: organisations: %w", err)
	}
	findings := func(r Run) ([]Finding, error) {
		fs, err := src.Findings(ctx, r.ID)
		if err != nil {
			return nil, fmt.Errorf("reports: findings of run %d: %w", r.ID, err)
		}
		normalise(fs)
		return fs, nil
	}
	cur, err := findings(s.Run)
	if err != nil {
		return nil, err
	}
	resolved, err := src.Resolved(ctx, s.Run.ID)
	if err != nil {
		return nil, fmt.Errorf("reports: resolved at run %d: %w", s.Run.ID, err)
	}
	normalise(resolved)
	var prev []Finding // the first run: everything failing is new
	if !hasLifecycle(cur) && len(resolved) == 0 {
		if s.Previous != nil {
			if prev, err = findings(*s.Previous); err != nil {
				return nil, err
			}
		}
		resolved = deriveChanges(prev, cur, s.Run.Started)
	}
	s.Findings = cur
	s.Resolved = mergeResolved(resolved, cur)

	s.Trend = make([]TrendPoint, len(trendRuns))
	s.count(orgs)
	for i, r := range trendRuns {
		fs := cur
		switch {
		case i == 1 && prev != nil:
			fs = prev
		case i > 0:
			if fs, err = findings(r); err != nil {
				return nil, err
			}
		}
		s.addTrendPoint(len(trendRuns)-1-i, r, fs) // oldest first
	}
	for _, n := range append([]*OrgSummary{s.Estate}, s.Orgs...) {
		n.Score = n.Total.Score()
		if len(trendRuns) > 1 {
			n.Previous = n.Trend[len(n.Trend)-2]
		}
	}
	s.listChecks(catalogue)
	s.listFindings(o.MaxRisks)
	s.Standards = s.compliance(cur)
	if us, ok := src.(UnownedSource); ok {
		if s.Unowned, err = us.Unowned(ctx, s.Run.ID); err != nil {
			return nil, fmt.Errorf("reports: unowned names: %w", err)
		}
		s.UnownedTotal = len(s.Unowned)
		s.Unowned = s.Unowned[:min(len(s.Unowned), maxUnowned)]
	}
	return s, nil
}

// maxUnowned bounds the unowned names a summary lists.
const maxUnowned = 200

// count builds the hierarchy (every declared organisation, plus implicit
// nodes for owners and parents nobody declares) and counts the reported
// run in it, rolled up to the estate. s.Trend must have its length.
func (s *Summary) count(orgs []Org) {
	var codes []string
	for _, f := range s.Findings {
		codes = append(codes, orgOf(f))
	}
	for _, f := range s.Resolved {
		codes = append(codes, orgOf(f))
	}
	t := buildTree(orgs, codes)
	s.Orgs, s.byCode, s.parent = t.order, t.by, t.parent

	assets := map[string]map[string]bool{}
	for _, n := range s.Orgs {
		n.ByCheck = map[string]Counts{}
		assets[n.Code] = map[string]bool{}
	}
	for k, c := range tally(s.Findings) {
		n := s.byCode[k.org]
		n.Own.add(c.worst, c.accepted)
		bc := n.ByCheck[k.check]
		bc.add(c.worst, c.accepted)
		n.ByCheck[k.check] = bc
		assets[k.org][k.asset] = true
	}
	for _, f := range s.Findings {
		n := s.byCode[orgOf(f)]
		n.Changes = n.Changes.Plus(changeOf(f))
	}
	for _, f := range s.Resolved {
		s.byCode[orgOf(f)].Changes.Resolved++
	}
	for _, n := range s.Orgs {
		n.Total, n.Assets = n.Own, len(assets[n.Code])
	}
	// Pre-order lists parents first, so walking it backwards adds every
	// organisation into its parent after its own children were added.
	s.Estate = &OrgSummary{Org: Org{Name: "All organisations"}, ByCheck: map[string]Counts{}}
	for i := len(s.Orgs) - 1; i >= 0; i-- {
		n := s.Orgs[i]
		up := s.Estate
		if p := s.parent[n.Code]; p != "" {
			up = s.byCode[p]
		}
		up.Total = up.Total.Plus(n.Total)
		up.Changes = up.Changes.Plus(n.Changes)
		up.Assets += n.Assets
		for id, c := range n.ByCheck {
			up.ByCheck[id] = up.ByCheck[id].Plus(c)
		}
	}
	s.Estate.Own = s.Estate.Total
	for _, n := range append([]*OrgSummary{s.Estate}, s.Orgs...) {
		n.Trend = make([]Score, len(s.Trend))
	}
}

// addTrendPoint records one run's scores at position i of the trend.
func (s *Summary) addTrendPoint(i int, r Run, fs []Finding) {
	totals, estate := s.rollup(fs)
	s.Trend[i] = TrendPoint{Run: r, Counts: estate, Score: estate.Score()}
	s.Estate.Trend[i] = estate.Score()
	for _, n := range s.Orgs {
		n.Trend[i] = totals[n.Code].Score()
	}
}

// listChecks lists the catalogue entries with findings in this run, in
// catalogue order, then ids the catalogue lacks.
func (s *Summary) listChecks(catalogue []check.Meta) {
	seen := map[string]bool{}
	for _, f := range s.Findings {
		seen[f.CheckID] = true
	}
	for _, m := range catalogue {
		if seen[m.ID] {
			s.Checks = append(s.Checks, m)
			delete(seen, m.ID)
		}
	}
	var extra []string
	for id := range seen {
		extra = append(extra, id)
	}
	slices.Sort(extra)
	for _, id := range extra {
		s.Checks = append(s.Checks, s.Meta(id))
	}
}

// listFindings lists the new and returning problems and the worst risks.
// Accepted risks are in neither.
func (s *Summary) listFindings(maxRisks int) {
	for _, f := range s.Findings {
		if f.Status == StatusAccepted {
			continue
		}
		if f.Change == ChangeNew || f.Change == ChangeRegressed {
			s.New = append(s.New, f)
		}
		if f.Outcome == check.Fail {
			s.Risks = append(s.Risks, f)
		}
	}
	sortWorstFirst(s.New)
	sortWorstFirst(s.Risks)
	sortWorstFirst(s.Resolved)
	s.RiskTotal = len(s.Risks)
	s.Risks = s.Risks[:min(len(s.Risks), maxRisks)]
}

// rollup counts one run's findings per organisation, rolled up the
// hierarchy of the reported run, and for the estate. Owners missing from
// the hierarchy count towards the estate only.
func (s *Summary) rollup(fs []Finding) (map[string]Counts, Counts) {
	totals := map[string]Counts{}
	var estate Counts
	for k, c := range tally(fs) {
		t := totals[k.org]
		t.add(c.worst, c.accepted)
		totals[k.org] = t
		estate.add(c.worst, c.accepted)
	}
	for i := len(s.Orgs) - 1; i >= 0; i-- {
		code := s.Orgs[i].Code
		if p := s.parent[code]; p != "" {
			totals[p] = totals[p].Plus(totals[code])
		}
	}
	return totals, estate
}

type cellKey struct{ org, check, asset string }

type cell struct {
	worst    check.Outcome
	accepted bool // every finding at the worst outcome is accepted
}

// tally reduces findings to asset × check cells with their worst outcome:
// a check that emits several findings for one asset counts once.
func tally(fs []Finding) map[cellKey]*cell {
	m := make(map[cellKey]*cell, len(fs))
	for _, f := range fs {
		k := cellKey{orgOf(f), f.CheckID, f.Asset.Key()}
		acc := f.Status == StatusAccepted
		o := f.Outcome
		if f.Severity == check.Info && o.Counts() {
			// Info is "record only, never fail" (checks.md): shown in
			// the findings, never counted against the score.
			o = check.NA
		}
		c := m[k]
		if c == nil {
			m[k] = &cell{worst: o, accepted: acc}
			continue
		}
		switch w := check.Worst(c.worst, o); {
		case w != c.worst:
			c.worst, c.accepted = w, acc
		case o == w:
			c.accepted = c.accepted && acc
		}
	}
	return m
}

func changeOf(f Finding) ChangeCounts {
	if f.Status == StatusAccepted {
		if f.Outcome.Counts() {
			return ChangeCounts{Accepted: 1}
		}
		return ChangeCounts{}
	}
	switch f.Change {
	case ChangeNew:
		return ChangeCounts{New: 1}
	case ChangeRegressed:
		return ChangeCounts{Regressed: 1}
	case ChangeStillOpen:
		return ChangeCounts{StillOpen: 1}
	}
	return ChangeCounts{} // resolved findings are counted from Summary.Resolved
}

func orgOf(f Finding) string {
	if f.Asset.Org == "" {
		return UnassignedCode
	}
	return f.Asset.Org
}

// normalise fills what a source may leave out. An outcome the contract does
// not know becomes unknown: never fail.
func normalise(fs []Finding) {
	for i := range fs {
		f := &fs[i]
		if f.ID == "" {
			f.ID = f.Finding.ID()
		}
		if !f.Outcome.Valid() {
			f.Outcome = check.Unknown
		}
		if f.Status == "" && f.Outcome.Counts() {
			f.Status = StatusOpen
		}
	}
}

// hasLifecycle reports whether the source keeps finding lifecycles: any
// change or first-seen time. Then its classification stands, even when it
// reports no change at all.
func hasLifecycle(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Change != "" || !f.FirstSeen.IsZero() })
}

// deriveChanges classifies the findings of a run against the previous run's
// (none on the first run: everything failing is new) when the source keeps
// no lifecycle. It sees two runs only, so a finding
// that fails again after a pass is "new" (the store's lifecycle is what
// tells regressed apart). A failing finding that is unknown now is neither
// resolved nor still open: could not tell. It returns the resolved findings.
func deriveChanges(prev, cur []Finding, at time.Time) []Finding {
	before := make(map[string]Finding, len(prev))
	for _, f := range prev {
		// Worst outcome per id, should a source repeat one.
		if p, ok := before[f.ID]; !ok || check.Worst(p.Outcome, f.Outcome) != p.Outcome {
			before[f.ID] = f
		}
	}
	var resolved []Finding
	for i := range cur {
		f := &cur[i]
		p, had := before[f.ID]
		wasOpen := had && p.Outcome.Counts()
		switch {
		case f.Outcome.Counts() && wasOpen:
			f.Change = ChangeStillOpen
			if f.FirstSeen.IsZero() {
				f.FirstSeen = p.FirstSeen
			}
		case f.Outcome.Counts():
			f.Change = ChangeNew
			if f.FirstSeen.IsZero() {
				f.FirstSeen = at
			}
		case f.Outcome == check.Pass && wasOpen:
			f.Change, f.Status = ChangeResolved, StatusResolved
			if f.FirstSeen.IsZero() {
				f.FirstSeen = p.FirstSeen
			}
			resolved = append(resolved, *f)
		}
	}
	return resolved
}

// mergeResolved joins the source's resolved findings with those of the run
// marked resolved, once each.
func mergeResolved(resolved, cur []Finding) []Finding {
	seen := map[string]bool{}
	var out []Finding
	for _, f := range resolved {
		if !seen[f.ID] {
			seen[f.ID] = true
			out = append(out, f)
		}
	}
	for _, f := range cur {
		if f.Change == ChangeResolved && !seen[f.ID] {
			seen[f.ID] = true
			out = append(out, f)
		}
	}
	return out
}

// sortWorstFirst orders findings by outcome, severity, then age (oldest
// first), then owner, check and asset, so that output is deterministic.
func sortWorstFirst(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := cmp.Compare(outcomeRank(b.Outcome), outcomeRank(a.Outcome)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Severity.Rank(), a.Severity.Rank()); c != 0 {
			return c
		}
		if c := cmp.Compare(b2i(a.FirstSeen.IsZero()), b2i(b.FirstSeen.IsZero())); c != 0 {
			return c
		}
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Asset.Org, b.Asset.Org), cmp.Compare(a.CheckID, b.CheckID),
			cmp.Compare(a.Asset.Name, b.Asset.Name), cmp.Compare(a.ID, b.ID))
	})
}

// outcomeRank orders outcomes for listing: fail, warn, unknown, pass, n/a.
func outcomeRank(o check.Outcome) int {
	switch o {
	case check.Fail:
		return 4
	case check.Warn:
		return 3
	case check.Unknown:
		return 2
	case check.Pass:
		return 1
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
