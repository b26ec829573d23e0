package mtasts

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Bounds on what a parser reports (the inputs are bounded by DNS and by the
// 64 KiB policy body; these keep messages short).
const (
	maxProblems = 12
	maxShown    = 8
)

// Policy values (RFC 8461 §3.2).
const (
	ModeEnforce = "enforce"
	ModeTesting = "testing"
	ModeNone    = "none"

	// MaxMaxAge is the largest max_age RFC 8461 §3.2 allows (about a
	// year); Mail Check's MaxAgeParser accepts 0 < max_age ≤ it.
	MaxMaxAge = 31557600
)

// NCSCLegacyTLSRPT is the NCSC Mail Check TLS-RPT address that
// security.gov.uk told public bodies to add; Mail Check is retired
// (checks.md §3.1 decision 4), so it is reported as a legacy note.
const NCSCLegacyTLSRPT = "tls-rua@mailcheck.service.ncsc.gov.uk"

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

func trimWSP(s string) string { return strings.Trim(s, " \t") }

// hasVersion reports whether s begins with the version tag v followed by
// the end, or *WSP ";" (RFC 8461 §3.1 sts-version, RFC 8460 §3
// tlsrpt-version): the records senders keep.
func hasVersion(s, v string) bool {
	rest, ok := strings.CutPrefix(s, v)
	if !ok {
		return false
	}
	rest = strings.TrimLeft(rest, " \t")
	return rest == "" || rest[0] == ';'
}

// meantAs reports a record that looks meant as version v but that senders
// discard: the tag in the wrong case, or leading spaces.
func meantAs(s, v string) bool {
	t := strings.TrimLeft(s, " \t")
	return !hasVersion(s, v) && len(t) >= len(v) && strings.EqualFold(t[:len(v)], v) &&
		(len(t) == len(v) || t[len(v)] == ';' || isWSP(t[len(v)]))
}

// IsSTS reports whether a TXT string is an MTA-STS record (RFC 8461 §3.1:
// records that do not begin with "v=STSv1;" are discarded).
func IsSTS(s string) bool { return hasVersion(s, "v=STSv1") }

// MeantAsSTS reports a TXT string written as an MTA-STS record that
// senders discard ("V=STSv1; id=1", " v=STSv1; …").
func MeantAsSTS(s string) bool { return meantAs(s, "v=STSv1") }

// IsTLSRPT reports whether a TXT string is a TLS-RPT record (RFC 8460 §3:
// records that do not begin with "v=TLSRPTv1;" are discarded).
func IsTLSRPT(s string) bool { return hasVersion(s, "v=TLSRPTv1") }

// MeantAsTLSRPT is MeantAsSTS for TLS-RPT.
func MeantAsTLSRPT(s string) bool { return meantAs(s, "v=TLSRPTv1") }

// problems collects what is wrong, bounded.
type problems []string

func (p *problems) add(format string, a ...any) {
	if len(*p) < maxProblems {
		*p = append(*p, fmt.Sprintf(format, a...))
	}
}

// field is one name=value field of a TXT record after the version.
type field struct{ name, value, raw string }

// fields splits the fields after the version tag: ";"-separated, with
// white space around each. Empty fields (";;", a trailing ";") are
// skipped, as Mail Check's parser does.
func fields(s string) []field {
	parts := strings.Split(s, ";")
	var out []field
	for _, p := range parts[1:] {
		p = trimWSP(p)
		if p == "" {
			continue
		}
		name, value, _ := strings.Cut(p, "=")
		out = append(out, field{name: name, value: value, raw: p})
	}
	return out
}

// validExtName: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
// (RFC 8461 §3.1 sts-ext-name, RFC 8460 §3 tlsrpt-ext-name).
func validExtName(s string) bool {
	if s == "" || len(s) > 32 || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validExtValue: 1*(%x21-3A / %x3C / %x3E-7E): printable, no ";", "=" or
// space.
func validExtValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ';' || c == '=' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// checkExtension records what is wrong with an extension field.
func checkExtension(p *problems, f field) {
	switch {
	case !strings.Contains(f.raw, "="):
		p.add("%q is not name=value", clip(f.raw, 64))
	case !validExtName(f.name):
		p.add("%q is not a valid field name", clip(f.name, 64))
	case !validExtValue(f.value):
		p.add("the value of %s (%q) is empty or holds a space, \"=\" or a control character", clip(f.name, 32), clip(f.value, 64))
	}
}

// Record is a parsed MTA-STS TXT record (RFC 8461 §3.1).
type Record struct {
	ID string
	// Problems make senders treat the record as syntactically invalid
	// (§3.1: they then assume the domain has no MTA-STS policy).
	Problems []string
}

// ParseRecord parses an MTA-STS TXT record: "v=STSv1;" then ";"-separated
// fields, of which id= (1 to 32 letters and digits) is required and at
// most once; extension fields must be name=value with the RFC's
// characters. Field names are case-sensitive (%s in the ABNF).
func ParseRecord(s string) Record {
	var r Record
	var p problems
	if !IsSTS(s) {
		p.add("the record does not begin with v=STSv1;")
		r.Problems = p
		return r
	}
	ids := 0
	for _, f := range fields(s) {
		switch {
		case f.name == "id":
			ids++
			if ids > 1 {
				p.add("id= appears more than once")
				continue
			}
			r.ID = f.value
			if !validID(f.value) {
				p.add("id=%q is not 1 to 32 letters and digits", clip(f.value, 64))
			}
		case strings.EqualFold(f.name, "id"):
			p.add("%q: field names are case-sensitive (id=)", clip(f.raw, 64))
		default:
			checkExtension(&p, f)
		}
	}
	if ids == 0 {
		p.add("no id= field (it is required: senders compare it to know when the policy changes)")
	}
	r.Problems = p
	return r
}

func validID(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !alnum(s[i]) {
			return false
		}
	}
	return true
}

// TLSRPT is a parsed TLS-RPT record (RFC 8460 §3).
type TLSRPT struct {
	// RUA are the report URIs as written, in order.
	RUA []ReportURI
	// Problems make the record invalid (a missing rua=, a URI of another
	// scheme, a duplicate, a malformed field).
	Problems []string
}

// ReportURI is one rua= URI.
type ReportURI struct {
	Raw    string
	Scheme string // mailto or https (lower case); "" if it does not parse
	// Addr is a mailto: URI's address, lower case.
	Addr string
}

// ParseTLSRPT parses a TLS-RPT record: "v=TLSRPTv1;" then fields, of which
// rua= is required once: one or more comma-separated mailto: or https:
// URIs, no duplicates.
func ParseTLSRPT(s string) TLSRPT {
	var r TLSRPT
	var p problems
	if !IsTLSRPT(s) {
		p.add("the record does not begin with v=TLSRPTv1;")
		r.Problems = p
		return r
	}
	ruas := 0
	for _, f := range fields(s) {
		switch {
		case f.name == "rua":
			ruas++
			if ruas > 1 {
				p.add("rua= appears more than once")
				continue
			}
			r.RUA = parseRUA(&p, f.value)
		case strings.EqualFold(f.name, "rua"):
			p.add("%q: field names are case-sensitive (rua=)", clip(f.raw, 64))
		default:
			checkExtension(&p, f)
		}
	}
	if ruas == 0 {
		p.add("no rua= field: senders have nowhere to send reports")
	}
	r.Problems = p
	return r
}

// maxURIs bounds the URIs kept from one rua= (a DNS TXT record holds a few
// hundred at most).
const maxURIs = 64

func parseRUA(p *problems, v string) []ReportURI {
	var out []ReportURI
	seen := map[string]bool{}
	for i, raw := range strings.Split(v, ",") {
		raw = trimWSP(raw)
		if i == maxURIs {
			p.add("rua= lists more than %d URIs", maxURIs)
			break
		}
		if raw == "" {
			p.add("rua= has an empty URI")
			continue
		}
		u := parseReportURI(raw)
		switch {
		case u.Scheme == "":
			p.add("%q is not a mailto: or https: URI", clip(raw, 80))
		case u.Scheme == "mailto" && u.Addr == "":
			p.add("%q is not a mailto: URI with an address", clip(raw, 80))
		}
		key := strings.ToLower(raw)
		if seen[key] {
			p.add("%q is listed twice", clip(raw, 80))
			continue
		}
		seen[key] = true
		out = append(out, u)
	}
	return out
}

// parseReportURI reads a mailto: (one addr-spec, as RFC 8460 §3 uses
// them) or https: URI with a host.
func parseReportURI(raw string) ReportURI {
	u := ReportURI{Raw: raw}
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok {
		return u
	}
	switch strings.ToLower(scheme) {
	case "mailto":
		u.Scheme = "mailto"
		addr, _, _ := strings.Cut(rest, "?")
		if a, err := url.PathUnescape(addr); err == nil {
			addr = a
		}
		local, dom, ok := strings.Cut(addr, "@")
		if ok && local != "" && validDomain(dom) && !strings.ContainsAny(local, " \t,<>@") {
			u.Addr = strings.ToLower(addr)
		}
	case "https":
		pu, err := url.Parse(raw)
		if err == nil && pu.Host != "" && validDomainOrPort(pu.Host) {
			u.Scheme = "https"
		}
	}
	return u
}

func validDomainOrPort(h string) bool {
	host, port, ok := strings.Cut(h, ":")
	if ok {
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return false
		}
	}
	return validDomain(host)
}

// validDomain: LDH labels, at least two, each 1 to 63 characters, no
// trailing dot.
func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 {
		return false
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !validLabel(l) {
			return false
		}
	}
	return true
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; !alnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
