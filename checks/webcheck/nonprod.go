package webcheck

import (
	"fmt"
	"path"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

// web.nonprod.protected (docs/checks.md §1.2): a testing or staging host
// asks who you are before it serves anything.

// NonprodProtected is the catalogue id.
const NonprodProtected = "web.nonprod.protected"

var nonprodRule = check.Meta{ID: NonprodProtected, Rule: "nonprod-requires-auth", Title: "Non-production hosts require authentication", Severity: check.Medium,
	Description: "On a host whose first label below its estate domain names a non-production environment (the policy's nonprod_labels: dev, test, staging, preview, uat, www-preview, each also followed by digits, as dev2; a label may be a glob such as *-dev), the first response of https://<host>/ (of http://<host>/ when 443 is closed) asks for credentials: 401 or 403 passes, and so does a redirect chain that reaches a sign-in service (the policy's login_hosts: Microsoft Entra ID, NHS login, NHS CIS2, … as Azure App Service authentication and most NHS single sign-on do) before anything is served. Content served without credentials (2xx) fails; a redirect to a sign-in page on the host itself, or any other answer (404, 5xx), warns: the check cannot tell whether the application protects it. A redirect to a host that is not non-production passes. Other hosts are not applicable; so is a host that refuses both ports (nothing is served).",
	Remediation: "Put testing and staging sites behind a username and password (basic authentication, or single sign-on such as Microsoft Entra ID with App Service authentication, or an IP allow-list that refuses everyone else), or take them off the internet.",
	Standards: []check.Ref{
		{Standard: "GOV.UK Service Manual: Get a domain name", Section: `"Protect any testing and staging domains, including APIs, with a username and password"`,
			URL: "https://www.gov.uk/service-manual/technology/get-a-domain-name"},
		{Standard: "NHS England Software Engineering Quality Framework", Section: `practices/security.md: avoid non-production on a subdomain of the production domain (cookies)`,
			URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/practices/security.md"},
		{Standard: "NCSC CAF v3.2", Section: "B4.b Secure configuration (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"}}}

// DefaultNonprodLabels are checks.md's non-production names. A label
// matches its host's first label exactly or followed by digits (uat2);
// one with '*' is a glob (path.Match) over the first label.
var DefaultNonprodLabels = []string{"dev", "test", "staging", "preview", "uat", "www-preview"}

// DefaultLoginHosts are sign-in services a protected site sends a
// visitor to ("*." matches any name below).
var DefaultLoginHosts = []string{
	"login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net", "*.b2clogin.com", // Microsoft Entra ID
	"auth.login.nhs.uk",                   // NHS login
	"am.nhsidentity.spineservices.nhs.uk", // NHS CIS2 (smartcard)
	"accounts.google.com", "*.okta.com", "*.auth0.com",
}

// NonprodLabel returns the policy label the host's first label below its
// estate domain matches ("" when none does).
func NonprodLabel(host, domain string, labels []string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	if domain == "" || host == domain || !strings.HasSuffix(host, "."+domain) {
		return ""
	}
	first, _, _ := strings.Cut(host, ".")
	bare := strings.TrimRight(first, "0123456789")
	for _, l := range labels {
		l = strings.ToLower(l)
		if strings.Contains(l, "*") {
			if ok, _ := path.Match(l, first); ok {
				return l
			}
			continue
		}
		if first == l || (bare == l && bare != first) {
			return l
		}
	}
	return ""
}

// LoginHost reports whether host is a sign-in service of the list.
func LoginHost(host string, hosts []string) bool {
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+rest) {
				return true
			}
		} else if host == h {
			return true
		}
	}
	return false
}

// loginPath reports a path that names a sign-in page.
func loginPath(u string) bool {
	p := strings.ToLower(u)
	for _, w := range []string{"login", "signin", "sign-in", "sign_in", "logon", "/auth", "/sso", "oauth", "saml"} {
		if strings.Contains(p, w) {
			return true
		}
	}
	return false
}

func evaluateNonprod(a check.Asset, ev Evidence, pol Policy) check.Finding {
	x := check.Finding{CheckID: NonprodProtected, Rule: nonprodRule.Rule}
	labels, logins := pol.NonprodLabels, pol.LoginHosts
	if labels == nil {
		labels = DefaultNonprodLabels
	}
	if logins == nil {
		logins = DefaultLoginHosts
	}
	label := NonprodLabel(ev.Host, a.Domain, labels)
	if label == "" {
		x.Outcome, x.Message = check.NA, fmt.Sprintf("%s is not named as a non-production host (nonprod_labels)", ev.Host)
		return x
	}
	if ev.HTTP.Refused && ev.HTTPS.Refused {
		x.Outcome, x.Message = check.NA, fmt.Sprintf("%s (%s) refuses connections on ports 80 and 443: it serves nothing", ev.Host, label)
		return x
	}
	c := &ev.HTTPS
	if ev.HTTPS.Refused {
		c = &ev.HTTP
	}
	if answered(c) == nil {
		msg, class := failure(c)
		x.Outcome, x.Reason, x.Message = check.Unknown, class, "could not tell: "+msg
		return x
	}
	// Walk the chain: credentials asked, a sign-in service reached, or
	// something served.
	sameSignIn := ""
	for i := range c.Hops {
		h := &c.Hops[i]
		if h.Failed() {
			x.Outcome, x.Reason = check.Unknown, string(h.Class)
			x.Message = fmt.Sprintf("could not tell: %s (%s) redirects to %s, which did not answer (%s)", ev.Host, label, h.URL, h.Class)
			return x
		}
		_, hh := hostOfURL(h.URL)
		switch {
		case h.Status == 401 || h.Status == 403:
			x.Outcome = check.Pass
			x.Message = fmt.Sprintf("%s (%s) asks for credentials: %s answers %d", ev.Host, label, h.URL, h.Status)
			return x
		case h.Next != "":
			_, nh := hostOfURL(h.Next)
			if LoginHost(nh, logins) {
				x.Outcome = check.Pass
				x.Message = fmt.Sprintf("%s (%s) sends visitors to sign in at %s before serving anything", ev.Host, label, nh)
				return x
			}
			if nh == hh && loginPath(h.Next) {
				sameSignIn = h.Next
			}
			continue
		case h.Status >= 200 && h.Status < 300:
			switch {
			case hh != ev.Host && NonprodLabel(hh, a.Domain, labels) == "" && !loginPath(h.URL):
				x.Outcome = check.Pass
				x.Message = fmt.Sprintf("%s (%s) redirects to %s, which is not a non-production host", ev.Host, label, hh)
			case sameSignIn != "" || (i > 0 && loginPath(h.URL)):
				x.Outcome, x.Severity = check.Warn, check.Low
				x.Message = fmt.Sprintf("%s (%s) redirects to a sign-in page, %s (%d), served without credentials: the application may protect the site, which this check cannot tell", ev.Host, label, h.URL, h.Status)
			default:
				x.Outcome = check.Fail
				x.Message = fmt.Sprintf("%s (%s) serves %s (%d) without asking for credentials", ev.Host, label, h.URL, h.Status)
			}
			return x
		default:
			x.Outcome, x.Severity = check.Warn, check.Low
			x.Message = fmt.Sprintf("%s (%s) answers %s with %d without asking for credentials: its other paths may be open", ev.Host, label, h.URL, h.Status)
			return x
		}
	}
	// The chain ended on a redirect that was not followed.
	_, nh := hostOfURL(c.Next)
	switch {
	case c.End == webfetch.EndScope && nh != "" && NonprodLabel(nh, a.Domain, labels) == "":
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s (%s) redirects to %s, outside the scan, which is neither non-production nor served here", ev.Host, label, nh)
	default:
		x.Outcome, x.Severity = check.Warn, check.Low
		x.Message = fmt.Sprintf("%s (%s) redirects without end (%s) and never asks for credentials", ev.Host, label, c.End)
	}
	return x
}

// validateSitePolicy checks the site ids' settings: names that can match.
func validateSitePolicy(p Policy) []*check.FieldError {
	var out []*check.FieldError
	name := func(s string) bool { return preloadHostValid(s) == nil }
	for _, s := range p.PublicSectorSuffixes {
		if !name(s) {
			out = append(out, &check.FieldError{Field: "public_sector_suffixes", Msg: fmt.Sprintf("%q is not a lower-case domain name", s)})
		}
	}
	for _, l := range p.NonprodLabels {
		_, err := path.Match(l, "")
		if l == "" || strings.Trim(l, "*") == "" || err != nil || strings.ContainsAny(l, "./[]?\\") || strings.ToLower(l) != l {
			out = append(out, &check.FieldError{Field: "nonprod_labels", Msg: fmt.Sprintf("%q is not a lower-case label (letters, digits, '-', and '*' as a glob)", l)})
		}
	}
	for _, h := range p.LoginHosts {
		if !name(strings.TrimPrefix(h, "*.")) {
			out = append(out, &check.FieldError{Field: "login_hosts", Msg: fmt.Sprintf("%q is not a lower-case host name (\"*.\" before a domain for any name below it)", h)})
		}
	}
	return out
}
