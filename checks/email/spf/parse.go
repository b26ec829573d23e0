// Package spf parses SPF records (RFC 7208) and judges their hygiene. It
// does no I/O: the DNS walk of a policy lives with the email checks, which
// use this package to read each record they fetch.
package spf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Bounds against hostile records. A TXT RRset cannot exceed 64 KiB on the
// wire; no real policy comes near these.
const (
	MaxRecordLen = 8192 // bytes of one record
	MaxTerms     = 512  // terms of one record
)

// Term is one mechanism or modifier of a record.
type Term struct {
	Text      string // as written
	Qualifier byte   // '+', '-', '~' or '?' (mechanisms; '+' when omitted)
	Name      string // lower-case mechanism or modifier name
	Modifier  bool
	// Value is the domain-spec, address or modifier value as written; ""
	// when absent.
	Value string
	// Prefix4 and Prefix6 are the dual-cidr lengths; -1 when absent.
	Prefix4, Prefix6 int
}

// Mechanisms of RFC 7208 §5.
var mechanisms = map[string]bool{"all": true, "include": true, "a": true, "mx": true, "ptr": true, "ip4": true, "ip6": true, "exists": true}

// Lookup reports whether the term causes DNS queries and so counts toward
// the limit of 10 (RFC 7208 §4.6.4).
func (t Term) Lookup() bool {
	switch t.Name {
	case "include", "a", "mx", "ptr", "exists":
		return !t.Modifier
	case "redirect":
		return t.Modifier
	}
	return false
}

// Record is a parsed SPF record.
type Record struct {
	Terms []Term
}

// SyntaxError is a record that does not parse: receivers return permerror.
type SyntaxError struct {
	Term string // the offending term, "" for the record as a whole
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Term == "" {
		return "spf: " + e.Msg
	}
	return fmt.Sprintf("spf: term %q: %s", clip(e.Term), e.Msg)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// IsSPF reports whether a TXT string is an SPF record: "v=spf1" followed by
// a space or the end (RFC 7208 §4.5), case-insensitively.
func IsSPF(s string) bool {
	if len(s) < 6 || !strings.EqualFold(s[:6], "v=spf1") {
		return false
	}
	return len(s) == 6 || s[6] == ' '
}

// Parse parses one SPF record. Terms are separated by spaces; tabs and
// repeated spaces are tolerated.
func Parse(s string) (*Record, error) {
	if !IsSPF(s) {
		return nil, &SyntaxError{Msg: "record does not start with v=spf1"}
	}
	if len(s) > MaxRecordLen {
		return nil, &SyntaxError{Msg: fmt.Sprintf("record is %d bytes (limit %d)", len(s), MaxRecordLen)}
	}
	fields := strings.Fields(s[6:])
	if len(fields) > MaxTerms {
		return nil, &SyntaxError{Msg: fmt.Sprintf("record has %d terms (limit %d)", len(fields), MaxTerms)}
	}
	rec := &Record{Terms: make([]Term, 0, len(fields))}
	seen := map[string]bool{}
	for _, f := range fields {
		t, err := parseTerm(f)
		if err != nil {
			return nil, err
		}
		// RFC 7208 §6: redirect and exp each at most once, else permerror.
		if t.Modifier && (t.Name == "redirect" || t.Name == "exp") {
			if seen[t.Name] {
				return nil, &SyntaxError{Term: f, Msg: t.Name + " appears more than once"}
			}
			seen[t.Name] = true
		}
		rec.Terms = append(rec.Terms, t)
	}
	return rec, nil
}

func parseTerm(f string) (Term, error) {
	t := Term{Text: f, Qualifier: '+', Prefix4: -1, Prefix6: -1}
	if name, value, ok := modifier(f); ok {
		t.Modifier, t.Name, t.Value = true, strings.ToLower(name), value
		switch t.Name {
		case "redirect":
			if err := checkDomainSpec(value); err != nil {
				return t, &SyntaxError{Term: f, Msg: err.Error()}
			}
		case "exp":
			if err := checkDomainSpec(value); err != nil {
				return t, &SyntaxError{Term: f, Msg: err.Error()}
			}
		default:
			// Unknown modifiers are ignored (RFC 7208 §6), but their
			// value must still be a macro-string.
			if err := checkMacroString(value, false); err != nil {
				return t, &SyntaxError{Term: f, Msg: err.Error()}
			}
		}
		return t, nil
	}
	rest := f
	switch rest[0] {
	case '+', '-', '~', '?':
		t.Qualifier = rest[0]
		rest = rest[1:]
	}
	name := rest
	arg := ""
	if i := strings.IndexAny(rest, ":/"); i >= 0 {
		name, arg = rest[:i], rest[i:]
	}
	t.Name = strings.ToLower(name)
	if !mechanisms[t.Name] {
		return t, &SyntaxError{Term: f, Msg: "unknown mechanism"}
	}
	var spec, cidr string
	if strings.HasPrefix(arg, ":") {
		spec = arg[1:]
		if i := strings.IndexByte(spec, '/'); i >= 0 && t.Name != "ip6" && t.Name != "ip4" {
			spec, cidr = spec[:i], spec[i:]
		}
	} else {
		cidr = arg
	}
	t.Value = spec
	bad := func(msg string) (Term, error) { return t, &SyntaxError{Term: f, Msg: msg} }
	switch t.Name {
	case "all":
		if arg != "" {
			return bad("all takes no argument")
		}
	case "include", "exists":
		if cidr != "" {
			return bad(t.Name + " takes no prefix length")
		}
		if spec == "" {
			return bad(t.Name + " needs a domain")
		}
		if err := checkDomainSpec(spec); err != nil {
			return bad(err.Error())
		}
	case "ptr":
		if cidr != "" {
			return bad("ptr takes no prefix length")
		}
		if strings.HasPrefix(arg, ":") {
			if err := checkDomainSpec(spec); err != nil {
				return bad(err.Error())
			}
		}
	case "a", "mx":
		if strings.HasPrefix(arg, ":") {
			if err := checkDomainSpec(spec); err != nil {
				return bad(err.Error())
			}
		}
		p4, p6, err := dualCIDR(cidr)
		if err != nil {
			return bad(err.Error())
		}
		t.Prefix4, t.Prefix6 = p4, p6
	case "ip4", "ip6":
		if !strings.HasPrefix(arg, ":") {
			return bad(t.Name + " needs an address")
		}
		addr, bits, hasBits := strings.Cut(spec, "/")
		ip, err := netip.ParseAddr(addr)
		if err != nil || ip.Zone() != "" {
			return bad("not an IP address")
		}
		max := 32
		if t.Name == "ip4" {
			if !ip.Is4() {
				return bad("not an IPv4 address")
			}
		} else {
			max = 128
			if !ip.Is6() {
				return bad("not an IPv6 address")
			}
		}
		t.Value = addr
		if hasBits {
			n, err := prefixLen(bits, max)
			if err != nil {
				return bad(err.Error())
			}
			if t.Name == "ip4" {
				t.Prefix4 = n
			} else {
				t.Prefix6 = n
			}
		}
	}
	return t, nil
}

// modifier splits name=value when the term is a modifier: a name of
// ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) then "=" (RFC 7208 §12).
func modifier(f string) (name, value string, ok bool) {
	i := strings.IndexByte(f, '=')
	if i <= 0 || !isAlpha(f[0]) {
		return "", "", false
	}
	for j := 1; j < i; j++ {
		c := f[j]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return "", "", false
		}
	}
	return f[:i], f[i+1:], true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// dualCIDR parses "", "/24", "//64" or "/24//64".
func dualCIDR(s string) (p4, p6 int, err error) {
	p4, p6 = -1, -1
	if s == "" {
		return p4, p6, nil
	}
	if !strings.HasPrefix(s, "/") {
		return p4, p6, fmt.Errorf("bad prefix length %q", s)
	}
	s4, s6, has6 := strings.Cut(s, "//")
	if s4 != "" {
		if p4, err = prefixLen(strings.TrimPrefix(s4, "/"), 32); err != nil {
			return p4, p6, err
		}
	}
	if has6 {
		if p6, err = prefixLen(s6, 128); err != nil {
			return p4, p6, err
		}
	}
	return p4, p6, nil
}

func prefixLen(s string, max int) (int, error) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("bad prefix length %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max {
		return 0, fmt.Errorf("bad prefix length %q", s)
	}
	return n, nil
}

// NamesSenders reports whether the record authorises any sender: a
// mechanism other than all, or a redirect. A record that names no sender
// (v=spf1 -all, v=spf1 ~all) is what a domain that sends no mail has.
func NamesSenders(r *Record) bool {
	for _, t := range r.Terms {
		if (!t.Modifier && t.Name != "all") || (t.Modifier && t.Name == "redirect") {
			return true
		}
	}
	return false
}

// All returns the first all mechanism and whether there is one.
func (r *Record) All() (Term, bool) {
	for _, t := range r.Terms {
		if !t.Modifier && t.Name == "all" {
			return t, true
		}
	}
	return Term{}, false
}

// Modifier returns the named modifier.
func (r *Record) Modifier(name string) (Term, bool) {
	for _, t := range r.Terms {
		if t.Modifier && t.Name == name {
			return t, true
		}
	}
	return Term{}, false
}

// Lint lists hygiene problems that do not make the record a permerror
// (Mail Check's SPF record rules; RFC 7208 §5.5, §6, §4.6.2).
func Lint(r *Record) []string {
	var out []string
	sawModifier, sawAll := false, false
	var afterAll []string
	for _, t := range r.Terms {
		if t.Modifier {
			sawModifier = true
			continue
		}
		if sawAll {
			afterAll = append(afterAll, t.Text)
		}
		if sawModifier {
			out = append(out, fmt.Sprintf("mechanism %q comes after a modifier: put modifiers at the end", clip(t.Text)))
			sawModifier = false // say it once per run of mechanisms
		}
		if t.Name == "ptr" {
			out = append(out, fmt.Sprintf("%q: the ptr mechanism is slow and unreliable and SHOULD NOT be used (RFC 7208 §5.5)", clip(t.Text)))
		}
		if t.Name == "all" {
			sawAll = true
		}
	}
	if len(afterAll) > 0 {
		out = append(out, fmt.Sprintf("mechanisms after all are never evaluated: %s", clip(strings.Join(afterAll, " "))))
	}
	if _, ok := r.Modifier("redirect"); ok && sawAll {
		out = append(out, "redirect is ignored because the record has an all mechanism")
	}
	return out
}
