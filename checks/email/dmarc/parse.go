// Package dmarc parses DMARC policy records (RFC 7489 §6.3–§6.4, with the
// t=, psd= and np= tags of RFC 9989 / RFC 9091) the way receivers read
// them: a wrong or misplaced version discards the record, an unusable
// policy leaves p=none or nothing, and any other bad tag is ignored. It does
// no I/O.
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
	PSD   string // y, n or u (RFC 9989); "" when absent
	PCT   int    // -1 when absent
	RUA   []URI
	RUF   []URI
	// Ignored lists what receivers skip in an otherwise valid record: tags
	// with invalid values (which keep their defaults), later duplicates,
	// parts that are not tag=value, URIs that do not parse.
	Ignored []string
	// PolicyError says why p= (or sp=, np=) is missing or invalid in a
	// record that receivers nevertheless apply as p=none because rua=
	// names a valid URI (RFC 7489 §6.6.3 step 6.1). P is then "none".
	PolicyError string
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

// SyntaxError is a record that receivers do not apply. Version is true
// when the version tag is wrong or out of place: receivers discard such a
// record as if it were not there, and policy discovery goes on to the
// parent domain (RFC 7489 §6.6.3 step 2; RFC 9989 §4.10 step 2). Otherwise
// the record is a DMARC record that stops policy discovery but carries no
// usable policy, so receivers apply no DMARC processing at all (RFC 7489
// §6.6.3 step 6.2; RFC 9989 §4.10.1), or it is over the parser's bounds.
type SyntaxError struct {
	Msg     string
	Version bool
}

func (e *SyntaxError) Error() string { return "dmarc: " + e.Msg }

func bad(format string, a ...any) error { return &SyntaxError{Msg: fmt.Sprintf(format, a...)} }

// IsDMARC reports whether a TXT string is a DMARC record: its first tag is
// v=DMARC1 (RFC 7489 §6.6.3: other records are discarded). The tag name is
// case-insensitive; the value DMARC1 is not (RFC 7489 §6.3 "MUST match
// precisely").
func IsDMARC(s string) bool {
	first, _, _ := strings.Cut(s, ";")
	name, value, ok := strings.Cut(first, "=")
	return ok && strings.EqualFold(strings.TrimSpace(name), "v") && strings.TrimSpace(value) == "DMARC1"
}

// MeantAsDMARC reports a TXT string that was evidently published as a DMARC
// record but is not one (IsDMARC is false), so receivers discard it. It is
// meant as DMARC when, ignoring case and spaces, it starts with "v=dmarc"
// (a wrong version such as v=DMARC2 or v=dmarc1, or v=DMARC1 run into the
// next tag without a ";") or it has a v=DMARC1 tag somewhere else (the
// version not first, or the record wrapped in quotes). Other TXT strings at
// a _dmarc name (verification tokens, an SPF record put there by mistake)
// are not DMARC at all and are ignored. Among the records a receiver could
// mistake for the domain's policy, these are the ones whose owner meant a
// policy and will not get it.
func MeantAsDMARC(s string) bool {
	if IsDMARC(s) {
		return false
	}
	if len(s) > MaxRecordLen {
		s = s[:MaxRecordLen]
	}
	flat := strings.ToLower(strings.Join(strings.Fields(s), ""))
	return strings.HasPrefix(flat, "v=dmarc") || strings.Contains(flat, "v=dmarc1")
}

// WhyNotDMARC explains, for a string that MeantAsDMARC, why receivers
// discard it.
func WhyNotDMARC(s string) string {
	first, _, _ := strings.Cut(s, ";")
	name, value, ok := strings.Cut(first, "=")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	switch {
	case !ok || !strings.EqualFold(name, "v"):
		return "v=DMARC1 is not the first tag"
	case strings.HasPrefix(value, "DMARC1") && len(value) > len("DMARC1"):
		return fmt.Sprintf("the tags are not separated by \";\": the version tag reads %q", clip("v="+value))
	case strings.EqualFold(value, "DMARC1"):
		return fmt.Sprintf("the version is %q: it must be exactly DMARC1, in capitals", clip(value))
	}
	return fmt.Sprintf("the version is %q, not DMARC1", clip(value))
}

var policies = map[string]bool{"none": true, "quarantine": true, "reject": true}

// Parse parses one DMARC record the way RFC 7489 §6.3 and RFC 9989 §4.7–4.8
// tell receivers to read it:
//
//   - v=DMARC1 must be the first tag, else the record is discarded
//     (*SyntaxError with Version set).
//   - A missing or invalid p=, or an invalid sp= or np=, leaves the record
//     without a usable policy: receivers act as if it said p=none when rua=
//     names at least one valid URI (the record then parses with P "none"
//     and PolicyError saying why), and apply no DMARC processing otherwise
//     (*SyntaxError) (RFC 7489 §6.6.3 step 6; RFC 9989 §4.10.1).
//   - Any other tag with an invalid value (fo=2, rf=xml, ri=daily,
//     adkim=x, pct=150, t=maybe, psd=x), a later duplicate of a tag, a
//     part that is not tag=value, and a rua/ruf URI that does not parse
//     are ignored: the tag keeps its default and the rest of the record
//     stands. Each is listed in Ignored.
//   - Unknown tags are ignored silently (kept in Tags).
func Parse(s string) (*Record, error) {
	if len(s) > MaxRecordLen {
		return nil, bad("record is %d bytes (limit %d)", len(s), MaxRecordLen)
	}
	if !IsDMARC(s) {
		if MeantAsDMARC(s) {
			return nil, &SyntaxError{Msg: WhyNotDMARC(s), Version: true}
		}
		return nil, &SyntaxError{Msg: "record does not start with v=DMARC1", Version: true}
	}
	parts := strings.Split(s, ";")
	if len(parts) > MaxTags+1 {
		return nil, bad("record has %d tags (limit %d)", len(parts), MaxTags)
	}
	r := &Record{PCT: -1}
	seen := map[string]string{}
	ignore := func(format string, a ...any) { r.Ignored = append(r.Ignored, fmt.Sprintf(format, a...)) }
	var policyErr []string
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if i == 0 {
			r.Tags = append(r.Tags, Tag{"v", "DMARC1"})
			seen["v"] = "DMARC1"
			continue
		}
		if part == "" {
			continue // trailing or doubled separator
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			ignore("%q is not tag=value", clip(part))
			continue
		}
		// Tag names are case-insensitive ABNF literals; DMARC1 is not.
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if name == "" || !tagName(name) {
			ignore("%q is not a tag name", clip(name))
			continue
		}
		lv := strings.ToLower(value)
		if prev, dup := seen[name]; dup {
			if (name == "p" || name == "sp" || name == "np") && prev != lv {
				policyErr = append(policyErr, fmt.Sprintf("%s appears twice with different values (%s and %s)", name, clip(prev), clip(value)))
			} else {
				ignore("%s appears more than once: the later %s=%s is ignored", name, name, clip(value))
			}
			continue
		}
		seen[name] = lv
		r.Tags = append(r.Tags, Tag{name, value})
		switch name {
		case "p", "sp", "np":
			if !policies[lv] {
				policyErr = append(policyErr, fmt.Sprintf("%s=%s is not none, quarantine or reject", name, clip(value)))
				continue
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
				ignore("%s=%s is not r or s: receivers use the default, %s=r (relaxed)", name, clip(value), name)
				continue
			}
			if name == "adkim" {
				r.ADKIM = lv
			} else {
				r.ASPF = lv
			}
		case "pct":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > 100 || len(value) > 3 {
				ignore("pct=%s is not a whole number from 0 to 100: receivers use the default, pct=100", clip(value))
				continue
			}
			r.PCT = n
		case "t":
			if lv != "y" && lv != "n" {
				ignore("t=%s is not y or n: receivers use the default, t=n", clip(value))
				continue
			}
			r.T = lv
		case "psd":
			if lv != "y" && lv != "n" && lv != "u" {
				ignore("psd=%s is not y, n or u: receivers use the default, psd=u", clip(value))
				continue
			}
			r.PSD = lv
		case "fo":
			if !foValue(lv) {
				ignore("fo=%s has an option other than 0, 1, d or s: receivers use the default, fo=0", clip(value))
				continue
			}
			r.FO = lv
		case "rf":
			// RFC 7489 §6.3: colon-separated report formats from the IANA
			// registry, which holds only afrf.
			for _, f := range strings.Split(lv, ":") {
				if strings.TrimSpace(f) != "afrf" {
					ignore("rf=%s names a failure-report format other than afrf: receivers ignore it", clip(value))
					break
				}
			}
		case "ri":
			if _, err := strconv.ParseUint(value, 10, 32); err != nil {
				ignore("ri=%s is not a number of seconds: receivers use the default, ri=86400", clip(value))
			}
		case "rua", "ruf":
			us, errs := parseURIs(value)
			for _, e := range errs {
				ignore("%s: %s is ignored", name, e)
			}
			if name == "rua" {
				r.RUA = us
			} else {
				r.RUF = us
			}
		}
	}
	if r.P == "" && len(policyErr) == 0 {
		policyErr = append(policyErr, "there is no p= tag")
	}
	if len(policyErr) > 0 {
		r.PolicyError = strings.Join(policyErr, "; ")
		if len(r.RUA) == 0 {
			return nil, bad("%s, and rua= names no valid report address, so receivers apply no DMARC processing", r.PolicyError)
		}
		// RFC 7489 §6.6.3 step 6.1: act as if the record were "v=DMARC1;
		// p=none" (with its other tags): sp and np then follow p.
		r.P, r.SP, r.NP = "none", "", ""
	}
	return r, nil
}

// foValue: 0, 1, d, s separated by colons.
func foValue(lv string) bool {
	for _, o := range strings.Split(lv, ":") {
		switch strings.TrimSpace(o) {
		case "0", "1", "d", "s":
		default:
			return false
		}
	}
	return true
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

// parseURIs parses a comma-separated DMARC URI list (RFC 7489 §6.4). A URI
// that does not parse is dropped and reported; the others stand. At most
// MaxURIs entries are read.
func parseURIs(v string) (out []URI, errs []string) {
	for i, raw := range strings.SplitN(v, ",", MaxURIs+1) {
		if i == MaxURIs {
			errs = append(errs, fmt.Sprintf("every URI after the first %d", MaxURIs))
			break
		}
		raw = strings.TrimSpace(raw)
		if raw == "" {
			errs = append(errs, "an empty URI")
			continue
		}
		u, err := parseURI(raw)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out = append(out, u)
	}
	return out, errs
}

func parseURI(raw string) (URI, error) {
	u := URI{Raw: raw}
	body := raw
	if i := strings.LastIndexByte(body, '!'); i >= 0 {
		if !sizeLimit(body[i+1:]) {
			return u, fmt.Errorf("%q (bad size limit)", clip(raw))
		}
		body = body[:i]
	}
	scheme, rest, ok := strings.Cut(body, ":")
	if !ok || scheme == "" || rest == "" {
		return u, fmt.Errorf("%q (not a URI)", clip(raw))
	}
	u.Scheme = strings.ToLower(scheme)
	if u.Scheme == "mailto" {
		addr, _, _ := strings.Cut(rest, "?")
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 || at == len(addr)-1 {
			return u, fmt.Errorf("%q (not a mail address)", clip(raw))
		}
		u.Addr = strings.ToLower(addr)
		u.Domain = strings.TrimSuffix(strings.ToLower(addr[at+1:]), ".")
		if u.Domain == "" {
			return u, fmt.Errorf("%q (not a mail address: no domain)", clip(raw))
		}
	}
	return u, nil
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
