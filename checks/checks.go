// Package checks lists every check posture runs: All is the one explicit
// list (no init-time registration), so what runs is what is written here.
package checks

import (
	"sort"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/email"
)

// All returns every check collector, in catalogue order.
func All() []check.Check {
	return []check.Check{
		email.SPF(), email.DMARC(),
	}
}

// Catalogue returns every catalogue entry of every check, sorted by id.
func Catalogue() []check.Meta {
	var out []check.Meta
	for _, c := range All() {
		out = append(out, c.Rules()...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
