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

// dmarcState is what the walk found in force for the domain.
type dmarcState struct {
	lv  DMARCLevel    // the level whose record stopped the walk
	at  int           // its index in the walk, -1 when none did
	rec *dmarc.Record // the record in force (nil: no DMARC policy applies)
	err error         // why the record that stopped the walk applies no policy
	psd bool          // rec is a public suffix domain's policy
	// failed is the public-suffix lookup that could not tell, when no
	// record of the domain's own stopped the walk.
	failed *Lookup
}

func dmarcDiscover(ev DMARCEvidence) dmarcState {
	st := dmarcState{at: -1}
	if ev.Applied >= 0 && ev.Applied < len(ev.Walk) && len(ev.Walk[ev.Applied].Records) > 0 {
		st.at, st.lv = ev.Applied, ev.Walk[ev.Applied]
		st.rec, st.err = dmarc.Parse(st.lv.Records[0])
		st.psd = publicSuffixPolicy(ev, st.at, st.rec)
		return st
	}
	if last := ev.Walk[len(ev.Walk)-1].Lookup; last.failed() {
		st.failed = &last
	}
	return st
}

// inherited: the record in force was found at a parent of the domain.
func (st dmarcState) inherited(ev DMARCEvidence) bool { return st.at >= 0 && st.lv.Domain != ev.Domain }

// source names where the policy in force comes from.
func (st dmarcState) source(ev DMARCEvidence) string {
	switch {
	case st.psd:
		return "the public-suffix policy at _dmarc." + st.lv.Domain
	case st.inherited(ev):
		return "the record of " + st.lv.Domain
	}
	return "the record at _dmarc." + ev.Domain
}

// effective is the policy that applies to the domain and the tag it comes
// from: p at the domain itself; sp (else p) from a parent or a public
// suffix, for which the domain is an existing subdomain (RFC 9989 §4.10.1;
// np= of RFC 9989 §4.7 and RFC 9091 applies only to names that do not
// exist, and a scanned domain exists: Collect stops at NXDOMAIN).
func (st dmarcState) effective(ev DMARCEvidence) (policy, tag string) {
	if st.inherited(ev) && st.rec.SP != "" {
		return st.rec.SP, "sp"
	}
	return st.rec.P, "p"
}

// inForce says, for the record finding, what applies to the domain.
func (st dmarcState) inForce(ev DMARCEvidence) string {
	switch {
	case st.rec != nil:
		p, tag := st.effective(ev)
		what := "the policy in force is " + st.source(ev)
		if st.rec.PolicyError != "" {
			return what + ", read as p=none because its policy is unusable (" + st.rec.PolicyError + ")"
		}
		return fmt.Sprintf("%s (%s=%s)", what, tag, p)
	case st.at >= 0:
		return fmt.Sprintf("the record at _dmarc.%s stops the search but has no usable policy (%v), so no DMARC policy is in force",
			st.lv.Domain, strings.TrimPrefix(st.err.Error(), "dmarc: "))
	case st.failed != nil:
		return "whether a public-suffix policy applies could not be told (" + st.failed.Name + ": " + st.failed.Error + ")"
	}
	return "no other DMARC record applies, so no DMARC policy is in force for this domain"
}

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
	st := dmarcDiscover(ev)
	out := []check.Finding{dmarcRecordFinding(ev, st, pol.DMARCMaxLength)}
	rest := [][2]string{{DMARCPolicy, ruleDMARCPolicy}, {DMARCSPNP, ruleDMARCSPNP}, {DMARCScope, ruleDMARCScope}, {DMARCReporting, ruleDMARCReporting}}
	switch {
	case st.rec == nil && st.failed != nil:
		why := "no DMARC record of the domain's own applies, and " + st.inForce(ev)
		for _, x := range rest {
			out = append(out, unknown(x[0], x[1], why, st.failed.Class))
		}
		return out
	case st.rec == nil:
		why := "no valid DMARC record is in force (see email.dmarc.record)"
		if st.at >= 0 {
			why = st.inForce(ev) + " (see email.dmarc.record)"
		}
		for _, x := range rest {
			out = append(out, finding(x[0], x[1], check.NA, why, ""))
		}
		return out
	}
	out = append(out, byClass(class, func(parked bool) check.Finding { return dmarcPolicyFinding(ev, st, parked, pol) }))
	if class.Known && class.Parked() {
		out = append(out, dmarcAlignmentFinding(st.rec))
	}
	out = append(out, byClass(class, func(parked bool) check.Finding { return dmarcSPNPFinding(ev, st, parked) }))
	out = append(out, dmarcScopeFinding(st.rec))
	out = append(out, dmarcReportingFinding(ev, st, pol.DMARCMaxRUAURIs))
	return out
}

const remedyBrokenDMARC = "Correct the DMARC record: v=DMARC1 must be the first tag, tags are separated by \";\", " +
	"p= must be none, quarantine or reject, and each tag may appear once with a valid value."

// dmarcRecordFinding judges the record at _dmarc.<domain> itself, and
// through it what the owner published: a record meant as DMARC that
// receivers discard is a fail even when a parent's policy then applies,
// and a domain relying only on a public suffix's policy has no record of
// its own (the GOV.UK standard wants every domain to publish one; the
// public-suffix policy is a backstop its owner does not control and sends
// it no reports): fail, with the policy in force named.
func dmarcRecordFinding(ev DMARCEvidence, st dmarcState, maxLen int) check.Finding {
	id, rule := DMARCRecord, ruleDMARCRecord
	own := ev.Walk[0]
	if n := len(own.Records); n > 1 {
		msg := fmt.Sprintf("%d DMARC records at _dmarc.%s: receivers discard them all (%s); %s", n, ev.Domain, quoteAll(own.Records), st.inForce(ev))
		return finding(id, rule, check.Fail, msg, "Merge the DMARC records at _dmarc."+ev.Domain+" into one and delete the others.")
	}
	if len(own.Records) == 0 && len(own.Discarded) > 0 {
		var what []string
		disagree := ""
		for _, s := range own.Discarded {
			why := dmarc.WhyNotDMARC(s)
			what = append(what, fmt.Sprintf("%q (%s)", clipQ(s), why))
			if strings.Contains(why, "not the first tag") {
				// OpenDMARC takes the first TXT string holding "v=DMARC"
				// and reads v= wherever it is.
				disagree = " (a few receivers, such as OpenDMARC, still read a record whose version tag is out of place, so receivers disagree about this domain's policy)"
			}
		}
		msg := fmt.Sprintf("the TXT record at _dmarc.%s is meant as DMARC but is not a valid DMARC record, so receivers discard it: %s%s; %s",
			ev.Domain, strings.Join(what, "; "), disagree, st.inForce(ev))
		return finding(id, rule, check.Fail, msg,
			"Replace the TXT record at _dmarc."+ev.Domain+" with a valid one: v=DMARC1 first, then the other tags, each followed by \";\", for example \"v=DMARC1; p=reject; rua=mailto:dmarc-reports@"+ev.Domain+"\".")
	}
	if len(own.Records) == 0 && st.psd {
		msg := fmt.Sprintf("no DMARC record at _dmarc.%s%s; %s, which the domain's owner does not control and whose reports do not go to them",
			ev.Domain, walkedPast(ev, st.at), st.inForce(ev))
		return finding(id, rule, check.Fail, msg,
			"Publish your own DMARC record at _dmarc."+ev.Domain+", such as \"v=DMARC1; p=reject; rua=mailto:dmarc-reports@"+ev.Domain+
				"\": the public-suffix policy at _dmarc."+st.lv.Domain+" is only a backstop for domains that publish none.")
	}
	if st.at < 0 {
		msg := fmt.Sprintf("no DMARC record at _dmarc.%s%s", ev.Domain, walkedPast(ev, len(ev.Walk)))
		for _, w := range ev.Walk[1:] {
			for _, s := range w.Discarded {
				msg += fmt.Sprintf("; the TXT record %q at _dmarc.%s is meant as DMARC but receivers discard it (%s)", clipQ(s), w.Domain, dmarc.WhyNotDMARC(s))
			}
		}
		if st.failed != nil {
			msg += "; " + st.inForce(ev)
		}
		remedy := "Publish a TXT record at _dmarc." + ev.Domain + " such as \"v=DMARC1; p=none; rua=mailto:dmarc-reports@" + ev.Domain +
			"\" to start receiving reports, then move to p=quarantine and p=reject."
		if ev.OrgDomain != ev.Domain {
			remedy = "Publish a DMARC record at _dmarc." + ev.OrgDomain + " (it covers its subdomains) or at _dmarc." + ev.Domain +
				", such as \"v=DMARC1; p=reject; rua=mailto:dmarc-reports@" + ev.OrgDomain + "\"."
		}
		return finding(id, rule, check.Fail, msg, remedy)
	}

	// One record stopped the walk, at the domain or at a parent within its
	// organisation: judge it.
	where, record := st.lv.Domain, st.lv.Records[0]
	prefix := ""
	if where != ev.Domain {
		prefix = fmt.Sprintf("no record at _dmarc.%s; the record at _dmarc.%s applies (tree walk), but ", ev.Domain, where)
	}
	if st.err != nil {
		return finding(id, rule, check.Fail,
			fmt.Sprintf("%sthe DMARC record at _dmarc.%s has no usable policy (%v): %q", prefix, where, strings.TrimPrefix(st.err.Error(), "dmarc: "), clipQ(record)),
			remedyBrokenDMARC)
	}
	if st.rec.PolicyError != "" {
		return finding(id, rule, check.Fail,
			fmt.Sprintf("%sthe DMARC record at _dmarc.%s has no usable policy (%s): receivers act as if it said p=none because rua= names a report address: %q",
				prefix, where, st.rec.PolicyError, clipQ(record)),
			remedyBrokenDMARC)
	}
	if n := len(record); n > maxLen {
		f := finding(id, rule, check.Fail,
			fmt.Sprintf("%sthe DMARC record at _dmarc.%s is %d characters (limit %d)", prefix, where, n, maxLen),
			"Shorten the DMARC record: remove default-valued tags and extra report addresses.")
		f.Severity = check.Medium
		return f
	}
	var ignored []string
	ignored = append(ignored, st.rec.Ignored...)
	for _, s := range st.lv.Discarded {
		ignored = append(ignored, fmt.Sprintf("another TXT record there, %q, is meant as DMARC but is not valid (%s): receivers that take the first TXT record naming v=DMARC may read it instead",
			clipQ(s), dmarc.WhyNotDMARC(s)))
	}
	if len(ignored) > 0 {
		// RFC 7489 §6.3, RFC 9989 §4.8: the rest of the record stands, so
		// the policy is judged as published; the defect is a syntax one.
		if prefix == "" {
			prefix = "the DMARC record at _dmarc." + where + " applies, but "
		}
		f := finding(id, rule, check.Warn,
			fmt.Sprintf("%sreceivers ignore part of it: %s; record: %q", prefix, strings.Join(ignored, "; "), clipQ(record)),
			"Correct or remove the parts of the DMARC record named in the message: receivers skip them and use the defaults. "+remedyBrokenDMARC)
		f.Severity = check.Low
		return f
	}
	if where != ev.Domain {
		return finding(id, rule, check.Pass, fmt.Sprintf("no record at _dmarc.%s; the record at _dmarc.%s applies (tree walk): %q", ev.Domain, where, clipQ(record)), "")
	}
	return finding(id, rule, check.Pass, fmt.Sprintf("one DMARC record at _dmarc.%s: %q", ev.Domain, clipQ(record)), "")
}

// walkedPast names the _dmarc names above the domain that the walk asked,
// up to (not including) level end.
func walkedPast(ev DMARCEvidence, end int) string {
	var names []string
	for i := 1; i < end && i < len(ev.Walk); i++ {
		if !ev.Walk[i].Lookup.failed() {
			names = append(names, "_dmarc."+ev.Walk[i].Domain)
		}
	}
	if len(names) == 0 {
		return ""
	}
	upTo := "up to the organisational domain " + ev.OrgDomain
	if ev.PublicSuffix != "" && walkAsked(ev, ev.PublicSuffix, end) {
		upTo += " and its public suffix " + ev.PublicSuffix
	}
	return " nor at " + strings.Join(names, ", ") + " (tree walk " + upTo + ")"
}

func walkAsked(ev DMARCEvidence, domain string, end int) bool {
	for i := 0; i < end && i < len(ev.Walk); i++ {
		if ev.Walk[i].Domain == domain && !ev.Walk[i].Lookup.failed() {
			return true
		}
	}
	return false
}

func dmarcPolicyFinding(ev DMARCEvidence, st dmarcState, parked bool, pol Policy) check.Finding {
	id, rule := DMARCPolicy, ruleDMARCPolicy
	rec := st.rec
	p, tag := st.effective(ev)
	var seen string
	switch {
	case st.psd:
		seen = fmt.Sprintf("%s=%s in the public-suffix policy at _dmarc.%s, in force because %s publishes no DMARC record of its own", tag, p, st.lv.Domain, ev.Domain)
	case st.inherited(ev) && tag == "sp":
		seen = fmt.Sprintf("sp=%s in the record of %s (p=%s there), which applies to this subdomain", rec.SP, st.lv.Domain, rec.P)
	case st.inherited(ev):
		seen = fmt.Sprintf("p=%s in the record of %s, which applies to this subdomain", rec.P, st.lv.Domain)
	default:
		seen = "p=" + rec.P
	}
	if rec.PolicyError != "" {
		seen += "; the record's policy is unusable (" + rec.PolicyError + "), so receivers read it as p=none"
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
	switch {
	case parked:
		remedy = "This domain sends no mail: set \"p=reject\" so that every message using its name is refused."
	case rec.PolicyError != "":
		remedy = "Correct the policy of the DMARC record at _dmarc." + st.lv.Domain + " (p= must be none, quarantine or reject; sp= and np= likewise): until then receivers treat it as p=none."
	case st.psd:
		remedy = "Publish your own DMARC record at _dmarc." + ev.Domain + " with \"p=reject\" (once your reports show your legitimate mail passes): the public-suffix policy does not enforce for you."
	case st.inherited(ev) && rec.SP == "none":
		remedy = "The parent domain's record sets \"sp=none\", which switches enforcement off for its subdomains. Remove sp=none from the record at _dmarc." + st.lv.Domain + " (or set sp=reject), or publish a record with p=reject at _dmarc." + ev.Domain + "."
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

func dmarcSPNPFinding(ev DMARCEvidence, st dmarcState, parked bool) check.Finding {
	id, rule := DMARCSPNP, ruleDMARCSPNP
	rec := st.rec
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
	where := "in the record at _dmarc." + st.lv.Domain
	if st.psd {
		where = "in the public-suffix policy at _dmarc." + st.lv.Domain + " (in force because " + ev.Domain + " publishes none)"
	}
	if len(bad) > 0 {
		remedy := "Set \"sp=reject\" in the DMARC record (or remove sp= so subdomains follow p=), and remove np=none."
		if st.psd {
			remedy = "Publish your own DMARC record at _dmarc." + ev.Domain + " with \"p=reject\" (and no sp=none or np=none): the public-suffix policy is not yours to change."
		}
		return finding(id, rule, check.Fail, fmt.Sprintf("%s: %s", where, strings.Join(bad, "; ")), remedy)
	}
	seen := []string{}
	for _, t := range []struct{ n, v string }{{"sp", rec.SP}, {"np", rec.NP}} {
		if t.v != "" {
			seen = append(seen, t.n+"="+t.v)
		}
	}
	if len(seen) == 0 {
		return finding(id, rule, check.Pass, "no sp= or np= "+where+": subdomains follow p="+rec.P, "")
	}
	return finding(id, rule, check.Pass, strings.Join(seen, "; ")+" "+where, "")
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

func dmarcReportingFinding(ev DMARCEvidence, st dmarcState, maxURIs int) check.Finding {
	id, rule := DMARCReporting, ruleDMARCReporting
	rec := st.rec
	if st.psd {
		return finding(id, rule, check.Fail,
			fmt.Sprintf("no DMARC reports about %s reach its owner: the policy in force is the public-suffix policy at _dmarc.%s, whose reports (if any) go to the public suffix's operator",
				ev.Domain, st.lv.Domain),
			"Publish your own DMARC record at _dmarc."+ev.Domain+" with \"rua=mailto:<a mailbox or reporting service you read>\".")
	}
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
	org := OrgDomain(st.lv.Domain)
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
