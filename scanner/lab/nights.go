package lab

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
)

// StartCases starts a lab of only the named cases (see Cases), stamped as
// cfg.Domains says: a small lab for tests that script many nights. Only the
// families of those cases state truth.
func StartCases(ctx context.Context, cfg Config, names ...string) (*Lab, error) {
	all := cases()
	for _, n := range names {
		found := false
		for _, c := range all {
			if c.Name == n {
				cfg.cases = append(cfg.cases, c)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("lab: no case %q", n)
		}
	}
	if len(cfg.cases) == 0 {
		return nil, fmt.Errorf("lab: StartCases needs at least one case")
	}
	return Start(ctx, cfg)
}

// SetTXT is an operator editing their zone between two nights: the TXT
// RRset at owner (the domain or a name below it) becomes values (none:
// removed), and the ground truth of the domain moves to expect (catalogue
// id → worst outcome on the domain asset; ids not given keep theirs).
// Call it between scans, not during one.
func (l *Lab) SetTXT(domain, owner string, values []string, expect map[string]check.Outcome) error {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	owner = strings.ToLower(strings.TrimSuffix(owner, "."))
	i, ok := l.byDomain[domain]
	if !ok {
		return fmt.Errorf("lab: set TXT: no domain %s", domain)
	}
	if !under(owner, domain) && !under(owner, zoneOf(domain)) {
		return fmt.Errorf("lab: set TXT: %s is not in the zone of %s", owner, domain)
	}
	recs := make([]string, len(values))
	for j, v := range values {
		recs[j] = txt(owner, v)
	}
	if err := l.dns.Replace(owner, dns.TypeTXT, recs...); err != nil {
		return fmt.Errorf("lab: set TXT: %w", err)
	}
	dom := &l.domains[i]
	kept := dom.Records[:0:0]
	for _, r := range dom.Records {
		if o, t := ownerType(r); !(t == "TXT" && strings.EqualFold(strings.TrimSuffix(o, "."), owner)) {
			kept = append(kept, r)
		}
	}
	dom.Records = append(kept, recs...)
	for j, e := range dom.Expect {
		if o, ok := expect[e.CheckID]; ok && e.Kind == check.KindDomain && e.Name == domain {
			dom.Expect[j].Outcome = o
		}
	}
	return nil
}

// zoneOf is the stamped zone a lab domain is in: lab-<case>[-n].nhs.uk,
// which a case's domain is or is below.
func zoneOf(domain string) string {
	labels := strings.Split(domain, ".")
	for k := range labels {
		if strings.HasPrefix(labels[k], "lab-") {
			return strings.Join(labels[k:], ".")
		}
	}
	return domain
}
