package email

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// ParkedNullMX is the catalogue id of the null MX collector.
const ParkedNullMX = "email.parked.nullmx"

const ruleNullMX = "parked-null-mx"

// NullMXEvidence is the domain's MX and TXT lookups: the MX record set is
// judged, and with the SPF records it classifies the domain (checks.md §4).
type NullMXEvidence struct {
	Domain string `json:"domain"`
	MX     Lookup `json:"mx"`
	TXT    Lookup `json:"txt"`
}

// NullMX returns the email.parked collector (email.parked.nullmx).
func NullMX() check.Check {
	return check.New(check.Spec[NullMXEvidence]{
		ID:      "email.parked",
		Family:  "email",
		Targets: []check.Kind{check.KindDomain},
		Policy:  Settings,
		Rules: []check.Meta{{
			ID: ParkedNullMX, Rule: ruleNullMX, Title: "Parked domain publishes a null MX", Severity: check.Medium,
			Description: "A domain that neither receives nor sends mail (no MX host, and SPF names no sender) publishes exactly one MX record, the null MX \"0 .\" (RFC 7505), so senders bounce mail to it at once instead of trying its address records. Domains that receive or send mail: n/a.",
			Remediation: "Publish one MX record \"0 .\" (preference 0, exchange \".\") at the domain and no other MX, as in the GOV.UK records for domains that don't send email.",
			Standards: []check.Ref{
				{Standard: refGovPark.Standard, Section: "a null MX record", URL: refGovPark.URL},
				rfc("7505", "A \"Null MX\" No Service Resource Record", "§3 the null MX record; §4.1 senders", "unverified"),
				{Standard: "GDS Way: Protect domains that do not send email", Section: "§3 adding four records (an MX and three TXT records)", URL: "https://gds-way.digital.cabinet-office.gov.uk/"},
			},
		}},
		Collect:  collectNullMX,
		Evaluate: evaluateNullMX,
	})
}

func collectNullMX(ctx context.Context, env *check.Env, a check.Asset) (NullMXEvidence, error) {
	r := dnsq.Over(env.DNS)
	domain := strings.TrimSuffix(strings.ToLower(a.Name), ".")
	ev := NullMXEvidence{Domain: domain}
	ev.MX = query(ctx, r, domain, dns.TypeMX)
	if err := noDomain("null MX", ev.MX); err != nil {
		return ev, err
	}
	ev.TXT = query(ctx, r, domain, dns.TypeTXT)
	if err := noDomain("null MX", ev.TXT); err != nil {
		return ev, err
	}
	return ev, nil
}

func evaluateNullMX(in check.In[NullMXEvidence]) []check.Finding {
	ev := in.Evidence
	id, rule := ParkedNullMX, ruleNullMX
	if ev.MX.failed() {
		return []check.Finding{unknown(id, rule, "the MX lookup failed ("+ev.MX.Error+")", ev.MX.Class)}
	}
	c := classify(ev.MX, spfRecords(ev.TXT.Answers), ev.TXT.Error, ev.TXT.Class)
	return []check.Finding{byClass(c, func(parked bool) check.Finding {
		if !parked {
			return finding(id, rule, check.NA, "the domain receives or sends mail (an MX host, or a sender in SPF): a null MX is only for domains that do neither", "")
		}
		mx := ev.MX.Answers
		switch {
		case len(mx) == 1 && mx[0] == "0 .":
			return finding(id, rule, check.Pass, "null MX (0 .): senders are told the domain accepts no mail (RFC 7505)", "")
		case len(mx) == 0:
			return finding(id, rule, check.Fail, "parked domain without an MX record: senders fall back to its address records (RFC 5321 §5.1) and retry for days instead of bouncing at once; publish the null MX \"0 .\"", "")
		case len(mx) == 1:
			return finding(id, rule, check.Fail, fmt.Sprintf("MX %q is not the null MX: RFC 7505 §3 wants preference 0 and the exchange \".\" (\"0 .\")", mx[0]), "")
		}
		return finding(id, rule, check.Fail, fmt.Sprintf("%d MX records (%s): a null MX must be the domain's only MX (RFC 7505 §3)", len(mx), strings.Join(mx, ", ")), "")
	})}
}
