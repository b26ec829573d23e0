// Package checks lists every check posture runs: All is the one explicit
// list (no init-time registration), so what runs is what is written here.
package checks

import (
	"slices"
	"sort"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/email"
	"github.com/nhsx/posture/checks/smtptls"
	"github.com/nhsx/posture/checks/tlscheck"
)

// All returns every check collector.
func All() []check.Check {
	return []check.Check{
		email.SPF(), email.DMARC(),
		tlscheck.Protocols(), tlscheck.Certificate(),
		smtptls.Check(),
	}
}

// Catalogue returns every catalogue entry, sorted by id. An id that two
// collectors emit (tls.no-ssl on web and mail hosts) is listed once, with
// the targets of both.
func Catalogue() []check.Meta {
	byID := map[string]int{}
	var out []check.Meta
	for _, c := range All() {
		for _, m := range c.Rules() {
			i, seen := byID[m.ID]
			if !seen {
				byID[m.ID] = len(out)
				m.Targets = slices.Clone(m.Targets)
				out = append(out, m)
				continue
			}
			for _, k := range m.Targets {
				if !slices.Contains(out[i].Targets, k) {
					out[i].Targets = append(out[i].Targets, k)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
