package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnscheck/takeover"
	"github.com/nhsx/posture/checks/dnsq"
)

// DanglingCNAME is the catalogue id.
const DanglingCNAME = "dns.dangling-cname"

const ruleDanglingCNAME = "aliases-resolve"

// Bounds of the alias walk and of the service page.
const (
	danglingMaxChain = 8
	danglingMaxBody  = 256 << 10
	// danglingMaxNames bounds the names followed per domain (the apex and
	// www included); danglingParallel how many are followed at once.
	danglingMaxNames = 200
	danglingParallel = 8
	// danglingMaxListed bounds the names a message spells out.
	danglingMaxListed = 8
)

// danglingHint is the estate hint that lists the names discovery saw under
// the domain (scanner/discover.HintNames: the apex, www and CT names, kept
// as hosts or dropped).
const danglingHint = "names"

// DanglingEvidence is the alias (CNAME) chain of the domain, of its www
// name and of every other name discovery saw under it (CT names, even
// those it dropped as hosts because they do not resolve or leave the
// scope), as the resolver follows them.
type DanglingEvidence struct {
	Domain string         `json:"domain"`
	Names  []DanglingName `json:"names"`
	// Skipped counts the discovered names beyond danglingMaxNames, not
	// followed.
	Skipped int `json:"skipped,omitempty"`
}

// DanglingName is one name's chain.
type DanglingName struct {
	Name string `json:"name"`
	// Lookups are the questions asked while following the chain: A at
	// the name, then at the end of the chain while the resolver left it
	// open, then AAAA at the end when it had no A record.
	Lookups []DelegationLookup `json:"lookups"`
	// Chain are the alias targets in order; Target the last.
	Chain  []string `json:"chain,omitempty"`
	Target string   `json:"target,omitempty"`
	// End is what the target is: "resolves" (it has addresses),
	// "nxdomain" (it does not exist), "nodata" (it exists with no
	// address), "loop" or "too-long" (the chain never ends), "error" (a
	// lookup could not tell: see Lookups).
	End   string   `json:"end,omitempty"`
	Addrs []string `json:"addrs,omitempty"`
	// Provider is set when a name of the chain is under a hosting
	// service's suffix where an unclaimed resource can be taken over.
	Provider *DanglingProvider `json:"provider,omitempty"`
}

// Ends of a chain.
const (
	EndResolves = "resolves"
	EndNXDomain = "nxdomain"
	EndNoData   = "nodata"
	EndLoop     = "loop"
	EndTooLong  = "too-long"
	EndError    = "error"
)

// DanglingProvider is the takeover-prone service a chain leads to.
type DanglingProvider struct {
	Service     string `json:"service"`
	Suffix      string `json:"suffix"`
	Status      string `json:"status"` // the list's verdict: Vulnerable, Edge case
	Fingerprint string `json:"fingerprint,omitempty"`
	// Fetch is the request for the service's page (nil: none was needed:
	// the target does not resolve, or the fingerprint is not page text).
	Fetch *DanglingFetch `json:"fetch,omitempty"`
}

// DanglingFetch is the request for the page the service shows for the
// name: whether it was made, and what came back.
type DanglingFetch struct {
	URL  string `json:"url"`
	Made bool   `json:"made"`
	// NotMade says why not ("outside the scope": the scope guard refused
	// a name whose alias leaves the estate's scope).
	NotMade string `json:"not_made,omitempty"`
	Status  int    `json:"status,omitempty"`
	Bytes   int    `json:"bytes,omitempty"`
	// Found says the service's fingerprint (text, or the status it names)
	// was in the first danglingMaxBody bytes of the answer.
	Found bool   `json:"found,omitempty"`
	Error string `json:"error,omitempty"`
	Class string `json:"class,omitempty"`
}

var refHSCNOffInfra = check.Ref{Standard: "NHS England HSCN DNS standards",
	Section: `Records with an off-infrastructure target: "thousands of records with off-infrastructure targets have been identified as compromised"; they "must be … removed immediately they are no longer required"`,
	URL:     hscnDNS}

// DanglingCNAMECheck returns the dns.dangling-cname collector.
func DanglingCNAMECheck() check.Check {
	return check.New(check.Spec[DanglingEvidence]{
		ID: DanglingCNAME, Family: "dns", Targets: []check.Kind{check.KindDomain},
		Rules: []check.Meta{{
			ID: DanglingCNAME, Rule: ruleDanglingCNAME, Title: "Aliases do not dangle", Severity: check.Critical,
			Description: "The CNAME chains of the domain, of www.<domain> and of every name discovery saw under the domain (Certificate Transparency names, including those dropped as hosts because they do not resolve or leave the scope; at most 200 a domain) end at a name that exists: a target that does not exist fails (high); a target at a hosting service where an unclaimed resource can be taken over (can-i-take-over-xyz: azurewebsites.net, cloudapp.net, trafficmanager.net, s3*.amazonaws.com, github.io, herokuapp.com, …) that does not resolve, or whose page shows the service's \"unclaimed\" fingerprint, fails (critical). The page is fetched only when the provider's suffix is in the estate's scope.",
			Remediation: "Remove the CNAME (at the domain, www or the subdomain named) whose target no longer exists, or re-create the resource at the hosting service under your account before someone else claims it. Remove aliases as soon as a service is decommissioned.",
			Standards: []check.Ref{
				refHSCNOffInfra,
				{Standard: "GOV.UK: Use your .gov.uk domain name", Section: `CNAMEs "if not controlled by you or allowed to expire, could become compromised"`, URL: "https://www.gov.uk/guidance/use-your-govuk-domain-name"},
				{Standard: "security.gov.uk: Protecting public sector domains", Section: "dangling DNS records"},
				{Standard: "NCSC CAF v3.2", Section: "A3.a Asset management (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"},
				{Standard: "can-i-take-over-xyz (EdOverflow, CC BY 4.0)", Section: "takeover-prone services and their fingerprints", URL: "https://github.com/EdOverflow/can-i-take-over-xyz"},
			},
		}},
		Collect:  collectDangling,
		Evaluate: evaluateDangling,
	})
}

func collectDangling(ctx context.Context, env *check.Env, a check.Asset) (DanglingEvidence, error) {
	ev := DanglingEvidence{Domain: a.Name}
	r := dnsq.Over(env.DNS)
	names, skipped := danglingNames(a.Name, env.Hint(a, danglingHint))
	ev.Skipped = skipped
	apex := danglingFollow(ctx, r, names[0])
	if len(apex.Lookups) > 0 && len(apex.Chain) == 0 && apex.End == EndNXDomain {
		return ev, hygieneNoDomain(DanglingCNAME, a.Name)
	}
	ev.Names = make([]DanglingName, len(names))
	ev.Names[0] = apex
	var wg sync.WaitGroup
	sem := make(chan struct{}, danglingParallel)
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i > 0 {
				sem <- struct{}{}
				ev.Names[i] = danglingFollow(ctx, r, names[i])
				<-sem
			}
			if len(ev.Names[i].Chain) > 0 {
				danglingProvider(ctx, env, &ev.Names[i])
			}
		}()
	}
	wg.Wait()
	return ev, nil
}

// danglingNames are the names to follow for domain: the domain, www, then
// the hinted names inside the domain (lower case, no wildcard label,
// deduplicated, sorted), at most danglingMaxNames; skipped counts the rest.
func danglingNames(domain string, hinted []string) (names []string, skipped int) {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	names = []string{domain, "www." + domain}
	seen := map[string]bool{names[0]: true, names[1]: true}
	var extra []string
	for _, h := range hinted {
		h = strings.TrimPrefix(strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), "."), "*.")
		if seen[h] || !strings.HasSuffix(h, "."+domain) || len(h) > 253 {
			continue
		}
		if _, ok := dns.IsDomainName(h); !ok {
			continue
		}
		seen[h] = true
		extra = append(extra, h)
	}
	slices.Sort(extra)
	if room := danglingMaxNames - len(names); len(extra) > room {
		skipped, extra = len(extra)-room, extra[:room]
	}
	return append(names, extra...), skipped
}

// danglingFollow follows name's alias chain through the resolver. A
// resolver normally chases the chain in one answer; one that stops (an
// authoritative-only server, a chain into another zone it does not serve)
// is asked again at the chain's end, within the bound.
func danglingFollow(ctx context.Context, r *dnsq.Client, name string) DanglingName {
	n := DanglingName{Name: strings.TrimSuffix(strings.ToLower(name), ".")}
	cur := dns.CanonicalName(name)
	seen := map[string]bool{cur: true}
	for range danglingMaxChain + 1 {
		l := DelegationLookup{Name: strings.TrimSuffix(cur, "."), Type: "A"}
		resp, err := r.Query(ctx, cur, dns.TypeA)
		if err != nil {
			l.Error, l.Class = err.Error(), string(check.Classify(err))
			n.Lookups, n.End = append(n.Lookups, l), EndError
			return n
		}
		l.Rcode = resp.Rcode
		// Walk the chain within the answer from cur.
		for range danglingMaxChain + 1 {
			next := ""
			for _, rr := range resp.Answer {
				if !strings.EqualFold(rr.Header().Name, cur) {
					continue
				}
				switch v := rr.(type) {
				case *dns.CNAME:
					next = dns.CanonicalName(v.Target)
				case *dns.A:
					n.Addrs = append(n.Addrs, v.A.String())
				}
			}
			if next == "" || len(n.Addrs) > 0 {
				break
			}
			l.Records = append(l.Records, strings.TrimSuffix(next, "."))
			n.Chain = append(n.Chain, strings.TrimSuffix(next, "."))
			if seen[next] {
				n.Lookups, n.End, n.Target = append(n.Lookups, l), EndLoop, strings.TrimSuffix(next, ".")
				return n
			}
			if len(n.Chain) > danglingMaxChain {
				n.Lookups, n.End, n.Target = append(n.Lookups, l), EndTooLong, strings.TrimSuffix(next, ".")
				return n
			}
			seen[next] = true
			cur = next
		}
		n.Lookups = append(n.Lookups, l)
		n.Target = strings.TrimSuffix(cur, ".")
		switch {
		case len(n.Addrs) > 0:
			n.End = EndResolves
			return n
		case resp.NXDomain():
			// RFC 6604 §3: the rcode is about the last name of the chain.
			n.End = EndNXDomain
			return n
		case len(l.Records) > 0 && !danglingAnswered(resp, cur):
			continue // the resolver left the chain open: ask its end
		}
		// cur exists with no A record: an AAAA record will do.
		l6 := DelegationLookup{Name: n.Target, Type: "AAAA"}
		resp6, err := r.Query(ctx, cur, dns.TypeAAAA)
		if err != nil {
			l6.Error, l6.Class = err.Error(), string(check.Classify(err))
			n.Lookups, n.End = append(n.Lookups, l6), EndError
			return n
		}
		l6.Rcode = resp6.Rcode
		for _, rr := range resp6.Answer {
			if v, ok := rr.(*dns.AAAA); ok && strings.EqualFold(rr.Header().Name, cur) {
				n.Addrs = append(n.Addrs, v.AAAA.String())
			}
		}
		n.Lookups = append(n.Lookups, l6)
		switch {
		case len(n.Addrs) > 0:
			n.End = EndResolves
		case resp6.NXDomain():
			n.End = EndNXDomain
		default:
			n.End = EndNoData
		}
		return n
	}
	n.End = EndTooLong
	return n
}

// danglingAnswered reports whether the answer says anything about name
// itself (a record it owns), as opposed to a chain that stops before it.
func danglingAnswered(resp *dnsq.Response, name string) bool {
	for _, rr := range resp.Answer {
		if strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

// danglingProvider notes the takeover-prone service a chain leads to and,
// when the target resolves and the service has a page fingerprint, fetches
// the page the service serves for the name.
//
// The fetch goes through env.HTTP, behind the scope guard, which refuses
// an in-scope name whose alias leaves the estate's scope: a chain into
// azurewebsites.net is refused unless the operator put that suffix in the
// estate's scope (the README's advice for scanning sites hosted there).
// That is kept, not worked around: the guard is what stops an estate name
// from steering the scanner to third parties, and a takeover check is no
// reason to let it. So the fetch is tried as any connection is; when the
// guard refuses, the evidence records "not made (outside the scope)" and
// the verdict rests on DNS alone: a takeover-prone target that does not
// resolve fails (critical), one that resolves passes with a note naming
// the provider. Operators who list the provider's suffix in scope get the
// fingerprint check too.
func danglingProvider(ctx context.Context, env *check.Env, n *DanglingName) {
	var svc takeover.Service
	var sfx string
	found := false
	for _, c := range n.Chain {
		if svc, sfx, found = takeover.Match(c); found {
			break
		}
	}
	if !found {
		return
	}
	p := &DanglingProvider{Service: svc.Name, Suffix: sfx, Status: svc.Status, Fingerprint: svc.Fingerprint}
	n.Provider = p
	_, isStatus := svc.HTTPStatus()
	if n.End != EndResolves || (!svc.PageFingerprint() && !isStatus) {
		return
	}
	f := &DanglingFetch{URL: "http://" + n.Name + "/"}
	p.Fetch = f
	if env == nil || env.HTTP == nil {
		f.NotMade = "no HTTP client"
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		f.NotMade = err.Error()
		return
	}
	resp, err := env.HTTP.Do(req)
	if err != nil {
		if check.Classify(err) == check.ErrScope {
			f.NotMade = "outside the scope: the scope guard refuses names whose alias leaves the estate's scope (add " + sfx + " to scope.suffixes to fetch it)"
			return
		}
		f.Made, f.Error, f.Class = true, err.Error(), string(check.Classify(err))
		return
	}
	defer resp.Body.Close()
	f.Made, f.Status = true, resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, danglingMaxBody))
	f.Bytes = len(body)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Error, f.Class = err.Error(), string(check.Classify(err))
	}
	if code, ok := svc.HTTPStatus(); ok {
		f.Found = resp.StatusCode == code
	} else {
		f.Found = svc.Found(string(body))
	}
}

func evaluateDangling(in check.In[DanglingEvidence]) []check.Finding {
	ev := in.Evidence
	f := check.Finding{CheckID: DanglingCNAME, Rule: ruleDanglingCNAME, Outcome: check.Pass}
	// bad are the names that fail or could not be told, good the aliases
	// that resolve; noAlias the names without an alias.
	var bad, good, noAlias []string
	var sev check.Severity
	worse := func(o check.Outcome, s check.Severity, msg string) {
		if o == check.Pass {
			good = append(good, msg)
			return
		}
		bad = append(bad, msg)
		if check.Worst(f.Outcome, o) != f.Outcome {
			f.Outcome = o
		}
		if o == check.Fail && s.Rank() > sev.Rank() {
			sev = s
		}
	}
	var dangling []string
	for _, n := range ev.Names {
		if n.End == EndError {
			var l DelegationLookup
			if len(n.Lookups) > 0 {
				l = n.Lookups[len(n.Lookups)-1]
			}
			if f.Reason == "" {
				f.Reason = l.Class
			}
			worse(check.Unknown, "", fmt.Sprintf("the alias chain of %s could not be followed (%s)", n.Name, l.Error))
			continue
		}
		if len(n.Chain) == 0 {
			noAlias = append(noAlias, n.Name)
			continue
		}
		chain := n.Name + " → " + strings.Join(n.Chain, " → ")
		at := ""
		if p := n.Provider; p != nil {
			at = fmt.Sprintf(" at %s (%s, a service where an unclaimed name can be taken over: can-i-take-over-xyz says %q)", p.Service, p.Suffix, p.Status)
		}
		switch n.End {
		case EndLoop, EndTooLong:
			if f.Reason == "" {
				f.Reason = string(check.ErrDNS)
			}
			worse(check.Unknown, "", fmt.Sprintf("the alias chain of %s does not end (%s: %s)", n.Name, n.End, chain))
		case EndNXDomain, EndNoData:
			what := "does not exist (NXDOMAIN)"
			if n.End == EndNoData {
				what = "has no address"
			}
			switch {
			case n.Provider != nil:
				dangling = append(dangling, n.Name)
				worse(check.Fail, check.Critical, fmt.Sprintf("%s: the target %s%s %s: whoever claims it there serves %s", chain, n.Target, at, what, n.Name))
			case n.End == EndNXDomain:
				dangling = append(dangling, n.Name)
				worse(check.Fail, check.High, fmt.Sprintf("%s: the target %s does not exist (NXDOMAIN): whoever registers or creates it serves %s", chain, n.Target, n.Name))
			default:
				worse(check.Pass, "", fmt.Sprintf("%s: the target %s exists but has no address", chain, n.Target))
			}
		case EndResolves:
			p := n.Provider
			switch {
			case p == nil:
				worse(check.Pass, "", fmt.Sprintf("%s resolves", chain))
			case p.Fetch != nil && p.Fetch.Found:
				dangling = append(dangling, n.Name)
				worse(check.Fail, check.Critical, fmt.Sprintf("%s resolves%s, but the service's page for %s shows its \"unclaimed\" fingerprint (%q, HTTP %d): the resource has been released and anyone may claim it",
					chain, at, n.Name, p.Fingerprint, p.Fetch.Status))
			default:
				worse(check.Pass, "", fmt.Sprintf("%s resolves%s; %s", chain, at, danglingFetchNote(n)))
			}
		}
	}
	if f.Outcome == check.Fail {
		f.Severity = sev
	}
	if f.Outcome != check.Unknown {
		f.Reason = ""
	}
	var parts []string
	if len(dangling) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d names dangle (%s)", len(dangling), len(ev.Names), danglingList(dangling, ", ")))
	}
	switch {
	case len(bad) > 0:
		parts = append(parts, danglingList(bad, "; "))
		if len(good) > 0 {
			parts = append(parts, fmt.Sprintf("%d other aliases resolve", len(good)))
		}
	case len(good) > 0:
		parts = append(parts, danglingList(good, "; "))
	default:
		sep := ", "
		if len(noAlias) <= 2 {
			sep = " or "
		}
		parts = append(parts, "no aliases (CNAME) at "+danglingList(noAlias, sep))
	}
	if len(bad)+len(good) > 0 && len(noAlias) > 0 {
		parts = append(parts, "no alias at "+danglingList(noAlias, ", "))
	}
	if ev.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d more discovered names not followed (at most %d a domain)", ev.Skipped, danglingMaxNames))
	}
	f.Message = strings.Join(parts, "; ")
	return []check.Finding{f}
}

// danglingList joins items, the first danglingMaxListed of them and a
// count of the rest.
func danglingList(items []string, sep string) string {
	if len(items) <= danglingMaxListed {
		return strings.Join(items, sep)
	}
	return strings.Join(items[:danglingMaxListed], sep) + fmt.Sprintf("%sand %d more", sep, len(items)-danglingMaxListed)
}

// danglingFetchNote says what became of the fingerprint fetch.
func danglingFetchNote(n DanglingName) string {
	p := n.Provider
	switch {
	case p.Fetch == nil:
		return "the list gives no page fingerprint for the service: resolving is the only sign checked"
	case !p.Fetch.Made:
		return "the service's page was not fetched (" + p.Fetch.NotMade + "): judged on DNS alone"
	case p.Fetch.Error != "":
		return fmt.Sprintf("the service's page could not be read (%s): judged on DNS alone", p.Fetch.Error)
	}
	return fmt.Sprintf("the service's page (HTTP %d) does not show its \"unclaimed\" fingerprint", p.Fetch.Status)
}
