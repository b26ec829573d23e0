package email

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/miekg/dns"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/email/dmarc"
	"github.com/nhsx/posture/checks/email/spf"
	"golang.org/x/net/publicsuffix"
)

// Catalogue ids of the DMARC collector. email.dmarc.alignment-parked is
// judged inside email.dmarc.policy for parked domains.
const (
	DMARCRecord    = "email.dmarc.record"
	DMARCPolicy    = "email.dmarc.policy"
	DMARCSPNP      = "email.dmarc.sp-np"
	DMARCScope     = "email.dmarc.enforcement-scope"
	DMARCReporting = "email.dmarc.reporting"
)

const (
	maxWalkNames   = 8 // RFC 9989 tree walk: at most 8 queries
	maxReportAuths = 4 // external report destinations verified per record
)

// DMARCEvidence is what the DMARC collector saw.
//
// Version 2 (this one) differs from version 1 in that the walk goes on
// above the organisational domain to its public suffix (RFC 9091 PSD
// DMARC), a failed lookup there is stored in the walk rather than failing
// the collection, and each level lists the records it discarded as broken.
type DMARCEvidence struct {
	Domain string `json:"domain"`
	// OrgDomain is the organisational domain (public suffix list).
	OrgDomain string `json:"org_domain"`
	// PublicSuffix is the public suffix above OrgDomain, whose _dmarc
	// record is the last the walk asks for (RFC 9091: the public suffix
	// domain's policy applies to organisational domains that publish
	// none); "" when the domain is itself a public suffix.
	PublicSuffix string `json:"public_suffix,omitempty"`
	// Walk is each _dmarc name queried, from the domain upwards, until one
	// held exactly one DMARC record. Only the last level, at PublicSuffix,
	// may hold a lookup that failed: below it a failure is a collection
	// error.
	Walk []DMARCLevel `json:"walk"`
	// Applied is the index in Walk of the level whose single DMARC record
	// stopped the walk (it may still carry no usable policy), -1 for none.
	Applied int `json:"applied"`
	// Reports are the external report destinations checked for
	// authorisation (RFC 7489 §7.1).
	Reports []ReportAuth `json:"report_auth,omitempty"`
	// MX and SPF classify the domain (parked or not).
	MX  Lookup `json:"mx"`
	TXT Lookup `json:"txt"`
}

// DMARCLevel is one step of the tree walk.
type DMARCLevel struct {
	Domain  string   `json:"domain"`
	Lookup  Lookup   `json:"lookup"`            // TXT at _dmarc.<Domain>
	Records []string `json:"records,omitempty"` // the v=DMARC1 records
	// Discarded are the TXT strings meant as DMARC records that receivers
	// discard because their version tag is wrong or out of place
	// (dmarc.MeantAsDMARC): the walk goes on past them.
	Discarded []string `json:"discarded,omitempty"`
}

// ReportAuth is one external report destination and its authorisation
// record, <policy domain>._report._dmarc.<destination>.
type ReportAuth struct {
	Domain     string `json:"domain"` // destination domain
	Lookup     Lookup `json:"lookup"`
	Authorised bool   `json:"authorised"`
}

// DMARC returns the email.dmarc collector.
func DMARC() check.Check {
	return check.New(check.Spec[DMARCEvidence]{
		ID:       "email.dmarc",
		Rules:    dmarcRules,
		Family:   "email",
		Targets:  []check.Kind{check.KindDomain},
		Policy:   Settings,
		Collect:  collectDMARC,
		Evaluate: evaluateDMARC,
		Version:  2,
		Upgrade:  upgradeDMARC,
	})
}

// upgradeDMARC reads version 1 evidence. Version 1 stored every TXT answer,
// so the discarded records are recovered from them, and a walk that found a
// record is complete. A walk that found none stopped at the organisational
// domain without asking the public suffix: that level is added as a lookup
// that could not tell, so the domain's own record is judged and the policy
// in force is unknown until the next scan.
func upgradeDMARC(version int, data json.RawMessage) (DMARCEvidence, error) {
	var ev DMARCEvidence
	if version != 1 {
		return ev, fmt.Errorf("no upgrade from version %d", version)
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, err
	}
	for i := range ev.Walk {
		ev.Walk[i].Discarded = discarded(ev.Walk[i].Lookup.Answers)
	}
	if ps := publicSuffixAbove(ev.Domain, ev.OrgDomain); ev.Applied < 0 && ps != "" && len(ev.Walk) > 0 {
		ev.PublicSuffix = ps
		ev.Walk = append(ev.Walk, DMARCLevel{Domain: ps, Lookup: Lookup{Name: "_dmarc." + ps, Type: "TXT",
			Error: "not looked up: this evidence was collected before the scanner looked for public-suffix DMARC policies; scan again",
			Class: string(check.ErrEvidenceVersion)}})
	}
	return ev, nil
}

func discarded(answers []string) []string {
	var out []string
	for _, s := range answers {
		if dmarc.MeantAsDMARC(s) {
			out = append(out, s)
		}
	}
	return out
}

var rfc9989 = check.Ref{Standard: "RFC 9989 (DMARCbis)", Section: "DNS tree walk; pct removed, t= added", URL: "https://www.rfc-editor.org/rfc/rfc9989", Status: "secondary"}

var dmarcRules = []check.Meta{
	{
		ID: DMARCRecord, Rule: ruleDMARCRecord, Title: "DMARC record published and valid", Severity: check.Critical,
		Description: "The domain publishes its own DMARC record: exactly one TXT record at _dmarc.<domain> starting v=DMARC1, with a valid p=, at most 450 characters. A record receivers discard (no separator after v=DMARC1, the version not first, an invalid p= without rua) fails and the policy they fall back to is judged instead; relying on a parent's or the public suffix's (_dmarc.nhs.uk, RFC 9091) record fails with the policy in force named; an invalid optional tag (fo=2), which receivers ignore, is a low-severity warning.",
		Remediation: "Publish one TXT record at _dmarc.<your domain> such as \"v=DMARC1; p=reject; rua=mailto:dmarc-reports@<your domain>\".",
		Standards: []check.Ref{
			refGovSGE,
			mc("Dmarc rules: OnlyOneDmarcRecord.cs, VersionMustBeFirstTag.cs, PolicyTagMustExist.cs, MaxLengthOf450Characters.cs"),
			refBOD, rfc("7489", "DMARC", "§6.3, §6.6.3 policy discovery", "secondary"), rfc9989,
		},
	},
	{
		ID: DMARCPolicy, Rule: ruleDMARCPolicy, Title: "DMARC policy enforced", Severity: check.High,
		Description: "The policy receivers apply (p=, or sp= when the record is inherited from a parent or the public suffix; p=none when an invalid p= comes with rua): reject passes, quarantine warns, none fails. A parked domain passes only with reject, and should align strictly (adkim=s; aspf=s: the alignment-parked entry).",
		Remediation: "Move the DMARC policy to \"p=reject\" once your aggregate reports show that all your legitimate mail passes SPF or DKIM.",
		Standards: []check.Ref{
			mc("Dmarc rules: PolicyShouldBeQuarantineOrReject.cs (Weak DMARC policy (p=none))"),
			refGovPark, refBOD,
		},
	},
	{
		ID: DMARCSPNP, Rule: ruleDMARCSPNP, Title: "DMARC subdomain policies enforced", Severity: check.Medium,
		Description: "sp= and np=, when present, are quarantine or reject (sp=none fails). A parked domain needs the subdomain policy reject.",
		Remediation: "Set \"sp=reject\" (or remove sp= so that subdomains follow p=), and do not set sp=none or np=none.",
		Standards: []check.Ref{
			mc("Dmarc rules: SubDomainPolicyShouldBeQuarantineOrReject.cs"), refGovPark,
			rfc("9091", "DMARC for public suffix domains: np=", "", ""),
		},
	},
	{
		ID: DMARCScope, Rule: ruleDMARCScope, Title: "DMARC policy applied to all mail", Severity: check.Medium,
		Description: "pct absent or 100, and no t=y: otherwise the policy applies to only part of the failing mail (warn).",
		Remediation: "Remove \"pct=\" (or set pct=100) and \"t=y\" so the policy applies to all failing mail.",
		Standards:   []check.Ref{mc("Dmarc rules: PctValueShouldBe100.cs"), rfc9989},
	},
	{
		ID: DMARCReporting, Rule: ruleDMARCReporting, Title: "DMARC aggregate reports received", Severity: check.Medium,
		Description: "rua= with at least one working mailto: destination (your own domain, or an external one that authorises it); at most 2 URIs, no duplicates. The retired NCSC Mail Check address is a legacy note; ruf must not name it.",
		Remediation: "Add \"rua=mailto:<a mailbox or reporting service you read>\" to the DMARC record and review the reports regularly.",
		Standards: []check.Ref{
			refGovPark,
			{Standard: refGovSGE.Standard, Section: "set up DMARC and TLS reporting and review the data regularly", URL: refGovSGE.URL},
			mc("Dmarc rules: RuaTagShouldHaveUris, RuaTagShouldNotHaveMoreThanTwoUris, RuaTagsShouldBeMailTo, RufTagShouldNotContainDmarcServiceMailBox"),
			rfc("7489", "DMARC", "§7.1 verifying external destinations", "unverified"),
			refCAFC1,
		},
	},
}

// OrgDomain returns the organisational domain of name by the public suffix
// list; name itself when it is a suffix or cannot be judged.
func OrgDomain(name string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return name
	}
	return org
}

// publicSuffixAbove returns the public suffix directly above the
// organisational domain org of domain, "" when there is none (the domain
// is itself a public suffix, or org is not a registrable domain).
func publicSuffixAbove(domain, org string) string {
	ps, _ := publicsuffix.PublicSuffix(domain)
	if ps == "" || ps == org || !strings.HasSuffix(org, "."+ps) {
		return ""
	}
	return ps
}

// walkNames lists the names whose _dmarc record the tree walk queries:
// the domain, then each parent up to the organisational domain, then the
// public suffix ps above it when there is one, at most 8 in all (RFC 9989
// §4.10 skips to the last 7 labels when there are more).
//
// The walk stops at the public suffix where RFC 9091 puts a PSD's policy
// (nhs.uk for an NHS domain). RFC 9989's walk would go on to the top-level
// domain (_dmarc.uk); that name is not asked: no policy is published there
// for the estates this tool scans, and one more name that can fail to
// answer would make every domain without a record of its own unknown.
func walkNames(domain, org, ps string) []string {
	if domain != org && !strings.HasSuffix(domain, "."+org) {
		return []string{domain}
	}
	names := []string{domain}
	for n := domain; n != org; {
		_, n, _ = strings.Cut(n, ".")
		names = append(names, n)
	}
	if ps != "" && strings.HasSuffix(org, "."+ps) {
		names = append(names, ps)
	}
	if len(names) > maxWalkNames {
		names = append(names[:1], names[len(names)-(maxWalkNames-1):]...)
	}
	return names
}

func collectDMARC(ctx context.Context, env *check.Env, a check.Asset) (DMARCEvidence, error) {
	r := dnsq.Over(env.DNS)
	domain := strings.TrimSuffix(strings.ToLower(a.Name), ".")
	ev := DMARCEvidence{Domain: domain, OrgDomain: OrgDomain(domain), Applied: -1}
	ev.PublicSuffix = publicSuffixAbove(domain, ev.OrgDomain)
	for _, name := range walkNames(domain, ev.OrgDomain, ev.PublicSuffix) {
		l := query(ctx, r, "_dmarc."+name, dns.TypeTXT)
		lv := DMARCLevel{Domain: name, Lookup: l}
		if l.failed() {
			if name != ev.PublicSuffix {
				return ev, fmt.Errorf("dmarc: lookup TXT _dmarc.%s: %w", name, &lookupErr{l})
			}
			// Whether a public-suffix policy applies cannot be told, but
			// the domain's own names answered: keep what they say.
			ev.Walk = append(ev.Walk, lv)
			break
		}
		for _, s := range l.Answers {
			if dmarc.IsDMARC(s) {
				lv.Records = append(lv.Records, s)
			}
		}
		lv.Discarded = discarded(l.Answers)
		ev.Walk = append(ev.Walk, lv)
		// RFC 7489 §6.6.3 step 2 and RFC 9989 §4.10 step 2: records that
		// do not start with v=DMARC1 are discarded, and more than one
		// record at a name are all discarded (RFC 9989; RFC 7489 stopped
		// there with no policy): the walk goes on to the parent.
		if len(lv.Records) == 1 {
			ev.Applied = len(ev.Walk) - 1
			break
		}
	}
	// External report destinations are checked for the domain's own
	// records; a public-suffix policy's reports go to its operator, not
	// to this domain's owner, whatever they authorise.
	if ev.Applied >= 0 {
		lv := ev.Walk[ev.Applied]
		if rec, err := dmarc.Parse(lv.Records[0]); err == nil && !publicSuffixPolicy(ev, ev.Applied, rec) {
			ev.Reports = authoriseReports(ctx, env, lv.Domain, rec)
		}
	}
	ev.MX = query(ctx, r, domain, dns.TypeMX)
	ev.TXT = query(ctx, r, domain, dns.TypeTXT)
	if err := noDomain("dmarc", ev.TXT); err != nil {
		return ev, err
	}
	return ev, nil
}

// publicSuffixPolicy reports whether the record at Walk[i] is a public
// suffix domain's policy for this domain: it was found at the public suffix
// above the organisational domain (RFC 9091), or it declares psd=y at a
// parent of the domain (RFC 9989 §4.7: the domain below it is then an
// organisational domain of its own).
func publicSuffixPolicy(ev DMARCEvidence, i int, rec *dmarc.Record) bool {
	lv := ev.Walk[i]
	if lv.Domain == ev.Domain {
		return false
	}
	return lv.Domain == ev.PublicSuffix || rec != nil && rec.PSD == "y"
}

// authoriseReports looks up the authorisation record of each external
// report destination (a mailto: domain in another organisational domain).
func authoriseReports(ctx context.Context, env *check.Env, policyDomain string, rec *dmarc.Record) []ReportAuth {
	var out []ReportAuth
	seen := map[string]bool{}
	org := OrgDomain(policyDomain)
	for _, u := range append(append([]dmarc.URI{}, rec.RUA...), rec.RUF...) {
		if u.Scheme != "mailto" || u.Addr == dmarc.NCSCLegacyRUA || seen[u.Domain] || !spf.ValidDomain(u.Domain) {
			continue
		}
		seen[u.Domain] = true
		if OrgDomain(u.Domain) == org {
			continue
		}
		if len(out) == maxReportAuths {
			break
		}
		l := query(ctx, dnsq.Over(env.DNS), policyDomain+"._report._dmarc."+u.Domain, dns.TypeTXT)
		ra := ReportAuth{Domain: u.Domain, Lookup: l}
		for _, s := range l.Answers {
			if dmarc.IsDMARC(s) {
				ra.Authorised = true
			}
		}
		out = append(out, ra)
	}
	return out
}
