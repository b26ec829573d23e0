package email

import (
	"fmt"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/email/dmarc"
)

// Rules (phrased so that pass is good).
const (
	ruleDMARCRecord    = "dmarc-record-valid"
	ruleDMARCPolicy    = "dmarc-policy-enforced"
	ruleDMARCAlignment = "dmarc-parked-alignment-strict"
	ruleDMARCSPNP      = "dmarc-subdomain-policy-enforced"
	ruleDMARCScope     = "dmarc-policy-applies-to-all-mail"
	ruleDMARCReporting = "dmarc-aggregate-reports-received"
)

func evaluateDMARC(in check.In[DMARCEvidence]) []check.Finding {
	ev, pol := in.Evidence, Settings.Get(in.Policy)
	if len(ev.Walk) == 0 {
		var out []check.Finding
		for _, m := range dmarcRules {
			out = append(out, unknown(m.ID, m.Rule, "the evidence holds no _dmarc lookup", string(check.ErrInternal)))
		}
		return out
	}
	class := classify(ev.MX, spfRecords(ev.TXT.Answers), ev.TXT.Error, ev.TXT.Class)

	var rec *dmarc.Record
	var parseErr error
	var lv DMARCLevel
	if ev.Applied >= 0 && ev.Applied < len(ev.Walk) {
		lv = ev.Walk[ev.Applied]
		rec, parseErr = dmarc.Parse(lv.Records[0])
	}
	out := []check.Finding{dmarcRecordFinding(ev, lv, rec, parseErr, pol.DMARCMaxLength)}
	if rec == nil {
		why := "no valid DMARC record is in force (see email.dmarc.record)"
		for _, x := range [][2]string{{DMARCPolicy, ruleDMARCPolicy}, {DMARCSPNP, ruleDMARCSPNP}, {DMARCScope, ruleDMARCScope}, {DMARCReporting, ruleDMARCReporting}} {
			out = append(out, finding(x[0], x[1], check.NA, why, ""))
		}
		return out
	}
	inherited := lv.Domain != ev.Domain
	out = append(out, byClass(class, func(parked bool) check.Finding { return dmarcPolicyFinding(ev, lv, rec, inherited, parked, pol) }))
	if class.Known && class.Parked() {
		out = append(out, dmarcAlignmentFinding(rec))
	}
	out = append(out, byClass(class, func(parked bool) check.Finding { return dmarcSPNPFinding(lv, rec, parked) }))
	out = append(out, dmarcScopeFinding(rec))
	out = append(out, dmarcReportingFinding(ev, rec, pol.DMARCMaxRUAURIs))
	return out
}

func dmarcRecordFinding(ev DMARCEvidence, lv DMARCLevel, rec *dmarc.Record, parseErr error, maxLen int) check.Finding {
	id, rule := DMARCRecord, ruleDMARCRecord
	own := ev.Walk[0]
	if n := len(own.Records); n > 1 {
		msg := fmt.Sprintf("%d DMARC records at _dmarc.%s: receivers discard them all (%s)", n, ev.Domain, quoteAll(own.Records))
		return finding(id, rule, check.Fail, msg, "Merge the DMARC records at _dmarc."+ev.Domain+" into one and delete the others.")
	}
	if rec == nil && parseErr == nil {
		msg := fmt.Sprintf("no DMARC record at _dmarc.%s", ev.Domain)
		if len(ev.Walk) > 1 {
			names := make([]string, 0, len(ev.Walk)-1)
			for _, w := range ev.Walk[1:] {
				names = append(names, "_dmarc."+w.Domain)
			}
			msg += " nor at " + strings.Join(names, ", ") + " (tree walk up to the organisational domain " + ev.OrgDomain + ")"
		}
		for _, w := range ev.Walk {
			for _, s := range w.Lookup.Answers {
				if dmarc.MentionsDMARC(s) {
					msg += fmt.Sprintf("; the TXT record %q at _dmarc.%s names v=DMARC1 but not as its first tag, so receivers ignore it", clipQ(s), w.Domain)
				}
			}
		}
		remedy := "Publish a TXT record at _dmarc." + ev.Domain + " such as \"v=DMARC1; p=none; rua=mailto:dmarc-reports@" + ev.Domain +
			"\" to start receiving reports, then move to p=quarantine and p=reject."
		if ev.OrgDomain != ev.Domain {
			remedy = "Publish a DMARC record at _dmarc." + ev.OrgDomain + " (it covers its subdomains) or at _dmarc." + ev.Domain +
				", such as \"v=DMARC1; p=reject; rua=mailto:dmarc-reports@" + ev.OrgDomain + "\"."
		}
		return finding(id, rule, check.Fail, msg, remedy)
	}
	if parseErr != nil {
		return finding(id, rule, check.Fail,
			fmt.Sprintf("the DMARC record at _dmarc.%s is malformed (%v): %q", lv.Domain, strings.TrimPrefix(parseErr.Error(), "dmarc: "), clipQ(lv.Records[0])),
			"Correct the DMARC record: v=DMARC1 must be the first tag, p= must be none, quarantine or reject, and each tag may appear once with a valid value.")
	}
	if n := len(lv.Records[0]); n > maxLen {
		f := finding(id, rule, check.Fail,
			fmt.Sprintf("the DMARC record at _dmarc.%s is %d characters (limit %d)", lv.Domain, n, maxLen),
			"Shorten the DMARC record: remove default-valued tags and extra report addresses.")
		f.Severity = check.Medium
		return f
	}
	if lv.Domain != ev.Domain {
		return finding(id, rule, check.Pass, fmt.Sprintf("no record at _dmarc.%s; the record at _dmarc.%s applies (tree walk): %q", ev.Domain, lv.Domain, clipQ(lv.Records[0])), "")
	}
	return finding(id, rule, check.Pass, fmt.Sprintf("one DMARC record at _dmarc.%s: %q", ev.Domain, clipQ(lv.Records[0])), "")
}

func dmarcPolicyFinding(ev DMARCEvidence, lv DMARCLevel, rec *dmarc.Record, inherited, parked bool, pol Policy) check.Finding {
	id, rule := DMARCPolicy, ruleDMARCPolicy
	p, seen := rec.P, "p="+rec.P
	if inherited {
		p = rec.SubdomainPolicy()
		if rec.SP != "" {
			seen = fmt.Sprintf("sp=%s in the record of %s (p=%s there), which applies to this subdomain", rec.SP, lv.Domain, rec.P)
		} else {
			seen = fmt.Sprintf("p=%s in the record of %s, which applies to this subdomain", rec.P, lv.Domain)
		}
	}
	switch {
	case p == "reject":
		return finding(id, rule, check.Pass, "DMARC policy in force is reject ("+seen+")", "")
	case p == "quarantine" && parked:
		return finding(id, rule, check.Fail, "the domain sends no mail but its DMARC policy in force is quarantine ("+seen+"), not reject",
			"This domain sends no mail: set \"p=reject\" (and \"sp=reject\") so that every message using its name is refused.")
	case p == "quarantine":
		if pol.DMARCQuarantine {
			return finding(id, rule, check.Warn, "DMARC policy in force is quarantine ("+seen+"): failing mail goes to spam rather than being refused",
				"Move from \"p=quarantine\" to \"p=reject\" once reports show your legitimate mail passes.")
		}
		return finding(id, rule, check.Pass, "DMARC policy in force is quarantine ("+seen+")", "")
	}
	remedy := "Your DMARC policy only monitors: mail that fails is still delivered. Use the aggregate reports to fix your senders, then set \"p=quarantine\" and then \"p=reject\"."
	if inherited && rec.SP == "none" {
		remedy = "The parent domain's record sets \"sp=none\", which switches enforcement off for its subdomains. Remove sp=none from the record at _dmarc." + lv.Domain + " (or set sp=reject), or publish a record with p=reject at _dmarc." + ev.Domain + "."
	}
	if parked {
		remedy = "This domain sends no mail: set \"p=reject\" so that every message using its name is refused."
	}
	return finding(id, rule, check.Fail, "DMARC policy in force is none ("+seen+"): failing mail is delivered as normal", remedy)
}

func dmarcAlignmentFinding(rec *dmarc.Record) check.Finding {
	id, rule := DMARCPolicy, ruleDMARCAlignment
	adkim, aspf := rec.ADKIM, rec.ASPF
	if adkim == "" {
		adkim = "r (default)"
	}
	if aspf == "" {
		aspf = "r (default)"
	}
	if rec.ADKIM == "s" && rec.ASPF == "s" {
		return finding(id, rule, check.Pass, "parked domain with strict alignment (adkim=s; aspf=s)", "")
	}
	f := finding(id, rule, check.Warn,
		fmt.Sprintf("parked domain without strict alignment: adkim=%s, aspf=%s", adkim, aspf),
		"Add \"adkim=s; aspf=s\" (and \"fo=1\") to the DMARC record, as in the GOV.UK record for domains that don't send email.")
	f.Severity = check.Low // the alignment-parked entry of checks.md
	f.Standards = []check.Ref{refGovPark}
	return f
}

func dmarcSPNPFinding(lv DMARCLevel, rec *dmarc.Record, parked bool) check.Finding {
	id, rule := DMARCSPNP, ruleDMARCSPNP
	var bad []string
	if rec.SP == "none" {
		bad = append(bad, "sp=none switches enforcement off for subdomains")
	}
	if rec.NP == "none" {
		bad = append(bad, "np=none switches enforcement off for non-existent subdomains")
	}
	if parked && rec.SP != "none" && rec.SubdomainPolicy() != "reject" {
		bad = append(bad, "the domain sends no mail but its subdomain policy is "+rec.SubdomainPolicy()+", not reject")
	}
	if len(bad) > 0 {
		return finding(id, rule, check.Fail, fmt.Sprintf("in the record at _dmarc.%s: %s", lv.Domain, strings.Join(bad, "; ")),
			"Set \"sp=reject\" in the DMARC record (or remove sp= so subdomains follow p=), and remove np=none.")
	}
	seen := []string{}
	for _, t := range []struct{ n, v string }{{"sp", rec.SP}, {"np", rec.NP}} {
		if t.v != "" {
			seen = append(seen, t.n+"="+t.v)
		}
	}
	if len(seen) == 0 {
		return finding(id, rule, check.Pass, "no sp= or np=: subdomains follow p="+rec.P, "")
	}
	return finding(id, rule, check.Pass, strings.Join(seen, "; "), "")
}

func dmarcScopeFinding(rec *dmarc.Record) check.Finding {
	id, rule := DMARCScope, ruleDMARCScope
	var part []string
	if rec.Pct() < 100 {
		part = append(part, fmt.Sprintf("pct=%d: the policy applies to only %d%% of failing mail", rec.PCT, rec.PCT))
	}
	if rec.T == "y" {
		part = append(part, "t=y: the domain asks receivers to treat the policy as a test and not enforce it fully")
	}
	if len(part) > 0 {
		return finding(id, rule, check.Warn, strings.Join(part, "; "), "")
	}
	if rec.PCT == 100 {
		return finding(id, rule, check.Pass, "pct=100 and no t=y: the policy applies to all failing mail", "")
	}
	return finding(id, rule, check.Pass, "no pct (so 100) and no t=y: the policy applies to all failing mail", "")
}

func dmarcReportingFinding(ev DMARCEvidence, rec *dmarc.Record, maxURIs int) check.Finding {
	id, rule := DMARCReporting, ruleDMARCReporting
	for _, u := range rec.RUF {
		if u.Addr == dmarc.NCSCLegacyRUA {
			return finding(id, rule, check.Fail, "ruf= names the NCSC aggregate-report address "+dmarc.NCSCLegacyRUA+", which must not receive failure reports",
				"Remove "+dmarc.NCSCLegacyRUA+" from ruf=: failure reports can hold personal data and that mailbox only takes aggregate reports.")
		}
	}
	if !rec.Has("rua") {
		return finding(id, rule, check.Fail, "no rua=: nobody receives DMARC aggregate reports for this domain", "")
	}
	auth := map[string]ReportAuth{}
	for _, ra := range ev.Reports {
		auth[ra.Domain] = ra
	}
	org := OrgDomain(ev.Walk[ev.Applied].Domain)
	var working, ncsc, unauth, couldNot, notes []string
	reason := ""
	seen := map[string]bool{}
	dups := 0
	for _, u := range rec.RUA {
		key := strings.ToLower(u.Raw)
		if i := strings.LastIndexByte(key, '!'); i >= 0 {
			key = key[:i]
		}
		if seen[key] {
			dups++
			continue
		}
		seen[key] = true
		switch {
		case u.Scheme != "mailto":
			notes = append(notes, fmt.Sprintf("%q is not a mailto: URI and is ignored by most receivers", u.Raw))
		case u.Addr == dmarc.NCSCLegacyRUA:
			ncsc = append(ncsc, u.Addr)
		case OrgDomain(u.Domain) == org:
			working = append(working, u.Addr)
		default:
			ra, ok := auth[u.Domain]
			switch {
			case ok && ra.Authorised:
				working = append(working, u.Addr)
			case ok && ra.Lookup.failed():
				couldNot = append(couldNot, u.Addr+" ("+ra.Lookup.Error+")")
				if reason == "" {
					reason = ra.Lookup.Class
				}
			case ok:
				unauth = append(unauth, u.Addr)
			default:
				couldNot = append(couldNot, u.Addr+" (not checked: too many external destinations)")
				if reason == "" {
					reason = "not-checked"
				}
			}
		}
	}
	if len(ncsc) > 0 {
		notes = append(notes, "legacy: "+dmarc.NCSCLegacyRUA+" is the retired NCSC Mail Check address; confirm the current government reporting endpoint")
	}
	if len(unauth) > 0 {
		notes = append(notes, "external destinations that have not authorised reports for this domain (receivers drop these): "+strings.Join(unauth, ", "))
	}
	if dups > 0 {
		notes = append(notes, plural(dups, "duplicate URI", "duplicate URIs")+" in rua=")
	}
	if n := len(rec.RUA); n > maxURIs {
		notes = append(notes, fmt.Sprintf("%d rua URIs (at most %d are sent reports by some receivers)", n, maxURIs))
	}
	tail := ""
	if len(notes) > 0 {
		tail = "; " + strings.Join(notes, "; ")
	}
	switch {
	case len(working) > 0 && len(unauth) == 0 && dups == 0 && len(rec.RUA) <= maxURIs:
		return finding(id, rule, check.Pass, "aggregate reports go to "+strings.Join(working, ", ")+tail, "")
	case len(working) > 0:
		return finding(id, rule, check.Warn, "aggregate reports go to "+strings.Join(working, ", ")+tail,
			"Tidy rua=: keep at most two mailto: addresses, no duplicates, and only external services that publish an authorisation record for your domain.")
	case len(couldNot) > 0:
		return unknown(id, rule, "could not tell whether the external report destinations accept reports: "+strings.Join(couldNot, "; ")+tail, reason)
	case len(ncsc) > 0:
		return finding(id, rule, check.Warn, "the only aggregate-report destination is the retired NCSC Mail Check address"+tail,
			"Add a report destination that you read (your own mailbox or a reporting service) to rua=; the NCSC Mail Check service has been retired.")
	}
	return finding(id, rule, check.Fail, "rua= names no destination that accepts reports"+tail,
		"Add \"rua=mailto:<a mailbox you read>\" at your own domain, or ask your external reporting service to publish its authorisation record for your domain.")
}
