package mtasts

import (
	"strconv"
	"strings"
)

// Policy is a parsed MTA-STS policy body (RFC 8461 §3.2).
type Policy struct {
	Version string
	Mode    string
	// MaxAge is max_age in seconds; valid only when MaxAgeOK.
	MaxAge   int64
	MaxAgeOK bool
	// MX are the mx: patterns, as written (lower-cased).
	MX []string
	// Problems make the policy invalid: senders do not apply it.
	Problems []string
	// LF: some line ends with a bare LF. RFC 8461 §3.2 says CRLF; senders
	// (and Mail Check) accept LF, so it is noted, not held against it.
	LF bool
	// Ignored are lines that are not "key: value" (noted, not judged).
	Ignored int
}

// ParsePolicy parses a policy body: lines of "key: value" separated by CRLF
// (or LF). version must be STSv1, mode one of enforce, testing, none,
// max_age an integer with 0 < max_age ≤ 31557600, and at least one mx:
// pattern, a domain name whose leftmost label may be "*". Keys and values
// are case-sensitive (%s in the ABNF); unknown keys are ignored; version,
// mode and max_age may each appear once.
func ParsePolicy(body string) Policy {
	var pol Policy
	var p problems
	seen := map[string]int{}
	for len(body) > 0 {
		line, rest, found := strings.Cut(body, "\n")
		body = rest
		if found && !strings.HasSuffix(line, "\r") {
			pol.LF = true
		}
		line = strings.TrimSuffix(line, "\r")
		if trimWSP(line) == "" {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			pol.Ignored++
			continue
		}
		key, value = trimWSP(key), trimWSP(value)
		switch key {
		case "version", "mode", "max_age":
			seen[key]++
			if seen[key] > 1 {
				p.add("%s appears more than once", key)
				continue
			}
		}
		switch key {
		case "version":
			pol.Version = value
			if value != "STSv1" {
				p.add("version is %q, not STSv1", clip(value, 32))
			}
		case "mode":
			pol.Mode = value
			switch value {
			case ModeEnforce, ModeTesting, ModeNone:
			default:
				p.add("mode %q is not enforce, testing or none (values are case-sensitive)", clip(value, 32))
			}
		case "max_age":
			n, err := strconv.ParseInt(value, 10, 64)
			switch {
			case err != nil || len(value) > 10 || !digits(value):
				p.add("max_age %q is not a whole number of seconds", clip(value, 32))
			case n <= 0 || n > MaxMaxAge:
				p.add("max_age %d is outside 1..%d seconds", n, MaxMaxAge)
			default:
				pol.MaxAge, pol.MaxAgeOK = n, true
			}
		case "mx":
			pat := strings.ToLower(strings.TrimSuffix(value, "."))
			if !validPattern(pat) {
				p.add("mx %q is not a host name (a wildcard may only be the whole leftmost label, *.)", clip(value, 64))
				continue
			}
			pol.MX = append(pol.MX, pat)
		default:
			if k := strings.ToLower(key); k == "version" || k == "mode" || k == "max_age" || k == "mx" {
				p.add("key %q: keys are case-sensitive (%s)", clip(key, 32), k)
			}
		}
	}
	if seen["version"] == 0 {
		p.add("no version: STSv1 line")
	}
	if seen["mode"] == 0 {
		p.add("no mode line")
	}
	if seen["max_age"] == 0 {
		p.add("no max_age line")
	}
	if len(pol.MX) == 0 {
		p.add("no valid mx: line (at least one is required)")
	}
	pol.Problems = p
	return pol
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validPattern: a domain name, or "*." and a domain name (RFC 8461 §3.2
// sts-policy-mx-value = ["*."] Domain).
func validPattern(p string) bool {
	p = strings.TrimPrefix(p, "*.")
	return validDomain(p)
}

// MatchMX reports whether an MX host matches a policy mx pattern (RFC 8461
// §4.1): exactly, or "*.example.net" matching one label in its place
// (mail.example.net, not example.net nor a.b.example.net). Both are
// compared without case or a trailing dot.
func MatchMX(pattern, host string) bool {
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		label, parent, ok := strings.Cut(host, ".")
		return ok && label != "" && parent == rest
	}
	return pattern != "" && pattern == host
}

// Uncovered lists the MX hosts no pattern matches.
func (p Policy) Uncovered(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		ok := false
		for _, pat := range p.MX {
			if MatchMX(pat, h) {
				ok = true
				break
			}
		}
		if !ok {
			out = append(out, h)
		}
	}
	return out
}
