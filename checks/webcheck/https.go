// Package webcheck holds the web family's checks (docs/checks.md §1.2)
// built on the webfetch probe. web.https fetches http://<host>/ and
// https://<host>/, records both chains, and judges HTTPS, the HTTP to
// HTTPS redirect and HSTS from them.
package webcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

// The catalogue ids.
const (
	HTTPSAvailable = "web.https.available"
	HTTPEnforced   = "web.http.enforced"
	HSTSPresent    = "web.hsts.present"
	HSTSMaxAge     = "web.hsts.max-age"
	HSTSSubdomains = "web.hsts.subdomains"
)

// CheckIDs are the ids web.https emits, on every host.
var CheckIDs = []string{HTTPSAvailable, HTTPEnforced, HSTSPresent, HSTSMaxAge, HSTSSubdomains}

// Chain is one fetch and whether its first connection was refused.
//
// Schema (JSON): webfetch.Result's fields, and "refused"?: the first
// connection was refused (ECONNREFUSED: the port is closed).
type Chain struct {
	webfetch.Result
	Refused bool `json:"refused,omitempty"`
}

// Evidence is web.https's raw evidence (Version 2; version 1 had no
// "preload" and is read as it is).
//
// Schema (JSON): {"host", "http": Chain of http://<host>/, "https": Chain
// of https://<host>/, "preload"?: PreloadFact, what the preload list said
// of the host, with its date}.
type Evidence struct {
	Host    string       `json:"host"`
	HTTP    Chain        `json:"http"`
	HTTPS   Chain        `json:"https"`
	Preload *PreloadFact `json:"preload,omitempty"`
}

// upgradeHTTPS reads version 1 evidence: the same shape without the
// preload lookup (Evaluate then looks the host up in the embedded list,
// or the policy's).
func upgradeHTTPS(version int, data json.RawMessage) (Evidence, error) {
	var ev Evidence
	if version != 1 {
		return ev, fmt.Errorf("unknown version %d", version)
	}
	err := json.Unmarshal(data, &ev)
	return ev, err
}

var (
	refSMHTTPS = check.Ref{Standard: "GOV.UK Service Manual: Using HTTPS", Section: `"HTTPS only, with an HSTS configuration"`,
		URL: "https://www.gov.uk/service-manual/technology/using-https"}
	refSMDomain = check.Ref{Standard: "GOV.UK Service Manual: Get a domain name", Section: `"Your service must not accept HTTP connections under any circumstances"`,
		URL: "https://www.gov.uk/service-manual/technology/get-a-domain-name"}
	refPshtt = check.Ref{Standard: "CISA BOD 18-01 / pshtt", Section: `"Domain Supports HTTPS", "Domain Enforces HTTPS", "Downgrades HTTPS"; strong HSTS = max-age ≥ 31536000`,
		URL: "https://github.com/cisagov/pshtt"}
	refRFC6797 = check.Ref{Standard: "RFC 6797 (HTTP Strict Transport Security)", Section: "§6.1 syntax; §7.2 HTTP to HTTPS redirect; §8.1 a header over HTTP is ignored",
		URL: "https://www.rfc-editor.org/rfc/rfc6797", Status: "unverified"}
	refHSTSPreload = check.Ref{Standard: "chromium/hstspreload", Section: "redirects.go, header.go (hstsMinimumMaxAge = one year; include_sub_domains.missing)",
		URL: "https://github.com/chromium/hstspreload"}
	refNCSCHTTPS = check.Ref{Standard: "NCSC: Serve websites over HTTPS, always", URL: "https://www.ncsc.gov.uk/blog-post/serve-websites-over-https-always"}
	refCAF       = check.Ref{Standard: "NCSC CAF v3.2", Section: "B3.b Data in transit", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"}
	refNHSBSA    = check.Ref{Standard: "NHSBSA playbook", Section: "src/security/security-headers.md: max-age=31536000; includeSubDomains", Status: "secondary"}
)

// Check returns the web.https collector.
func Check() check.Check {
	return check.New(check.Spec[Evidence]{
		ID: "web.https", Family: "web", Targets: []check.Kind{check.KindHost}, Version: 2, Upgrade: upgradeHTTPS, Policy: Settings,
		Rules: append([]check.Meta{
			{ID: HTTPSAvailable, Rule: "https-available", Title: "HTTPS is available", Severity: check.Critical,
				Description: "https://<host>/ completes a TLS handshake and answers HTTP (any status). The certificate is not judged here: tls.cert.* do. A refused connection on 443 fails when port 80 answers; a host with neither port open is not a web server (not applicable); a timeout or a dropped handshake is unknown.",
				Remediation: "Serve the site over HTTPS on port 443 with a certificate from a public CA, and keep HTTP only to redirect to it.",
				Standards:   []check.Ref{refSMHTTPS, refPshtt, refNCSCHTTPS, refCAF}},
			{ID: HTTPEnforced, Rule: "http-redirects-to-https", Title: "HTTP is closed or redirects to HTTPS", Severity: check.High,
				Description: "Port 80 is closed, or http://<host>/ answers first with a 301 or 308 to https on the same host, serving no content over HTTP, and no later hop of either chain goes back to http. A 302, 303 or 307 to https on the same host warns (a temporary redirect; pshtt counts it as enforcing). Content over HTTP, a redirect to another host or to http, or a downgrade fails.",
				Remediation: "Answer every http:// request with a 301 (or 308) redirect to the same host and path over https://, or close port 80, and never redirect from https back to http.",
				Standards:   []check.Ref{refSMDomain, refRFC6797, refPshtt, refHSTSPreload, refCAF}},
			{ID: HSTSPresent, Rule: "hsts-present", Title: "HSTS header is sent", Severity: check.High,
				Description: "The first HTTPS response (a redirect hop included) sends exactly one Strict-Transport-Security header that parses (RFC 6797 §6.1) with a max-age. A header sent over plain HTTP does not count.",
				Remediation: `Send "Strict-Transport-Security: max-age=31536000; includeSubDomains" on every HTTPS response, redirects included, once.`,
				Standards:   []check.Ref{refSMHTTPS, refRFC6797, refHSTSPreload, refCAF}},
			{ID: HSTSMaxAge, Rule: "hsts-max-age", Title: "HSTS max-age is at least a year", Severity: check.High,
				Description: "The HSTS max-age is at least the policy's hsts_min_max_age (default 31536000 s, one year). Not applicable without a valid header.",
				Remediation: "Raise the HSTS max-age to at least 31536000 (one year).",
				Standards:   []check.Ref{refSMHTTPS, refPshtt, refNHSBSA, refHSTSPreload}},
			{ID: HSTSSubdomains, Rule: "hsts-include-subdomains", Title: "HSTS covers subdomains", Severity: check.Medium,
				Description: "On the estate domain itself (the apex host), the HSTS header has includeSubDomains. Other hosts, and hosts without a valid header, are not applicable.",
				Remediation: "Add includeSubDomains to the apex domain's HSTS header once every subdomain serves HTTPS.",
				Standards:   []check.Ref{refSMHTTPS, refNHSBSA, refHSTSPreload}},
			preloadRule, redirectRule, nonprodRule,
		}, headerRules...),
		Collect:  collectHTTPS,
		Evaluate: evaluateWeb,
	})
}

func collectHTTPS(ctx context.Context, env *check.Env, a check.Asset) (Evidence, error) {
	host := strings.TrimSuffix(strings.ToLower(a.Name), ".")
	ev := Evidence{Host: host}
	domain := strings.TrimSuffix(strings.ToLower(a.Domain), ".")
	allowed := func(h string) bool {
		return h == host || (domain != "" && (h == domain || strings.HasSuffix(h, "."+domain)))
	}
	u := &url.URL{Scheme: "http", Host: host, Path: "/"}
	var wg sync.WaitGroup
	for i, c := range []*Chain{&ev.HTTP, &ev.HTTPS} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uu := *u
			if i == 1 {
				uu.Scheme = "https"
			}
			c.Result, c.Refused = fetchRefused(ctx, env, uu.String(), webfetch.Options{Allowed: allowed})
		}()
	}
	wg.Wait()
	if f, err := collectPreload(env, host); err == nil {
		ev.Preload = f
	}
	return ev, nil
}

// fetchRefused fetches through env, noting whether the chain's first
// connection was refused (errors.Is ECONNREFUSED, never the wording).
func fetchRefused(ctx context.Context, env *check.Env, u string, o webfetch.Options) (webfetch.Result, bool) {
	var mu sync.Mutex
	dials, refused := 0, false
	e := *env
	e.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := env.DialContext(ctx, network, addr)
		mu.Lock()
		if dials == 0 && err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			refused = true
		}
		dials++
		mu.Unlock()
		return c, err
	}
	res := webfetch.Fetch(ctx, &e, u, o)
	mu.Lock()
	defer mu.Unlock()
	return res, refused && len(res.Hops) == 1 && res.Hops[0].Stage == webfetch.StageDial
}

// answered reports whether a chain's first hop got a response.
func answered(c *Chain) *webfetch.Hop {
	if len(c.Hops) == 0 || c.Hops[0].Failed() {
		return nil
	}
	return &c.Hops[0]
}

// failure describes a chain's first hop failure and its class.
func failure(c *Chain) (string, string) {
	if len(c.Hops) == 0 {
		return fmt.Sprintf("%s was not fetched (%s)", c.URL, c.End), string(check.ErrInternal)
	}
	h := c.Hops[0]
	class := string(h.Class)
	if class == "" {
		class = string(check.ErrOther)
	}
	return fmt.Sprintf("%s failed at the %s stage (%s): %s", h.URL, h.Stage, class, h.Error), class
}

func evaluateHTTPS(in check.In[Evidence]) []check.Finding {
	ev := in.Evidence
	pol := Settings.Get(in.Policy)
	f := func(id string) check.Finding { return check.Finding{CheckID: id, Rule: ruleOf(id)} }
	out := make([]check.Finding, 0, len(CheckIDs))

	if ev.HTTP.Refused && ev.HTTPS.Refused {
		for _, id := range CheckIDs {
			x := f(id)
			x.Outcome = check.NA
			x.Message = fmt.Sprintf("%s refuses connections on ports 80 and 443: not a web server", ev.Host)
			out = append(out, x)
		}
		return append(out, evaluateHeaders(in, out[0])...)
	}

	// web.https.available
	avail := f(HTTPSAvailable)
	h0 := answered(&ev.HTTPS)
	switch {
	case h0 != nil:
		avail.Outcome = check.Pass
		avail.Message = fmt.Sprintf("https://%s/ answered %d over %s (the certificate is judged by tls.cert.*)", ev.Host, h0.Status, tlsVersion(h0))
	case ev.HTTPS.Refused:
		avail.Outcome = check.Fail
		avail.Message = fmt.Sprintf("%s refuses connections on port 443 while port 80 answers: no HTTPS", ev.Host)
	default:
		msg, class := failure(&ev.HTTPS)
		avail.Outcome, avail.Reason, avail.Message = check.Unknown, class, "could not tell: "+msg
	}
	out = append(out, avail, evaluateEnforced(ev))
	out = append(out, evaluateHSTS(in.Asset, ev, avail, pol)...)
	return append(out, evaluateHeaders(in, avail)...)
}

func ruleOf(id string) string {
	switch id {
	case HTTPSAvailable:
		return "https-available"
	case HTTPEnforced:
		return "http-redirects-to-https"
	case HSTSPresent:
		return "hsts-present"
	case HSTSMaxAge:
		return "hsts-max-age"
	}
	return "hsts-include-subdomains"
}

func tlsVersion(h *webfetch.Hop) string {
	if h.Conn == nil {
		return "TLS"
	}
	switch h.Conn.Version {
	case 0x0301:
		return "TLS 1.0"
	case 0x0302:
		return "TLS 1.1"
	case 0x0303:
		return "TLS 1.2"
	case 0x0304:
		return "TLS 1.3"
	}
	return fmt.Sprintf("TLS version 0x%04x", h.Conn.Version)
}

// hostOfURL is a URL's host, lower case, without a trailing dot ("" when
// it does not parse).
func hostOfURL(s string) (scheme, host string) {
	u, err := url.Parse(s)
	if err != nil {
		return "", ""
	}
	return u.Scheme, strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// downgrade finds a hop after an https one that goes to http: a Location
// followed (or not, when out of scope) whose scheme is http.
func downgrade(c *Chain) string {
	for i, h := range c.Hops {
		if !h.TLS || h.Next == "" {
			continue
		}
		if s, _ := hostOfURL(h.Next); s == "http" {
			return fmt.Sprintf("hop %d, %s, redirects (%d) back to %s", i+1, h.URL, h.Status, h.Next)
		}
	}
	return ""
}

func evaluateEnforced(ev Evidence) check.Finding {
	x := check.Finding{CheckID: HTTPEnforced, Rule: ruleOf(HTTPEnforced)}
	if ev.HTTP.Refused {
		if d := downgrade(&ev.HTTPS); d != "" {
			x.Outcome, x.Message = check.Fail, "port 80 is closed, but HTTPS downgrades: "+d
			return x
		}
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s refuses connections on port 80: HTTP is not served", ev.Host)
		return x
	}
	h := answered(&ev.HTTP)
	if h == nil {
		msg, class := failure(&ev.HTTP)
		x.Outcome, x.Reason, x.Message = check.Unknown, class, "could not tell: "+msg
		return x
	}
	redirect := h.Status == 301 || h.Status == 302 || h.Status == 303 || h.Status == 307 || h.Status == 308
	scheme, host := hostOfURL(h.Next)
	switch {
	case !redirect:
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("http://%s/ serves content over HTTP (status %d) instead of redirecting to https", ev.Host, h.Status)
	case h.Next == "":
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("http://%s/ answers %d with a Location that cannot be followed (%q)", ev.Host, h.Status, h.Location)
	case scheme != "https":
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("http://%s/ redirects (%d) to %s, which is not https", ev.Host, h.Status, h.Next)
	case host != ev.Host:
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("http://%s/ redirects (%d) to another host, %s, before https on the same host (the other host's HSTS does not protect this one)", ev.Host, h.Status, h.Next)
	default:
		if d := downgrade(&ev.HTTP); d != "" {
			x.Outcome, x.Message = check.Fail, "HTTP redirects to HTTPS, but the chain then downgrades: "+d
			return x
		}
		if d := downgrade(&ev.HTTPS); d != "" {
			x.Outcome, x.Message = check.Fail, "HTTP redirects to HTTPS, but HTTPS downgrades: "+d
			return x
		}
		if h.Status == 301 || h.Status == 308 {
			x.Outcome = check.Pass
			x.Message = fmt.Sprintf("http://%s/ redirects (%d) to %s", ev.Host, h.Status, h.Next)
			return x
		}
		x.Outcome, x.Severity = check.Warn, check.Medium
		x.Message = fmt.Sprintf("http://%s/ redirects to %s with a temporary %d, not a permanent 301 or 308", ev.Host, h.Next, h.Status)
	}
	return x
}

func evaluateHSTS(a check.Asset, ev Evidence, avail check.Finding, pol Policy) []check.Finding {
	present := check.Finding{CheckID: HSTSPresent, Rule: ruleOf(HSTSPresent)}
	maxAge := check.Finding{CheckID: HSTSMaxAge, Rule: ruleOf(HSTSMaxAge)}
	subs := check.Finding{CheckID: HSTSSubdomains, Rule: ruleOf(HSTSSubdomains)}
	apex := isApex(a)
	all := func(o check.Outcome, reason, msg string) []check.Finding {
		var out []check.Finding
		for _, x := range []check.Finding{present, maxAge, subs} {
			x.Outcome, x.Reason, x.Message = o, reason, msg
			out = append(out, x)
		}
		return out
	}
	switch avail.Outcome {
	case check.Unknown:
		return all(check.Unknown, avail.Reason, avail.Message)
	case check.Fail, check.NA:
		return all(check.NA, "", "no HTTPS response to judge HSTS on: "+avail.Message)
	}
	h := answered(&ev.HTTPS)
	sts := h.Headers["Strict-Transport-Security"]
	notJudged := func(why string) []check.Finding {
		maxAge.Outcome, maxAge.Message = check.NA, why
		subs.Outcome, subs.Message = check.NA, why
		return []check.Finding{present, maxAge, subs}
	}
	switch {
	case sts.Count == 0:
		present.Outcome = check.Fail
		present.Message = fmt.Sprintf("the first HTTPS response, %s (%d), sends no Strict-Transport-Security header", h.URL, h.Status)
		if hh := answered(&ev.HTTP); hh != nil && hh.Headers.Has("Strict-Transport-Security") {
			present.Message += "; it is sent over plain HTTP, where it does not count (RFC 6797 §8.1)"
		}
		return notJudged("no valid HSTS header")
	case sts.Count > 1:
		present.Outcome = check.Fail
		present.Message = fmt.Sprintf("%s sends %d Strict-Transport-Security headers: a browser takes only the first (RFC 6797 §8.1)", h.URL, sts.Count)
		return notJudged("no valid HSTS header (more than one)")
	}
	v := sts.Values[0]
	p, err := ParseHSTS(v)
	if err != nil {
		present.Outcome = check.Fail
		present.Message = fmt.Sprintf("%s sends Strict-Transport-Security %q, which does not parse: %v", h.URL, hstsClip(v), err)
		return notJudged("no valid HSTS header")
	}
	present.Outcome = check.Pass
	present.Message = fmt.Sprintf("%s (%d) sends Strict-Transport-Security %q", h.URL, h.Status, hstsClip(v))
	if p.MaxAge >= int64(pol.HSTSMinMaxAge) {
		maxAge.Outcome = check.Pass
		maxAge.Message = fmt.Sprintf("HSTS max-age is %d s (at least %d)", p.MaxAge, pol.HSTSMinMaxAge)
	} else {
		maxAge.Outcome = check.Fail
		maxAge.Message = fmt.Sprintf("HSTS max-age is %d s, below %d (one year by default)", p.MaxAge, pol.HSTSMinMaxAge)
	}
	switch {
	case !apex:
		subs.Outcome = check.NA
		subs.Message = fmt.Sprintf("%s is not the estate domain %s: includeSubDomains is judged on the apex", a.Name, a.Domain)
	case p.IncludeSubDomains:
		subs.Outcome = check.Pass
		subs.Message = "the apex's HSTS header has includeSubDomains"
	default:
		subs.Outcome = check.Fail
		subs.Message = fmt.Sprintf("the apex's HSTS header %q has no includeSubDomains: its subdomains are not covered", hstsClip(v))
	}
	return []check.Finding{present, maxAge, subs}
}
