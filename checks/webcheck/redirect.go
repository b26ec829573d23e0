package webcheck

import (
	"fmt"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

// web.redirect.scope (docs/checks.md §1.2): where the redirects of
// http://<host>/ and https://<host>/ lead. Both chains are judged (a
// visitor arrives by either) and the worse verdict stands.

// RedirectScope is the catalogue id.
const RedirectScope = "web.redirect.scope"

var redirectRule = check.Meta{ID: RedirectScope, Rule: "redirects-stay-public-sector", Title: "Redirects are few, over HTTPS, and stay on public-sector domains", Severity: check.Medium,
	Description: "The redirect chains of http://<host>/ and https://<host>/ (both: a visitor arrives by either), each judged: every redirect target is https (the first request of the http:// chain excepted), and, on a host under a public-sector suffix (the policy's public_sector_suffixes: nhs.uk, nhs.net, gov.uk, …), the chain ends on a host under one of them, under the host's own estate domain, or at a sign-in service (the policy's login_hosts: Microsoft Entra ID, NHS login, …); a chain that leaves the scope is judged by the host it was going to, which is not fetched. A redirect to http, to another scheme, or off the public sector fails; more than 3 redirects (hstspreload's limit), a loop or the fetcher's hop cap warns. A chain that could not be fetched is unknown; a host that refuses both ports is not applicable.",
	Remediation: "Redirect in one step to the final https:// URL on your own public-sector domain (GOV.UK: a public-sector name must not redirect to a .com or .org.uk), and never through http://.",
	Standards: []check.Ref{
		{Standard: "GOV.UK: Use your .gov.uk domain name", Section: `the name must not "redirect to a non-public sector domain like … .com"`,
			URL: "https://www.gov.uk/guidance/use-your-gov-uk-domain-name"},
		refHSTSPreload, refPshtt, refCAF}}

// DefaultPublicSectorSuffixes are the domains under which UK public bodies
// (and the NHS of the four nations) publish.
var DefaultPublicSectorSuffixes = []string{
	"nhs.uk", "nhs.net", "nhs.scot", "nhs.wales", "hscni.net",
	"gov.uk", "gov.scot", "gov.wales", "llyw.cymru",
	"mod.uk", "police.uk", "parliament.uk",
}

// chainInfo is a chain's redirects as the web checks read them.
type chainInfo struct {
	count    int    // redirects answered (a Location that resolves), followed or not
	insecure string // the first redirect to a target that is not https
	final    string // the URL the chain ends at, fetched or not ("" unknown)
	tooMany  bool   // a loop or the fetcher's hop cap
	failed   bool   // the last request got no response
}

// chainRedirects reads the redirects of a chain: the fetcher records each
// hop's resolved Location (Next), and the URL it did not follow (out of
// scope, a loop, another scheme, the hop cap) as the chain's Next.
func chainRedirects(c *Chain) chainInfo {
	var r chainInfo
	for i, h := range c.Hops {
		if h.Failed() || h.Next == "" {
			continue
		}
		r.count++
		if s, _ := hostOfURL(h.Next); s == "http" && r.insecure == "" {
			r.insecure = fmt.Sprintf("hop %d, %s, redirects (%d) to %s", i+1, h.URL, h.Status, h.Next)
		}
	}
	last := c.Last()
	switch c.End {
	case webfetch.EndScope, webfetch.EndScheme:
		r.final = c.Next
	case webfetch.EndLoop, webfetch.EndMaxHops:
		r.tooMany, r.final = true, c.Next
	case webfetch.EndError:
		r.failed = true
		if last != nil {
			r.final = last.URL
		}
	default:
		if last != nil {
			r.final = last.URL
		}
	}
	return r
}

// PublicSector reports whether host is under one of the suffixes.
func PublicSector(host string, suffixes []string) bool {
	for _, s := range suffixes {
		s = strings.TrimSuffix(strings.ToLower(s), ".")
		if s != "" && (host == s || strings.HasSuffix(host, "."+s)) {
			return true
		}
	}
	return false
}

// underDomain reports whether host is domain or a name under it.
func underDomain(host, domain string) bool {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	return domain != "" && (host == domain || strings.HasSuffix(host, "."+domain))
}

// evaluateRedirectScope judges both chains; the worse verdict stands.
func evaluateRedirectScope(a check.Asset, ev Evidence, pol Policy) check.Finding {
	x := check.Finding{CheckID: RedirectScope, Rule: redirectRule.Rule}
	if ev.HTTP.Refused && ev.HTTPS.Refused {
		x.Outcome, x.Message = check.NA, fmt.Sprintf("%s refuses connections on ports 80 and 443: not a web server", ev.Host)
		return x
	}
	suffixes := pol.PublicSectorSuffixes
	if suffixes == nil {
		suffixes = DefaultPublicSectorSuffixes
	}
	logins := pol.LoginHosts
	if logins == nil {
		logins = DefaultLoginHosts
	}
	public := PublicSector(ev.Host, suffixes)
	type verdict struct {
		o           check.Outcome
		reason, msg string
	}
	var vs []verdict
	for _, c := range []*Chain{&ev.HTTPS, &ev.HTTP} {
		if c.Refused {
			continue
		}
		if answered(c) == nil {
			msg, class := failure(c)
			vs = append(vs, verdict{check.Unknown, class, "could not tell: " + msg})
			continue
		}
		r := chainRedirects(c)
		_, fh := hostOfURL(r.final)
		switch {
		case r.insecure != "":
			vs = append(vs, verdict{o: check.Fail, msg: fmt.Sprintf("%s redirects over http: %s", c.URL, r.insecure)})
		case c.End == webfetch.EndScheme:
			vs = append(vs, verdict{o: check.Fail, msg: fmt.Sprintf("%s redirects to %s, which is not an https URL", c.URL, c.Next)})
		case public && fh != "" && !PublicSector(fh, suffixes) && !underDomain(fh, a.Domain) && !LoginHost(fh, logins):
			vs = append(vs, verdict{o: check.Fail, msg: fmt.Sprintf("%s ends on %s, which is not a public-sector domain (%s is)", c.URL, fh, ev.Host)})
		case r.tooMany:
			vs = append(vs, verdict{o: check.Warn, msg: fmt.Sprintf("%s does not end: it %s after %d redirects", c.URL, endWords(c.End), r.count)})
		case r.count > preloadMaxRedirects:
			vs = append(vs, verdict{o: check.Warn, msg: fmt.Sprintf("%s takes %d redirects to reach %s (at most %d)", c.URL, r.count, r.final, preloadMaxRedirects)})
		case LoginHost(fh, logins):
			vs = append(vs, verdict{o: check.Pass, msg: fmt.Sprintf("%s sends visitors to sign in at %s, a sign-in service (login_hosts)", c.URL, fh)})
		case r.count == 0:
			vs = append(vs, verdict{o: check.Pass, msg: fmt.Sprintf("%s does not redirect", c.URL)})
		case r.failed:
			// Where it leads is known, whether the target answers is not
			// this id's question (web.https.available's, on that host).
			vs = append(vs, verdict{o: check.Pass, msg: fmt.Sprintf("%s takes %d redirect(s), over https, to %s (which did not answer: %s)", c.URL, r.count, r.final, c.Class)})
		default:
			vs = append(vs, verdict{o: check.Pass, msg: fmt.Sprintf("%s takes %d redirect(s), over https, to %s", c.URL, r.count, r.final)})
		}
	}
	// The worst verdict stands; its message first, the others after.
	worst := 0
	for i, v := range vs {
		if check.Worst(vs[worst].o, v.o) != vs[worst].o {
			worst = i
		}
	}
	x.Outcome, x.Reason, x.Message = vs[worst].o, vs[worst].reason, vs[worst].msg
	for i, v := range vs {
		if i != worst && v.o != x.Outcome {
			x.Message += "; " + strings.TrimPrefix(v.msg, "could not tell: ")
		}
	}
	if x.Outcome != check.Unknown {
		x.Reason = ""
	}
	if x.Outcome == check.Pass && !public {
		x.Message += fmt.Sprintf(" (%s is not under a public-sector suffix: where the chain ends is not judged)", ev.Host)
	}
	return x
}

func endWords(e webfetch.End) string {
	if e == webfetch.EndLoop {
		return "loops back to a URL it has asked"
	}
	return "is still redirecting at the fetcher's hop cap"
}

// SiteIDs are the ids web.https judges besides CheckIDs, on every host:
// preload status, where redirects lead, non-production protection.
var SiteIDs = []string{HSTSPreload, RedirectScope, NonprodProtected}

// siteRules are their catalogue entries.
var siteRules = []check.Meta{preloadRule, redirectRule, nonprodRule}

// evaluateWeb is web.https's Evaluate: the transport and HSTS ids, then
// the site ids, which read web.https.available's verdict.
func evaluateWeb(in check.In[Evidence]) []check.Finding {
	out := evaluateHTTPS(in)
	avail := check.Finding{Outcome: check.NA}
	for _, f := range out {
		if f.CheckID == HTTPSAvailable {
			avail = f
		}
	}
	return append(out, evaluateSite(in, avail)...)
}

// evaluateSite judges SiteIDs.
func evaluateSite(in check.In[Evidence], avail check.Finding) []check.Finding {
	pol := Settings.Get(in.Policy)
	return []check.Finding{
		evaluatePreload(in.Asset, in.Evidence, avail, pol),
		evaluateRedirectScope(in.Asset, in.Evidence, pol),
		evaluateNonprod(in.Asset, in.Evidence, pol),
	}
}
