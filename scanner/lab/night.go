package lab

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
)

// Change is one thing a lab domain's operator changed between two nights.
type Change struct {
	Domain string
	What   string
}

// nightly are the changes NextNight makes: two trusts fix a finding and one
// weakens its DMARC policy, so a second scan has something fixed and
// something new to report. Each rewrites one TXT RRset and states the
// verdicts that change.
var nightly = []struct {
	caseName string
	what     string
	owner    func(d string) string
	records  func(d string) []string
	expect   want
}{
	{"spf-plus-all", "SPF now ends in -all instead of +all",
		func(d string) string { return d },
		func(d string) []string {
			return []string{txt(d, "v=spf1 ip4:192.0.2.10 -all"), txt(d, "lab-verification="+strings.ReplaceAll(d, ".", "-"))}
		},
		want{"email.spf.all": check.Pass}},
	{"dmarc-p-none", "DMARC policy raised from p=none to p=reject",
		func(d string) string { return "_dmarc." + d },
		func(d string) []string { return []string{txt("_dmarc."+d, "v=DMARC1; p=reject; rua=mailto:dmarc@"+d)} },
		want{"email.dmarc.policy": check.Pass}},
	{"dmarc-reject", "DMARC policy lowered from p=reject to p=none",
		func(d string) string { return "_dmarc." + d },
		func(d string) []string { return []string{txt("_dmarc."+d, "v=DMARC1; p=none; rua=mailto:dmarc@"+d)} },
		want{"email.dmarc.policy": check.Fail}},
}

// NextNight changes the lab as its operators might between two nightly
// scans (see nightly), on the first stamp of each case concerned, and moves
// the ground truth with it. It returns what changed. Call it between scans,
// not during one.
func (l *Lab) NextNight() ([]Change, error) {
	var out []Change
	for _, n := range nightly {
		d := domainName(n.caseName, 1)
		i, ok := l.byDomain[d]
		if !ok {
			continue // a lab built without this case
		}
		owner, recs := n.owner(d), n.records(d)
		if err := l.dns.Replace(owner, dns.TypeTXT, recs...); err != nil {
			return out, fmt.Errorf("lab: next night: %w", err)
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
			if o, ok := n.expect[e.CheckID]; ok && e.Kind == check.KindDomain && e.Name == d {
				dom.Expect[j].Outcome = o
			}
		}
		out = append(out, Change{Domain: d, What: n.what})
	}
	return out, nil
}
