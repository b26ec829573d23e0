package reports

import (
	"cmp"
	"slices"
	"strings"

	"github.com/nhsx/posture/checks/check"
)

// Compliance is how the assets fare on the checks that cite one standard
// (Section "") or one section of it. It is evidence relevant to the
// standard, not a verdict on it: CAF and DSPT outcomes are judged by people.
type Compliance struct {
	Standard string   `json:"standard"`
	Section  string   `json:"section,omitempty"`
	Checks   []string `json:"checks"` // catalogue ids citing it
	// Assets: Failing fail or warn at least one of the checks; Passing pass
	// at least one and fail none; Unknown could not be told on any.
	Passing int   `json:"passing"`
	Failing int   `json:"failing"`
	Unknown int   `json:"unknown"`
	Share   Score `json:"share"` // Passing / (Passing + Failing)
	// Unverified marks a citation not confirmed from the primary document:
	// reports keep the reference but do not quote it.
	Unverified bool         `json:"unverified,omitempty"`
	Sections   []Compliance `json:"sections,omitempty"`
}

// Label names the standard as reports print it: "CAF B3.b".
func (c Compliance) Label() string {
	return refLabel(check.Ref{Standard: c.Standard, Section: c.Section})
}

func refLabel(r check.Ref) string {
	return strings.TrimSpace(oneLine(r.Standard) + " " + oneLine(r.Section))
}

// refsOf is the standards a finding cites, or its catalogue entry's.
func (s *Summary) refsOf(f Finding) []check.Ref {
	if len(f.Standards) > 0 {
		return f.Standards
	}
	return s.meta[f.CheckID].Standards
}

// compliance measures every standard cited by the findings, per asset.
func (s *Summary) compliance(fs []Finding) []Compliance {
	type key struct{ std, sec string }
	const (
		unknown = iota + 1
		passing
		failing
	)
	state := map[key]map[string]int{}
	checks := map[key]map[string]bool{}
	unverified := map[key]bool{}
	for _, f := range fs {
		var st int
		switch {
		case f.Outcome.Counts():
			st = failing
		case f.Outcome == check.Pass:
			st = passing
		case f.Outcome == check.Unknown:
			st = unknown
		default:
			continue // n/a: the standard does not apply to the asset
		}
		asset := orgOf(f) + "\x00" + f.Asset.Key()
		seen := map[key]bool{}
		for _, r := range s.refsOf(f) {
			std := strings.TrimSpace(r.Standard)
			if std == "" {
				continue
			}
			keys := []key{{std, ""}}
			if sec := strings.TrimSpace(r.Section); sec != "" {
				keys = append(keys, key{std, sec})
			}
			for _, k := range keys {
				if r.Status != "" {
					unverified[k] = true
				}
				if seen[k] {
					continue
				}
				seen[k] = true
				if state[k] == nil {
					state[k], checks[k] = map[string]int{}, map[string]bool{}
				}
				state[k][asset] = max(state[k][asset], st)
				checks[k][f.CheckID] = true
			}
		}
	}
	build := func(k key) Compliance {
		c := Compliance{Standard: k.std, Section: k.sec, Unverified: unverified[k]}
		for id := range checks[k] {
			c.Checks = append(c.Checks, id)
		}
		slices.Sort(c.Checks)
		for _, st := range state[k] {
			switch st {
			case failing:
				c.Failing++
			case passing:
				c.Passing++
			default:
				c.Unknown++
			}
		}
		if n := c.Passing + c.Failing; n > 0 {
			c.Share = Score{Value: 100 * float64(c.Passing) / float64(n), Valid: true}
		}
		return c
	}
	var out []Compliance
	for k := range state {
		if k.sec == "" {
			out = append(out, build(k))
		}
	}
	slices.SortFunc(out, func(a, b Compliance) int { return cmp.Compare(a.Standard, b.Standard) })
	for i := range out {
		for k := range state {
			if k.std == out[i].Standard && k.sec != "" {
				out[i].Sections = append(out[i].Sections, build(k))
			}
		}
		slices.SortFunc(out[i].Sections, func(a, b Compliance) int { return cmp.Compare(a.Section, b.Section) })
	}
	return out
}
