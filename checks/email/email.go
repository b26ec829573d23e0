// Package email holds the email-security checks of a domain: SPF (the
// email.spf.* catalogue ids) and DMARC (email.dmarc.*). Collect walks DNS
// through the injected resolver and stores what it saw; Evaluate judges that
// evidence against the policy (checks.md §1.6, §3.1, §4). The record
// parsers are in the spf and dmarc sub-packages.
package email

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/email/spf"
)

// Lookup is one DNS query as evidence.
type Lookup struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Rcode   string   `json:"rcode,omitempty"`
	Answers []string `json:"answers,omitempty"` // rdata of the asked type
	Size    int      `json:"size,omitempty"`    // response bytes on the wire
	Void    bool     `json:"void,omitempty"`    // NXDOMAIN or no record of the type
	Error   string   `json:"error,omitempty"`   // could not tell
	Class   string   `json:"class,omitempty"`   // error class: timeout, dns, canceled
}

func (l Lookup) failed() bool { return l.Error != "" }

// query runs one lookup and records it; a resolver error is recorded, not
// returned, so that the caller can carry on with the rest of the walk.
func query(ctx context.Context, r *dnsq.Client, name string, qtype uint16) Lookup {
	l := Lookup{Name: strings.TrimSuffix(name, "."), Type: dns.TypeToString[qtype]}
	resp, err := r.Query(ctx, name, qtype)
	if err != nil {
		l.Error, l.Class = err.Error(), string(check.Classify(err))
		return l
	}
	l.Rcode, l.Size, l.Void = resp.Rcode, resp.Size, resp.Void()
	for _, rr := range resp.Of(qtype) {
		switch v := rr.(type) {
		case *dns.TXT:
			l.Answers = append(l.Answers, strings.Join(v.Txt, ""))
		case *dns.MX:
			l.Answers = append(l.Answers, fmt.Sprintf("%d %s", v.Preference, v.Mx))
		case *dns.A:
			l.Answers = append(l.Answers, v.A.String())
		case *dns.AAAA:
			l.Answers = append(l.Answers, v.AAAA.String())
		}
	}
	return l
}

// noDomain is the error for an asset whose name does not exist in DNS
// (NXDOMAIN at the name itself, not at _dmarc): its email rules cannot be
// judged. The estate may list a lapsed domain, or the resolver may be
// answering NXDOMAIN for everything; either way unknown, never fail.
func noDomain(family string, l Lookup) error {
	if l.Rcode != "NXDOMAIN" {
		return nil
	}
	return check.WithClass(check.ErrNoDomain, fmt.Errorf("%s: %s does not exist in DNS (NXDOMAIN): check the estate file and the domain's registration", family, l.Name))
}

// lookupErr turns a failed lookup back into an error for Collect.
type lookupErr struct{ l Lookup }

func (e *lookupErr) Error() string { return e.l.Error }
func (e *lookupErr) Class() string { return e.l.Class }

// spfRecords selects the SPF records among TXT strings.
func spfRecords(txt []string) []string {
	var out []string
	for _, s := range txt {
		if spf.IsSPF(s) {
			out = append(out, s)
		}
	}
	return out
}

// mxTargets returns the MX exchange names of an MX lookup.
func mxTargets(l Lookup) []string {
	var out []string
	for _, a := range l.Answers {
		if _, host, ok := strings.Cut(a, " "); ok {
			out = append(out, host)
		}
	}
	return out
}

// Class is a domain's mail role (checks.md §4): receiving = non-null MX;
// sending = an SPF record that names a sender (a mechanism other than all,
// or a redirect); parked = neither. DKIM is not looked at: selectors cannot
// be enumerated, so a domain that signs mail but publishes no sender in SPF
// is taken for parked.
type Class struct {
	Receiving, Sending bool
	// Known is false when a lookup needed to tell failed.
	Known  bool
	Why    string // why it is unknown
	Reason string // the error class of the lookup that failed
}

// Parked reports a domain that neither receives nor sends mail.
func (c Class) Parked() bool { return !c.Receiving && !c.Sending }

func (c Class) String() string {
	switch {
	case !c.Known:
		return "unknown (" + c.Why + ")"
	case c.Parked():
		return "parked (no MX, and SPF names no sender)"
	case c.Receiving && c.Sending:
		return "receiving and sending"
	case c.Receiving:
		return "receiving"
	}
	return "sending"
}

// classify reads the class from an MX lookup and the SPF records of the
// domain (spfErr: the TXT lookup failed).
func classify(mx Lookup, records []string, spfErr, spfClass string) Class {
	c := Class{Known: true}
	mxKnown := !mx.failed()
	for _, h := range mxTargets(mx) {
		if h != "." {
			c.Receiving = true
		}
	}
	spfKnown := spfErr == ""
	for _, r := range records {
		rec, err := spf.Parse(r)
		// A record that does not parse still shows the intent to send.
		if err != nil || spf.NamesSenders(rec) {
			c.Sending = true
		}
	}
	switch {
	case c.Receiving || c.Sending:
	case !mxKnown:
		c.Known, c.Why, c.Reason = false, "MX lookup: "+mx.Error, mx.Class
	case !spfKnown:
		c.Known, c.Why, c.Reason = false, "TXT lookup: "+spfErr, spfClass
	}
	return c
}

// byClass judges twice when the class is unknown: if the verdicts agree the
// class did not matter; otherwise the finding is unknown.
func byClass(c Class, judge func(parked bool) check.Finding) check.Finding {
	if c.Known {
		return judge(c.Parked())
	}
	a, b := judge(true), judge(false)
	if a.Outcome == b.Outcome {
		return b
	}
	b.Outcome = check.Unknown
	b.Reason = c.Reason
	b.Message = "could not tell whether the domain sends or receives mail (" + c.Why +
		"), and the verdict depends on it: as a mail domain, " + b.Message + "; as a parked domain, " + a.Message
	b.Remediation = remedyUnknown
	return b
}

const remedyUnknown = "Nothing to change yet: the scanner could not get a DNS answer it needed. " +
	"If this persists, check that your name servers answer for the names in the message."

func finding(id, rule string, o check.Outcome, msg, remedy string) check.Finding {
	return check.Finding{CheckID: id, Rule: rule, Outcome: o, Message: msg, Remediation: remedy}
}

func unknown(id, rule, msg, reason string) check.Finding {
	f := finding(id, rule, check.Unknown, msg, remedyUnknown)
	f.Reason = reason
	return f
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Citations shared by the rules (checks.md §1.6; Status as marked there).
const mcRepo = "https://github.com/ukncsc/mail-check"

var (
	refGovSGE  = check.Ref{Standard: "GOV.UK: Securing government email", Section: "have DMARC, DKIM and SPF records in place", URL: "https://www.gov.uk/guidance/securing-government-email"}
	refGovPark = check.Ref{Standard: "GOV.UK: Protect domains that don't send email", URL: "https://www.gov.uk/guidance/protect-domains-that-dont-send-email"}
	refBOD     = check.Ref{Standard: "CISA BOD 18-01", Section: "valid SPF and DMARC; DMARC p=reject", URL: "https://www.cisa.gov/news-events/directives/bod-18-01-enhance-email-and-web-security"}
	refCAFB4b  = check.Ref{Standard: "NCSC CAF v3.2", Section: "B4.b Secure configuration (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"}
	refCAFC1   = check.Ref{Standard: "NCSC CAF v3.2", Section: "C1 Security monitoring (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"}
)

func rfc(n, title, section, status string) check.Ref {
	return check.Ref{Standard: "RFC " + n + " (" + title + ")", Section: section, URL: "https://www.rfc-editor.org/rfc/rfc" + n, Status: status}
}

func mc(rule string) check.Ref {
	return check.Ref{Standard: "NCSC Mail Check", Section: rule, URL: mcRepo}
}
