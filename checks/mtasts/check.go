// Package mtasts holds the checks of a receiving domain's SMTP transport
// security policies (checks.md §1.6): MTA-STS (RFC 8461: the TXT record at
// _mta-sts.<domain>, the policy served at https://mta-sts.<domain>/
// .well-known/mta-sts.txt, and its mode) and TLS reporting (RFC 8460: the
// TXT record at _smtp._tls.<domain>). Only domains that receive mail (a
// non-null MX) are judged; for the others the checks do not apply.
//
// Collect records what DNS and the policy host said (the policy's
// certificate as DER); Evaluate judges it, the certificate against the
// policy's trust anchors at the collection time. Discover and InForce are
// exported for the MX certificate check, which is more severe when the
// domain's policy is enforced.
package mtasts

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/tlscheck"
)

// Catalogue ids (checks.md §1.6).
const (
	RecordID = "email.mtasts.record"
	PolicyID = "email.mtasts.policy"
	ModeID   = "email.mtasts.mode"
	TLSRPTID = "email.tlsrpt"
)

const (
	ruleRecord = "mta-sts-record-published"
	rulePolicy = "mta-sts-policy-valid"
	ruleMode   = "mta-sts-enforced"
	ruleTLSRPT = "tls-reporting-enabled"
)

// Mode thresholds (checks.md §1.6 email.mtasts.mode, after Mail Check's
// MaxAgeStrongKeyRule.cs): an enforce policy cached for less than 14 days,
// or a testing policy for less than a day, warns.
const (
	EnforceMinMaxAge = 1209600
	TestingMinMaxAge = 86400
)

// Evidence is what the MTA-STS collector saw.
type Evidence struct {
	Domain string `json:"domain"`
	// MX is the domain's MX lookup: the hosts the policy must cover, and
	// whether the domain receives mail at all.
	MX Lookup `json:"mx"`
	// STS is the policy discovery; nil when the domain receives no mail
	// (nothing was looked up).
	STS *Discovery `json:"sts,omitempty"`
}

// TLSRPTEvidence is what the TLS-RPT collector saw.
type TLSRPTEvidence struct {
	Domain string `json:"domain"`
	MX     Lookup `json:"mx"`
	// Record is the TXT lookup at _smtp._tls.<domain>; nil when the domain
	// receives no mail.
	Record *Lookup `json:"record,omitempty"`
}

var (
	refGovSGE = check.Ref{Standard: "GOV.UK: Securing government email", Section: "publish a MTA-STS policy for all of your domains that receive email", URL: "https://www.gov.uk/guidance/securing-government-email"}
	refSecMTA = check.Ref{Standard: "security.gov.uk: Set up TLS-RPT and MTA-STS", URL: "https://www.security.gov.uk/guidance/email-guidance/mta-sts/set-up"}
	refCAFB3b = check.Ref{Standard: "NCSC CAF v3.2", Section: "B3.b Data in transit (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"}
	refCAFC1  = check.Ref{Standard: "NCSC CAF v3.2", Section: "C1 Security monitoring (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"}
)

func rfc(n, title, section, status string) check.Ref {
	return check.Ref{Standard: "RFC " + n + " (" + title + ")", Section: section, URL: "https://www.rfc-editor.org/rfc/rfc" + n, Status: status}
}

func mc(rule string) check.Ref {
	return check.Ref{Standard: "NCSC Mail Check", Section: rule, URL: "https://github.com/ukncsc/mail-check"}
}

// Rules are the MTA-STS collector's catalogue entries.
var Rules = []check.Meta{
	{
		ID: RecordID, Rule: ruleRecord, Title: "MTA-STS record published", Severity: check.High,
		Description: "A domain that receives mail publishes exactly one TXT record at _mta-sts.<domain> beginning v=STSv1; with id= of 1 to 32 letters and digits and well-formed fields. Other TXT records at the name are ignored; two MTA-STS records, or none, fail (senders then apply no policy). Domains without MX do not apply.",
		Remediation: "Publish one TXT record at _mta-sts.<your domain>, such as \"v=STSv1; id=20250101T000000\" (change the id whenever the policy changes), and serve the policy at https://mta-sts.<your domain>/.well-known/mta-sts.txt.",
		Standards: []check.Ref{
			refGovSGE, refSecMTA,
			rfc("8461", "MTA-STS", "§3.1 MTA-STS TXT records", "secondary"),
			mc("MtaSts rules: OnlyOneMtaStsRecord.cs, VersionTagIsRequired.cs"),
			refCAFB3b,
		},
	},
	{
		ID: PolicyID, Rule: rulePolicy, Title: "MTA-STS policy valid", Severity: check.High,
		Description: "https://mta-sts.<domain>/.well-known/mta-sts.txt answers HTTP 200 without a redirect (redirects are not followed), over TLS with a certificate valid for mta-sts.<domain> (chain to a trusted root, name, dates), as text/plain, with version: STSv1, a mode of enforce, testing or none, an integer max_age with 0 < max_age ≤ 31557600, and at least one mx: pattern (a wildcard only as the whole leftmost label), every current MX host matching one. Lines may end in LF as well as CRLF (noted). Judged when the domain publishes an MTA-STS record.",
		Remediation: "Serve the policy over HTTPS at https://mta-sts.<your domain>/.well-known/mta-sts.txt, directly (no redirect), with a publicly trusted certificate for mta-sts.<your domain>, as Content-Type text/plain: lines \"version: STSv1\", \"mode: testing\" (then enforce), \"mx: <each MX host, or *.<its parent>>\" and \"max_age: 1209600\".",
		Standards: []check.Ref{
			rfc("8461", "MTA-STS", "§3.2 policy format, §3.3 policy retrieval, §4.1 MX host validation", "unverified"),
			mc("MtaSts rules: MaxAgeParser.cs (num > 0 && num <= 31557600), MxShouldBePresent.cs"),
			refSecMTA, refCAFB3b,
		},
	},
	{
		ID: ModeID, Rule: ruleMode, Title: "MTA-STS policy enforced", Severity: check.Medium,
		Description: "The mode of a valid MTA-STS policy: enforce with max_age of 14 days (1209600 s) or more passes; enforce with less warns; testing warns (noting a max_age under a day); none fails. Not judged when senders cannot use the policy (see email.mtasts.policy).",
		Remediation: "Once TLS reports show that senders reach every MX host over TLS with a valid certificate, set \"mode: enforce\" and \"max_age: 1209600\" (or more), and change the id of the _mta-sts record.",
		Standards: []check.Ref{
			mc("MtaSts rules: MtaStsShouldBeEnforced.cs (Weak MTA-STS policy), MaxAgeStrongKeyRule.cs (enforce < 1209600, testing < 86400: warning)"),
			{Standard: refSecMTA.Standard, Section: "testing first, then enforce", URL: refSecMTA.URL},
			refCAFB3b,
		},
	},
}

// TLSRPTRules is the TLS-RPT collector's catalogue entry.
var TLSRPTRules = []check.Meta{{
	ID: TLSRPTID, Rule: ruleTLSRPT, Title: "TLS reporting (TLS-RPT) enabled", Severity: check.Medium,
	Description: "A domain that receives mail publishes exactly one TXT record at _smtp._tls.<domain> beginning v=TLSRPTv1; with rua= of comma-separated mailto: or https: URIs and no duplicates. The retired NCSC Mail Check address (tls-rua@mailcheck.service.ncsc.gov.uk) is a legacy note beside another destination, and a warning when it is the only one. Domains without MX do not apply.",
	Remediation: "Publish one TXT record at _smtp._tls.<your domain>, such as \"v=TLSRPTv1; rua=mailto:tls-reports@<your domain>\", and review the reports.",
	Standards: []check.Ref{
		{Standard: refGovSGE.Standard, Section: "set up DMARC and TLS reporting and review the data regularly", URL: refGovSGE.URL},
		{Standard: refSecMTA.Standard, Section: "step 1: set up TLS-RPT", URL: refSecMTA.URL},
		rfc("8460", "SMTP TLS Reporting", "§3 reporting policy", "unverified"),
		mc("TlsRpt.Evaluator rules"),
		refCAFC1,
	},
}}

// Check returns the email.mtasts collector (record, policy, mode).
func Check() check.Check {
	return check.New(check.Spec[Evidence]{
		ID: "email.mtasts", Family: "email", Targets: []check.Kind{check.KindDomain},
		Rules: Rules, Collect: collectSTS, Evaluate: evaluateSTS,
		// The policy fetch has its own bound; DNS adds little.
		Timeout: FetchTimeout + 15*time.Second,
	})
}

// TLSRPTCheck returns the email.tlsrpt collector.
func TLSRPTCheck() check.Check {
	return check.New(check.Spec[TLSRPTEvidence]{
		ID: "email.tlsrpt", Family: "email", Targets: []check.Kind{check.KindDomain},
		Rules: TLSRPTRules, Collect: collectTLSRPT, Evaluate: evaluateTLSRPT,
	})
}

// lookupErr turns a failed lookup into a collection error with its class.
type lookupErr struct{ l Lookup }

func (e *lookupErr) Error() string { return e.l.Error }
func (e *lookupErr) Class() string { return string(e.l.Class) }

// mxLookup asks the domain's MX: a failed lookup or a domain that does not
// exist is a collection error (unknown: whether the domain receives mail
// cannot be told).
func mxLookup(ctx context.Context, env *check.Env, domain string) (Lookup, error) {
	l := query(ctx, dnsq.Over(env.DNS), dns.Fqdn(domain), dns.TypeMX)
	switch {
	case l.failed():
		return l, fmt.Errorf("mta-sts: lookup MX %s: %w", domain, &lookupErr{l})
	case l.Rcode == "NXDOMAIN":
		return l, check.WithClass(check.ErrNoDomain, fmt.Errorf("mta-sts: %s does not exist in DNS (NXDOMAIN): check the estate file and the domain's registration", domain))
	}
	return l, nil
}

// MXHosts are the MX exchanges of an MX lookup, less the null MX (".").
func MXHosts(l Lookup) []string {
	var out []string
	for _, h := range l.Answers {
		if h != "" && h != "." {
			out = append(out, h)
		}
	}
	return out
}

func domainOf(a check.Asset) string { return strings.ToLower(strings.TrimSuffix(a.Name, ".")) }

func collectSTS(ctx context.Context, env *check.Env, a check.Asset) (Evidence, error) {
	ev := Evidence{Domain: domainOf(a)}
	var err error
	if ev.MX, err = mxLookup(ctx, env, ev.Domain); err != nil {
		return ev, err
	}
	if len(MXHosts(ev.MX)) == 0 {
		return ev, nil
	}
	d := Discover(ctx, env, ev.Domain)
	ev.STS = &d
	return ev, nil
}

func collectTLSRPT(ctx context.Context, env *check.Env, a check.Asset) (TLSRPTEvidence, error) {
	ev := TLSRPTEvidence{Domain: domainOf(a)}
	var err error
	if ev.MX, err = mxLookup(ctx, env, ev.Domain); err != nil {
		return ev, err
	}
	if len(MXHosts(ev.MX)) == 0 {
		return ev, nil
	}
	l := query(ctx, dnsq.Over(env.DNS), "_smtp._tls."+ev.Domain+".", dns.TypeTXT)
	ev.Record = &l
	return ev, nil
}

func finding(id, rule string, o check.Outcome, format string, a ...any) check.Finding {
	return check.Finding{CheckID: id, Rule: rule, Outcome: o, Message: fmt.Sprintf(format, a...)}
}

func unknownF(id, rule, reason, format string, a ...any) check.Finding {
	f := finding(id, rule, check.Unknown, format, a...)
	f.Reason = reason
	if f.Reason == "" {
		f.Reason = string(check.ErrOther)
	}
	f.Remediation = "Nothing to change yet: the scanner could not get an answer it needed. If this persists, check that your name servers and the policy host answer."
	return f
}

const notReceiving = "%s has no MX (it receives no mail), so %s does not apply"

func evaluateSTS(in check.In[Evidence]) []check.Finding {
	ev := in.Evidence
	if ev.STS == nil {
		return []check.Finding{
			finding(RecordID, ruleRecord, check.NA, notReceiving, ev.Domain, "MTA-STS"),
			finding(PolicyID, rulePolicy, check.NA, notReceiving, ev.Domain, "MTA-STS"),
			finding(ModeID, ruleMode, check.NA, notReceiving, ev.Domain, "MTA-STS"),
		}
	}
	d := *ev.STS
	ps := judgePolicy(d, MXHosts(ev.MX), in.CollectedAt, in.Policy)
	return []check.Finding{recordFinding(d), ps.finding(d), modeFinding(d, ps)}
}

// recordFinding judges the TXT record at _mta-sts.<domain>.
func recordFinding(d Discovery) check.Finding {
	id, rule := RecordID, ruleRecord
	name := "_mta-sts." + d.Domain
	if d.Record.failed() {
		return unknownF(id, rule, string(d.Record.Class), "the TXT lookup at %s failed: %s", name, d.Record.Error)
	}
	recs := d.STSRecords()
	switch len(recs) {
	case 0:
		msg := fmt.Sprintf("no MTA-STS record at %s: senders apply no policy, so mail to %s can be downgraded to plain text or sent to an impostor", name, d.Domain)
		if m := meantAsAny(d.Record.Answers, MeantAsSTS); m != "" {
			msg += fmt.Sprintf(" (%q is meant as one, but senders discard it: it must begin exactly v=STSv1;)", clip(m, 80))
		}
		return finding(id, rule, check.Fail, "%s", msg)
	case 1:
	default:
		return finding(id, rule, check.Fail, "%d MTA-STS records at %s (%s): senders ignore them all and apply no policy (RFC 8461 §3.1)",
			len(recs), name, quoteAll(recs))
	}
	r := ParseRecord(recs[0])
	if len(r.Problems) > 0 {
		return finding(id, rule, check.Fail, "the MTA-STS record at %s (%q) is invalid, so senders apply no policy: %s",
			name, clip(recs[0], 120), strings.Join(r.Problems, "; "))
	}
	return finding(id, rule, check.Pass, "one MTA-STS record at %s, id=%s", name, r.ID)
}

func meantAsAny(ss []string, meant func(string) bool) string {
	for _, s := range ss {
		if meant(s) {
			return s
		}
	}
	return ""
}

func quoteAll(ss []string) string {
	var q []string
	for i, s := range ss {
		if i == maxShown {
			q = append(q, "…")
			break
		}
		q = append(q, fmt.Sprintf("%q", clip(s, 80)))
	}
	return strings.Join(q, ", ")
}

func listOf(ss []string) string {
	if len(ss) > maxShown {
		return strings.Join(ss[:maxShown], ", ") + fmt.Sprintf(" and %d more", len(ss)-maxShown)
	}
	return strings.Join(ss, ", ")
}

// policyState is the judgement of a domain's policy file.
type policyState struct {
	outcome check.Outcome
	reason  string
	msg     string
	// valid: senders use the policy (whether or not it covers every MX
	// host); pol is its parsed body.
	valid bool
	pol   Policy
}

func (ps policyState) finding(d Discovery) check.Finding {
	if ps.outcome == check.Unknown {
		return unknownF(PolicyID, rulePolicy, ps.reason, "%s", ps.msg)
	}
	return finding(PolicyID, rulePolicy, ps.outcome, "%s", ps.msg)
}

// certRules are the tls.cert verdicts that make a certificate valid for
// the policy host (RFC 8461 §3.3: a valid PKIX path to a trusted root for
// the name, within its dates). Key size, signature hash and revocation are
// tls.cert.*'s to judge on a web host; they do not stop senders.
var certRules = []string{tlscheck.CertChain, tlscheck.CertName, tlscheck.CertExpiry}

// judgePolicy judges the fetched policy. mxHosts are the domain's MX hosts,
// which the policy's patterns must cover; nil: coverage is not judged.
func judgePolicy(d Discovery, mxHosts []string, at time.Time, p *check.Policy) policyState {
	name := "_mta-sts." + d.Domain
	switch {
	case d.Record.failed():
		return policyState{outcome: check.Unknown, reason: string(d.Record.Class),
			msg: fmt.Sprintf("whether %s publishes MTA-STS could not be told: the TXT lookup at %s failed (%s)", d.Domain, name, d.Record.Error)}
	case len(d.STSRecords()) == 0:
		return policyState{outcome: check.NA, msg: fmt.Sprintf("no MTA-STS record at %s, so senders look for no policy (see %s)", name, RecordID)}
	case d.Policy == nil:
		return policyState{outcome: check.Unknown, reason: string(check.ErrInternal), msg: "the policy was not fetched"}
	}
	f := *d.Policy
	fail := func(format string, a ...any) policyState {
		return policyState{outcome: check.Fail, msg: fmt.Sprintf(format, a...) + ": senders cannot use the policy, so it protects nothing"}
	}
	switch {
	case f.NoHost:
		return fail("%s does not resolve to an address", f.Host)
	case f.Refused:
		return fail("%s refuses connections on port 443", f.Host)
	case f.Alerted:
		return fail("%s ended the TLS handshake with an alert (%s)", f.Host, f.Error)
	case f.TooLarge && f.Status == 0:
		return fail("the response from %s is over its bound (%s)", f.Host, f.Error)
	case f.Error != "" && !f.TooLarge:
		return policyState{outcome: check.Unknown, reason: string(f.Class),
			msg: fmt.Sprintf("could not fetch %s: %s", f.URL, f.Error)}
	}
	var probs, uncovered, notes []string
	certUnknown, certReason := "", ""
	if f.Cert != nil {
		vs := tlscheck.EvalCert(f.Host, []tlscheck.Endpoint{*f.Cert}, at, p)
		for _, id := range certRules {
			switch v := vs[id]; v.Outcome {
			case check.Fail:
				probs = append(probs, "the certificate is not valid for "+f.Host+": "+v.Message)
			case check.Unknown:
				if certUnknown == "" {
					certUnknown, certReason = v.Message, v.Reason
				}
			case check.Warn:
				if id == tlscheck.CertExpiry {
					notes = append(notes, "certificate: "+v.Message)
				}
			}
		}
	}
	ps := policyState{}
	switch {
	case f.Status >= 300 && f.Status < 400:
		to := f.Location
		if to == "" {
			to = "no Location"
		}
		probs = append(probs, fmt.Sprintf("%s answers HTTP %d, a redirect to %s: senders do not follow redirects (RFC 8461 §3.3)", f.URL, f.Status, to))
	case f.Status != http.StatusOK:
		probs = append(probs, fmt.Sprintf("%s answers HTTP %d, not 200", f.URL, f.Status))
	default:
		if mt, _, err := mime.ParseMediaType(f.ContentType); f.ContentType == "" || err != nil || mt != "text/plain" {
			probs = append(probs, fmt.Sprintf("the Content-Type is %q, not text/plain", f.ContentType))
		}
		if f.TooLarge {
			probs = append(probs, fmt.Sprintf("the body is over %d bytes", MaxBody))
		}
		ps.pol = ParsePolicy(f.Body)
		for _, pr := range ps.pol.Problems {
			probs = append(probs, "policy: "+pr)
		}
		if ps.pol.LF {
			notes = append(notes, "lines end in LF where RFC 8461 §3.2 says CRLF, which senders accept")
		}
		if n := ps.pol.Ignored; n > 0 {
			notes = append(notes, fmt.Sprintf("%d line(s) that are not key: value were ignored", n))
		}
		if mxHosts != nil {
			uncovered = ps.pol.Uncovered(mxHosts)
		}
	}
	tail := ""
	if len(notes) > 0 {
		tail = " (" + strings.Join(notes, "; ") + ")"
	}
	switch {
	case len(probs) > 0:
		ps.outcome = check.Fail
		ps.msg = fmt.Sprintf("the MTA-STS policy at %s is not valid, so senders apply none: %s%s", f.URL, strings.Join(probs, "; "), tail)
	case certUnknown != "":
		ps.outcome, ps.reason = check.Unknown, certReason
		ps.msg = fmt.Sprintf("whether the certificate of %s is valid could not be told: %s", f.Host, certUnknown)
	case len(uncovered) > 0:
		// Senders use the policy; it is the MX hosts it leaves out that
		// they will not deliver to (enforce) or report (testing).
		ps.outcome, ps.valid = check.Fail, true
		ps.msg = fmt.Sprintf("the MTA-STS policy at %s (mode %s) does not cover every MX host: its mx patterns (%s) match none of %s, which senders applying the policy treat as a failure (in enforce mode they do not deliver there)%s",
			f.URL, ps.pol.Mode, listOf(ps.pol.MX), listOf(uncovered), tail)
	default:
		ps.valid = true
		ps.outcome = check.Pass
		ps.msg = fmt.Sprintf("the MTA-STS policy at %s is valid: mode %s, max_age %d, mx %s", f.URL, ps.pol.Mode, ps.pol.MaxAge, listOf(ps.pol.MX))
		if mxHosts != nil {
			ps.msg += fmt.Sprintf(", matching every MX host (%s)", listOf(mxHosts))
		}
		ps.msg += tail
	}
	return ps
}

// modeFinding judges the mode of a valid policy.
func modeFinding(d Discovery, ps policyState) check.Finding {
	id, rule := ModeID, ruleMode
	switch ps.outcome {
	case check.Unknown:
		return unknownF(id, rule, ps.reason, "the policy could not be judged, so neither can its mode: %s", ps.msg)
	case check.NA:
		return finding(id, rule, check.NA, "no MTA-STS record at _mta-sts.%s, so no mode applies (see %s)", d.Domain, RecordID)
	}
	if !ps.valid {
		return finding(id, rule, check.NA, "the MTA-STS policy is not valid, so senders apply no mode (see %s)", PolicyID)
	}
	pol := ps.pol
	switch pol.Mode {
	case ModeEnforce:
		if pol.MaxAge < EnforceMinMaxAge {
			return finding(id, rule, check.Warn, "mode enforce, but max_age %d is under %d seconds (14 days): senders forget the policy quickly, and an attacker who blocks the fetch can strip TLS", pol.MaxAge, EnforceMinMaxAge)
		}
		return finding(id, rule, check.Pass, "mode enforce with max_age %d: senders refuse to deliver to %s without valid TLS", pol.MaxAge, d.Domain)
	case ModeTesting:
		msg := fmt.Sprintf("mode testing: senders report TLS failures but still deliver without TLS; move to enforce once the TLS reports are clean (max_age %d)", pol.MaxAge)
		if pol.MaxAge < TestingMinMaxAge {
			msg += fmt.Sprintf("; max_age is under %d seconds (a day)", TestingMinMaxAge)
		}
		return finding(id, rule, check.Warn, "%s", msg)
	}
	return finding(id, rule, check.Fail, "mode none: the policy is switched off, and senders deliver to %s without requiring TLS", d.Domain)
}

// InForce says which MTA-STS mode senders apply to domain d, as Evaluate
// judges it at time at with p's trust anchors: "enforce", "testing" or
// "none" (also when the domain has no valid record or no valid policy).
// known is false when a lookup or the fetch could not tell. The MX
// coverage of the policy is not part of it (the caller is one MX host).
func InForce(d Discovery, at time.Time, p *check.Policy) (mode string, known bool) {
	if d.Record.failed() {
		return "", false
	}
	recs := d.STSRecords()
	if len(recs) != 1 || len(ParseRecord(recs[0]).Problems) > 0 {
		return ModeNone, true
	}
	ps := judgePolicy(d, nil, at, p)
	switch {
	case ps.outcome == check.Unknown:
		return "", false
	case ps.valid:
		return ps.pol.Mode, true
	}
	return ModeNone, true
}

// TLS-RPT.

func evaluateTLSRPT(in check.In[TLSRPTEvidence]) []check.Finding {
	ev := in.Evidence
	id, rule := TLSRPTID, ruleTLSRPT
	if ev.Record == nil {
		return []check.Finding{finding(id, rule, check.NA, notReceiving, ev.Domain, "TLS reporting")}
	}
	return []check.Finding{tlsrptFinding(ev.Domain, *ev.Record)}
}

func tlsrptFinding(domain string, l Lookup) check.Finding {
	id, rule := TLSRPTID, ruleTLSRPT
	name := "_smtp._tls." + domain
	if l.failed() {
		return unknownF(id, rule, string(l.Class), "the TXT lookup at %s failed: %s", name, l.Error)
	}
	var recs []string
	for _, s := range l.Answers {
		if IsTLSRPT(s) {
			recs = append(recs, s)
		}
	}
	switch len(recs) {
	case 0:
		msg := fmt.Sprintf("no TLS-RPT record at %s: senders report TLS failures to nobody, so problems delivering to %s go unseen", name, domain)
		if m := meantAsAny(l.Answers, MeantAsTLSRPT); m != "" {
			msg += fmt.Sprintf(" (%q is meant as one, but senders discard it: it must begin exactly v=TLSRPTv1;)", clip(m, 80))
		}
		return finding(id, rule, check.Fail, "%s", msg)
	case 1:
	default:
		return finding(id, rule, check.Fail, "%d TLS-RPT records at %s (%s): senders ignore them all (RFC 8460 §3)", len(recs), name, quoteAll(recs))
	}
	r := ParseTLSRPT(recs[0])
	if len(r.Problems) > 0 {
		return finding(id, rule, check.Fail, "the TLS-RPT record at %s (%q) is invalid: %s", name, clip(recs[0], 120), strings.Join(r.Problems, "; "))
	}
	var dests, legacy []string
	for _, u := range r.RUA {
		if u.Scheme == "mailto" && u.Addr == NCSCLegacyTLSRPT {
			legacy = append(legacy, u.Raw)
			continue
		}
		dests = append(dests, u.Raw)
	}
	note := ""
	if len(legacy) > 0 {
		note = "; legacy: " + NCSCLegacyTLSRPT + " is the retired NCSC Mail Check address; confirm the current government reporting endpoint"
	}
	if len(dests) == 0 {
		f := finding(id, rule, check.Warn, "the only TLS report destination is the retired NCSC Mail Check address%s", note)
		f.Remediation = "Add a report destination that you read (your own mailbox or a reporting service) to rua=; the NCSC Mail Check service has been retired."
		return f
	}
	return finding(id, rule, check.Pass, "TLS reports go to %s%s", listOf(dests), note)
}
