package reports

import (
	"strings"

	"github.com/nhsx/posture/checks/check"
)

// ScoreVersion changes whenever the way scores are computed changes
// (weights, warn credit, standards): stored rollups of another version are
// computed again from the run's findings.
const ScoreVersion = 1

// Weight is how much a check counts towards a score, by its catalogue
// severity: a critical check counts eight times a low one. Info checks are
// recorded, never scored.
func Weight(s check.Severity) int64 {
	switch s {
	case check.Critical:
		return 8
	case check.High:
		return 4
	case check.Medium:
		return 2
	case check.Low:
		return 1
	}
	return 0
}

// Tally is a score's arithmetic: the cells (asset × check, by their worst
// outcome) and the weighted points they earned of those they could earn.
// Points are kept in half points so that they stay integers: a pass earns
// twice the check's weight, a warn (needs attention) once, a fail nothing.
// Unknown and n/a cells earn and cost nothing: a check that could not be
// made is never a failure, nor a pass.
type Tally struct {
	Counts
	Earned   int64 `json:"earned"`   // half points earned
	Possible int64 `json:"possible"` // half points at stake
}

// Plus returns the sum of two tallies.
func (t Tally) Plus(u Tally) Tally {
	return Tally{Counts: t.Counts.Plus(u.Counts), Earned: t.Earned + u.Earned, Possible: t.Possible + u.Possible}
}

// Score is the weighted share of the points at stake that were earned.
func (t Tally) Score() Score {
	if t.Possible <= 0 {
		return Score{}
	}
	return Score{Value: 100 * float64(t.Earned) / float64(t.Possible), Valid: true}
}

// add counts one cell of a check of weight w.
func (t *Tally) add(o check.Outcome, accepted bool, w int64) {
	t.Counts.add(o, accepted)
	switch o {
	case check.Pass:
		t.Earned += 2 * w
		t.Possible += 2 * w
	case check.Warn:
		t.Earned += w
		t.Possible += 2 * w
	case check.Fail:
		t.Possible += 2 * w
	}
}

// AllChecks is the standard key of the score over every check.
const AllChecks = ""

// Tallies are the tallies of one organisation (or the nation) by standard
// id; AllChecks is the score over every check.
type Tallies map[string]Tally

func (ts Tallies) plus(us Tallies) {
	for k, u := range us {
		ts[k] = ts[k].Plus(u)
	}
}

// ScoreRow is one organisation's rolled-up tally on one standard at one
// run, as stored at the run's completion. Org "" is the nation.
type ScoreRow struct {
	RunID    int64  `json:"run"`
	Org      string `json:"org"`
	Parent   string `json:"parent,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Standard string `json:"standard"` // a BoardStandard id, or AllChecks
	Tally
}

// scorer knows each check's weight and the standards it counts towards.
type scorer struct {
	meta map[string]check.Meta
	memo map[scorerKey]scorerVal
}

type scorerKey struct {
	check string
	kind  check.Kind
}

type scorerVal struct {
	weight int64
	stds   []string
	idx    []int // of stds in BoardStandards, plus one (0 is AllChecks)
}

func newScorer(meta map[string]check.Meta) *scorer {
	return &scorer{meta: meta, memo: map[scorerKey]scorerVal{}}
}

// of is the weight and standards of a finding's check: the catalogue's
// severity and citations, so that a check weighs the same whatever its
// findings say; a check the catalogue lacks takes its finding's.
func (sc *scorer) of(f *Finding) scorerVal {
	k := scorerKey{f.CheckID, f.Asset.Kind}
	if v, ok := sc.memo[k]; ok {
		return v
	}
	m, ok := sc.meta[f.CheckID]
	sev, refs, family := m.Severity, m.Standards, m.Family
	if !ok {
		sev, refs = f.Severity, f.Standards
	}
	if family == "" {
		family, _, _ = strings.Cut(f.CheckID, ".")
	}
	v := scorerVal{weight: Weight(sev), stds: standardsOf(family, f.Asset.Kind, refs)}
	for _, id := range v.stds {
		for i, b := range BoardStandards {
			if b.ID == id {
				v.idx = append(v.idx, i+1)
			}
		}
	}
	sc.memo[k] = v
	return v
}

// maxStandards bounds BoardStandards (computeScores counts in arrays).
const maxStandards = 15

func init() {
	if len(BoardStandards) > maxStandards {
		panic("reports: more board standards than maxStandards")
	}
}

// computeScores is the one place scores are computed: every organisation's
// own tallies (its own assets) from a run's cells (tally), by standard.
// Rolling them up the hierarchy is rollUp's.
func computeScores(cells map[cellKey]*cell, sc *scorer) map[string]Tallies {
	// Arrays indexed by standard while counting: a national run has some
	// 90,000 cells, each counting towards three standards or so.
	acc := map[string]*[maxStandards + 1]Tally{}
	for k, c := range cells {
		ts := acc[k.org]
		if ts == nil {
			ts = new([maxStandards + 1]Tally)
			acc[k.org] = ts
		}
		v := sc.of(c.f)
		ts[0].add(c.worst, c.accepted, v.weight)
		for _, i := range v.idx {
			ts[i].add(c.worst, c.accepted, v.weight)
		}
	}
	own := make(map[string]Tallies, len(acc))
	for org, ts := range acc {
		m := Tallies{AllChecks: ts[0]}
		for i, b := range BoardStandards {
			if ts[i+1] != (Tally{}) {
				m[b.ID] = ts[i+1]
			}
		}
		own[org] = m
	}
	return own
}

// rollUp adds each organisation's tallies into its ancestors' and the
// nation's: it returns every node's rolled-up tallies and the nation's.
// order is pre-order (parents first).
func rollUp(own map[string]Tallies, order []*OrgSummary, parent map[string]string) (map[string]Tallies, Tallies) {
	total := make(map[string]Tallies, len(order))
	for _, n := range order {
		ts := Tallies{}
		ts.plus(own[n.Code])
		total[n.Code] = ts
	}
	nation := Tallies{}
	for i := len(order) - 1; i >= 0; i-- {
		code := order[i].Code
		if p := parent[code]; p != "" {
			total[p].plus(total[code])
		} else {
			nation.plus(total[code])
		}
	}
	return total, nation
}

// scoreRows flattens rolled-up tallies into rows for the store.
func scoreRows(runID int64, t *tree, total map[string]Tallies, nation Tallies) []ScoreRow {
	var rows []ScoreRow
	emit := func(code, parent, kind string, ts Tallies) {
		for std, tl := range ts {
			rows = append(rows, ScoreRow{RunID: runID, Org: code, Parent: parent, Kind: kind, Standard: std, Tally: tl})
		}
	}
	emit("", "", "national", nation)
	for _, n := range t.order {
		kind := n.Kind
		if n.Implicit && kind == "" {
			kind = "implicit"
		}
		emit(n.Code, t.parent[n.Code], kind, total[n.Code])
	}
	return rows
}
