package email

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/email/spf"
)

// Catalogue ids of the SPF collector.
const (
	SPFRecord  = "email.spf.record"
	SPFAll     = "email.spf.all"
	SPFLookups = "email.spf.lookups"
	SPFVoid    = "email.spf.void"
	SPFSyntax  = "email.spf.syntax"
)

// Bounds of the walk. They sit well above the RFC limits (10 lookups, 2
// void) so the evidence shows by how much a policy overshoots, and so a
// Policy may raise the thresholds; past them the walk counts terms without
// querying them and marks the count as a lower bound.
const (
	walkMaxLookups = 30  // DNS-querying terms followed
	walkMaxQueries = 120 // DNS queries sent by one walk
	mxHostLimit    = 10  // RFC 7208 §4.6.4: address lookups per mx term
)

// Problems recorded on a node or a term of the walk.
const (
	probSyntax   = "syntax"           // the record does not parse: permerror
	probNoRecord = "no-record"        // include/redirect target has no SPF record: permerror
	probMultiple = "multiple-records" // more than one SPF record: permerror
	probLoop     = "loop"             // include/redirect cycle: permerror
	probMXLimit  = "mx-limit"         // mx term with more than 10 hosts: permerror
	probTemp     = "temperror"        // a DNS query could not tell
	probMacro    = "macro"            // needs the sender to expand: not followed
	probCap      = "not-followed"     // past the walk bounds
	probIgnored  = "ignored"          // redirect next to all: never used
	probAfterAll = "after-all"        // mechanism after all: never evaluated
	// probUnresolved: an mx term whose hosts' addresses were not looked up
	// (past the query budget, or version 1 evidence): its void lookups
	// are not known.
	probUnresolved = "targets-not-resolved"
)

// SPFEvidence is what the SPF collector saw.
//
// Version 2 (this one) differs from version 1 in that mechanisms after all
// are recorded but not looked up, an mx term also looks up the A and AAAA
// records of its hosts, and a failed address lookup (A or AAAA) is left in
// the term's Queries for Evaluate to weigh per address family instead of
// marking the term temperror.
type SPFEvidence struct {
	Domain string `json:"domain"`
	// TXT is the TXT lookup at the domain (all strings, the response size).
	TXT Lookup `json:"txt"`
	// Records are the SPF records among them.
	Records []string `json:"records"`
	// Policy is the expansion of the record when there is exactly one.
	Policy *SPFNode `json:"policy,omitempty"`
	// MX classifies the domain (receiving or not).
	MX Lookup `json:"mx"`
	// Counts are what the walk added up to when collected (Evaluate
	// recounts from Policy, so a changed policy needs no new scan).
	Counts SPFCounts `json:"counts"`
}

// SPFCounts summarise the walk.
type SPFCounts struct {
	Lookups int  `json:"lookups"` // DNS-querying terms (RFC 7208 §4.6.4)
	Void    int  `json:"void"`    // void lookups
	Queries int  `json:"queries"` // DNS queries the walk sent
	Capped  bool `json:"capped,omitempty"`
}

// SPFNode is one record in the expansion tree.
type SPFNode struct {
	Domain  string    `json:"domain"`
	Via     string    `json:"via,omitempty"` // include or redirect; "" at the top
	TXT     *Lookup   `json:"txt,omitempty"` // the TXT lookup (below the top)
	Records []string  `json:"records,omitempty"`
	Problem string    `json:"problem,omitempty"`
	Error   string    `json:"error,omitempty"`
	Terms   []SPFTerm `json:"terms,omitempty"`
}

// SPFTerm is one term of a record and the lookups it caused.
type SPFTerm struct {
	Term      string `json:"term"`
	Name      string `json:"name"`
	Qualifier string `json:"qualifier,omitempty"` // mechanisms only
	Modifier  bool   `json:"modifier,omitempty"`
	Lookup    bool   `json:"lookup,omitempty"` // counts toward the lookup limit
	Target    string `json:"target,omitempty"` // the name queried
	// Queries are the lookups of the term: A and AAAA for a; A for
	// exists; MX, then A and AAAA of each host, for mx.
	Queries []Lookup `json:"queries,omitempty"`
	// Void: the term made a void lookup for a sender connecting over IPv4
	// (a summary for readers; Evaluate recounts from Queries per family).
	Void    bool     `json:"void,omitempty"`
	MXHosts int      `json:"mx_hosts,omitempty"`
	Problem string   `json:"problem,omitempty"`
	Error   string   `json:"error,omitempty"`
	Child   *SPFNode `json:"child,omitempty"`
}

// SPF returns the email.spf collector.
func SPF() check.Check {
	return check.New(check.Spec[SPFEvidence]{
		ID:       "email.spf",
		Rules:    spfRules,
		Family:   "email",
		Targets:  []check.Kind{check.KindDomain},
		Policy:   Settings,
		Collect:  collectSPF,
		Evaluate: evaluateSPF,
		Version:  2,
		Upgrade:  upgradeSPF,
	})
}

// upgradeSPF reads version 1 evidence. Its expansion is still sound:
// Evaluate skips mechanisms after all wherever they are, and reads a and
// exists results from their stored A/AAAA lookups, so the temperror mark
// that version 1 put on those terms is lifted. Version 1 did not look up
// the addresses of mx hosts: such terms are marked so that their void
// lookups count as not known.
func upgradeSPF(version int, data json.RawMessage) (SPFEvidence, error) {
	var ev SPFEvidence
	if version != 1 {
		return ev, fmt.Errorf("no upgrade from version %d", version)
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, err
	}
	var fix func(n *SPFNode, depth int)
	fix = func(n *SPFNode, depth int) {
		if n == nil || depth > walkMaxLookups+1 {
			return
		}
		for i := range n.Terms {
			st := &n.Terms[i]
			switch {
			case (st.Name == "a" || st.Name == "exists") && !st.Modifier && st.Problem == probTemp:
				st.Problem = ""
			case st.Name == "mx" && !st.Modifier && st.Problem == "" && len(st.Queries) == 1 && !st.Queries[0].Void && st.MXHosts > 0:
				st.Problem = probUnresolved
			}
			fix(st.Child, depth+1)
		}
	}
	fix(ev.Policy, 0)
	return ev, nil
}

var spfRules = []check.Meta{
	{
		ID: SPFRecord, Rule: ruleSPFRecord, Title: "SPF record published and valid", Severity: check.High,
		Description: "Exactly one TXT record starting v=spf1 at the domain, which parses, and whose includes and redirect lead to valid SPF records (else receivers return permerror).",
		Remediation: "Publish exactly one TXT record starting \"v=spf1\" at the domain, listing the services that send your mail and ending in \"-all\" (a domain that sends no mail: \"v=spf1 -all\").",
		Standards: []check.Ref{
			rfc("7208", "SPF", "§3.1 (TXT only), §4.5 (more than one record: permerror)", "unverified"),
			mc("Spf.Poller/Rules/Records/OnlyOneSpfRecord.cs"), refGovSGE, refBOD,
		},
	},
	{
		ID: SPFAll, Rule: ruleSPFAll, Title: "SPF ends in a fail-all", Severity: check.High,
		Description: "The terminal all of the policy (through redirect): -all passes; ~all passes on a sending domain; ?all, +all, no all, or all before other mechanisms fail. A parked domain passes only with exactly v=spf1 -all.",
		Remediation: "End the SPF record with \"-all\" so that mail from servers you have not listed fails SPF. A domain that sends no mail should publish exactly \"v=spf1 -all\".",
		Standards: []check.Ref{
			mc("Spf.Evaluator/Rules/ShouldHaveHardFailAllEnabled.cs"), mc("Spf.Evaluator/Rules/AllMustBeLastMechanism.cs"),
			refGovPark, rfc("7208", "SPF", "§5.1 (all), §4.6.2", "unverified"),
		},
	},
	{
		ID: SPFLookups, Rule: ruleSPFLookups, Title: "SPF within the 10 DNS-lookup limit", Severity: check.High,
		Description: "Recursive count of include, a, mx, ptr, exists and redirect terms that receivers evaluate (terms after all never are): more than 10 (or an include loop) is a permerror; exactly 10 warns. Each mx term may name at most 10 hosts.",
		Remediation: "Reduce the DNS lookups in your SPF policy to 10 or fewer: remove includes for services you no longer use, replace a and mx terms with ip4/ip6 ranges, and ask senders for a flatter include.",
		Standards: []check.Ref{
			rfc("7208", "SPF", "§4.6.4 DNS Lookup Limits", ""),
			mc("Spf.Evaluator/Rules/ShouldNotHaveMoreThan10QueryLookups.cs"),
		},
	},
	{
		ID: SPFVoid, Rule: ruleSPFVoid, Title: "SPF void lookups within limit", Severity: check.Medium,
		Description: "Lookups that return NXDOMAIN or no records of the type asked, counted for IPv4 and IPv6 senders apart: more than 2 is a permerror (fail; warn when only IPv6 senders would hit it).",
		Remediation: "Remove SPF terms that point at names which no longer exist or have no records (old includes, a: or mx: names of retired hosts).",
		Standards:   []check.Ref{rfc("7208", "SPF", "§4.6.4: SPF implementations SHOULD limit \"void lookups\" to two", "")},
	},
	{
		ID: SPFSyntax, Rule: ruleSPFSyntax, Title: "SPF record hygiene", Severity: check.Low,
		Description: "The record parses; no ptr; redirect and exp at most once; modifiers after mechanisms; not both redirect and all; no mechanisms after all; DNS response within 450 bytes.",
		Remediation: "Tidy the SPF record: remove ptr, put modifiers (redirect=, exp=) at the end, do not combine redirect with all, and keep the TXT answer small enough for a single UDP packet.",
		Standards: []check.Ref{
			mc("Spf.Poller/Rules: DontUsePtrMechanism, RedirectDoesntOccurMoreThanOnce, ExplanationDoesntOccurMoreThanOnce, ModifiersOccurAfterMechanisms, RedirectModifierAndAllMechanismNotValid, ShouldBeSmallEnoughForUdp"),
			rfc("7208", "SPF", "§5.5 (ptr SHOULD NOT be used), §3.4 (record size)", "unverified"),
			refCAFB4b,
		},
	},
}

func collectSPF(ctx context.Context, env *check.Env, a check.Asset) (SPFEvidence, error) {
	r := dnsq.Over(env.DNS)
	domain := strings.TrimSuffix(strings.ToLower(a.Name), ".")
	ev := SPFEvidence{Domain: domain}
	ev.TXT = query(ctx, r, domain, dns.TypeTXT)
	if ev.TXT.failed() {
		return ev, fmt.Errorf("spf: lookup TXT %s: %w", domain, &lookupErr{ev.TXT})
	}
	if err := noDomain("spf", ev.TXT); err != nil {
		return ev, err
	}
	ev.MX = query(ctx, r, domain, dns.TypeMX)
	ev.Records = spfRecords(ev.TXT.Answers)
	if len(ev.Records) == 1 {
		w := &walker{r: r}
		ev.Policy = &SPFNode{Domain: domain, Records: ev.Records}
		w.walk(ctx, ev.Policy, []string{domain})
		var t spfTally
		t.add(ev.Policy)
		ev.Counts = SPFCounts{Lookups: t.lookups, Void: t.void4, Queries: w.queries, Capped: t.capped}
	}
	return ev, nil
}

// walker expands one SPF policy statically: every term is looked at, as for
// a sender that matches none, which is how the lookup limit is reached.
type walker struct {
	r       *dnsq.Client
	lookups int
	queries int
}

func (w *walker) query(ctx context.Context, name string, t uint16) Lookup {
	w.queries++
	return query(ctx, w.r, name, t)
}

func (w *walker) spent() bool { return w.lookups > walkMaxLookups || w.queries >= walkMaxQueries }

// fetch reads the SPF record of an include or redirect target and walks it.
func (w *walker) fetch(ctx context.Context, domain, via string, stack []string) *SPFNode {
	n := &SPFNode{Domain: domain, Via: via}
	l := w.query(ctx, domain, dns.TypeTXT)
	n.TXT = &l
	if l.failed() {
		n.Problem, n.Error = probTemp, l.Error
		return n
	}
	n.Records = spfRecords(l.Answers)
	switch len(n.Records) {
	case 0:
		n.Problem, n.Error = probNoRecord, "no SPF record at "+domain
	case 1:
		w.walk(ctx, n, stack)
	default:
		n.Problem, n.Error = probMultiple, fmt.Sprintf("%d SPF records at %s", len(n.Records), domain)
	}
	return n
}

// walk parses n's single record and expands its terms.
func (w *walker) walk(ctx context.Context, n *SPFNode, stack []string) {
	rec, err := spf.Parse(n.Records[0])
	if err != nil {
		n.Problem, n.Error = probSyntax, err.Error()
		return
	}
	_, hasAll := rec.All()
	pastAll := false
	for _, t := range rec.Terms {
		st := SPFTerm{Term: t.Text, Name: t.Name, Modifier: t.Modifier, Lookup: t.Lookup()}
		if !t.Modifier {
			st.Qualifier = string(t.Qualifier)
		}
		switch {
		case t.Modifier && t.Name == "redirect" && hasAll:
			// RFC 7208 §6.1: with an all mechanism the redirect is never
			// reached, so it neither counts nor is followed.
			st.Lookup, st.Problem = false, probIgnored
		case !t.Modifier && pastAll:
			// RFC 7208 §5.1: "mechanisms after "all" will never be
			// tested", so their lookups never happen: they neither count
			// toward the limits nor are followed. That all is not last
			// is a finding of its own (email.spf.all, email.spf.syntax).
			st.Lookup, st.Problem = false, probAfterAll
		}
		if !t.Modifier && t.Name == "all" {
			pastAll = true
		}
		if st.Lookup {
			w.lookups++
			w.term(ctx, n, t, &st, stack)
		}
		n.Terms = append(n.Terms, st)
	}
}

// term does the lookups of one DNS-querying term.
func (w *walker) term(ctx context.Context, n *SPFNode, t spf.Term, st *SPFTerm, stack []string) {
	if t.Name == "ptr" {
		return // needs the sender's address: counted, not queried
	}
	if w.spent() {
		st.Problem = probCap
		return
	}
	spec := t.Value
	if spec == "" {
		spec = n.Domain // a and mx default to the current domain
	}
	name, ok, err := spf.Expand(spec, n.Domain)
	switch {
	case err != nil:
		st.Problem, st.Error = probSyntax, err.Error()
		return
	case !ok:
		st.Problem = probMacro
		return
	}
	st.Target = name
	switch t.Name {
	case "include", "redirect":
		if i := slices.Index(stack, name); i >= 0 {
			st.Problem = probLoop
			st.Error = strings.Join(append(slices.Clone(stack[i:]), name), " → ")
			return
		}
		child := w.fetch(ctx, name, t.Name, append(slices.Clone(stack), name))
		st.Child = child
		st.Void = child.TXT != nil && child.TXT.Void
	case "a":
		// A receiver asks for the type of the sender's address: A for
		// IPv4, AAAA for IPv6. Both are asked and weighed per family in
		// Evaluate, so an AAAA that fails does not hide what A says.
		st.Queries = []Lookup{w.query(ctx, name, dns.TypeA), w.query(ctx, name, dns.TypeAAAA)}
		st.Error = failures(st.Queries)
	case "mx":
		mx := w.query(ctx, name, dns.TypeMX)
		st.Queries = []Lookup{mx}
		if mx.failed() {
			// The number of hosts (and so the limit) is not known.
			st.Problem, st.Error = probTemp, mx.Error
			return
		}
		st.MXHosts = len(mx.Answers)
		if st.MXHosts > mxHostLimit {
			st.Problem = probMXLimit
			st.Error = fmt.Sprintf("%s has %d MX hosts (limit %d)", name, st.MXHosts, mxHostLimit)
			break
		}
		// RFC 7208 §5.4: then an address lookup on each host, of the
		// sender's family (null MX "." has none).
		hosts := slices.DeleteFunc(mxTargets(mx), func(h string) bool { return h == "." })
		if w.queries+2*len(hosts) > walkMaxQueries {
			st.Problem = probUnresolved
			break
		}
		for _, h := range hosts {
			st.Queries = append(st.Queries, w.query(ctx, h, dns.TypeA), w.query(ctx, h, dns.TypeAAAA))
		}
		st.Error = failures(st.Queries[1:])
	case "exists":
		// exists always asks for A, whatever the sender's family.
		st.Queries = []Lookup{w.query(ctx, name, dns.TypeA)}
		st.Error = failures(st.Queries)
	}
	st.Void = termVoid(st, false).void
}

// failures joins the errors of the lookups that could not tell.
func failures(ls []Lookup) string {
	var out []string
	for _, l := range ls {
		if l.failed() {
			out = append(out, l.Error)
		}
	}
	return strings.Join(out, "; ")
}
