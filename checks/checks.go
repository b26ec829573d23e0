// Package checks lists every check posture runs: All is the one explicit
// list (no init-time registration), so what runs is what is written here.
// Everything else about a family (its ids, its asset kinds for discovery,
// its policy section, the catalogue) is derived from these collectors.
package checks

import (
	"slices"
	"sort"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnscheck"
	"github.com/nhsx/posture/checks/email"
	"github.com/nhsx/posture/checks/mtasts"
	"github.com/nhsx/posture/checks/nuclei"
	"github.com/nhsx/posture/checks/repo"
	"github.com/nhsx/posture/checks/smtptls"
	"github.com/nhsx/posture/checks/tlscheck"
	"github.com/nhsx/posture/checks/webcheck"
)

// All returns every check collector.
func All() []check.Check {
	return []check.Check{
		email.SPF(), email.DMARC(),
		email.DKIM(),
		email.NullMX(),
		email.PTR(),
		email.DANECheck(),
		tlscheck.Protocols(), tlscheck.Certificate(),
		smtptls.Check(),
		mtasts.Check(),
		mtasts.TLSRPTCheck(),
		dnscheck.CAACheck(),
		dnscheck.DNSSECCheck(),
		dnscheck.WildcardCheck(),
		dnscheck.DanglingCNAMECheck(),
		dnscheck.Delegation(),
		dnscheck.AXFRCheck(),
		dnscheck.RDAPCheck(),
		webcheck.Check(),
		repo.Check(), repo.OrgCheck(), repo.Secrets(),
		nuclei.Check(),
		webcheck.SecurityTxtCheck(),
	}
}

// Families lists the families of the catalogue, sorted.
func Families() []string {
	var out []string
	for _, m := range Catalogue() {
		if !slices.Contains(out, m.Family) {
			out = append(out, m.Family)
		}
	}
	sort.Strings(out)
	return out
}

// Sections are the policy sections the collectors declare, once each.
func Sections() []check.Sectioner {
	var out []check.Sectioner
	seen := map[string]bool{}
	for _, c := range All() {
		h, ok := c.(check.PolicyHolder)
		if !ok || h.PolicySection() == nil || seen[h.PolicySection().Key()] {
			continue
		}
		seen[h.PolicySection().Key()] = true
		out = append(out, h.PolicySection())
	}
	return out
}

// LoadPolicy reads a policy file with every family's section registered.
func LoadPolicy(path string) (*check.Policy, error) { return check.LoadPolicy(path, Sections()) }

// ParsePolicy parses policy bytes with every family's section registered.
func ParsePolicy(name string, b []byte) (*check.Policy, error) {
	return check.ParsePolicy(name, b, Sections())
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
