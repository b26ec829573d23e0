package lab

import "github.com/nhsx/posture/checks/check"

// dnsFamily: the DNS checks' lab (dns.caa so far). Every other lab domain
// publishes a CAA record naming the lab CA, so its dns.caa passes; a
// domain that does not exist is unknown (nxdomain).
var dnsFamily = Family{Name: "dns", Cases: dnsCases, Complete: completeDNS}

const labCAA = `0 issue "lab-ca.nhs.uk"`

func completeDNS(d *Domain, c Case, _ Added, _ []Case) {
	switch {
	case d.Absent:
		d.Expect = append(d.Expect, Expect{Kind: check.KindDomain, Name: d.Name, CheckID: "dns.caa", Outcome: check.Unknown})
	case c.Family != "dns" && !publishes(d, d.Name, "CAA") && !publishes(d, d.Name, "CNAME"):
		d.Records = append(d.Records, rr(d.Name, "CAA", labCAA))
		d.Expect = append(d.Expect, Expect{Kind: check.KindDomain, Name: d.Name, CheckID: "dns.caa", Outcome: check.Pass})
	}
}

// dnsCases are the DNS behaviours (checks.md §1.5).
func dnsCases() []Case {
	caa := func(name string, o check.Outcome, build func(d string) Domain) Case {
		return Case{Name: name, Build: func(d string) Domain {
			dom := build(d)
			dom.Expect = append(dom.Expect, Expect{Kind: check.KindDomain, Name: dom.Name, CheckID: "dns.caa", Outcome: o})
			return dom
		}}
	}
	return []Case{
		// One CA named, with an iodef contact.
		caa("caa-good", check.Pass, func(d string) Domain {
			return Domain{Name: d, Records: []string{rr(d, "CAA", `0 issue "letsencrypt.org"`), rr(d, "CAA", `0 iodef "mailto:security@`+d+`"`)}}
		}),
		// No CAA at the domain or above it (the lab's nhs.uk and uk have none).
		caa("caa-none", check.Warn, func(d string) Domain { return Domain{Name: d} }),
		// A subdomain governed by its parent's records (RFC 8659 tree climbing).
		caa("caa-inherited", check.Pass, func(d string) Domain {
			return Domain{Name: "web." + d, Records: []string{rr(d, "CAA", `0 issue "digicert.com"`)}}
		}),
		// A critical property CAs do not know: no CA may issue.
		caa("caa-critical-unknown", check.Fail, func(d string) Domain {
			return Domain{Name: d, Records: []string{rr(d, "CAA", `0 issue "letsencrypt.org"`), rr(d, "CAA", `128 tbs "unknown"`)}}
		}),
		// Only an iodef: any CA may still issue.
		caa("caa-iodef-only", check.Warn, func(d string) Domain {
			return Domain{Name: d, Records: []string{rr(d, "CAA", `0 iodef "mailto:security@`+d+`"`)}}
		}),
	}
}
