package spf

import (
	"errors"
	"strconv"
	"strings"
)

// Macro letters of RFC 7208 §7.2; c, r and t only in exp.
const (
	macroLetters    = "slodiphv"
	macroLettersExp = "slodiphvcrt"
	delimiters      = ".-+,/_="
)

// checkMacroString validates the macro-string grammar of RFC 7208 §7.1.
func checkMacroString(s string, exp bool) error {
	_, _, err := expand(s, "", exp)
	return err
}

// checkDomainSpec validates a domain-spec: a macro-string that ends in a
// macro or a top label.
func checkDomainSpec(s string) error {
	if s == "" {
		return errors.New("empty domain")
	}
	if err := checkMacroString(s, false); err != nil {
		return err
	}
	if strings.HasSuffix(s, "}") {
		return nil
	}
	t := strings.TrimSuffix(s, ".")
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		t = t[i+1:]
	}
	if !topLabel(t) {
		return errors.New("domain does not end in a valid top label")
	}
	return nil
}

// topLabel: alphanumerics with at least one letter, or a hyphenated label
// that neither starts nor ends with a hyphen (RFC 7208 §7.1 toplabel).
func topLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	alpha, hyphen := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c):
			alpha = true
		case isDigit(c):
		case c == '-':
			hyphen = true
		default:
			return false
		}
	}
	return alpha || hyphen
}

// Expand expands a domain-spec while evaluating domain. Only %{d} (and the
// literal escapes) can be expanded without a sender; ok is false when the
// spec uses any other macro, so the caller counts the term but cannot
// follow it. The result is checked as a domain name.
func Expand(spec, domain string) (name string, ok bool, err error) {
	name, ok, err = expand(spec, domain, false)
	if err != nil || !ok {
		return "", ok, err
	}
	name = strings.TrimSuffix(name, ".")
	// RFC 7208 §7.3: an expansion longer than 253 characters loses labels
	// from the left.
	for len(name) > 253 {
		i := strings.IndexByte(name, '.')
		if i < 0 {
			break
		}
		name = name[i+1:]
	}
	if !ValidDomain(name) {
		return "", true, errors.New("expands to an invalid domain name")
	}
	return strings.ToLower(name), true, nil
}

// ValidDomain reports whether name is a host name we will query: labels of
// letters, digits, '-' and '_', 1–63 bytes each, at most 253 bytes, two
// labels or more.
func ValidDomain(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// expand walks a macro-string. With domain == "" it only validates.
func expand(s, domain string, exp bool) (out string, ok bool, err error) {
	letters := macroLetters
	if exp {
		letters = macroLettersExp
	}
	var b strings.Builder
	ok = true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if c < 0x21 || c > 0x7e {
				return "", false, errors.New("invalid character in domain")
			}
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", false, errors.New("a lone % ends the macro-string")
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
			continue
		case '_':
			b.WriteByte(' ')
			continue
		case '-':
			b.WriteString("%20")
			continue
		case '{':
		default:
			return "", false, errors.New("% must be followed by {, %, _ or -")
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", false, errors.New("unterminated macro")
		}
		body := s[i+1 : i+end]
		i += end
		if body == "" {
			return "", false, errors.New("empty macro")
		}
		letter := body[0] | 0x20 // lower case
		if !strings.ContainsRune(letters, rune(letter)) || !isAlpha(body[0]) {
			return "", false, errors.New("unknown macro letter")
		}
		rest := body[1:]
		j := 0
		for j < len(rest) && isDigit(rest[j]) {
			j++
		}
		keep := 0
		if j > 0 {
			if j > 3 {
				keep = 999 // more parts than any name has
			} else {
				keep, _ = strconv.Atoi(rest[:j])
			}
			if keep == 0 {
				return "", false, errors.New("macro keeps zero parts")
			}
		}
		rest = rest[j:]
		reverse := false
		if rest != "" && (rest[0] == 'r' || rest[0] == 'R') {
			reverse = true
			rest = rest[1:]
		}
		for k := 0; k < len(rest); k++ {
			if !strings.ContainsRune(delimiters, rune(rest[k])) {
				return "", false, errors.New("bad macro delimiter")
			}
		}
		if letter != 'd' {
			ok = false
			continue
		}
		b.WriteString(transform(domain, keep, reverse, rest))
	}
	return b.String(), ok, nil
}

// transform applies the macro transformers of RFC 7208 §7.3.
func transform(v string, keep int, reverse bool, delims string) string {
	if delims == "" {
		delims = "."
	}
	parts := strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(delims, r) })
	if reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	if keep > 0 && keep < len(parts) {
		parts = parts[len(parts)-keep:]
	}
	return strings.Join(parts, ".")
}
