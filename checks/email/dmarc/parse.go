// Package dmarc parses DMARC policy records (RFC 7489 §6.3–§6.4, with the
// t= tag and np= of RFC 9989 / RFC 9091). It does no I/O.
package dmarc

import (
	"fmt"
	"strconv"
	"strings"
)

// Bounds against hostile records.
const (
	MaxRecordLen = 8192
	MaxTags      = 64
	MaxURIs      = 32 // per rua/ruf tag
)

// NCSCLegacyRUA is the NCSC Mail Check aggregate-report address that
// government guidance told public bodies to add; the service is retired.
const NCSCLegacyRUA = "dmarc-rua@dmarc.service.gov.uk"

// Record is a parsed DMARC record. Absent tags are "" (or nil); defaults
// are applied by the accessors, not here, so the evidence says what was
// published.
type Record struct {
	Tags  []Tag // in order, as published
	P     string
	SP    string
	NP    string
	ADKIM string
	ASPF  string
	FO    string
	T     string
	PCT   int // -1 when absent
	RUA   []URI
	RUF   []URI
}

// Tag is one tag=value pair.
type Tag struct{ Name, Value string }

// URI is one reporting URI.
type URI struct {
	Raw    string // as published, with any !size suffix
	Scheme string // lower case: mailto, https, …
	Addr   string // for mailto: the address, lower case
	Domain string // for mailto: the domain part, lower case
}

// Has reports whether the tag was published.
func (r *Record) Has(name string) bool {
	for _, t := range r.Tags {
		if t.Name == name {
			return true
		}
	}
	return false
}

// Pct returns the pct value in force: 100 when absent.
func (r *Record) Pct() int {
	if r.PCT < 0 {
		return 100
	}
	return r.PCT
}

// SubdomainPolicy is the policy that applies to subdomains: sp, else p.
func (r *Record) SubdomainPolicy() string {
	if r.SP != "" {
		return r.SP
	}
	return r.P
}

// SyntaxError is a malformed record.
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return "dmarc: " + e.Msg }

func bad(format string, a ...any) error { return &SyntaxError{Msg: fmt.Sprintf(format, a...)} }

// IsDMARC reports whether a TXT string is a DMARC record: its first tag is
// v=DMARC1 (RFC 7489 §6.6.3: other records are discarded).
func IsDMARC(s string) bool {
	first, _, _ := strings.Cut(s, ";")
	name, value, ok := strings.Cut(first, "=")
	return ok && strings.EqualFold(strings.TrimSpace(name), "v") && strings.TrimSpace(value) == "DMARC1"
}

// MentionsDMARC reports a TXT string that names v=DMARC1 but not as its
// first tag, the most common way a record is lost.
func MentionsDMARC(s string) bool {
	return !IsDMARC(s) && strings.Contains(strings.ToLower(strings.ReplaceAll(s, " ", "")), "v=dmarc1")
}

var policies = map[string]bool{"none": true, "quarantine": true, "reject": true}

// Parse parses one DMARC record. Unknown tags are kept and ignored; a
// known tag with an invalid value, a duplicate tag, a missing p= or a v=
// that is not first make the record malformed.
func Parse(s string) (*Record, error) {
	if len(s) > MaxRecordLen {
		return nil, bad("record is %d bytes (limit %d)", len(s), MaxRecordLen)
	}
	if !IsDMARC(s) {
		return nil, bad("record does not start with v=DMARC1")
	}
	parts := strings.Split(s, ";")
	if len(parts) > MaxTags+1 {
		return nil, bad("record has %d tags (limit %d)", len(parts), MaxTags)
	}
	r := &Record{PCT: -1}
	seen := map[string]bool{}
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			continue // trailing or doubled separator
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return nil, bad("%q is not tag=value", clip(part))
		}
		// Tag names are case-insensitive ABNF literals; DMARC1 is not.
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if name == "" || !tagName(name) {
			return nil, bad("%q is not a tag name", clip(name))
		}
		if seen[name] {
			return nil, bad("tag %s appears more than once", name)
		}
		seen[name] = true
		r.Tags = append(r.Tags, Tag{name, value})
		lv := strings.ToLower(value)
		switch name {
		case "v":
			if i != 0 {
				return nil, bad("v must be the first tag")
			}
		case "p", "sp", "np":
			if !policies[lv] {
				return nil, bad("%s=%s is not none, quarantine or reject", name, clip(value))
			}
			switch name {
			case "p":
				r.P = lv
			case "sp":
				r.SP = lv
			case "np":
				r.NP = lv
			}
		case "adkim", "aspf":
			if lv != "r" && lv != "s" {
				return nil, bad("%s=%s is not r or s", name, clip(value))
			}
			if name == "adkim" {
				r.ADKIM = lv
			} else {
				r.ASPF = lv
			}
		case "pct":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > 100 || len(value) > 3 {
				return nil, bad("pct=%s is not a whole number from 0 to 100", clip(value))
			}
			r.PCT = n
		case "t":
			if lv != "y" && lv != "n" {
				return nil, bad("t=%s is not y or n", clip(value))
			}
			r.T = lv
		case "fo":
			for _, o := range strings.Split(lv, ":") {
				switch strings.TrimSpace(o) {
				case "0", "1", "d", "s":
				default:
					return nil, bad("fo=%s has an option other than 0, 1, d or s", clip(value))
				}
			}
			r.FO = lv
		case "rua", "ruf":
			us, err := parseURIs(value)
			if err != nil {
				return nil, bad("%s: %v", name, err)
			}
			if name == "rua" {
				r.RUA = us
			} else {
				r.RUF = us
			}
		}
	}
	if r.P == "" {
		return nil, bad("no p= tag")
	}
	return r, nil
}

func tagName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// parseURIs parses a comma-separated DMARC URI list (RFC 7489 §6.4).
func parseURIs(v string) ([]URI, error) {
	var out []URI
	for _, raw := range strings.Split(v, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			return nil, fmt.Errorf("empty URI")
		}
		if len(out) == MaxURIs {
			return nil, fmt.Errorf("more than %d URIs", MaxURIs)
		}
		u := URI{Raw: raw}
		body := raw
		if i := strings.LastIndexByte(body, '!'); i >= 0 {
			if !sizeLimit(body[i+1:]) {
				return nil, fmt.Errorf("%q: bad size limit", clip(raw))
			}
			body = body[:i]
		}
		scheme, rest, ok := strings.Cut(body, ":")
		if !ok || scheme == "" || rest == "" {
			return nil, fmt.Errorf("%q is not a URI", clip(raw))
		}
		u.Scheme = strings.ToLower(scheme)
		if u.Scheme == "mailto" {
			addr, _, _ := strings.Cut(rest, "?")
			at := strings.LastIndexByte(addr, '@')
			if at <= 0 || at == len(addr)-1 {
				return nil, fmt.Errorf("%q is not a mail address", clip(raw))
			}
			u.Addr = strings.ToLower(addr)
			u.Domain = strings.TrimSuffix(strings.ToLower(addr[at+1:]), ".")
			if u.Domain == "" {
				return nil, fmt.Errorf("%q is not a mail address: no domain", clip(raw))
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// sizeLimit: 1*DIGIT [ "k" / "m" / "g" / "t" ].
func sizeLimit(s string) bool {
	s = strings.ToLower(s)
	if s != "" && strings.ContainsRune("kmgt", rune(s[len(s)-1])) {
		s = s[:len(s)-1]
	}
	if s == "" || len(s) > 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
