package reports

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	// TrendRuns bounds the trend of a source that keeps no score history
	// (no ScoreStore), whose older runs' findings are read again (default
	// 12, at least 2). A ScoreStore's trend covers HistoryDays.
	TrendRuns int
	// HistoryDays is how far back trends go (default 365).
	HistoryDays int
	// OrgTrends loads every organisation's score at every run of the
	// trend, for the organisation pages' charts. Without it only the
	// nation's trend is loaded, and organisations' scores at the runs the
	// board compares with (the previous run, 7, 30, 90 and 365 days ago).
	OrgTrends bool
	// TrendsFor limits OrgTrends to these organisations (one
	// organisation's report needs its own only).
	TrendsFor []string
	MaxRisks  int // worst risks and oldest findings listed (default 25)
}

func (o Options) withDefaults() Options {
	if o.TrendRuns <= 0 {
		o.TrendRuns = 12
	}
	o.TrendRuns = max(o.TrendRuns, 2)
	if o.HistoryDays <= 0 {
		o.HistoryDays = 365
	}
	if o.MaxRisks <= 0 {
		o.MaxRisks = 25
	}
	return o
}

// Windows are the periods, in days, that trends compare over.
var Windows = [4]int{7, 30, 90, 365}

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
	// One decimal: most organisations score in the nineties, where whole
	// points would hide the differences a league table is for.
	return fmt.Sprintf("%.1f%%", s.Value)
}

// ChangeCounts count findings by their change since the previous run.
// Findings under a risk acceptance are counted in Accepted only.
type ChangeCounts struct {
	New       int `json:"new"`
	Regressed int `json:"regressed"`
	Resolved  int `json:"resolved"`
	StillOpen int `json:"still_open"`
	Accepted  int `json:"accepted,omitempty"`
	// Reopened counts open findings whose risk acceptance lapsed.
	Reopened int `json:"reopened,omitempty"`
}

// Plus returns the sum of two change counts.
func (c ChangeCounts) Plus(d ChangeCounts) ChangeCounts {
	return ChangeCounts{c.New + d.New, c.Regressed + d.Regressed, c.Resolved + d.Resolved, c.StillOpen + d.StillOpen,
		c.Accepted + d.Accepted, c.Reopened + d.Reopened}
}

// Any reports whether anything changed: new, regressed, reopened or
// resolved.
func (c ChangeCounts) Any() bool { return c.New+c.Regressed+c.Resolved+c.Reopened > 0 }

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
	Own     Counts            `json:"own"`
	Total   Counts            `json:"total"`
	ByCheck map[string]Counts `json:"by_check"`
	Changes ChangeCounts      `json:"changes"`
	// Tallies are the rolled-up weighted tallies by standard id
	// (AllChecks: every check); Score is Tallies[AllChecks].Score().
	Tallies  Tallies `json:"tallies"`
	Score    Score   `json:"score"`
	Previous Score   `json:"previous"` // score at the previous run
	// Ago are the scores by standard at the runs Summary.Ago compares
	// with (7, 30, 90 and 365 days before); nil where there is none.
	Ago [len(Windows)]Tallies `json:"-"`
	// Trend is the rolled-up score at each run of Summary.Trend (loaded
	// for organisations with Options.OrgTrends; always for the estate).
	Trend []Score `json:"trend,omitempty"`
}

// ScoreAgo is the organisation's score on a standard Windows[i] days ago.
func (o *OrgSummary) ScoreAgo(i int, std string) Score {
	if o.Ago[i] == nil {
		return Score{}
	}
	return o.Ago[i][std].Score()
}

// Change is the change in score on a standard since Windows[i] days ago,
// in points.
func (o *OrgSummary) Change(i int, std string) (float64, bool) {
	now, then := o.Tallies[std].Score(), o.ScoreAgo(i, std)
	if !now.Valid || !then.Valid {
		return 0, false
	}
	return now.Value - then.Value, true
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
	// Tallies are the nation's by standard id.
	Tallies Tallies `json:"tallies"`
}

// StandardScore is the nation on one board standard.
type StandardScore struct {
	BoardStandard
	Tally
	Score Score `json:"score"`
	// Checks are the catalogue ids of this run counting towards it.
	Checks []string `json:"checks"`
	// Trend is the score at each run of Summary.Trend.
	Trend []Score             `json:"trend"`
	Ago   [len(Windows)]Score `json:"-"`
}

// Comparison is a run the report compares with: the newest run started
// at least Days days before the reported one (a day's slack for nightly
// runs that start late), or none.
type Comparison struct {
	Days int  `json:"days"`
	Run  *Run `json:"run,omitempty"`
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
	// New lists the new, regressed and reopened findings, worst first.
	New []Finding `json:"new"`
	// Resolved lists the findings resolved at this run.
	Resolved []Finding `json:"resolved"`
	// Risks are the worst open failures, by severity then age; RiskTotal
	// counts all open failures.
	Risks     []Finding `json:"risks"`
	RiskTotal int       `json:"risk_total"`
	// Oldest are the open failures and warnings open longest (accepted
	// risks left out); OpenTotal counts them all.
	Oldest    []Finding `json:"oldest"`
	OpenTotal int       `json:"open_total"`
	// Standards are the nation's scores on the board standards that any
	// check of this run counts towards, in board order.
	Standards []StandardScore `json:"standards"`
	// Trend is the estate over HistoryDays, oldest first, the reported
	// run last.
	Trend []TrendPoint `json:"trend"`
	// Ago are the runs compared with, Windows[i] days before.
	Ago [len(Windows)]Comparison `json:"ago"`
	// Untested groups the unknown results by why (UnknownClass).
	Untested []UntestedGroup `json:"untested"`
	// Findings are every finding of the run.
	Findings []Finding `json:"-"`
	// Unowned are the first maxUnowned names in scope that no estate
	// domain owns (UnownedSource); UnownedTotal counts them all.
	Unowned      []Unowned `json:"unowned,omitempty"`
	UnownedTotal int       `json:"unowned_total,omitempty"`
	// UnownedBySource counts every unowned name by how it was found.
	UnownedBySource []UnownedGroup `json:"unowned_by_source,omitempty"`

	byCode map[string]*OrgSummary
	parent map[string]string
	meta   map[string]check.Meta
	scorer *scorer

	// The findings and resolved findings of each organisation's own
	// assets, indexed once for organisation pages.
	indexOnce sync.Once
	ownFinds  map[string][]Finding
	ownSolved map[string][]Finding
}

// below lists the organisation and every organisation under it.
func (s *Summary) below(code string) []string {
	out := []string{code}
	for i := 0; i < len(out) && i <= len(s.byCode); i++ {
		if n := s.byCode[out[i]]; n != nil {
			out = append(out, n.Children...)
		}
	}
	return out
}

// findingsBelow returns the findings and resolved findings of the assets
// of an organisation and those under it.
func (s *Summary) findingsBelow(code string) (fs, resolved []Finding) {
	s.indexOnce.Do(func() {
		s.ownFinds, s.ownSolved = map[string][]Finding{}, map[string][]Finding{}
		for _, f := range s.Findings {
			s.ownFinds[orgOf(f)] = append(s.ownFinds[orgOf(f)], f)
		}
		for _, f := range s.Resolved {
			s.ownSolved[orgOf(f)] = append(s.ownSolved[orgOf(f)], f)
		}
	})
	for _, c := range s.below(code) {
		fs = append(fs, s.ownFinds[c]...)
		resolved = append(resolved, s.ownSolved[c]...)
	}
	return fs, resolved
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

// DaysOpen is how long a finding has been failing at this run, in days:
// the source's count if it keeps one, else from its first-seen time.
func (s *Summary) DaysOpen(f Finding) int {
	if f.DaysOpen > 0 {
		return f.DaysOpen
	}
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
// Counts are per asset × check id, by the worst outcome of its findings;
// scores weigh them by severity (see Tally). Changes are the source's
// (Finding.Change); when the source keeps no lifecycle (no change,
// first-seen time or resolved finding at all), they are derived from the
// previous run (see deriveChanges). Trends come from the stored rollups of
// a ScoreStore, so older runs' findings are never read again (a run
// without rollups is computed once and stored); a source without them is
// read run by run, TrendRuns at most.
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
	s := &Summary{Run: runs[idx], meta: map[string]check.Meta{}}
	// The previous run is the newest finished one before: an interrupted
	// run's partial results would distort any comparison.
	for _, r := range runs[idx+1:] {
		if !r.Finished.IsZero() {
			s.Previous = &r
			break
		}
	}
	for _, m := range catalogue {
		if _, dup := s.meta[m.ID]; !dup {
			s.meta[m.ID] = m
		}
	}
	s.scorer = newScorer(s.meta)
	orgs, err := src.Organisations(ctx)
	if err != nil {
		return nil, fmt.Errorf("reports: organisations: %w", err)
	}
	// The run's findings and what it resolved are read at once: on a
	// national store each is a second of database work.
	var resolved []Finding
	resErr := make(chan error, 1)
	go func() {
		var err error
		resolved, err = src.Resolved(ctx, s.Run.ID)
		resErr <- err
	}()
	cur, err := findingsOf(ctx, src, s.Run.ID)
	if rerr := <-resErr; err == nil && rerr != nil {
		err = fmt.Errorf("reports: resolved at run %d: %w", s.Run.ID, rerr)
	}
	if err != nil {
		return nil, err
	}
	normalise(resolved)
	if !hasLifecycle(cur) && len(resolved) == 0 {
		// No lifecycle: every failure is open (none is pending).
		for i := range cur {
			if cur[i].Status == "" && cur[i].Outcome.Counts() {
				cur[i].Status = StatusOpen
			}
		}
		var prev []Finding // the first run: everything failing is new
		if s.Previous != nil {
			if prev, err = findingsOf(ctx, src, s.Previous.ID); err != nil {
				return nil, err
			}
		}
		resolved = deriveChanges(prev, cur, s.Run.Started)
	}
	s.Findings = cur
	s.Resolved = mergeResolved(resolved, cur)

	s.count(orgs)
	if err := s.history(ctx, src, orgs, runs[idx+1:], o); err != nil {
		return nil, err
	}
	s.listChecks(catalogue)
	s.listFindings(o.MaxRisks)
	s.listStandards()
	s.Untested = groupUntested(s.Findings)
	if us, ok := src.(UnownedSource); ok {
		if s.Unowned, err = us.Unowned(ctx, s.Run.ID); err != nil {
			return nil, fmt.Errorf("reports: unowned names: %w", err)
		}
		s.UnownedTotal = len(s.Unowned)
		s.UnownedBySource = groupUnowned(s.Unowned)
		s.Unowned = s.Unowned[:min(len(s.Unowned), maxUnowned)]
	}
	return s, nil
}

func findingsOf(ctx context.Context, src Source, runID int64) ([]Finding, error) {
	fs, err := src.Findings(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("reports: findings of run %d: %w", runID, err)
	}
	normalise(fs)
	return fs, nil
}

// maxUnowned bounds the unowned names a summary lists.
const maxUnowned = 200

// count builds the hierarchy (every declared organisation, plus implicit
// nodes for owners and parents nobody declares) and counts and scores the
// reported run in it, rolled up to the estate.
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
	cells := tally(s.Findings)
	for k, c := range cells {
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
	total, nation := rollUp(computeScores(cells, s.scorer), t.order, t.parent)
	for _, n := range s.Orgs {
		n.Tallies = total[n.Code]
		n.Score = n.Tallies[AllChecks].Score()
	}
	s.Estate.Tallies = nation
	s.Estate.Score = nation[AllChecks].Score()
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

// listFindings lists the new and returning problems, the worst risks and
// the oldest open findings. Accepted risks and pending failures are in
// none of them.
func (s *Summary) listFindings(maxRisks int) {
	for _, f := range s.Findings {
		if f.Status == StatusAccepted || pending(f) {
			continue
		}
		if f.Change == ChangeNew || f.Change == ChangeRegressed || f.Change == ChangeReopened {
			s.New = append(s.New, f)
		}
		if f.Outcome == check.Fail {
			s.Risks = append(s.Risks, f)
		}
		if f.Outcome.Counts() && f.Severity != check.Info {
			s.Oldest = append(s.Oldest, f)
		}
	}
	sortWorstFirst(s.New)
	sortWorstFirst(s.Risks)
	sortWorstFirst(s.Resolved)
	sortOldestFirst(s.Oldest)
	s.RiskTotal = len(s.Risks)
	s.Risks = s.Risks[:min(len(s.Risks), maxRisks)]
	s.OpenTotal = len(s.Oldest)
	s.Oldest = s.Oldest[:min(len(s.Oldest), maxRisks)]
}

// listStandards scores the nation on every board standard that a check of
// this run counts towards.
func (s *Summary) listStandards() {
	checks := map[string][]string{}
	seen := map[scorerKey]bool{}
	for _, f := range s.Findings {
		k := scorerKey{f.CheckID, f.Asset.Kind}
		if seen[k] {
			continue
		}
		seen[k] = true
		for _, id := range s.scorer.of(&f).stds {
			if !slices.Contains(checks[id], f.CheckID) {
				checks[id] = append(checks[id], f.CheckID)
			}
		}
	}
	rank := map[string]int{}
	for i, m := range s.Checks {
		rank[m.ID] = i
	}
	for _, ids := range checks {
		slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(rank[a], rank[b]) })
	}
	for _, b := range BoardStandards {
		t, ok := s.Estate.Tallies[b.ID]
		if !ok {
			continue
		}
		st := StandardScore{BoardStandard: b, Tally: t, Score: t.Score(), Checks: checks[b.ID]}
		for _, p := range s.Trend {
			st.Trend = append(st.Trend, p.Tallies[b.ID].Score())
		}
		for i := range Windows {
			st.Ago[i] = s.Estate.ScoreAgo(i, b.ID)
		}
		s.Standards = append(s.Standards, st)
	}
}

type cellKey struct{ org, check, asset string }

type cell struct {
	worst    check.Outcome
	accepted bool     // every finding at the worst outcome is accepted
	f        *Finding // one of the cell's findings: its check and asset
}

// tally reduces findings to asset × check cells with their worst outcome:
// a check that emits several findings for one asset counts once.
func tally(fs []Finding) map[cellKey]*cell {
	m := make(map[cellKey]*cell, len(fs))
	for i := range fs {
		f := &fs[i]
		k := cellKey{orgOf(*f), f.CheckID, f.Asset.Key()}
		acc := f.Status == StatusAccepted
		o := f.Outcome
		if f.Severity == check.Info && o.Counts() {
			// Info is "record only, never fail" (checks.md): shown in
			// the findings, never counted against the score.
			o = check.NA
		}
		c := m[k]
		if c == nil {
			m[k] = &cell{worst: o, accepted: acc, f: f}
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
	case ChangeReopened:
		return ChangeCounts{Reopened: 1}
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
	}
}

// pending is a failure the lifecycle has not announced yet (not held for
// its runs): counted in the scores, not listed as a risk.
func pending(f Finding) bool { return f.Outcome.Counts() && f.Status == "" }

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

// sortOldestFirst orders findings by first seen (oldest first, unknown
// age last), then as sortWorstFirst.
func sortOldestFirst(fs []Finding) {
	sortWorstFirst(fs)
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := cmp.Compare(b2i(a.FirstSeen.IsZero()), b2i(b.FirstSeen.IsZero())); c != 0 {
			return c
		}
		return a.FirstSeen.Compare(b.FirstSeen)
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

// UntestedGroup counts the unknown results of one reason class: what could
// not be tested, and why.
type UntestedGroup struct {
	Class   string   `json:"class"`
	Label   string   `json:"label"`
	Count   int      `json:"count"`
	Checks  []string `json:"checks"`  // check ids affected, most affected first (at most 5)
	Reasons []string `json:"reasons"` // the reasons as recorded (at most 5)
}

// untestedClasses words the reason classes of unknown results for readers
// who are not engineers, in the order the board lists ties.
var untestedClasses = []struct{ class, label string }{
	{"timeout", "No answer in time"},
	{"refused", "Connection refused or host unreachable"},
	{"blocked", "The probe was blocked (dropped or slowed to a halt)"},
	{"needs-admin", "Needs a token with administrator rights"},
	{"no-selector", "No DKIM selector known to test"},
	{"dns", "DNS failure (SERVFAIL, REFUSED)"},
	{"nxdomain", "The name does not exist in DNS"},
	{"malformed", "The server answered something unreadable"},
	{"too-large", "The answer was too large to judge"},
	{"scope", "Outside the scan's scope"},
	{"interrupted", "The run was interrupted"},
	{"error", "Scanner error"},
	{"other", "Other reasons"},
}

// UnknownClass puts the reason of an unknown result in its class.
func UnknownClass(reason string) string {
	switch r := strings.ToLower(strings.TrimSpace(reason)); {
	case r == "timeout" || strings.Contains(r, "timed out"):
		return "timeout"
	case r == "unreachable" || r == "refused" || strings.Contains(r, "refused"):
		return "refused"
	case strings.HasPrefix(r, "needs-admin"):
		return "needs-admin"
	case r == "blocked" || r == "no-selector" || r == "dns" || r == "nxdomain" || r == "malformed" ||
		r == "too-large" || r == "scope":
		return r
	case r == "canceled":
		return "interrupted"
	case r == "internal" || r == "error" || r == "":
		return "error"
	}
	return "other"
}

func untestedLabel(class string) string {
	for _, c := range untestedClasses {
		if c.class == class {
			return c.label
		}
	}
	return class
}

// groupUntested groups the unknown results by reason class, most first.
func groupUntested(fs []Finding) []UntestedGroup {
	type acc struct {
		n       int
		checks  map[string]int
		reasons map[string]bool
	}
	by := map[string]*acc{}
	for _, f := range fs {
		if f.Outcome != check.Unknown {
			continue
		}
		c := UnknownClass(f.Reason)
		a := by[c]
		if a == nil {
			a = &acc{checks: map[string]int{}, reasons: map[string]bool{}}
			by[c] = a
		}
		a.n++
		a.checks[f.CheckID]++
		a.reasons[line(f.Reason)] = true
	}
	var out []UntestedGroup
	for _, c := range untestedClasses {
		a := by[c.class]
		if a == nil {
			continue
		}
		g := UntestedGroup{Class: c.class, Label: c.label, Count: a.n}
		for id := range a.checks {
			g.Checks = append(g.Checks, id)
		}
		slices.SortFunc(g.Checks, func(x, y string) int {
			return cmp.Or(cmp.Compare(a.checks[y], a.checks[x]), cmp.Compare(x, y))
		})
		g.Checks = g.Checks[:min(len(g.Checks), 5)]
		for r := range a.reasons {
			if r != "" {
				g.Reasons = append(g.Reasons, r)
			}
		}
		slices.Sort(g.Reasons)
		g.Reasons = g.Reasons[:min(len(g.Reasons), 5)]
		out = append(out, g)
	}
	slices.SortStableFunc(out, func(x, y UntestedGroup) int { return cmp.Compare(y.Count, x.Count) })
	return out
}

// UnownedGroup counts the unowned names found one way.
type UnownedGroup struct {
	Source   string   `json:"source"`
	Count    int      `json:"count"`
	Examples []string `json:"examples"` // the first few names, sorted
}

// groupUnowned counts unowned names by how they were found, most first.
func groupUnowned(us []Unowned) []UnownedGroup {
	by := map[string]*UnownedGroup{}
	for _, u := range us {
		src := line(u.Source)
		if src == "" {
			src = "unknown"
		}
		g := by[src]
		if g == nil {
			g = &UnownedGroup{Source: src}
			by[src] = g
		}
		g.Count++
		g.Examples = append(g.Examples, line(u.Name))
	}
	out := make([]UnownedGroup, 0, len(by))
	for _, g := range by {
		slices.Sort(g.Examples)
		g.Examples = slices.Compact(g.Examples)
		g.Examples = g.Examples[:min(len(g.Examples), 5)]
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b UnownedGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Source, b.Source))
	})
	return out
}
