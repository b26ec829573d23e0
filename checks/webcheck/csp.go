package webcheck

import (
	"errors"
	"strings"
)

// Bounds of ParseCSP. webfetch already clips a recorded value at 8 KiB;
// these keep the parser's work bounded on any input.
const (
	cspMaxLen        = 64 << 10 // bytes of one serialized CSP list
	cspMaxPolicies   = 32       // policies in one list (comma-separated)
	cspMaxDirectives = 256      // directives kept of one policy
	cspMaxTokens     = 8192     // source tokens of one list, all directives
)

// errCSPTooLarge: a CSP list past the parser's bounds (not judged).
var errCSPTooLarge = errors.New("csp: too large to judge")

// CSPPolicy is one parsed Content-Security-Policy (W3C CSP3 §2.2.1): its
// directives in the order received, duplicates dropped.
type CSPPolicy struct {
	Directives []CSPDirective
}

// CSPDirective is one directive: its name in lower case and its value
// split on ASCII whitespace.
type CSPDirective struct {
	Name  string
	Value []string
}

// Get returns the directive named name (lower case) and whether the
// policy has it.
func (p CSPPolicy) Get(name string) (CSPDirective, bool) {
	for _, d := range p.Directives {
		if d.Name == name {
			return d, true
		}
	}
	return CSPDirective{}, false
}

func cspWhite(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

func cspASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// ParseCSP parses one header value as a serialized CSP list (W3C CSP3
// §2.2.2: the value is split on "," into policies, each parsed by §2.2.1):
// directives split on ";", each token trimmed of ASCII whitespace and
// skipped when empty or not ASCII; the name is up to the first whitespace,
// ASCII lower-cased; a later directive of a name already seen is ignored
// (the first wins); the value is the rest split on whitespace. Policies
// without directives are dropped. Past the parser's bounds it returns
// errCSPTooLarge.
func ParseCSP(serialized string) ([]CSPPolicy, error) {
	if len(serialized) > cspMaxLen {
		return nil, errCSPTooLarge
	}
	var out []CSPPolicy
	tokens := 0
	for _, ps := range strings.Split(serialized, ",") {
		p, err := cspParsePolicy(ps, &tokens)
		if err != nil {
			return nil, err
		}
		if len(p.Directives) == 0 {
			continue
		}
		if len(out) == cspMaxPolicies {
			return nil, errCSPTooLarge
		}
		out = append(out, p)
	}
	return out, nil
}

// cspParsePolicy is CSP3 §2.2.1 "parse a serialized CSP" on one policy;
// tokens counts the source tokens read against cspMaxTokens.
func cspParsePolicy(ps string, tokens *int) (CSPPolicy, error) {
	var p CSPPolicy
	if len(ps) > cspMaxLen {
		return p, errCSPTooLarge
	}
	for _, tok := range strings.Split(ps, ";") {
		tok = strings.TrimFunc(tok, func(r rune) bool { return r < 0x80 && cspWhite(byte(r)) })
		if tok == "" || !cspASCII(tok) {
			continue
		}
		end := strings.IndexFunc(tok, func(r rune) bool { return cspWhite(byte(r)) })
		name, rest := tok, ""
		if end >= 0 {
			name, rest = tok[:end], tok[end:]
		}
		name = strings.ToLower(name)
		if _, dup := p.Get(name); dup {
			continue
		}
		if len(p.Directives) == cspMaxDirectives {
			return p, errCSPTooLarge
		}
		value := strings.FieldsFunc(rest, func(r rune) bool { return cspWhite(byte(r)) })
		if *tokens += len(value) + 1; *tokens > cspMaxTokens {
			return p, errCSPTooLarge
		}
		p.Directives = append(p.Directives, CSPDirective{Name: name, Value: value})
	}
	return p, nil
}

// cspList is a policy's effective list for one kind of script check: the
// first of names it has (CSP3 §6.8.1 fallback lists); ok is false when it
// has none (that kind is not restricted by the policy).
func cspList(p CSPPolicy, names ...string) (CSPDirective, bool) {
	for _, n := range names {
		if d, ok := p.Get(n); ok {
			return d, true
		}
	}
	return CSPDirective{}, false
}

// cspPolicyScripts is what one policy lets through, per kind of script:
// <script> elements (script-src-elem, script-src, default-src), inline
// event handlers (script-src-attr, script-src, default-src) and eval()
// (script-src, default-src). restricts is false when the policy has none
// of these directives.
type cspPolicyScripts struct {
	restricts                       bool
	inlineElem, inlineAttr, anyHost bool
	eval                            bool
}

func cspScripts(p CSPPolicy) cspPolicyScripts {
	r := cspPolicyScripts{inlineElem: true, inlineAttr: true, anyHost: true, eval: true}
	if d, ok := cspList(p, "script-src-elem", "script-src", "default-src"); ok {
		r.restricts = true
		w := cspWeakness(d)
		r.inlineElem, r.anyHost = w.inline, w.any
	}
	if d, ok := cspList(p, "script-src-attr", "script-src", "default-src"); ok {
		r.restricts = true
		r.inlineAttr = cspWeakness(d).inline
	}
	if d, ok := cspList(p, "script-src", "default-src"); ok {
		r.restricts = true
		r.eval = cspWeakness(d).eval
	}
	return r
}

// cspKeyword reports whether tok is the quoted keyword kw (ASCII
// case-insensitive, as CSP3 §6.7.2 matches keywords).
func cspKeyword(tok, kw string) bool { return strings.EqualFold(tok, kw) }

// cspBase64 reports whether s is a CSP3 base64-value: 1*( ALPHA / DIGIT /
// "+" / "/" / "-" / "_" ) *2"=".
func cspBase64(s string) bool {
	s = strings.TrimSuffix(s, "=")
	s = strings.TrimSuffix(s, "=")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// cspNonceOrHash reports whether tok matches the nonce-source or
// hash-source grammar (CSP3 §2.3.1; ABNF strings are case-insensitive).
func cspNonceOrHash(tok string) bool {
	if len(tok) < 3 || tok[0] != '\'' || tok[len(tok)-1] != '\'' {
		return false
	}
	in := tok[1 : len(tok)-1]
	for _, pre := range []string{"nonce-", "sha256-", "sha384-", "sha512-"} {
		if len(in) > len(pre) && strings.EqualFold(in[:len(pre)], pre) {
			return cspBase64(in[len(pre):])
		}
	}
	return false
}

// cspAnyHost reports whether tok lets any host in: "*", a bare http: or
// https: scheme-source, or a host-source whose host is "*" ("https://*",
// "*:443").
func cspAnyHost(tok string) bool {
	if tok == "" || tok[0] == '\'' {
		return false
	}
	switch strings.ToLower(tok) {
	case "*", "http:", "https:":
		return true
	}
	h := tok
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	if i := strings.IndexAny(h, ":/"); i >= 0 {
		h = h[:i]
	}
	return h == "*"
}

// cspScriptWeakness is what one script list lets through.
type cspScriptWeakness struct {
	inline, eval, any bool
}

// cspWeakness judges one script list after CSP3 §6.7.3.3 ("does a source
// list allow all inline behavior"): 'unsafe-inline' counts only without
// a nonce or hash source and without 'strict-dynamic', which also makes
// host and scheme sources ignored (§8.2); 'unsafe-eval' lets eval() in;
// "*", http:, https: (any host) and data: let any script in.
func cspWeakness(d CSPDirective) cspScriptWeakness {
	var w cspScriptWeakness
	unsafeInline, nonceHash, strictDynamic, anyHost := false, false, false, false
	for _, t := range d.Value {
		switch {
		case cspKeyword(t, "'unsafe-inline'"):
			unsafeInline = true
		case cspKeyword(t, "'unsafe-eval'"):
			w.eval = true
		case cspKeyword(t, "'strict-dynamic'"):
			strictDynamic = true
		case cspNonceOrHash(t):
			nonceHash = true
		case cspAnyHost(t) || strings.EqualFold(t, "data:"):
			anyHost = true
		}
	}
	w.inline = unsafeInline && !nonceHash && !strictDynamic
	w.any = anyHost && !strictDynamic
	return w
}

// cspFrameAncestorsRestrict reports whether a frame-ancestors value keeps
// out some origin: 'none', 'self', an empty list or an explicit list do;
// a list with "*" or a bare http:/https: scheme (any site) does not.
func cspFrameAncestorsRestrict(d CSPDirective) bool {
	for _, t := range d.Value {
		if cspAnyHost(t) {
			return false
		}
	}
	return true
}

// cspMetaPolicies parses the policies of <meta http-equiv="Content-Security-Policy">
// elements in the start of a page (HTML §4.2.5.3: each content is one
// serialized policy, enforced; frame-ancestors, report-uri and sandbox are
// ignored there). It returns the policies and the contents read.
func cspMetaPolicies(body []byte) ([]CSPPolicy, []string, error) {
	var ps []CSPPolicy
	var contents []string
	tokens := 0
	for _, attrs := range htmlMetas(body) {
		if !strings.EqualFold(strings.TrimSpace(attrs["http-equiv"]), "content-security-policy") {
			continue
		}
		c := attrs["content"]
		// One policy: a comma is not a separator here (CSP3 §2.2.1).
		q, err := cspParsePolicy(c, &tokens)
		if err != nil {
			return nil, nil, err
		}
		var kept CSPPolicy
		for _, d := range q.Directives {
			switch d.Name {
			case "frame-ancestors", "report-uri", "sandbox":
				continue
			}
			kept.Directives = append(kept.Directives, d)
		}
		if len(kept.Directives) > 0 {
			ps = append(ps, kept)
		}
		contents = append(contents, c)
	}
	return ps, contents, nil
}
