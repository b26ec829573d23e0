// Package dnscheck holds the dns.* checks of checks.md §1.5 that a
// recursive resolver can answer. dns.caa finds the CAA record set that
// governs a domain by RFC 8659's tree climbing and judges what it allows.
package dnscheck

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// CAA is the catalogue id.
const CAA = "dns.caa"

const ruleCAA = "caa-restricts-issuance"

// CAARecord is one CAA property as served.
type CAARecord struct {
	Flag  uint8  `json:"flag"`
	Tag   string `json:"tag"`
	Value string `json:"value"`
}

// CAALookup is one CAA query of the climb.
type CAALookup struct {
	Name    string      `json:"name"`
	Rcode   string      `json:"rcode,omitempty"`
	Records []CAARecord `json:"records,omitempty"`
	// Alias is where a CNAME at Name led (the records are the target's).
	Alias string `json:"alias,omitempty"`
	Error string `json:"error,omitempty"`
	Class string `json:"class,omitempty"`
}

// CAAEvidence is the climb from the domain towards the root, up to and
// including the first name with a non-empty CAA record set (or a failed
// lookup, which ends the climb: what lies above cannot be known to apply).
type CAAEvidence struct {
	Domain  string      `json:"domain"`
	Lookups []CAALookup `json:"lookups"`
}

// maxClimb bounds the names asked (a domain has at most 127 labels; real
// ones a handful).
const maxClimb = 12

// CAACheck returns the dns.caa collector.
func CAACheck() check.Check {
	return check.New(check.Spec[CAAEvidence]{
		ID: "dns.caa", Family: "dns", Targets: []check.Kind{check.KindDomain, check.KindZone, check.KindHost},
		Rules: []check.Meta{{
			ID: CAA, Rule: ruleCAA, Title: "CAA records restrict certificate issuance", Severity: check.Low,
			Description: "The CAA record set that governs the name (a domain, a zone delegated below one, or a web host; RFC 8659 tree climbing: the name's own records, an alias's target's, else its parent's) names at least one CA in an issue property, parses, and has no unknown critical property.",
			Remediation: `Publish CAA records at the domain naming the certificate authorities you use, e.g. ` +
				`"0 issue \"letsencrypt.org\"" and "0 iodef \"mailto:security@<domain>\"", and remove any property with the critical flag (128) that CAs do not know.`,
			Standards: []check.Ref{
				{Standard: "RFC 8659 (DNS CAA Resource Record)", Section: "§3 relevant resource record set; §4 issue, issuewild, iodef; §4.1 critical flag", URL: "https://www.rfc-editor.org/rfc/rfc8659", Status: "unverified"},
				{Standard: "GOV.UK: Use your .gov.uk domain name", Section: "evaluate CAA records", URL: "https://www.gov.uk/guidance/apply-for-a-uk-government-domain-name", Status: "secondary"},
				{Standard: "NCSC CAF v3.2", Section: "B4.b Secure configuration (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"},
			},
		}},
		Collect:  collectCAA,
		Evaluate: evaluateCAA,
	})
}

func collectCAA(ctx context.Context, env *check.Env, a check.Asset) (CAAEvidence, error) {
	ev := CAAEvidence{Domain: a.Name}
	r := dnsq.Over(env.DNS)
	name := dns.CanonicalName(a.Name)
	for range maxClimb {
		l := CAALookup{Name: strings.TrimSuffix(name, ".")}
		resp, err := r.Query(ctx, name, dns.TypeCAA)
		if err != nil {
			l.Error, l.Class = err.Error(), string(check.Classify(err))
			ev.Lookups = append(ev.Lookups, l)
			return ev, nil
		}
		l.Rcode = resp.Rcode
		for _, rr := range resp.Answer {
			switch v := rr.(type) {
			case *dns.CAA:
				l.Records = append(l.Records, CAARecord{Flag: v.Flag, Tag: v.Tag, Value: v.Value})
			case *dns.CNAME:
				l.Alias = strings.TrimSuffix(dns.CanonicalName(v.Target), ".")
			}
		}
		ev.Lookups = append(ev.Lookups, l)
		if len(ev.Lookups) == 1 && resp.NXDomain() {
			return ev, check.WithClass(check.ErrNoDomain, fmt.Errorf("dns: %s does not exist in DNS (NXDOMAIN): check the estate file and the domain's registration", a.Name))
		}
		if len(l.Records) > 0 {
			return ev, nil
		}
		i, end := dns.NextLabel(name, 0)
		if end || name[i:] == "." {
			return ev, nil // the root is not asked (RFC 8659 §3)
		}
		name = name[i:]
	}
	return ev, nil
}

// knownTags are the property tags CAs understand (RFC 8659 §4, RFC 8657,
// RFC 9495, the CA/Browser Forum's contact tags, the VMC tag).
var knownTags = map[string]bool{"issue": true, "issuewild": true, "iodef": true, "contactemail": true,
	"contactphone": true, "issuemail": true, "issuevmc": true}

// Property is a parsed CAA property.
type Property struct {
	Critical bool
	Tag      string // lower case
	// Issuer is an issue/issuewild property's CA domain ("" = no CA).
	Issuer string
	Err    string // why the property does not parse
}

// ParseProperty parses one CAA record (RFC 8659 §4).
func ParseProperty(r CAARecord) Property {
	p := Property{Critical: r.Flag&128 != 0, Tag: strings.ToLower(r.Tag)}
	if !validTag(r.Tag) {
		p.Err = fmt.Sprintf("tag %q is not 1 to 15 letters and digits", r.Tag)
		return p
	}
	if p.Tag == "issue" || p.Tag == "issuewild" {
		p.Issuer, p.Err = parseIssueValue(r.Value)
	}
	return p
}

func validTag(t string) bool {
	if t == "" || len(t) > 15 {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// parseIssueValue reads "[issuer-domain-name] [; parameters]".
func parseIssueValue(v string) (issuer, problem string) {
	dom, params, _ := strings.Cut(v, ";")
	dom = strings.Trim(dom, " \t")
	if dom != "" {
		for _, label := range strings.Split(dom, ".") {
			if !validLabel(label) {
				return "", fmt.Sprintf("issuer %q is not a domain name", dom)
			}
		}
	}
	for _, p := range strings.Split(params, ";") {
		p = strings.Trim(p, " \t")
		if p == "" {
			continue
		}
		k, val, ok := strings.Cut(p, "=")
		k, val = strings.Trim(k, " \t"), strings.Trim(val, " \t")
		if !ok || !validParamTag(k) || strings.ContainsAny(val, " \t;") {
			return dom, fmt.Sprintf("parameter %q is not tag=value", p)
		}
	}
	return strings.ToLower(dom), ""
}

// validParamTag: (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT)) (RFC 8659 §4.2).
func validParamTag(t string) bool {
	return t != "" && t[0] != '-' && t[len(t)-1] != '-' && validLabel(t)
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range []byte(l) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func evaluateCAA(in check.In[CAAEvidence]) []check.Finding {
	ev := in.Evidence
	f := func(o check.Outcome, format string, a ...any) []check.Finding {
		return []check.Finding{{CheckID: CAA, Rule: ruleCAA, Outcome: o, Message: fmt.Sprintf(format, a...)}}
	}
	if len(ev.Lookups) == 0 {
		return f(check.Unknown, "no CAA lookup was made")
	}
	last := ev.Lookups[len(ev.Lookups)-1]
	if last.Error != "" {
		out := f(check.Unknown, "the CAA lookup at %s failed (%s): which CAA records govern %s cannot be told, and CAs refuse to issue while it fails", last.Name, last.Error, ev.Domain)
		out[0].Reason = last.Class
		return out
	}
	if len(last.Records) == 0 {
		var asked []string
		for _, l := range ev.Lookups {
			asked = append(asked, l.Name)
		}
		return f(check.Warn, "no CAA records at %s or any name above it (asked %s): any CA may issue certificates for it", ev.Domain, strings.Join(asked, ", "))
	}
	where := last.Name
	if where != ev.Domain {
		where += " (inherited by " + ev.Domain + ")"
	}
	if last.Alias != "" {
		where += " through the alias to " + last.Alias
	}
	var critical, syntax, issuers, wild []string
	issue := false
	for _, r := range last.Records {
		p := ParseProperty(r)
		switch {
		case p.Critical && (!knownTags[p.Tag] || p.Err != ""):
			critical = append(critical, fmt.Sprintf("%d %s %q", r.Flag, r.Tag, r.Value))
		case p.Err != "":
			syntax = append(syntax, fmt.Sprintf("%s %q: %s", r.Tag, r.Value, p.Err))
		case p.Tag == "issue":
			issue = true
			issuers = append(issuers, orNone(p.Issuer))
		case p.Tag == "issuewild":
			wild = append(wild, orNone(p.Issuer))
		}
	}
	sort.Strings(issuers)
	switch {
	case len(critical) > 0:
		return f(check.Fail, "the CAA records at %s have a critical property CAs do not know (%s): no CA may issue a certificate for %s, so renewals will fail",
			where, strings.Join(critical, "; "), ev.Domain)
	case len(syntax) > 0:
		return f(check.Warn, "CAA records at %s do not parse: %s", where, strings.Join(syntax, "; "))
	case !issue:
		return f(check.Warn, "the CAA records at %s have no issue property: any CA may issue non-wildcard certificates", where)
	}
	msg := fmt.Sprintf("CAA records at %s allow issuance by %s", where, strings.Join(dedupe(issuers), ", "))
	if len(wild) > 0 {
		msg += "; wildcard certificates by " + strings.Join(dedupe(wild), ", ")
	}
	return f(check.Pass, "%s", msg)
}

func orNone(s string) string {
	if s == "" {
		return "no CA"
	}
	return s
}

func dedupe(ss []string) []string {
	sort.Strings(ss)
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}
