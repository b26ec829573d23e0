package webcheck

import (
	"fmt"
	"strings"
)

// HSTS is a parsed Strict-Transport-Security header value.
type HSTS struct {
	// MaxAge in seconds; a value beyond MaxAgeCap is clamped to it.
	MaxAge            int64
	IncludeSubDomains bool
	Preload           bool
	// Unknown are the names of directives RFC 6797 does not define
	// (ignored, as §6.1 requires), lower case, at most maxDirectives.
	Unknown []string
}

// MaxAgeCap is where a max-age is clamped: about 317 years, far beyond
// any threshold, so that a 40-digit value neither overflows nor fails.
const MaxAgeCap = 1 << 33

// maxDirectives bounds the directives read from one value.
const maxDirectives = 64

// ParseHSTS parses one Strict-Transport-Security value by RFC 6797 §6.1:
//
//	value     = [ directive ] *( ";" [ directive ] )
//	directive = directive-name [ "=" directive-value ]
//	name      = token; value = token / quoted-string
//
// Directive names are case-insensitive; optional whitespace surrounds
// tokens; a directive may appear once only (§6.1 item 2: a repeated one
// makes the value invalid); directives other than max-age,
// includeSubDomains and preload are ignored (§6.1 item 3); max-age is
// required and is delta-seconds, quoted or not (§6.1.1);
// includeSubDomains takes no value (§6.1.2). An invalid value is an
// error: a UA ignores the whole header (§8.1).
func ParseHSTS(v string) (HSTS, error) {
	var h HSTS
	seen := map[string]bool{}
	haveMaxAge := false
	sc := hstsScanner{s: v}
	for n := 0; ; n++ {
		if n == maxDirectives {
			return HSTS{}, fmt.Errorf("more than %d directives", maxDirectives)
		}
		d, err := sc.directive()
		if err != nil {
			return HSTS{}, err
		}
		if d.name != "" {
			name := strings.ToLower(d.name)
			if seen[name] {
				return HSTS{}, fmt.Errorf("directive %q appears twice (RFC 6797 §6.1)", name)
			}
			seen[name] = true
			switch name {
			case "max-age":
				if !d.hasValue {
					return HSTS{}, fmt.Errorf("max-age has no value")
				}
				age, err := hstsDeltaSeconds(d.value)
				if err != nil {
					return HSTS{}, err
				}
				h.MaxAge, haveMaxAge = age, true
			case "includesubdomains":
				if d.hasValue {
					return HSTS{}, fmt.Errorf("includeSubDomains takes no value (RFC 6797 §6.1.2)")
				}
				h.IncludeSubDomains = true
			case "preload":
				h.Preload = true
			default:
				h.Unknown = append(h.Unknown, name)
			}
		}
		if sc.done() {
			break
		}
		sc.i++ // the ";"
	}
	if !haveMaxAge {
		return HSTS{}, fmt.Errorf("no max-age directive (required: RFC 6797 §6.1.1)")
	}
	return h, nil
}

type hstsDirective struct {
	name, value string
	hasValue    bool
}

// hstsScanner reads directives separated by ";".
type hstsScanner struct {
	s string
	i int
}

func (sc *hstsScanner) done() bool { return sc.i >= len(sc.s) }

func (sc *hstsScanner) ows() {
	for sc.i < len(sc.s) && (sc.s[sc.i] == ' ' || sc.s[sc.i] == '\t') {
		sc.i++
	}
}

func (sc *hstsScanner) token() string {
	j := sc.i
	for sc.i < len(sc.s) && hstsTChar(sc.s[sc.i]) {
		sc.i++
	}
	return sc.s[j:sc.i]
}

// directive reads one (possibly empty) directive up to the next ";" or
// the end, leaving the scanner on the ";".
func (sc *hstsScanner) directive() (hstsDirective, error) {
	var d hstsDirective
	sc.ows()
	d.name = sc.token()
	sc.ows()
	if sc.done() || sc.s[sc.i] == ';' {
		return d, nil
	}
	if d.name == "" {
		return d, fmt.Errorf("unexpected %q at offset %d", sc.s[sc.i], sc.i)
	}
	if sc.s[sc.i] != '=' {
		return d, fmt.Errorf("unexpected %q after directive %q", sc.s[sc.i], d.name)
	}
	sc.i++
	sc.ows()
	d.hasValue = true
	if !sc.done() && sc.s[sc.i] == '"' {
		v, err := sc.quoted()
		if err != nil {
			return d, err
		}
		d.value = v
	} else {
		d.value = sc.token()
		if d.value == "" {
			return d, fmt.Errorf("directive %q has an empty value", d.name)
		}
	}
	sc.ows()
	if !sc.done() && sc.s[sc.i] != ';' {
		return d, fmt.Errorf("unexpected %q after the value of %q", sc.s[sc.i], d.name)
	}
	return d, nil
}

// quoted reads an RFC 7230 quoted-string (the opening quote under the
// scanner) and returns its content, escapes undone.
func (sc *hstsScanner) quoted() (string, error) {
	sc.i++
	var b strings.Builder
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		switch {
		case c == '"':
			sc.i++
			return b.String(), nil
		case c == '\\':
			if sc.i+1 == len(sc.s) || !hstsQDText(sc.s[sc.i+1], true) {
				return "", fmt.Errorf("bad escape in a quoted value")
			}
			b.WriteByte(sc.s[sc.i+1])
			sc.i += 2
		case hstsQDText(c, false):
			b.WriteByte(c)
			sc.i++
		default:
			return "", fmt.Errorf("byte 0x%02x in a quoted value", c)
		}
	}
	return "", fmt.Errorf("unterminated quoted value")
}

// hstsQDText: qdtext (RFC 7230 §3.2.6), or a quoted-pair's byte.
func hstsQDText(c byte, pair bool) bool {
	switch {
	case c == '\t' || c == ' ' || c >= 0x80:
		return true
	case c < 0x21 || c == 0x7f:
		return false
	case c == '"' || c == '\\':
		return pair
	}
	return true
}

// hstsTChar is RFC 7230's tchar.
func hstsTChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// hstsDeltaSeconds reads 1*DIGIT, clamped at MaxAgeCap.
func hstsDeltaSeconds(v string) (int64, error) {
	if v == "" {
		return 0, fmt.Errorf("max-age is empty")
	}
	var n int64
	for _, c := range []byte(v) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("max-age %q is not a number of seconds", hstsClip(v))
		}
		if n < MaxAgeCap {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, MaxAgeCap), nil
}

func hstsClip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
