package email

import (
	"fmt"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/email/spf"
)

// Rules (phrased so that pass is good).
const (
	ruleSPFRecord  = "spf-record-valid"
	ruleSPFAll     = "spf-ends-in-fail-all"
	ruleSPFLookups = "spf-lookups-within-limit"
	ruleSPFVoid    = "spf-void-lookups-within-limit"
	ruleSPFSyntax  = "spf-record-tidy"
)

// spfTally is what the expansion tree adds up to, for a sender that
// matches no mechanism (the case that reaches every lookup).
type spfTally struct {
	lookups int
	// void4 and void6 count the terms that made a void lookup for a
	// sender connecting over IPv4 and over IPv6; unknown4 and unknown6 the
	// terms whose lookups for that family could not tell.
	void4, void6       int
	unknown4, unknown6 []string
	voidClass          string   // error class of the first of them
	perm               []string // permerrors other than the limits
	// temp are the lookups that leave the lookup count unknown: include
	// and redirect targets not fetched, mx terms whose MX lookup failed.
	// fetch are the first kind alone: they leave the policy's validity
	// unknown too.
	temp, fetch []string
	tempClass   string // error class of the first of them
	loops       []string
	mxOver      []string
	macros      int  // terms not expanded (sender macros)
	capped      bool // walk bounds reached: counts are lower bounds
	afterAll    int  // mechanisms after all: never evaluated, not counted
}

func (t *spfTally) add(n *SPFNode) {
	where := n.Domain
	if n.Via != "" {
		where = n.Via + " " + n.Domain
	}
	switch n.Problem {
	case probSyntax, probNoRecord, probMultiple:
		t.perm = append(t.perm, where+": "+n.Error)
	case probTemp:
		t.temp = append(t.temp, where+": "+n.Error)
		t.fetch = append(t.fetch, where+": "+n.Error)
		if n.TXT != nil {
			t.noteClass(&t.tempClass, n.TXT.Class)
		}
	}
	pastAll := false
	for i := range n.Terms {
		st := &n.Terms[i]
		if !st.Modifier && pastAll {
			// RFC 7208 §5.1: never tested. Decided by position, so
			// evidence that followed them (version 1) is read alike.
			t.afterAll++
			continue
		}
		if !st.Modifier && st.Name == "all" {
			pastAll = true
		}
		if st.Lookup {
			t.lookups++
		}
		for _, v6 := range []bool{false, true} {
			void, unknown := &t.void4, &t.unknown4
			if v6 {
				void, unknown = &t.void6, &t.unknown6
			}
			switch tv := termVoid(st, v6); {
			case tv.void:
				*void++
			case tv.unknown:
				*unknown = append(*unknown, st.Term+": "+tv.why)
				t.noteClass(&t.voidClass, tv.class)
			}
		}
		switch st.Problem {
		case probLoop:
			t.loops = append(t.loops, st.Error)
		case probMXLimit:
			t.mxOver = append(t.mxOver, st.Error)
		case probTemp:
			t.temp = append(t.temp, st.Term+": "+st.Error)
			for _, q := range st.Queries {
				t.noteClass(&t.tempClass, q.Class)
			}
		case probSyntax:
			t.perm = append(t.perm, st.Term+": "+st.Error)
		case probMacro:
			t.macros++
		case probCap:
			t.capped = true
		}
		if st.Child != nil {
			t.add(st.Child)
		}
	}
}

func (t *spfTally) noteClass(to *string, c string) {
	if *to == "" {
		*to = c
	}
}

// reason is the error class of an unknown count.
func (t *spfTally) reason() string {
	switch {
	case t.tempClass != "":
		return t.tempClass
	case len(t.temp) > 0:
		return string(check.ErrDNS)
	}
	return probCap
}

// voidness is whether one term made a void lookup for one address family.
type voidness struct {
	void, unknown bool
	why, class    string // of unknown
}

// termVoid says whether a term made a void lookup for a sender connecting
// over IPv6 (v6) or IPv4, as a receiver evaluating it would: RFC 7208
// §4.6.4 counts an answer with no records of the type asked, or NXDOMAIN.
// A receiver asks for A for an IPv4 sender and AAAA for an IPv6 one (a,
// and the hosts of mx, §5.3–§5.4); exists always asks for A (§5.7);
// include and redirect ask for TXT. A lookup of the other family that
// failed does not matter, and a void answer settles the term even when
// another of its lookups failed. The limit counts terms (§4.6.4 "terms
// for which DNS queries return ..."): an mx term whose hosts have no
// address counts once. (pyspf, behind Postfix policyd-spf, counts each
// lookup; a term-count under the limit can still trip it there.)
func termVoid(st *SPFTerm, v6 bool) voidness {
	if st.Modifier && st.Name != "redirect" || !st.Lookup {
		return voidness{}
	}
	addr := "A"
	if v6 {
		addr = "AAAA"
	}
	var qs []Lookup
	switch st.Name {
	case "include", "redirect":
		if st.Child != nil && st.Child.TXT != nil {
			return voidness{void: st.Child.TXT.Void}
		}
		return voidness{}
	case "a":
		qs = st.Queries
	case "exists":
		addr, qs = "A", st.Queries
	case "mx":
		if len(st.Queries) == 0 {
			return voidness{}
		}
		mx := st.Queries[0]
		switch {
		case mx.failed():
			return voidness{unknown: true, why: mx.Error, class: mx.Class}
		case mx.Void:
			return voidness{void: true}
		case st.Problem == probUnresolved:
			return voidness{unknown: true, why: "the addresses of its hosts were not looked up", class: probCap}
		}
		qs = st.Queries[1:]
	default:
		return voidness{}
	}
	var out voidness
	for _, q := range qs {
		if q.Type != addr {
			continue
		}
		switch {
		case q.failed() && !out.unknown:
			out = voidness{unknown: true, why: q.Type + " " + q.Name + ": " + q.Error, class: q.Class}
		case !q.failed() && q.Void:
			return voidness{void: true}
		}
	}
	return out
}

// allState is the terminal all of a policy, through redirect.
type allState struct {
	qualifier string // "-", "~", "?", "+"; "" when there is none
	domain    string // where it was found
	last      bool   // no mechanism follows it
	problem   string // permerror / temperror / macro reached through redirect
	detail    string
	class     string // error class of a temperror
}

func terminalAll(n *SPFNode, depth int) allState {
	if depth > walkMaxLookups+1 {
		return allState{problem: probCap}
	}
	switch n.Problem {
	case "":
	case probTemp:
		s := allState{problem: probTemp, detail: n.Domain + ": " + n.Error}
		if n.TXT != nil {
			s.class = n.TXT.Class
		}
		return s
	default:
		return allState{problem: probSyntax, detail: n.Domain + ": " + n.Error}
	}
	for i, st := range n.Terms {
		if !st.Modifier && st.Name == "all" {
			s := allState{qualifier: st.Qualifier, domain: n.Domain, last: true}
			for _, later := range n.Terms[i+1:] {
				if !later.Modifier {
					s.last = false
				}
			}
			return s
		}
	}
	for _, st := range n.Terms {
		if !st.Modifier || st.Name != "redirect" {
			continue
		}
		switch {
		case st.Child != nil:
			return terminalAll(st.Child, depth+1)
		case st.Problem == probTemp:
			return allState{problem: probTemp, detail: st.Term + ": " + st.Error, class: string(check.ErrDNS)}
		case st.Problem == probMacro, st.Problem == probCap:
			return allState{problem: probCap, detail: st.Term + " was not followed"}
		default:
			return allState{problem: probSyntax, detail: st.Term + ": " + st.Error}
		}
	}
	return allState{domain: n.Domain, last: true}
}

func evaluateSPF(in check.In[SPFEvidence]) []check.Finding {
	ev, pol := in.Evidence, Settings.Get(in.Policy)
	class := classify(ev.MX, ev.Records, "", "")
	var out []check.Finding

	na := func(id, rule, why string) check.Finding {
		return finding(id, rule, check.NA, why+" (see email.spf.record)", "")
	}
	var rec *spf.Record
	var parseErr error
	if len(ev.Records) == 1 {
		rec, parseErr = spf.Parse(ev.Records[0])
	}
	if len(ev.Records) != 1 || parseErr != nil || ev.Policy == nil {
		out = append(out, spfRecordFinding(ev, parseErr, &spfTally{}, class))
		why := "no single valid SPF record to evaluate"
		out = append(out, na(SPFAll, ruleSPFAll, why), na(SPFLookups, ruleSPFLookups, why), na(SPFVoid, ruleSPFVoid, why))
		if parseErr != nil {
			out = append(out, finding(SPFSyntax, ruleSPFSyntax, check.Fail,
				fmt.Sprintf("the SPF record does not parse (%v); receivers return permerror for it: %q", parseErr, clipQ(ev.Records[0])),
				"Correct the SPF record's syntax: each term must be a known mechanism (all, include, a, mx, ptr, ip4, ip6, exists) with an optional + - ~ ? qualifier, or a name=value modifier."))
		} else {
			out = append(out, na(SPFSyntax, ruleSPFSyntax, why))
		}
		return out
	}
	var t spfTally
	t.add(ev.Policy)
	out = append(out, spfRecordFinding(ev, nil, &t, class))
	out = append(out, spfAllFinding(ev, pol, class))
	out = append(out, spfLookupsFinding(&t, pol.SPFMaxLookups))
	out = append(out, spfVoidFinding(&t, pol.SPFMaxVoid))
	out = append(out, spfSyntaxFinding(ev, rec, pol.SPFMaxUDPBytes))
	return out
}

func clipQ(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func spfRecordFinding(ev SPFEvidence, parseErr error, t *spfTally, class Class) check.Finding {
	id, rule := SPFRecord, ruleSPFRecord
	switch n := len(ev.Records); {
	case n == 0:
		msg := fmt.Sprintf("no SPF record at %s (%s seen, none starting v=spf1)", ev.Domain, plural(len(ev.TXT.Answers), "TXT string", "TXT strings"))
		remedy := "Publish one TXT record at " + ev.Domain + " starting \"v=spf1\" that lists the services sending your mail and ends in \"-all\"."
		if class.Known && class.Parked() {
			remedy = "This domain sends no mail: publish the TXT record \"v=spf1 -all\" at " + ev.Domain + " so nobody can send as it."
		}
		return finding(id, rule, check.Fail, msg, remedy)
	case n > 1:
		return finding(id, rule, check.Fail,
			fmt.Sprintf("%d SPF records at %s: receivers return permerror, so SPF protects nothing (%s)", n, ev.Domain, quoteAll(ev.Records)),
			"Merge the SPF records into one TXT record starting \"v=spf1\" and delete the others.")
	}
	if parseErr != nil {
		return finding(id, rule, check.Fail,
			fmt.Sprintf("the SPF record at %s does not parse (%v): receivers return permerror", ev.Domain, parseErr),
			"Correct the SPF record so that it parses; until then receivers treat it as broken (permerror).")
	}
	if len(t.perm) > 0 {
		return finding(id, rule, check.Fail,
			fmt.Sprintf("the SPF policy of %s ends in permerror: %s", ev.Domain, strings.Join(t.perm, "; ")),
			"Fix or remove the include/redirect targets named in the message: each must publish exactly one valid SPF record.")
	}
	if len(t.fetch) > 0 {
		return unknown(id, rule, fmt.Sprintf("one SPF record at %s, but parts of its policy could not be fetched, so its validity is not known: %s",
			ev.Domain, strings.Join(t.fetch, "; ")), t.reason())
	}
	return finding(id, rule, check.Pass, fmt.Sprintf("one SPF record at %s: %q", ev.Domain, clipQ(ev.Records[0])), "")
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", clipQ(s))
	}
	return strings.Join(q, ", ")
}

func normaliseSPF(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

func spfAllFinding(ev SPFEvidence, pol Policy, class Class) check.Finding {
	id, rule := SPFAll, ruleSPFAll
	s := terminalAll(ev.Policy, 0)
	switch s.problem {
	case probTemp:
		return unknown(id, rule, "the terminal all is reached through a redirect that could not be fetched: "+s.detail, s.class)
	case probCap:
		return unknown(id, rule, "the terminal all is behind a redirect that the scanner did not follow: "+s.detail, "not-followed")
	case probSyntax:
		return finding(id, rule, check.NA, "the redirect chain ends in permerror ("+s.detail+"), so there is no terminal all (see email.spf.record)", "")
	}
	return byClass(class, func(parked bool) check.Finding {
		if parked {
			if normaliseSPF(ev.Records[0]) == "v=spf1 -all" {
				return finding(id, rule, check.Pass, "the domain sends and receives no mail and publishes exactly \"v=spf1 -all\"", "")
			}
			return finding(id, rule, check.Fail,
				fmt.Sprintf("the domain sends and receives no mail (no MX, no sender in SPF) but its SPF record is %q, not exactly \"v=spf1 -all\"", clipQ(ev.Records[0])),
				"This domain sends no mail: replace its SPF record with exactly \"v=spf1 -all\" (GOV.UK: Protect domains that don't send email).")
		}
		where := ""
		if s.domain != ev.Domain {
			where = " (through redirect, in the record of " + s.domain + ")"
		}
		switch {
		case s.qualifier == "":
			return finding(id, rule, check.Fail,
				"the SPF policy has no all mechanism"+where+", so mail from unlisted servers gets the default result neutral",
				"End the SPF record with \"-all\" so that mail from servers you have not listed fails SPF.")
		case !s.last:
			return finding(id, rule, check.Fail,
				"the all mechanism is not the last mechanism"+where+": the mechanisms after it are never evaluated",
				"Move \"-all\" to the end of the SPF record, after every other mechanism.")
		case s.qualifier == "-":
			return finding(id, rule, check.Pass, "the SPF policy ends in -all"+where, "")
		case s.qualifier == "~":
			if pol.SPFSoftfailPass {
				return finding(id, rule, check.Pass, "the SPF policy ends in ~all"+where+" (soft fail: accepted because DMARC does the enforcement; -all is stronger)", "")
			}
			return finding(id, rule, check.Warn, "the SPF policy ends in ~all"+where+" (soft fail): unlisted servers are only marked, not refused",
				"Change \"~all\" to \"-all\" once every service that sends your mail is listed.")
		case s.qualifier == "+":
			return finding(id, rule, check.Fail, "the SPF policy ends in +all"+where+": every server on the internet may send as this domain",
				"Replace \"+all\" with \"-all\" and list the services that really send your mail. As it stands anyone can pass SPF as this domain.")
		default:
			return finding(id, rule, check.Fail, "the SPF policy ends in ?all"+where+" (neutral): it says nothing about unlisted servers",
				"Replace \"?all\" with \"-all\" so that mail from servers you have not listed fails SPF.")
		}
	})
}

func spfLookupsFinding(t *spfTally, max int) check.Finding {
	id, rule := SPFLookups, ruleSPFLookups
	count := plural(t.lookups, "DNS lookup", "DNS lookups")
	if t.capped {
		count = "at least " + count
	}
	switch {
	case len(t.loops) > 0:
		return finding(id, rule, check.Fail,
			"the SPF include chain loops back on itself ("+strings.Join(t.loops, "; ")+"): evaluation never ends within the lookup limit and receivers return permerror",
			"Remove the include or redirect that points back to a record already in the chain.")
	case len(t.mxOver) > 0:
		return finding(id, rule, check.Fail,
			"an mx term names more than 10 mail servers ("+strings.Join(t.mxOver, "; ")+"): receivers return permerror",
			"Replace the mx term with ip4/ip6 ranges for the servers that send mail.")
	case t.lookups > max:
		return finding(id, rule, check.Fail,
			fmt.Sprintf("the SPF policy needs %s (limit %d): receivers return permerror", count, max), "")
	case len(t.temp) > 0 || t.capped:
		return unknown(id, rule, fmt.Sprintf("%s counted, but parts of the policy could not be fetched: %s", count, strings.Join(t.temp, "; ")), t.reason())
	}
	note := ""
	if t.macros > 0 {
		note = fmt.Sprintf("; %s use sender macros and were counted but not expanded", plural(t.macros, "term", "terms"))
	}
	if t.afterAll > 0 {
		note += fmt.Sprintf("; %s after all %s never evaluated and not counted (RFC 7208 §5.1)",
			plural(t.afterAll, "mechanism", "mechanisms"), map[bool]string{true: "is", false: "are"}[t.afterAll == 1])
	}
	if t.lookups == max {
		return finding(id, rule, check.Warn,
			fmt.Sprintf("the SPF policy needs exactly %d DNS lookups, the limit%s: one more include breaks it", t.lookups, note),
			"Make room under the 10-lookup limit before adding any sender: replace a and mx terms with ip4/ip6 ranges or drop unused includes.")
	}
	return finding(id, rule, check.Pass, fmt.Sprintf("the SPF policy needs %s (limit %d)%s", count, max, note), "")
}

func spfVoidFinding(t *spfTally, max int) check.Finding {
	id, rule := SPFVoid, ruleSPFVoid
	v6 := ""
	if t.void6 != t.void4 {
		v6 = fmt.Sprintf(" (%d for one connecting over IPv6)", t.void6)
	}
	switch {
	case t.void4 > max:
		return finding(id, rule, check.Fail,
			fmt.Sprintf("for a sender connecting over IPv4, %d SPF terms look up names that do not exist or have no records of the type asked%s, over the limit of %d: receivers may return permerror",
				t.void4, v6, max), "")
	case len(t.unknown4) > 0 || len(t.fetch) > 0 || t.capped:
		why := append(append([]string{}, t.fetch...), t.unknown4...)
		reason := t.reason()
		if len(t.fetch) == 0 && !t.capped {
			reason = t.voidClass
		}
		return unknown(id, rule, fmt.Sprintf("%s counted, but some lookups could not tell: %s",
			plural(t.void4, "void lookup", "void lookups"), strings.Join(why, "; ")), reason)
	case t.void6 > max:
		return finding(id, rule, check.Warn,
			fmt.Sprintf("%d void lookups for a sender connecting over IPv4, but %d for one connecting over IPv6 (limit %d): the names in the a and mx terms have no AAAA records, so receivers that count void lookups (pyspf, behind Postfix policyd-spf) return permerror for mail that reaches them over IPv6",
				t.void4, t.void6, max),
			"Give the hosts named in a and mx terms AAAA records, or replace those terms with ip4: ranges, so that IPv6 senders do not run into the void-lookup limit.")
	}
	note := ""
	if len(t.unknown6) > 0 {
		note = "; for a sender connecting over IPv6 some lookups could not tell: " + strings.Join(t.unknown6, "; ")
	}
	return finding(id, rule, check.Pass, fmt.Sprintf("%s%s (limit %d)%s", plural(t.void4, "void lookup", "void lookups"), v6, max, note), "")
}

func spfSyntaxFinding(ev SPFEvidence, rec *spf.Record, maxUDP int) check.Finding {
	id, rule := SPFSyntax, ruleSPFSyntax
	problems := spf.Lint(rec)
	if ev.TXT.Size > maxUDP {
		problems = append(problems, fmt.Sprintf("the TXT answer at %s is %d bytes, over %d: it may not fit a single UDP packet", ev.Domain, ev.TXT.Size, maxUDP))
	}
	if len(problems) > 0 {
		return finding(id, rule, check.Warn, strings.Join(problems, "; "), "")
	}
	return finding(id, rule, check.Pass, fmt.Sprintf("the SPF record is tidy; the TXT answer is %d bytes", ev.TXT.Size), "")
}
