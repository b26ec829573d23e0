package lab

import (
	"fmt"
	"strings"

	"github.com/nhsx/posture/checks/check"
)

// emailFamily: the SPF and DMARC checks' lab.
var emailFamily = Family{Name: "email", Cases: emailCases, Complete: completeEmail}

// completeEmail lends the records and truth of the email family's all-pass
// case to a domain of another family that publishes no TXT record at the
// domain and no DMARC record, so that a scan of any lab domain has a known
// right answer for the email checks.
func completeEmail(d *Domain, c Case, _ Added, cs []Case) {
	good := goodEmail(cs)
	if c.Family == "email" || good == nil || publishes(d, d.Name, "TXT") || publishes(d, "_dmarc."+d.Name, "") {
		return
	}
	b := good.Build(d.Name)
	d.Records = append(d.Records, b.Records...)
	d.Drop = append(d.Drop, b.Drop...)
	d.Expect = append(d.Expect, b.Expect...)
}

// goodEmail finds the email case whose every expectation is a pass (or n/a)
// and that needs nothing unusual (no drops, no hosts): the baseline that
// domains of other families borrow. nil if the lab has none.
func goodEmail(cs []Case) *Case {
	for i, c := range cs {
		if c.Family != "email" {
			continue
		}
		d := c.Build("lab-probe.nhs.uk")
		if d.Name != "lab-probe.nhs.uk" || len(d.Expect) == 0 || len(d.Drop) > 0 || len(d.Hosts) > 0 {
			continue
		}
		ok := true
		for _, e := range d.Expect {
			if e.Outcome != check.Pass && e.Outcome != check.NA {
				ok = false
				break
			}
		}
		if ok {
			return &cs[i]
		}
	}
	return nil
}

// emailCases are the SPF and DMARC behaviours of the lab. Each Build puts
// every record at or below the domain it is given, so that a case can be
// stamped onto many lab domains; the lab DNS is authoritative for that
// domain. Expect lists the worst outcome of every email.spf.* and
// email.dmarc.* catalogue id on the domain asset.
func emailCases() []Case {
	return []Case{
		// The all-pass baseline first: the lab lends its records to the
		// domains of other families.
		mailCase("email-good", func(d string, m *mailDomain) {
			m.dmarc = []string{"v=DMARC1; p=reject; sp=reject; rua=mailto:dmarc@" + d}
		}, want{}),

		// SPF
		// no SPF record: record fails, the rest do not apply.
		mailCase("spf-none", func(d string, m *mailDomain) {
			m.spf = nil
		}, spfGate(check.Fail)),
		// two SPF records: permerror.
		mailCase("spf-two-records", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 ip4:192.0.2.10 -all", "v=spf1 include:_spf." + d + " -all"}
		}, spfGate(check.Fail)),
		// +all lets anyone send.
		mailCase("spf-plus-all", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 ip4:192.0.2.10 +all"}
		}, want{"email.spf.all": check.Fail}),
		// ~all on a sending domain is accepted (DMARC enforces).
		mailCase("spf-softfail", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 ip4:192.0.2.10 ~all"}
		}, want{}),
		// -all, with an mx term.
		mailCase("spf-hardfail", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 mx ip4:192.0.2.10 -all"}
		}, want{}),
		// no all mechanism: the default result is neutral.
		mailCase("spf-no-all", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 ip4:192.0.2.10"}
		}, want{"email.spf.all": check.Fail}),
		// exactly 10 lookups through nested includes: at the limit.
		mailCase("spf-lookups-10", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 include:a._spf." + d + " include:b._spf." + d + " -all"}
			m.extra = nestedIncludes(d, false)
		}, want{"email.spf.lookups": check.Warn}),
		// 11 lookups through nested includes: permerror.
		mailCase("spf-lookups-11", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 include:a._spf." + d + " include:b._spf." + d + " -all"}
			m.extra = nestedIncludes(d, true)
		}, want{"email.spf.lookups": check.Fail}),
		// include loop: permerror.
		mailCase("spf-include-loop", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 include:loop1._spf." + d + " -all"}
			m.extra = []string{
				txt("loop1._spf."+d, "v=spf1 ip4:192.0.2.11 include:loop2._spf."+d+" -all"),
				txt("loop2._spf."+d, "v=spf1 ip4:192.0.2.12 include:loop1._spf."+d+" -all"),
			}
		}, want{"email.spf.lookups": check.Fail}),
		// three void lookups (NXDOMAIN): permerror.
		mailCase("spf-void-3", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 a:gone1." + d + " a:gone2." + d + " mx:gone3." + d + " ip4:192.0.2.10 -all"}
		}, want{"email.spf.void": check.Fail}),
		// redirect= to a record ending in -all.
		mailCase("spf-redirect", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 redirect=_spf." + d}
			m.extra = []string{txt("_spf."+d, "v=spf1 ip4:192.0.2.0/24 -all")}
		}, want{}),
		// include of a name with no SPF record: permerror.
		mailCase("spf-include-missing", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 include:_spf." + d + " -all"}
		}, want{"email.spf.record": check.Fail}),
		// an include whose DNS never answers: the counts are unknown.
		mailCase("spf-include-timeout", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 include:slow._spf." + d + " -all"}
			m.drop = []string{"slow._spf." + d}
		}, want{"email.spf.record": check.Unknown, "email.spf.lookups": check.Unknown, "email.spf.void": check.Unknown}),
		// the ptr mechanism (SHOULD NOT be used).
		mailCase("spf-ptr", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 ptr ip4:192.0.2.10 -all"}
		}, want{"email.spf.syntax": check.Warn}),
		// six includes (each with two more lookups) after -all: never
		// evaluated (RFC 7208 §5.1), so they count toward neither limit;
		// all not last fails the all rule and warns on syntax.
		mailCase("spf-after-all", func(d string, m *mailDomain) {
			terms := ""
			for i := 1; i <= 6; i++ {
				inc := fmt.Sprintf("i%d._spf.%s", i, d)
				terms += " include:" + inc
				m.extra = append(m.extra, txt(inc, fmt.Sprintf("v=spf1 a:gone%d.%s mx:gone%d.%s -all", i, d, i, d)))
			}
			m.spf = []string{"v=spf1 ip4:192.0.2.10 -all" + terms}
		}, want{"email.spf.all": check.Fail, "email.spf.syntax": check.Warn}),
		// an a term whose host answers A but whose AAAA never answers: the
		// A answer settles the lookup and the IPv4 void counts, so nothing
		// is unknown. (h1 has an A record and a CNAME to a dropped name,
		// which the lab DNS follows only for the types h1 lacks: a way to
		// drop one type of one name.)
		mailCase("spf-aaaa-timeout", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 a:h1." + d + " ip4:192.0.2.10 -all"}
			m.extra = []string{rr("h1."+d, "A", "192.0.2.31"), rr("h1."+d, "CNAME", "slow."+d+".")}
			m.drop = []string{"slow." + d}
		}, want{}),
		// three a terms whose hosts have only AAAA records: void lookups
		// for every sender over IPv4 (the type asked is A), so permerror.
		mailCase("spf-void-ipv6-only-hosts", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 a:v1." + d + " a:v2." + d + " a:v3." + d + " ip4:192.0.2.10 -all"}
			for i := 1; i <= 3; i++ {
				m.extra = append(m.extra, rr(fmt.Sprintf("v%d.%s", i, d), "AAAA", fmt.Sprintf("2001:db8::%d", 40+i)))
			}
		}, want{"email.spf.void": check.Fail}),
		// three a terms whose hosts have only A records: void lookups for
		// senders over IPv6 only, which pyspf receivers turn into permerror.
		mailCase("spf-void-ipv4-only-hosts", func(d string, m *mailDomain) {
			m.spf = []string{"v=spf1 a:h1." + d + " a:h2." + d + " a:h3." + d + " -all"}
			for i := 1; i <= 3; i++ {
				m.extra = append(m.extra, rr(fmt.Sprintf("h%d.%s", i, d), "A", fmt.Sprintf("192.0.2.%d", 40+i)))
			}
		}, want{"email.spf.void": check.Warn}),

		// DMARC
		// no DMARC record: record fails, the rest do not apply.
		mailCase("dmarc-none", func(d string, m *mailDomain) {
			m.dmarc = nil
		}, dmarcGate(check.Fail)),
		// two DMARC records: receivers discard both.
		mailCase("dmarc-two-records", func(d string, m *mailDomain) {
			m.dmarc = []string{"v=DMARC1; p=reject; rua=mailto:dmarc@" + d, "v=DMARC1; p=none; rua=mailto:dmarc@" + d}
		}, dmarcGate(check.Fail)),
		// p=none: monitoring only.
		mailCase("dmarc-p-none", func(d string, m *mailDomain) {
			m.dmarc = []string{"v=DMARC1; p=none; rua=mailto:dmarc@" + d}
		}, want{"email.dmarc.policy": check.Fail}),
		// p=quarantine on half the failing mail.
		mailCase("dmarc-quarantine-pct50", func(d string, m *mailDomain) {
			m.dmarc = []string{"v=DMARC1; p=quarantine; pct=50; rua=mailto:dmarc@" + d}
		}, want{"email.dmarc.policy": check.Warn, "email.dmarc.enforcement-scope": check.Warn}),
		// p=reject with sp=reject and pct=100.
		mailCase("dmarc-reject", func(d string, m *mailDomain) {
			m.dmarc = []string{"v=DMARC1; p=reject; sp=reject; pct=100; rua=mailto:dmarc@" + d}
		}, want{}),
		// the asset is mail.<domain>; only the organisational domain has a record.
		subdomainCase("dmarc-org-only", "v=DMARC1; p=reject; rua=mailto:dmarc@%s", want{}),
		// sp=none under p=reject, judged on the domain that publishes it.
		mailCase("dmarc-sp-none", func(d string, m *mailDomain) {
			m.dmarc = []string{"v=DMARC1; p=reject; sp=none; rua=mailto:dmarc@" + d}
		}, want{"email.dmarc.sp-np": check.Fail}),
		// sp=none under p=reject, inherited by mail.<domain>.
		subdomainCase("dmarc-sp-none-subdomain",
			"v=DMARC1; p=reject; sp=none; rua=mailto:dmarc@%s",
			want{"email.dmarc.policy": check.Fail, "email.dmarc.sp-np": check.Fail}),
		// a DMARC record whose p= is not a policy (p=bogus) beside a valid
		// rua=: receivers read it as p=none (RFC 7489 §6.6.3 step 6.1).
		mailCase("dmarc-malformed", func(d string, m *mailDomain) {
			m.dmarc = []string{"v=DMARC1; p=bogus; rua=mailto:dmarc@" + d}
		}, want{"email.dmarc.record": check.Fail, "email.dmarc.policy": check.Fail}),
		// p=bogus and no rua= at mail.<domain>: the record stops policy
		// discovery but receivers apply no DMARC at all (RFC 7489 §6.6.3
		// step 6.2), so the parent's p=reject does not apply either.
		subdomainOwnCase("dmarc-bad-policy-no-rua", "v=DMARC1; p=bogus",
			"v=DMARC1; p=reject; rua=mailto:dmarc@%s", dmarcGate(check.Fail)),
		// "v=DMARC1 p=reject" at mail.<domain> (no ";" after the version):
		// receivers discard it and the organisational domain's
		// p=quarantine applies; the broken record fails.
		subdomainOwnCase("dmarc-no-separator", "v=DMARC1 p=reject",
			"v=DMARC1; p=quarantine; rua=mailto:dmarc@%s",
			want{"email.dmarc.record": check.Fail, "email.dmarc.policy": check.Warn}),
		// the version tag not first, and no policy above (the lab's nhs.uk
		// publishes none): the record fails, no policy is in force.
		mailCase("dmarc-version-not-first", func(d string, m *mailDomain) {
			m.dmarc = []string{"p=reject; v=DMARC1; rua=mailto:dmarc@" + d}
		}, dmarcGate(check.Fail)),
		// fo=2 is not a valid option: receivers ignore the tag (RFC 7489
		// §6.3) and p=reject stands; a low-severity warning on the record.
		mailCase("dmarc-bad-optional-tag", func(d string, m *mailDomain) {
			m.dmarc = []string{"v=DMARC1; p=reject; fo=2; rua=mailto:dmarc@" + d}
		}, want{"email.dmarc.record": check.Warn}),
		// a lab-only public suffix: the lab domain publishes psd=y (RFC
		// 9989 §4.7), so for mail.<domain>, which publishes nothing, it is
		// a public-suffix policy (RFC 9091) and not an organisation's
		// record: the record fails (no record of its own), the policy is
		// its sp=quarantine (np= is for names that do not exist), and the
		// reports go to the suffix's operator. The lab's own nhs.uk
		// publishes no _dmarc record, so no other lab domain changes.
		subdomainCase("dmarc-psd-only", "v=DMARC1; p=reject; sp=quarantine; np=reject; psd=y; rua=mailto:psd@%s",
			want{"email.dmarc.record": check.Fail, "email.dmarc.policy": check.Warn, "email.dmarc.reporting": check.Fail}),
		// _dmarc never answers: unknown, never fail.
		mailCase("dmarc-timeout", func(d string, m *mailDomain) {
			m.drop = []string{"_dmarc." + d}
		}, dmarcGate(check.Unknown, check.Unknown)),
		// no aggregate reports.
		// the estate lists a domain that does not exist (lapsed, or a typo):
		// nothing to judge, so every rule is unknown (nxdomain), never fail.
		{Name: "domain-nxdomain", Family: "email", Build: func(d string) Domain {
			return Domain{Name: d, Absent: true, Expect: all(EmailCheckIDs, check.Unknown).expect(d)}
		}},
		mailCase("dmarc-no-rua", func(d string, m *mailDomain) {
			m.dmarc = []string{"v=DMARC1; p=reject"}
		}, want{"email.dmarc.reporting": check.Fail}),
		// the retired NCSC address beside the trust's own: a note.
		mailCase("dmarc-ncsc-legacy-rua", func(d string, m *mailDomain) {
			m.dmarc = []string{"v=DMARC1; p=reject; rua=mailto:dmarc-rua@dmarc.service.gov.uk,mailto:dmarc@" + d}
		}, want{}),
		// only the retired NCSC address: nobody reads the reports.
		mailCase("dmarc-ncsc-only-rua", func(d string, m *mailDomain) {
			m.dmarc = []string{"v=DMARC1; p=reject; rua=mailto:dmarc-rua@dmarc.service.gov.uk"}
		}, want{"email.dmarc.reporting": check.Warn}),

		// Parked domains (GOV.UK: Protect domains that don't send email).
		// parked domain with the GOV-PARK records (null MX, v=spf1 -all, p=reject, strict alignment).
		mailCase("parked-gov-bundle", func(d string, m *mailDomain) {
			m.mx = []string{"0 ."}
			m.spf = []string{"v=spf1 -all"}
			m.dmarc = []string{"v=DMARC1;p=reject;sp=reject;adkim=s;aspf=s;fo=1;rua=mailto:dmarc@" + d}
			m.extra = []string{txt("*._domainkey."+d, "v=DKIM1; p=")}
		}, want{}),
		// parked domain with ~all and p=quarantine.
		mailCase("parked-weak", func(d string, m *mailDomain) {
			m.mx = []string{"0 ."}
			m.spf = []string{"v=spf1 ~all"}
			m.dmarc = []string{"v=DMARC1; p=quarantine; rua=mailto:dmarc@" + d}
		}, want{"email.spf.all": check.Fail, "email.dmarc.policy": check.Fail, "email.dmarc.sp-np": check.Fail}),
	}
}

// EmailCheckIDs are the catalogue ids every email case states an outcome
// for.
var EmailCheckIDs = []string{
	"email.spf.record", "email.spf.all", "email.spf.lookups", "email.spf.void", "email.spf.syntax",
	"email.dmarc.record", "email.dmarc.policy", "email.dmarc.sp-np", "email.dmarc.enforcement-scope", "email.dmarc.reporting",
}

// want overrides the default outcome (pass) of some ids.
type want map[string]check.Outcome

// spfGate: the SPF record rule has outcome o and the rules that need a
// record do not apply.
func spfGate(o check.Outcome) want {
	return want{"email.spf.record": o, "email.spf.all": check.NA, "email.spf.lookups": check.NA,
		"email.spf.void": check.NA, "email.spf.syntax": check.NA}
}

// dmarcGate: the DMARC record rule has outcome o and the others rest (n/a
// by default: no record in force).
func dmarcGate(o check.Outcome, rest ...check.Outcome) want {
	r := check.NA
	if len(rest) > 0 {
		r = rest[0]
	}
	return want{"email.dmarc.record": o, "email.dmarc.policy": r, "email.dmarc.sp-np": r,
		"email.dmarc.enforcement-scope": r, "email.dmarc.reporting": r}
}

func (w want) expect(name string) []Expect {
	out := make([]Expect, 0, len(EmailCheckIDs))
	for _, id := range EmailCheckIDs {
		o, ok := w[id]
		if !ok {
			o = check.Pass
		}
		out = append(out, Expect{Kind: check.KindDomain, Name: name, CheckID: id, Outcome: o})
	}
	return out
}

// SharedSPF is the sender policy every baseline lab domain includes.
const SharedSPF = "_spf." + MailZone

// sharedSPFRecords is what the lab publishes at SharedSPF.
func sharedSPFRecords() []string { return []string{txt(SharedSPF, "v=spf1 ip4:192.0.2.10 -all")} }

// mailDomain is a well-configured mail domain that a case then changes. It
// has no MX unless a case sets one: the lab points domains without MX at its
// shared MX hosts, which lie outside the domain. No outcome here depends on
// that MX, since every case's SPF names a sender (so the domain is not
// parked) unless the case sets a null MX.
type mailDomain struct {
	mx    []string // MX rdata at the domain
	spf   []string // SPF TXT at the domain
	dmarc []string // TXT at _dmarc.<domain>
	extra []string // further records
	drop  []string // names the lab DNS never answers
}

// baseline's SPF includes the lab's shared sender policy, as most NHS
// domains include NHSmail's: a scan looks it up once, whatever the number
// of domains (SharedSPF).
func baseline(d string) *mailDomain {
	return &mailDomain{
		spf:   []string{"v=spf1 include:" + SharedSPF + " -all"},
		dmarc: []string{"v=DMARC1; p=reject; rua=mailto:dmarc@" + d},
	}
}

func (m *mailDomain) records(d string) []string {
	var out []string
	for _, x := range m.mx {
		out = append(out, rr(d, "MX", x))
	}
	for _, s := range m.spf {
		out = append(out, txt(d, s))
	}
	// Every lab domain has some other TXT, as real ones do, so "no SPF"
	// is told apart from "no TXT".
	out = append(out, txt(d, "lab-verification="+strings.ReplaceAll(d, ".", "-")))
	for _, s := range m.dmarc {
		out = append(out, txt("_dmarc."+d, s))
	}
	return append(out, m.extra...)
}

// mailCase is a case on the lab domain itself.
func mailCase(name string, change func(d string, m *mailDomain), w want) Case {
	return Case{Name: name, Family: "email", Build: func(d string) Domain {
		m := baseline(d)
		change(d, m)
		return Domain{Name: d, Records: m.records(d), Drop: m.drop, Expect: w.expect(d)}
	}}
}

// subdomainCase is a case on mail.<domain>, a mail domain of its own with
// no DMARC record, under a domain whose _dmarc record (dmarcFmt, %s = the
// domain) applies to it through the tree walk.
func subdomainCase(name, dmarcFmt string, w want) Case {
	return Case{Name: name, Family: "email", Build: func(d string) Domain {
		sub := "mail." + d
		m := baseline(sub)
		m.dmarc = nil
		recs := append(m.records(sub), txt("_dmarc."+d, fmt.Sprintf(dmarcFmt, d)))
		return Domain{Name: sub, Records: recs, Expect: w.expect(sub)}
	}}
}

// subdomainOwnCase is subdomainCase where mail.<domain> publishes own as
// its _dmarc TXT record.
func subdomainOwnCase(name, own, dmarcFmt string, w want) Case {
	c := subdomainCase(name, dmarcFmt, w)
	build := c.Build
	c.Build = func(d string) Domain {
		dom := build(d)
		dom.Records = append(dom.Records, txt("_dmarc."+dom.Name, own))
		return dom
	}
	return c
}

// nestedIncludes builds a._spf, b._spf and c._spf under d: 8 lookups below
// the two top-level includes, 9 with the mx term.
func nestedIncludes(d string, withMX bool) []string {
	b := "v=spf1 a:h6." + d + " a:h7." + d + " -all"
	if withMX {
		b = "v=spf1 a:h6." + d + " a:h7." + d + " mx:" + d + " -all"
	}
	out := []string{
		txt("a._spf."+d, "v=spf1 include:c._spf."+d+" a:h1."+d+" a:h2."+d+" a:h3."+d+" -all"),
		txt("c._spf."+d, "v=spf1 a:h4."+d+" a:h5."+d+" -all"),
		txt("b._spf."+d, b),
	}
	// Dual-stack hosts: no term is void for any sender, so the cases are
	// about the lookup count alone.
	for i := 1; i <= 7; i++ {
		out = append(out, rr(fmt.Sprintf("h%d.%s", i, d), "A", fmt.Sprintf("192.0.2.%d", 20+i)),
			rr(fmt.Sprintf("h%d.%s", i, d), "AAAA", fmt.Sprintf("2001:db8::%d", 20+i)))
	}
	return out
}

func rr(owner, typ, data string) string {
	return fmt.Sprintf("%s. 300 IN %s %s", owner, typ, data)
}

// txt makes a TXT record, split into 255-byte character-strings.
func txt(owner, s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, quote(s[:255]))
		s = s[255:]
	}
	parts = append(parts, quote(s))
	return rr(owner, "TXT", strings.Join(parts, " "))
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
