package webcheck

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

// The security header ids (docs/checks.md §1.3), judged by web.https on
// the evidence it records: the headers on the final response of the
// https:// chain, the cookies on every hop of both chains.
const (
	HdrCSP         = "web.hdr.csp"
	HdrXCTO        = "web.hdr.xcto"
	HdrFraming     = "web.hdr.framing"
	HdrReferrer    = "web.hdr.referrer"
	HdrPermissions = "web.hdr.permissions"
	HdrInfoLeak    = "web.hdr.info-leak"
	HdrDeprecated  = "web.hdr.deprecated"
	Cookies        = "web.cookies"
)

// HeaderIDs are the security header and cookie ids web.https emits, on
// every host.
// web.cookies is last; the others are judged on the final page.
var HeaderIDs = []string{HdrCSP, HdrXCTO, HdrFraming, HdrReferrer, HdrPermissions, HdrInfoLeak, HdrDeprecated, SoftwareOutdated, Cookies}

var (
	refNHSBSAHeaders = check.Ref{Standard: "NHSBSA playbook", Section: "src/security/security-headers.md (MUST/SHOULD/MUST NOT per header)", Status: "secondary"}
	refGDSWayHeaders = check.Ref{Standard: "GDS Way: Security overview for websites", Section: `§6 "Security Headers – Must Do"`,
		URL: "https://gds-way.digital.cabinet-office.gov.uk/manuals/security-overview-for-websites.html"}
	refGDSWayCSP = check.Ref{Standard: "GDS Way: Security overview for websites", Section: "§9 Content Security Policy",
		URL: "https://gds-way.digital.cabinet-office.gov.uk/manuals/security-overview-for-websites.html"}
	refSEQFClickjacking = check.Ref{Standard: "NHS England Software Engineering Quality Framework", Section: `practices/security.md: "Prevent clickjacking with X-Frame-Options"`,
		URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/practices/security.md"}
	refSEQFLeak = check.Ref{Standard: "NHS England Software Engineering Quality Framework", Section: `practices/security.md: "Be careful not to leak information, e.g. … headers"`,
		URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/practices/security.md"}
	refSEQFCookies = check.Ref{Standard: "NHS England Software Engineering Quality Framework", Section: `practices/security.md: "Secure storage of session token (Secure, HttpOnly and SameSite)"`,
		URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/practices/security.md"}
	refCSP3 = check.Ref{Standard: "W3C Content Security Policy Level 3", Section: "§2.2 policy parsing; §6.7.3.3 inline behaviour ('unsafe-inline' ignored with a nonce, hash or 'strict-dynamic'); §6.8.1 fallback to default-src",
		URL: "https://www.w3.org/TR/CSP3/"}
	refHTMLXFO = check.Ref{Standard: "WHATWG HTML", Section: "§7.1 X-Frame-Options processing: an enforced CSP frame-ancestors directive takes precedence; conflicting values fall back to deny",
		URL: "https://html.spec.whatwg.org/multipage/document-lifecycle.html#the-x-frame-options-header"}
	refFetchNosniff = check.Ref{Standard: "WHATWG Fetch", Section: "X-Content-Type-Options: the first value is an ASCII case-insensitive match for nosniff",
		URL: "https://fetch.spec.whatwg.org/#x-content-type-options-header"}
	refReferrerPolicy = check.Ref{Standard: "W3C Referrer Policy", Section: "§8.1 parsing the header: the last recognised token wins",
		URL: "https://www.w3.org/TR/referrer-policy/"}
	refRFC6265bis = check.Ref{Standard: "RFC 6265bis (draft-ietf-httpbis-rfc6265bis)", Section: "Set-Cookie parsing (last attribute wins, Max-Age over Expires), storage model (__Secure-/__Host- prefixes, Secure cookies from insecure origins ignored, SameSite)",
		URL: "https://datatracker.ietf.org/doc/draft-ietf-httpbis-rfc6265bis/", Status: "unverified"}
)

// headerRules are the catalogue entries of the security header ids.
var headerRules = []check.Meta{
	{ID: HdrCSP, Rule: "csp-enforced", Title: "Content-Security-Policy is enforced and restricts scripts", Severity: check.Medium,
		Description: "The final response of https://<host>/ sends an enforced Content-Security-Policy (Report-Only alone does not count), parsed as browsers do (CSP3 §2.2: policies split on \",\", directives on \";\", names case-insensitive, the first of a name wins; every policy of every header is enforced, and so is a <meta http-equiv> policy in the start of the page, without its frame-ancestors). It warns when the policies together let scripts through: every policy's list for <script> elements (script-src-elem, script-src, default-src: the first present) or for inline event handlers (script-src-attr, script-src, default-src) allows 'unsafe-inline' without a nonce, hash or 'strict-dynamic'; or every policy's list for eval (script-src, default-src) has 'unsafe-eval'; or every policy's list for elements allows any host (*, http:, https:, data:, without 'strict-dynamic'); or no policy restricts scripts at all (say only frame-ancestors). No enforced policy fails.",
		Remediation: "Send a Content-Security-Policy header whose script-src (or default-src) lists 'self' and the hosts you need, with nonces or hashes instead of 'unsafe-inline', and without 'unsafe-eval' or wildcards; add frame-ancestors 'none' or 'self'.",
		Standards:   []check.Ref{refNHSBSAHeaders, refGDSWayHeaders, refGDSWayCSP, refCSP3}},
	{ID: HdrXCTO, Rule: "xcto-nosniff", Title: "X-Content-Type-Options is nosniff", Severity: check.Low,
		Description: "The final response of https://<host>/ sends X-Content-Type-Options whose first value is nosniff (case-insensitive, trimmed, as the Fetch standard reads it).",
		Remediation: `Send "X-Content-Type-Options: nosniff" on every response.`,
		Standards:   []check.Ref{refNHSBSAHeaders, refGDSWayHeaders, refFetchNosniff}},
	{ID: HdrFraming, Rule: "framing-restricted", Title: "Framing by other sites is refused", Severity: check.Medium,
		Description: "The final response of https://<host>/ refuses framing as browsers decide it (HTML §7.1): an enforced CSP frame-ancestors directive takes precedence over X-Frame-Options, and passes with 'none', 'self' or an explicit list (not *, http: or https:); without one, X-Frame-Options DENY or SAMEORIGIN (case-insensitive; conflicting values fall back to deny) passes. ALLOW-FROM is obsolete and ignored by browsers: no protection.",
		Remediation: `Send "Content-Security-Policy: frame-ancestors 'none'" (or 'self') and "X-Frame-Options: DENY" (or SAMEORIGIN) for older browsers.`,
		Standards:   []check.Ref{refSEQFClickjacking, refNHSBSAHeaders, refGDSWayHeaders, refHTMLXFO}},
	{ID: HdrReferrer, Rule: "referrer-policy", Title: "Referrer-Policy does not leak full URLs", Severity: check.Low,
		Description: "The final response of https://<host>/ sends a Referrer-Policy whose effective value (the last recognised token, as browsers take it) is not unsafe-url or no-referrer-when-downgrade. Unknown tokens only count as no header. strict-origin-when-cross-origin is recommended.",
		Remediation: `Send "Referrer-Policy: strict-origin-when-cross-origin" (or stricter: same-origin, no-referrer).`,
		Standards:   []check.Ref{refNHSBSAHeaders, refGDSWayHeaders, refReferrerPolicy}},
	{ID: HdrPermissions, Rule: "permissions-policy", Title: "Permissions-Policy is sent", Severity: check.Low,
		Description: "The final response of https://<host>/ sends a Permissions-Policy header that parses as a non-empty structured-field dictionary (RFC 8941), as browsers require: one that does not (say the old Feature-Policy syntax, geolocation 'none') is ignored by them and fails.",
		Remediation: `Send a Permissions-Policy that turns off the browser features the site does not use, e.g. "Permissions-Policy: camera=(), microphone=(), geolocation=()".`,
		Standards:   []check.Ref{refGDSWayHeaders}},
	{ID: HdrInfoLeak, Rule: "no-version-headers", Title: "Headers do not reveal software versions", Severity: check.Low,
		Description: "The final response of https://<host>/ sends no X-Powered-By, X-AspNet-Version or X-AspNetMvc-Version, and its Server header, if any, names no version (nginx passes; nginx/1.25.3, Microsoft-IIS/10.0 or Apache/2.4.58 (Debian) fail).",
		Remediation: "Remove X-Powered-By and X-AspNet*-Version headers, and set the Server header to a bare product name or remove it (nginx: server_tokens off; Apache: ServerTokens Prod; IIS: removeServerHeader).",
		Standards:   []check.Ref{refNHSBSAHeaders, refGDSWayHeaders, refSEQFLeak}},
	{ID: HdrDeprecated, Rule: "no-deprecated-headers", Title: "No deprecated security headers", Severity: check.Low,
		Description: "The final response of https://<host>/ sends no Public-Key-Pins (HPKP, which can lock users out: fails), and neither Expect-CT, Public-Key-Pins-Report-Only nor an X-XSS-Protection other than 0 (ignored by current browsers; the old XSS auditor opened leaks: warn).",
		Remediation: `Remove Public-Key-Pins and Expect-CT, and send "X-XSS-Protection: 0" or nothing; use a Content-Security-Policy instead.`,
		Standards:   []check.Ref{refNHSBSAHeaders, refGDSWayHeaders}},
	{ID: SoftwareOutdated, Rule: "software-supported", Title: "Fingerprinted software is supported by its vendor", Severity: check.High,
		Description: "The final page of https://<host>/ names a product and version in its Server, X-Powered-By or X-AspNet-Version header, or in a <meta name=\"generator\"> of the start of its body (PHP, Apache httpd, nginx, Microsoft IIS, ASP.NET 1.x, WordPress, Drupal, Joomla!). A branch past its vendor's end of life at the scan's date fails, by an embedded table dated " + eolTableDate + " whose source each finding names; for PHP, Apache httpd and nginx, which Linux distributions package and patch under the upstream version number, an ended upstream branch warns instead (the header cannot prove the server unpatched). A supported branch passes. No version, or one the table cannot place, is not applicable. Known-exploited vulnerabilities are not looked up.",
		Remediation: "Upgrade to a release branch the vendor still supports, keep it patched, and stop advertising versions (see web.hdr.info-leak).",
		Standards: []check.Ref{
			{Standard: "NCSC blog: Improving government, one bit at a time", Section: "Web Check found 593 out-of-date CMS sites", URL: "https://www.ncsc.gov.uk/blog-post/improving-government-one-bit-at-a-time"},
			{Standard: "NCSC CAF v3.2", Section: "B4.d Vulnerability management", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework", Status: "secondary"},
			{Standard: "NHS England Software Engineering Quality Framework", Section: `practices/security.md: "Scan running software"`, URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/practices/security.md"},
		}},
	{ID: Cookies, Rule: "cookies-secure", Title: "Cookies are Secure; session cookies HttpOnly and SameSite", Severity: check.Medium,
		Description: "Every cookie set on any hop of the http:// and https:// chains (redirects included), parsed as browsers do (RFC 6265bis), has Secure; a cookie set over plain HTTP without it fails. Session or authentication cookies (no Expires or Max-Age, or a name such as session, sess, sid, auth, token, jwt, JSESSIONID, PHPSESSID, ASP.NET_SessionId, connect.sid, laravel_session, .AspNetCore.*; CSRF tokens excepted, which scripts must read) also need HttpOnly and SameSite Lax or Strict: SameSite=None fails, no SameSite warns (Chrome defaults to Lax, Firefox and Safari do not). Cookies browsers reject or delete are not judged. No cookies passes. Only the front page's cookies are seen.",
		Remediation: "Set Secure on every cookie, and HttpOnly and SameSite=Lax (or Strict) on session and authentication cookies; use the __Host- prefix for session cookies.",
		Standards:   []check.Ref{refSEQFCookies, refNHSBSAHeaders, refRFC6265bis}},
}

// hdrClip bounds server text quoted in a message.
func hdrClip(s string) string {
	const n = 120
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// hdrFinal is the response the headers are judged on: the last hop of the
// https:// chain when the chain ended on a page (not a redirect out of
// scope, a loop or another dead end); else the outcome to give instead.
func hdrFinal(ev Evidence) (*webfetch.Hop, check.Outcome, string, string) {
	c := &ev.HTTPS
	last := c.Last()
	if last == nil {
		return nil, check.NA, "", "the HTTPS chain has no response to judge"
	}
	switch c.End {
	case webfetch.EndFinal, webfetch.EndNoLocation:
		return last, "", "", ""
	case webfetch.EndError:
		class := string(last.Class)
		if class == "" {
			class = string(check.ErrOther)
		}
		return nil, check.Unknown, class, fmt.Sprintf("could not tell: the HTTPS chain failed at %s (%s stage, %s)", hdrClip(last.URL), last.Stage, class)
	}
	msg := fmt.Sprintf("the HTTPS chain shows no page of this host to judge: it ends (%s) after %s", c.End, hdrClip(last.URL))
	if c.Next != "" {
		msg += fmt.Sprintf(" answered %d with a redirect to %s, not followed", last.Status, hdrClip(c.Next))
	}
	return nil, check.NA, "", msg
}

// evaluateHeaders judges the security header ids and web.cookies, given
// web.https.available's finding.
func evaluateHeaders(in check.In[Evidence], avail check.Finding) []check.Finding {
	ev := in.Evidence
	f := func(id string) check.Finding { return check.Finding{CheckID: id, Rule: hdrRule(id)} }
	out := make([]check.Finding, 0, len(HeaderIDs))
	all := func(ids []string, o check.Outcome, reason, msg string) {
		for _, id := range ids {
			x := f(id)
			x.Outcome, x.Reason, x.Message = o, reason, msg
			out = append(out, x)
		}
	}
	switch avail.Outcome {
	case check.Unknown:
		all(HeaderIDs, check.Unknown, avail.Reason, avail.Message)
		return out
	case check.Fail, check.NA:
		all(HeaderIDs, check.NA, "", "no HTTPS response to judge: "+avail.Message)
		return out
	}
	hdrIDs := HeaderIDs[:len(HeaderIDs)-1]
	h, o, reason, msg := hdrFinal(ev)
	if h == nil {
		all(hdrIDs, o, reason, msg)
	} else {
		out = append(out, evaluateCSP(h), evaluateXCTO(h), evaluateFraming(h), evaluateReferrer(h),
			evaluatePermissions(h), evaluateInfoLeak(h), evaluateDeprecated(h), evaluateSoftware(h, in.CollectedAt))
	}
	return append(out, evaluateCookies(ev, in.CollectedAt))
}

func hdrRule(id string) string {
	for _, m := range headerRules {
		if m.ID == id {
			return m.Rule
		}
	}
	return id
}

// hdrWhere names the judged response in a message.
func hdrWhere(h *webfetch.Hop) string {
	s := fmt.Sprintf("%s (%d)", hdrClip(h.URL), h.Status)
	if !h.TLS {
		s += ", reached over plain HTTP,"
	}
	return s
}

// hdrClipped is the unknown finding for a header cut by webfetch's bounds
// where the verdict depends on what was cut.
func hdrClipped(x check.Finding, h *webfetch.Hop, name string) check.Finding {
	x.Outcome, x.Reason = check.Unknown, string(check.ErrTooLarge)
	x.Message = fmt.Sprintf("could not tell: %s sends %d %s headers, more or longer than recorded", hdrWhere(h), h.Headers[name].Count, name)
	return x
}

// hdrCSPPolicies parses every enforced policy of a response.
func hdrCSPPolicies(h *webfetch.Hop) ([]CSPPolicy, error) {
	var ps []CSPPolicy
	for _, v := range h.Headers.Values("Content-Security-Policy") {
		p, err := ParseCSP(v)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p...)
	}
	return ps, nil
}

func evaluateCSP(h *webfetch.Hop) check.Finding {
	x := check.Finding{CheckID: HdrCSP, Rule: hdrRule(HdrCSP)}
	csp := h.Headers["Content-Security-Policy"]
	ps, err := hdrCSPPolicies(h)
	var metas []string
	if err == nil && h.Body != nil {
		// Policies in <meta http-equiv> elements are enforced too.
		var mps []CSPPolicy
		mps, metas, err = cspMetaPolicies(h.Body.Data)
		ps = append(ps, mps...)
	}
	if err != nil {
		x.Outcome, x.Reason = check.Unknown, string(check.ErrTooLarge)
		x.Message = fmt.Sprintf("could not tell: the Content-Security-Policy of %s is past the parser's bounds", hdrWhere(h))
		return x
	}
	if len(ps) == 0 {
		if csp.Clipped {
			return hdrClipped(x, h, "Content-Security-Policy")
		}
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s sends no enforced Content-Security-Policy", hdrWhere(h))
		switch {
		case csp.Count > 0:
			x.Message += fmt.Sprintf(" (its Content-Security-Policy %q has no directive)", hdrClip(h.Headers.Get("Content-Security-Policy")))
		case h.Headers.Has("Content-Security-Policy-Report-Only"):
			x.Message += " (only Content-Security-Policy-Report-Only, which reports and blocks nothing)"
		}
		return x
	}
	// A script runs only if every enforced policy allows it: a weakness
	// counts when every policy has it, for one kind of script.
	restricting := 0
	weak := cspPolicyScripts{inlineElem: true, inlineAttr: true, anyHost: true, eval: true}
	for _, p := range ps {
		w := cspScripts(p)
		if w.restricts {
			restricting++
		}
		weak.inlineElem = weak.inlineElem && w.inlineElem
		weak.inlineAttr = weak.inlineAttr && w.inlineAttr
		weak.anyHost = weak.anyHost && w.anyHost
		weak.eval = weak.eval && w.eval
	}
	quoted := hdrClip(strings.Join(append(csp.Values[:len(csp.Values):len(csp.Values)], metas...), ", "))
	if len(metas) > 0 {
		quoted += " (with <meta> elements)"
	}
	var why []string
	switch {
	case restricting == 0:
		why = append(why, "no policy has script-src, default-src or script-src-elem/-attr, so scripts are not restricted")
	default:
		switch {
		case weak.inlineElem && weak.inlineAttr:
			why = append(why, "'unsafe-inline' without a nonce, hash or 'strict-dynamic'")
		case weak.inlineElem:
			why = append(why, "inline <script> elements ('unsafe-inline' in script-src-elem)")
		case weak.inlineAttr:
			why = append(why, "inline event handlers ('unsafe-inline' in script-src-attr)")
		}
		if weak.eval {
			why = append(why, "'unsafe-eval'")
		}
		if weak.anyHost {
			why = append(why, "scripts from any host (*, http:, https: or data:)")
		}
	}
	if len(why) == 0 {
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s enforces Content-Security-Policy %q (%d policies), which restricts scripts", hdrWhere(h), quoted, len(ps))
		return x
	}
	if csp.Clipped {
		// A policy not recorded could have blocked what these allow.
		return hdrClipped(x, h, "Content-Security-Policy")
	}
	x.Outcome = check.Warn
	x.Message = fmt.Sprintf("%s enforces Content-Security-Policy %q, whose script policy allows %s", hdrWhere(h), quoted, strings.Join(why, "; "))
	return x
}

// hdrSplit gets, decodes and splits a header's values as the Fetch
// standard does for a comma list (no quoted strings in the values read
// here): every value split on ",", each trimmed.
func hdrSplit(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, t := range strings.Split(v, ",") {
			out = append(out, strings.Trim(t, " \t"))
		}
	}
	return out
}

func evaluateXCTO(h *webfetch.Hop) check.Finding {
	x := check.Finding{CheckID: HdrXCTO, Rule: hdrRule(HdrXCTO)}
	vs := hdrSplit(h.Headers.Values("X-Content-Type-Options"))
	switch {
	case len(vs) == 0:
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s sends no X-Content-Type-Options", hdrWhere(h))
	case strings.EqualFold(vs[0], "nosniff"):
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s sends X-Content-Type-Options: nosniff", hdrWhere(h))
	default:
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s sends X-Content-Type-Options %q, not nosniff", hdrWhere(h), hdrClip(h.Headers.Get("X-Content-Type-Options")))
	}
	return x
}

func evaluateFraming(h *webfetch.Hop) check.Finding {
	x := check.Finding{CheckID: HdrFraming, Rule: hdrRule(HdrFraming)}
	ps, err := hdrCSPPolicies(h)
	if err != nil {
		x.Outcome, x.Reason = check.Unknown, string(check.ErrTooLarge)
		x.Message = fmt.Sprintf("could not tell: the Content-Security-Policy of %s is past the parser's bounds", hdrWhere(h))
		return x
	}
	// HTML §7.1: any enforced frame-ancestors directive makes browsers
	// ignore X-Frame-Options; framing is refused when one of them
	// refuses it.
	fa, restricts := 0, false
	var faVal string
	for _, p := range ps {
		if d, ok := p.Get("frame-ancestors"); ok {
			fa++
			if cspFrameAncestorsRestrict(d) {
				restricts = true
				faVal = strings.Join(d.Value, " ")
			} else if faVal == "" {
				faVal = strings.Join(d.Value, " ")
			}
		}
	}
	switch {
	case restricts:
		x.Outcome = check.Pass
		if faVal == "" {
			faVal = "(an empty list: no ancestor)"
		}
		x.Message = fmt.Sprintf("%s enforces CSP frame-ancestors %s", hdrWhere(h), hdrClip(faVal))
		return x
	case fa > 0:
		if h.Headers["Content-Security-Policy"].Clipped {
			return hdrClipped(x, h, "Content-Security-Policy")
		}
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s enforces CSP frame-ancestors %s, which lets any site frame it; browsers then ignore X-Frame-Options", hdrWhere(h), hdrClip(faVal))
		return x
	}
	if h.Headers["Content-Security-Policy"].Clipped {
		return hdrClipped(x, h, "Content-Security-Policy")
	}
	xfo := h.Headers["X-Frame-Options"]
	set := map[string]bool{}
	var order []string
	for _, v := range hdrSplit(xfo.Values) {
		v = strings.ToLower(v)
		if !set[v] {
			set[v] = true
			order = append(order, v)
		}
	}
	quoted := hdrClip(strings.Join(xfo.Values, ", "))
	switch {
	case len(order) == 0:
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s sends neither X-Frame-Options nor an enforced CSP frame-ancestors: any site can frame it", hdrWhere(h))
	case len(order) > 1 && (set["deny"] || set["sameorigin"] || set["allowall"]):
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s sends conflicting X-Frame-Options values %q; browsers fall back to deny (HTML §7.1), but send one value", hdrWhere(h), quoted)
	case len(order) == 1 && (order[0] == "deny" || order[0] == "sameorigin"):
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s sends X-Frame-Options %q", hdrWhere(h), quoted)
	default:
		if xfo.Clipped {
			return hdrClipped(x, h, "X-Frame-Options")
		}
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s sends X-Frame-Options %q, which browsers ignore (only DENY or SAMEORIGIN refuse framing; ALLOW-FROM is obsolete)", hdrWhere(h), quoted)
	}
	return x
}

// referrerPolicies are the Referrer-Policy tokens browsers recognise.
var referrerPolicies = []string{"no-referrer", "no-referrer-when-downgrade", "same-origin", "origin", "strict-origin",
	"origin-when-cross-origin", "strict-origin-when-cross-origin", "unsafe-url"}

func evaluateReferrer(h *webfetch.Hop) check.Finding {
	x := check.Finding{CheckID: HdrReferrer, Rule: hdrRule(HdrReferrer)}
	rp := h.Headers["Referrer-Policy"]
	policy := ""
	for _, t := range hdrSplit(rp.Values) {
		for _, p := range referrerPolicies {
			if strings.EqualFold(t, p) {
				policy = p
			}
		}
	}
	if rp.Clipped {
		// A later value not recorded could replace the policy.
		return hdrClipped(x, h, "Referrer-Policy")
	}
	quoted := hdrClip(strings.Join(rp.Values, ", "))
	switch policy {
	case "":
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s sends no Referrer-Policy", hdrWhere(h))
		if rp.Count > 0 {
			x.Message = fmt.Sprintf("%s sends Referrer-Policy %q, with no token browsers recognise", hdrWhere(h), quoted)
		}
	case "unsafe-url", "no-referrer-when-downgrade":
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s sends Referrer-Policy %q: browsers apply %s, which sends full URLs to other sites", hdrWhere(h), quoted, policy)
	default:
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s sends Referrer-Policy %q: browsers apply %s", hdrWhere(h), quoted, policy)
	}
	return x
}

func evaluatePermissions(h *webfetch.Hop) check.Finding {
	x := check.Finding{CheckID: HdrPermissions, Rule: hdrRule(HdrPermissions)}
	pp := h.Headers["Permissions-Policy"]
	v := strings.Join(pp.Values, ", ")
	if pp.Count == 0 {
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s sends no Permissions-Policy", hdrWhere(h))
		return x
	}
	keys, err := sfDictKeys(v)
	switch {
	case err != nil && pp.Clipped:
		return hdrClipped(x, h, "Permissions-Policy")
	case err != nil:
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s sends Permissions-Policy %q, which is not a structured-field dictionary (RFC 8941; the old Feature-Policy syntax is not): browsers ignore it", hdrWhere(h), hdrClip(v))
	case len(keys) == 0:
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s sends an empty Permissions-Policy", hdrWhere(h))
	default:
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s sends Permissions-Policy %q", hdrWhere(h), hdrClip(v))
	}
	return x
}

// serverVersion reports whether a Server value names a version: a
// product token followed by "/" and a digit outside comments (RFC 9110
// §10.2.4: product = token ["/" product-version]; nginx/1.25.3), or a
// dotted number anywhere (Apache 2.4, Jetty(9.4.43)). A bare product
// (nginx, AmazonS3) or a comment without one (Debian; dcb/7F84) does not.
func serverVersion(v string) bool {
	depth := 0
	digit := func(i int) bool { return i < len(v) && v[i] >= '0' && v[i] <= '9' }
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == '/' && depth == 0 && digit(i+1):
			return true
		case digit(i) && i+2 < len(v) && v[i+1] == '.' && digit(i+2):
			return true
		}
	}
	return false
}

func evaluateInfoLeak(h *webfetch.Hop) check.Finding {
	x := check.Finding{CheckID: HdrInfoLeak, Rule: hdrRule(HdrInfoLeak)}
	var leaks []string
	for _, n := range []string{"X-Powered-By", "X-Aspnet-Version", "X-Aspnetmvc-Version"} {
		if h.Headers.Has(n) {
			leaks = append(leaks, fmt.Sprintf("%s: %q", n, hdrClip(h.Headers.Get(n))))
		}
	}
	for _, v := range h.Headers.Values("Server") {
		if serverVersion(v) {
			leaks = append(leaks, fmt.Sprintf("Server: %q", hdrClip(v)))
			break
		}
	}
	if len(leaks) == 0 {
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s names no software version in its headers", hdrWhere(h))
		if s := h.Headers.Get("Server"); s != "" {
			x.Message += fmt.Sprintf(" (Server: %q)", hdrClip(s))
		}
		return x
	}
	x.Outcome = check.Fail
	x.Message = fmt.Sprintf("%s reveals its software: %s", hdrWhere(h), strings.Join(leaks, "; "))
	return x
}

func evaluateDeprecated(h *webfetch.Hop) check.Finding {
	x := check.Finding{CheckID: HdrDeprecated, Rule: hdrRule(HdrDeprecated)}
	var fails, warns []string
	if h.Headers.Has("Public-Key-Pins") {
		fails = append(fails, "Public-Key-Pins (HPKP)")
	}
	if h.Headers.Has("Public-Key-Pins-Report-Only") {
		warns = append(warns, "Public-Key-Pins-Report-Only")
	}
	if h.Headers.Has("Expect-Ct") {
		warns = append(warns, "Expect-CT")
	}
	if h.Headers.Has("X-Xss-Protection") {
		v := h.Headers.Get("X-Xss-Protection")
		if mode, _, _ := strings.Cut(v, ";"); strings.TrimSpace(mode) != "0" {
			warns = append(warns, fmt.Sprintf("X-XSS-Protection %q (send 0 or nothing)", hdrClip(v)))
		}
	}
	switch {
	case len(fails) > 0:
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s sends %s", hdrWhere(h), strings.Join(append(fails, warns...), ", "))
	case len(warns) > 0:
		x.Outcome = check.Warn
		x.Message = fmt.Sprintf("%s sends deprecated %s", hdrWhere(h), strings.Join(warns, ", "))
	default:
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s sends no deprecated security header", hdrWhere(h))
	}
	return x
}
