package webcheck

import (
	"errors"
	"strings"
)

// Permissions-Policy is a structured-field Dictionary (W3C Permissions
// Policy §5.2; RFC 8941 §3.2): a header that does not parse as one is
// ignored by browsers. sfDictKeys parses one after RFC 8941 §4.2.2 (with
// RFC 9651's dates and display strings accepted as bare items) and
// returns its keys in order; errSF when it does not parse.

var errSF = errors.New("not a structured-field dictionary")

// sfMaxMembers bounds the members read.
const sfMaxMembers = 1024

type sfParser struct {
	s string
	i int
}

func (p *sfParser) eof() bool  { return p.i >= len(p.s) }
func (p *sfParser) peek() byte { return p.s[p.i] }
func (p *sfParser) sp() {
	for !p.eof() && p.peek() == ' ' {
		p.i++
	}
}
func (p *sfParser) ows() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

func sfLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func sfAlpha(c byte) bool   { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func sfDigit(c byte) bool   { return c >= '0' && c <= '9' }

// sfTchar is RFC 9110's tchar.
func sfTchar(c byte) bool {
	return sfAlpha(c) || sfDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func sfDictKeys(s string) ([]string, error) {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x7f || (s[i] < 0x20 && s[i] != '\t') {
			return nil, errSF
		}
	}
	p := &sfParser{s: s}
	p.sp()
	var keys []string
	for !p.eof() {
		if len(keys) == sfMaxMembers {
			return nil, errSF
		}
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		if !p.eof() && p.peek() == '=' {
			p.i++
			if err := p.itemOrInnerList(); err != nil {
				return nil, err
			}
		} else if err := p.params(); err != nil {
			return nil, err
		}
		keys = append(keys, k)
		p.ows()
		if p.eof() {
			return keys, nil
		}
		if p.peek() != ',' {
			return nil, errSF
		}
		p.i++
		p.ows()
		if p.eof() {
			return nil, errSF // a trailing comma
		}
	}
	return keys, nil
}

func (p *sfParser) key() (string, error) {
	if p.eof() || !(sfLCAlpha(p.peek()) || p.peek() == '*') {
		return "", errSF
	}
	start := p.i
	for !p.eof() {
		c := p.peek()
		if !(sfLCAlpha(c) || sfDigit(c) || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) itemOrInnerList() error {
	if !p.eof() && p.peek() == '(' {
		p.i++
		for {
			p.sp()
			if p.eof() {
				return errSF
			}
			if p.peek() == ')' {
				p.i++
				return p.params()
			}
			if err := p.bareItem(); err != nil {
				return err
			}
			if err := p.params(); err != nil {
				return err
			}
			if p.eof() || (p.peek() != ' ' && p.peek() != ')') {
				return errSF
			}
		}
	}
	if err := p.bareItem(); err != nil {
		return err
	}
	return p.params()
}

func (p *sfParser) params() error {
	for !p.eof() && p.peek() == ';' {
		p.i++
		p.sp()
		if _, err := p.key(); err != nil {
			return err
		}
		if !p.eof() && p.peek() == '=' {
			p.i++
			if err := p.bareItem(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *sfParser) bareItem() error {
	if p.eof() {
		return errSF
	}
	switch c := p.peek(); {
	case c == '-' || sfDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == '*' || sfAlpha(c):
		p.i++
		for !p.eof() && (sfTchar(p.peek()) || p.peek() == ':' || p.peek() == '/') {
			p.i++
		}
		return nil
	case c == ':':
		p.i++
		for !p.eof() && p.peek() != ':' {
			c := p.peek()
			if !(sfAlpha(c) || sfDigit(c) || c == '+' || c == '/' || c == '=') {
				return errSF
			}
			p.i++
		}
		if p.eof() {
			return errSF
		}
		p.i++
		return nil
	case c == '?':
		p.i++
		if p.eof() || (p.peek() != '0' && p.peek() != '1') {
			return errSF
		}
		p.i++
		return nil
	case c == '@': // RFC 9651 date
		p.i++
		return p.number()
	case c == '%': // RFC 9651 display string
		p.i++
		if p.eof() || p.peek() != '"' {
			return errSF
		}
		return p.str()
	}
	return errSF
}

// number is RFC 8941 §4.2.4: an integer of at most 15 digits, or a
// decimal of at most 12 integer and 1 to 3 fractional digits.
func (p *sfParser) number() error {
	if !p.eof() && p.peek() == '-' {
		p.i++
	}
	if p.eof() || !sfDigit(p.peek()) {
		return errSF
	}
	intDigits, fracDigits, decimal := 0, 0, false
	for !p.eof() {
		c := p.peek()
		switch {
		case sfDigit(c) && decimal:
			fracDigits++
		case sfDigit(c):
			intDigits++
		case c == '.' && !decimal:
			if intDigits > 12 {
				return errSF
			}
			decimal = true
		default:
			goto done
		}
		p.i++
		if !decimal && intDigits > 15 || decimal && fracDigits > 3 {
			return errSF
		}
	}
done:
	if decimal && fracDigits == 0 {
		return errSF
	}
	return nil
}

// str is RFC 8941 §4.2.5: printable ASCII, backslash escaping only DQUOTE
// and backslash.
func (p *sfParser) str() error {
	p.i++ // DQUOTE
	for !p.eof() {
		c := p.peek()
		p.i++
		switch {
		case c == '\\':
			if p.eof() || (p.peek() != '"' && p.peek() != '\\') {
				return errSF
			}
			p.i++
		case c == '"':
			return nil
		case c < 0x20 || c > 0x7e:
			return errSF
		}
	}
	return errSF
}
