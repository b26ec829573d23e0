package dnscheck

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// Wildcard is the catalogue id.
const Wildcard = "dns.wildcard"

const ruleWildcard = "no-wildcard-records"

// wildcardTypes are the types asked at the random name (checks.md §1.5).
var wildcardTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeMX, dns.TypeTXT}

// WildcardEvidence is what DNS answered for a random name under the
// domain: a name nobody would publish, so any record there comes from a
// wildcard (RFC 4592).
type WildcardEvidence struct {
	Domain string `json:"domain"`
	// Label is the random 32-character label asked, Name the name.
	Label   string          `json:"label"`
	Name    string          `json:"name"`
	Queries []WildcardQuery `json:"queries"`
}

// WildcardQuery is one question at the random name.
type WildcardQuery struct {
	Type    string           `json:"type"`
	Rcode   string           `json:"rcode,omitempty"`
	Records []WildcardRecord `json:"records,omitempty"`
	Error   string           `json:"error,omitempty"`
	Class   string           `json:"class,omitempty"`
}

// WildcardRecord is one answer record: its owner, type and data (TXT: the
// character-strings joined).
type WildcardRecord struct {
	Owner string `json:"owner"`
	Type  string `json:"type"`
	Data  string `json:"data"`
}

var refHSCNNaming = check.Ref{Standard: "NHS England HSCN DNS standards", Section: `Domain and record naming: "'*' or wildcard names should not be used anywhere"`,
	URL: hscnDNS + "/domain-and-record-naming"}

// WildcardCheck returns the dns.wildcard collector.
func WildcardCheck() check.Check {
	return check.New(check.Spec[WildcardEvidence]{
		ID: Wildcard, Family: "dns", Targets: []check.Kind{check.KindDomain, check.KindZone, check.KindHost},
		Rules: []check.Meta{{
			ID: Wildcard, Rule: ruleWildcard, Title: "No wildcard records", Severity: check.Medium,
			Description: "A random 32-character name under the domain (or the zone delegated below it, or the web host), asked A, AAAA, CNAME, MX and TXT, does not exist (NXDOMAIN). Wildcard TXT records that only protect (v=spf1 -all, or an empty DKIM key v=DKIM1; p=) pass with a note. Any other wildcard fails on names under nhs.uk (HSCN DNS bans them) and warns elsewhere.",
			Remediation: "Remove the wildcard (*) records under the domain and publish the names you use explicitly. A wildcard answers for every name, including ones an attacker makes up for phishing, and hides names that have been forgotten. Wildcard TXT records that only say v=spf1 -all or v=DKIM1; p= may stay.",
			Standards: []check.Ref{
				refHSCNNaming,
				{Standard: "GOV.UK: Protect domains that don't send email", Section: "wildcard empty DKIM record", URL: "https://www.gov.uk/guidance/protect-domains-that-dont-send-email"},
				{Standard: "RFC 4592 (The role of wildcards in the DNS)", URL: "https://www.rfc-editor.org/rfc/rfc4592"},
			},
		}},
		Collect:  collectWildcard,
		Evaluate: evaluateWildcard,
	})
}

// wildcardLabel is a random label of 32 lower-case letters and digits.
func wildcardLabel() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func collectWildcard(ctx context.Context, env *check.Env, a check.Asset) (WildcardEvidence, error) {
	label := wildcardLabel()
	ev := WildcardEvidence{Domain: a.Name, Label: label, Name: label + "." + strings.TrimSuffix(a.Name, ".")}
	r := dnsq.Over(env.DNS)
	if err := hygieneExists(ctx, r, Wildcard, a.Name); err != nil {
		return ev, err
	}
	for _, t := range wildcardTypes {
		q := WildcardQuery{Type: dns.TypeToString[t]}
		resp, err := r.Query(ctx, ev.Name, t)
		if err != nil {
			q.Error, q.Class = err.Error(), string(check.Classify(err))
		} else {
			q.Rcode = resp.Rcode
			for _, rr := range resp.Answer {
				q.Records = append(q.Records, WildcardRecord{Owner: strings.TrimSuffix(strings.ToLower(rr.Header().Name), "."),
					Type: dns.TypeToString[rr.Header().Rrtype], Data: hygieneRData(rr)})
			}
		}
		ev.Queries = append(ev.Queries, q)
	}
	return ev, nil
}

// ProtectiveTXT reports whether a TXT record only protects: an SPF record
// that allows no sender (exactly "v=spf1 -all"), or a DKIM key record with
// an empty key (p=, a revoked key: RFC 6376 §3.6.1).
func ProtectiveTXT(s string) bool {
	f := strings.Fields(strings.ToLower(s))
	if len(f) == 2 && f[0] == "v=spf1" && f[1] == "-all" {
		return true
	}
	tags := map[string]string{}
	for i, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			if k == "" {
				continue // "a;;b" and a trailing ";" are allowed
			}
			return false
		}
		if _, dup := tags[k]; dup || (k == "v" && i != 0) {
			return false
		}
		tags[k] = v
	}
	p, hasP := tags["p"]
	v, hasV := tags["v"]
	return hasP && p == "" && (!hasV || v == "DKIM1")
}

func evaluateWildcard(in check.In[WildcardEvidence]) []check.Finding {
	ev := in.Evidence
	f := check.Finding{CheckID: Wildcard, Rule: ruleWildcard}
	var seen, protective []string
	var failed *WildcardQuery
	nxdomain, nodata := 0, 0
	for i, q := range ev.Queries {
		switch {
		case q.Error != "":
			if failed == nil {
				failed = &ev.Queries[i]
			}
		case len(q.Records) > 0:
			for _, r := range q.Records {
				s := fmt.Sprintf("%s %s %q", q.Type, r.Type, r.Data)
				if r.Type == "TXT" && ProtectiveTXT(r.Data) {
					protective = append(protective, s)
				} else {
					seen = append(seen, s)
				}
			}
		case q.Rcode == "NXDOMAIN":
			nxdomain++
		default:
			nodata++
		}
	}
	nhs := dns.IsSubDomain("nhs.uk.", dns.CanonicalName(ev.Domain))
	switch {
	case len(seen) > 0:
		f.Message = fmt.Sprintf("a wildcard answers for names that do not exist under %s: %s, made up for this check, has %s",
			ev.Domain, ev.Name, strings.Join(append(seen, protective...), "; "))
		if nhs {
			f.Outcome, f.Severity = check.Fail, check.High
			f.Message += ". HSCN DNS standards do not allow wildcard names under nhs.uk"
		} else {
			f.Outcome, f.Severity = check.Warn, check.Medium
		}
	case len(protective) > 0:
		f.Outcome = check.Pass
		f.Message = fmt.Sprintf("a wildcard under %s publishes only protective TXT records (%s at %s): exempt", ev.Domain, strings.Join(protective, "; "), ev.Name)
	case failed != nil:
		f.Outcome, f.Reason = check.Unknown, failed.Class
		f.Message = fmt.Sprintf("the %s lookup of %s failed (%s): whether a wildcard answers under %s cannot be told", failed.Type, ev.Name, failed.Error, ev.Domain)
	case nodata > 0:
		f.Outcome, f.Severity = check.Warn, check.Medium
		f.Message = fmt.Sprintf("%s, made up for this check, exists (NOERROR) but has none of the types asked: a wildcard of another type covers names under %s, or its name servers answer for names that do not exist", ev.Name, ev.Domain)
	case nxdomain > 0:
		f.Outcome = check.Pass
		f.Message = fmt.Sprintf("no wildcard under %s: %s does not exist (NXDOMAIN)", ev.Domain, ev.Name)
	default:
		f.Outcome, f.Reason = check.Unknown, string(check.ErrInternal)
		f.Message = "no lookup was made"
	}
	return []check.Finding{f}
}
