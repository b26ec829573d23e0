package webcheck

import (
	"context"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

// web.securitytxt (docs/checks.md §1.4, §3.2 decision 13): the host's
// RFC 9116 security.txt file, fetched at https://<host>/.well-known/
// security.txt, judged for presence (web.securitytxt.present) and for its
// fields (web.securitytxt.valid).

// The catalogue ids of web.securitytxt.
const (
	SecurityTxtPresent = "web.securitytxt.present"
	SecurityTxtValid   = "web.securitytxt.valid"
)

// SecurityTxtPath is where RFC 9116 §3 puts the file; securityTxtLegacy is
// the top-level path that does not count (recorded as a note).
const (
	SecurityTxtPath   = "/.well-known/security.txt"
	securityTxtLegacy = "/security.txt"
)

// DefaultSecurityTxtCentral is the default of the web policy's
// securitytxt_central: the Cabinet Office's central vulnerability
// disclosure file, to which the GDS Way tells services to redirect.
var DefaultSecurityTxtCentral = []string{"https://vdp.cabinetoffice.gov.uk/.well-known/security.txt"}

// SecurityTxtIDs are the ids web.securitytxt emits, on every host.
var SecurityTxtIDs = []string{SecurityTxtPresent, SecurityTxtValid}

// SecurityTxtEvidence is web.securitytxt's raw evidence (Version 1).
//
// Schema (JSON): {"host", "well_known": Chain of https://<host>/.well-
// known/security.txt (redirects followed within the estate, the body of
// the last hop up to 32 KiB), "legacy"?: Chain of https://<host>/security.txt,
// fetched only when the well-known path answered with a status other than
// 200 (its body up to 512 bytes), "signed"?: the file is OpenPGP-signed}.
type SecurityTxtEvidence struct {
	Host      string `json:"host"`
	WellKnown Chain  `json:"well_known"`
	Legacy    *Chain `json:"legacy,omitempty"`
	// Signed: the well-known file's body opens an OpenPGP cleartext
	// signed message (RFC 9116 §2.3; the signature is not verified).
	Signed bool `json:"signed,omitempty"`
}

var (
	refRFC9116Location = check.Ref{Standard: "RFC 9116 (A File Format to Aid in Security Vulnerability Disclosure)",
		Section: `§3 "MUST place the security.txt file under the /.well-known/ path", "MUST use the https scheme", "MUST have a Content-Type of text/plain with the default charset parameter set to utf-8"; §5.2 redirects`,
		URL:     "https://www.rfc-editor.org/rfc/rfc9116"}
	refRFC9116Fields = check.Ref{Standard: "RFC 9116 (A File Format to Aid in Security Vulnerability Disclosure)",
		Section: "§2.5.3 Contact (MUST, web URIs https); §2.5.5 Expires (MUST, once; RECOMMENDED less than a year ahead); §2.5.2 Canonical; §2.5.7 Policy; §2.5.8 Preferred-Languages (once); §2.3 OpenPGP cleartext signature; §4 ABNF; §5.4 32 KB, 1,000 lines, 2,048-character fields",
		URL:     "https://www.rfc-editor.org/rfc/rfc9116"}
	refGDSWayVDP = check.Ref{Standard: "GDS Way: Vulnerability Disclosure and security.txt",
		Section: "redirect /.well-known/security.txt (302) to the central Cabinet Office file",
		URL:     "https://gds-way.digital.cabinet-office.gov.uk/standards/vulnerability-disclosure.html"}
	refNCSCVDP = check.Ref{Standard: "NCSC Vulnerability Disclosure Toolkit", Section: "publish a security.txt file",
		URL: "https://www.ncsc.gov.uk/information/vulnerability-disclosure-toolkit", Status: "secondary"}
	refDSASecTxt = check.Ref{Standard: "UK Data Standards Authority: security.txt endorsement (March 2023)",
		Section: "contact, policy link and expiry as the three mandatory fields", Status: "secondary"}
)

// SecurityTxtCheck returns the web.securitytxt collector.
func SecurityTxtCheck() check.Check {
	return check.New(check.Spec[SecurityTxtEvidence]{
		ID: "web.securitytxt", Family: "web", Targets: []check.Kind{check.KindHost}, Version: 1, Policy: Settings,
		Rules: []check.Meta{
			{ID: SecurityTxtPresent, Rule: "securitytxt-present", Title: "security.txt is published", Severity: check.Medium,
				Description: "https://<host>/.well-known/security.txt (redirects followed within the estate) answers 200 over HTTPS with Content-Type text/plain; a charset, if given, must be utf-8 (none is read as utf-8, as Internet.nl's checker does). A redirect to a known central disclosure file (the web policy's securitytxt_central, default the Cabinet Office VDP file) passes without fetching it. A 404, an HTML page (a soft 404), a redirect out of the estate to any other file, or a file only at the legacy /security.txt fails. A host that refuses port 443 is not applicable (web.https.available judges it); a timeout or failed handshake is unknown.",
				Remediation: "Publish a security.txt file at https://<host>/.well-known/security.txt as text/plain; charset=utf-8 with Contact, Expires and Policy fields, or redirect that path (302) to https://vdp.cabinetoffice.gov.uk/.well-known/security.txt as the GDS Way describes.",
				Standards:   []check.Ref{refRFC9116Location, refGDSWayVDP, refNCSCVDP, refDSASecTxt}},
			{ID: SecurityTxtValid, Rule: "securitytxt-valid", Title: "security.txt is valid and current", Severity: check.Medium,
				Description: "The file parses as RFC 9116 (comments, LF or CRLF, case-insensitive names, an OpenPGP cleartext signature's framing stripped; unknown fields ignored) within 32 KiB, 1,000 lines and 2,048-character lines; it has at least one Contact (a URI: mailto:, tel:, or https: — http: fails), exactly one Expires (an RFC 3339 date-time) in the future (expired fails as high), at most one Preferred-Languages, and a Canonical, if any, that lists the URL the file was fetched from. Expires more than a year ahead, or no Policy (the UK's third field), warns. Every problem is listed with its line. Not applicable without a text/plain file, or behind a central redirect (that file is not fetched).",
				Remediation: "Give the file a Contact (mailto: or https:), one Expires less than a year ahead in RFC 3339 form (2026-12-31T23:59:59Z), renewed before it passes, a Policy link to your vulnerability disclosure policy, and a Canonical naming https://<host>/.well-known/security.txt if you use one.",
				Standards:   []check.Ref{refRFC9116Fields, refDSASecTxt, refNCSCVDP}},
		},
		Collect:  collectSecurityTxt,
		Evaluate: evaluateSecurityTxt,
	})
}

// secTxtAllowed is the hosts a fetch of host's file may follow: the host
// itself and names at or under its estate domain.
func secTxtAllowed(a check.Asset, host string) func(string) bool {
	domain := strings.TrimSuffix(strings.ToLower(a.Domain), ".")
	return func(h string) bool {
		return h == host || (domain != "" && (h == domain || strings.HasSuffix(h, "."+domain)))
	}
}

func collectSecurityTxt(ctx context.Context, env *check.Env, a check.Asset) (SecurityTxtEvidence, error) {
	host := strings.TrimSuffix(strings.ToLower(a.Name), ".")
	ev := SecurityTxtEvidence{Host: host}
	allowed := secTxtAllowed(a, host)
	u := url.URL{Scheme: "https", Host: host, Path: SecurityTxtPath}
	ev.WellKnown.Result, ev.WellKnown.Refused = fetchRefused(ctx, env, u.String(),
		webfetch.Options{Allowed: allowed, MaxBody: SecurityTxtMaxBytes})
	if last := ev.WellKnown.Last(); last != nil && last.Body != nil {
		ev.Signed = ParseSecurityTxt(last.Body.Data).Signed
	}
	if last := ev.WellKnown.Last(); ev.WellKnown.End == webfetch.EndFinal && last != nil && last.Status != 200 {
		u.Path = securityTxtLegacy
		var legacy Chain
		legacy.Result, legacy.Refused = fetchRefused(ctx, env, u.String(), webfetch.Options{Allowed: allowed, MaxBody: 512})
		ev.Legacy = &legacy
	}
	return ev, nil
}

// secTxtCentral reports whether u is one of the central files.
func secTxtCentral(u string, central []string) bool {
	return slices.ContainsFunc(central, func(c string) bool { return secTxtSameURL(u, c) })
}

// validateSecurityTxtCentral checks the policy's central files: https
// URLs with a host, at most 50.
func validateSecurityTxtCentral(central []string) []*check.FieldError {
	if len(central) > 50 {
		return []*check.FieldError{{Field: "securitytxt_central", Msg: fmt.Sprintf("%d URLs: at most 50", len(central))}}
	}
	for _, c := range central {
		u, err := url.Parse(c)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil {
			return []*check.FieldError{{Field: "securitytxt_central", Msg: fmt.Sprintf("%q is not an https URL with a host", c)}}
		}
	}
	return nil
}

func evaluateSecurityTxt(in check.In[SecurityTxtEvidence]) []check.Finding {
	ev := in.Evidence
	pol := Settings.Get(in.Policy)
	present := check.Finding{CheckID: SecurityTxtPresent, Rule: "securitytxt-present"}
	valid := check.Finding{CheckID: SecurityTxtValid, Rule: "securitytxt-valid"}
	c := &ev.WellKnown
	both := func(o check.Outcome, reason, msg string) []check.Finding {
		present.Outcome, present.Reason, present.Message = o, reason, msg
		valid.Outcome, valid.Reason, valid.Message = o, reason, msg
		return []check.Finding{present, valid}
	}
	noFile := func(msg string) []check.Finding {
		present.Outcome, present.Message = check.Fail, msg+secTxtLegacyNote(ev.Legacy)
		valid.Outcome, valid.Message = check.NA, "no security.txt file to judge: "+msg
		return []check.Finding{present, valid}
	}
	if c.Refused {
		return both(check.NA, "", fmt.Sprintf("%s refuses connections on port 443: there is no HTTPS to publish security.txt on (web.https.available judges that)", ev.Host))
	}
	if len(c.Hops) == 0 {
		return both(check.Unknown, string(check.ErrInternal), fmt.Sprintf("could not tell: %s was not fetched (%s)", c.URL, c.End))
	}
	// A redirect to a central file passes, wherever in the chain, and
	// that file is not fetched (it is outside the estate).
	for i, h := range c.Hops {
		if h.Next != "" && secTxtCentral(h.Next, pol.SecurityTxtCentral) {
			present.Outcome = check.Pass
			present.Message = fmt.Sprintf("%s redirects (%d, hop %d) to the central disclosure file %s, which is accepted as the host's security.txt without being fetched",
				h.URL, h.Status, i+1, h.Next)
			valid.Outcome = check.NA
			valid.Message = fmt.Sprintf("the central file %s is its owner's to keep valid and is not fetched: its fields are not judged here", h.Next)
			return []check.Finding{present, valid}
		}
	}
	last := c.Last()
	switch c.End {
	case webfetch.EndError:
		class := string(last.Class)
		if class == "" {
			class = string(check.ErrOther)
		}
		return both(check.Unknown, class, fmt.Sprintf("could not tell: %s failed at the %s stage (%s): %s", last.URL, last.Stage, class, last.Error))
	case webfetch.EndScope:
		return noFile(fmt.Sprintf("%s redirects (%d) out of the estate to %s, which was not fetched and is not a known central disclosure file (the web policy's securitytxt_central)", last.URL, last.Status, c.Next))
	case webfetch.EndLoop:
		return noFile(fmt.Sprintf("%s's redirects loop back to %s", c.URL, c.Next))
	case webfetch.EndMaxHops:
		return noFile(fmt.Sprintf("%s still redirects after %d requests", c.URL, len(c.Hops)))
	case webfetch.EndScheme, webfetch.EndBadLocation:
		return noFile(fmt.Sprintf("%s redirects (%d) to a Location that cannot be followed (%q)", last.URL, last.Status, last.Location))
	case webfetch.EndNoLocation:
		return noFile(fmt.Sprintf("%s answers %d without a Location", last.URL, last.Status))
	}
	via := ""
	if len(c.Hops) > 1 {
		via = fmt.Sprintf(" (after %d redirect%s from %s)", len(c.Hops)-1, map[bool]string{true: "s"}[len(c.Hops) > 2], c.URL)
	}
	switch {
	case last.Status == 429:
		return both(check.Unknown, string(check.ErrBlocked), fmt.Sprintf("could not tell: %s answers 429 Too Many Requests", last.URL))
	case last.Status != 200:
		return noFile(fmt.Sprintf("%s answers %d%s: no security.txt file", last.URL, last.Status, via))
	case !last.TLS:
		return noFile(fmt.Sprintf("%s is served over plain HTTP%s: the file MUST be fetched over https (RFC 9116 §3)", last.URL, via))
	}
	ct := last.Headers.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	switch {
	case ct == "":
		return noFile(fmt.Sprintf("%s answers 200%s without a Content-Type: it MUST be text/plain (RFC 9116 §3)", last.URL, via))
	case err != nil:
		return noFile(fmt.Sprintf("%s answers 200%s with a Content-Type that does not parse (%q): it MUST be text/plain (RFC 9116 §3)", last.URL, via, secTxtClip(ct)))
	case mt == "text/html" || mt == "application/xhtml+xml":
		return noFile(fmt.Sprintf("%s answers 200%s with an HTML page (Content-Type %q), not a security.txt file (a soft 404)", last.URL, via, secTxtClip(ct)))
	case mt != "text/plain":
		return noFile(fmt.Sprintf("%s answers 200%s with Content-Type %q: it MUST be text/plain (RFC 9116 §3)", last.URL, via, secTxtClip(ct)))
	}
	cs, hasCS := params["charset"]
	switch {
	case hasCS && !strings.EqualFold(cs, "utf-8"):
		present.Outcome = check.Fail
		present.Message = fmt.Sprintf("%s answers 200%s with Content-Type %q: the charset MUST be utf-8 (RFC 9116 §3)", last.URL, via, secTxtClip(ct))
	case hasCS:
		present.Outcome = check.Pass
		present.Message = fmt.Sprintf("%s answers 200%s with Content-Type %q", last.URL, via, secTxtClip(ct))
	default:
		present.Outcome = check.Pass
		present.Message = fmt.Sprintf("%s answers 200%s with Content-Type %q (no charset parameter: read as utf-8, RFC 9116's default)", last.URL, via, secTxtClip(ct))
	}
	return []check.Finding{present, judgeSecurityTxt(valid, c, last, in)}
}

// judgeSecurityTxt judges the file's fields (web.securitytxt.valid).
func judgeSecurityTxt(valid check.Finding, c *Chain, last *webfetch.Hop, in check.In[SecurityTxtEvidence]) check.Finding {
	b := last.Body
	switch {
	case b == nil:
		valid.Outcome, valid.Reason = check.Unknown, string(check.ErrInternal)
		valid.Message = "could not tell: the file's body was not recorded"
		return valid
	case b.NotDecoded != "":
		valid.Outcome, valid.Reason = check.Unknown, string(check.ErrMalformed)
		valid.Message = "could not tell: the file's body was not decoded: " + b.NotDecoded
		return valid
	case b.Error != "":
		class := string(b.Class)
		if class == "" {
			class = string(check.ErrOther)
		}
		valid.Outcome, valid.Reason = check.Unknown, class
		valid.Message = fmt.Sprintf("could not tell: the file's body was cut short after %d bytes (%s): %s", len(b.Data), class, b.Error)
		return valid
	case b.Truncated || len(b.Data) > SecurityTxtMaxBytes:
		valid.Outcome = check.Fail
		valid.Message = fmt.Sprintf("%s is larger than %d bytes, which RFC 9116 §5.4 lets researchers' tools refuse to parse: it is not read", last.URL, SecurityTxtMaxBytes)
		return valid
	}
	s := ParseSecurityTxt(b.Data)
	retrieved := []string{c.URL}
	if last.URL != c.URL {
		retrieved = append(retrieved, last.URL)
	}
	probs := s.Check(retrieved, in.CollectedAt)
	var errs, warns []SecTxtProblem
	expired := false
	for _, p := range probs {
		if p.Level == SecTxtError {
			errs = append(errs, p)
			expired = expired || p.Code == "expired"
		} else {
			warns = append(warns, p)
		}
	}
	signed := "unsigned"
	if s.Signed {
		signed = "OpenPGP-signed (the signature is not verified)"
	}
	switch {
	case len(errs) > 0:
		valid.Outcome = check.Fail
		if expired {
			// checks.md §1.4: "medium (expired = high)".
			valid.Severity = check.High
		}
		valid.Message = fmt.Sprintf("%s (%s, %d lines): %s", last.URL, signed, s.Lines, secTxtList(errs, warns))
	case len(warns) > 0:
		valid.Outcome, valid.Severity = check.Warn, check.Low
		valid.Message = fmt.Sprintf("%s (%s, %d lines): %s", last.URL, signed, s.Lines, secTxtList(nil, warns))
	default:
		valid.Outcome = check.Pass
		exp := s.Values("Expires")[0].Value
		valid.Message = fmt.Sprintf("%s (%s) has %d Contact, Expires %s, Policy %s", last.URL, signed,
			len(s.Values("Contact")), secTxtClip(exp), secTxtClip(s.Values("Policy")[0].Value))
	}
	return valid
}

// secTxtList lists problems for a message: errors, then warnings, at
// most 20 in all.
func secTxtList(errs, warns []SecTxtProblem) string {
	const max = 20
	var parts []string
	n := 0
	for _, group := range []struct {
		name string
		ps   []SecTxtProblem
	}{{"error", errs}, {"warning", warns}} {
		if len(group.ps) == 0 {
			continue
		}
		var items []string
		for _, p := range group.ps {
			if n == max {
				break
			}
			items = append(items, p.String())
			n++
		}
		name := group.name
		if len(group.ps) != 1 {
			name += "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s: %s", len(group.ps), name, strings.Join(items, "; ")))
	}
	out := strings.Join(parts, ". ")
	if total := len(errs) + len(warns); total > max {
		out += fmt.Sprintf(" (and %d more)", total-max)
	}
	return out
}

// secTxtLegacyNote notes a file at the legacy top-level path.
func secTxtLegacyNote(legacy *Chain) string {
	if legacy == nil {
		return ""
	}
	l := legacy.Last()
	if l == nil || l.Failed() || l.Status != 200 || legacy.End != webfetch.EndFinal {
		return ""
	}
	mt, _, _ := mime.ParseMediaType(l.Headers.Get("Content-Type"))
	if mt != "text/plain" {
		return ""
	}
	return fmt.Sprintf("; a file is served at the legacy location %s, which does not count: RFC 9116 §3 puts it under /.well-known/", l.URL)
}
