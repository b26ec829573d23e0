package webcheck

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// RFC 9116 §5.4 lets a researcher's tools refuse files larger than
// 32 KB, with more than 1,000 lines or with fields longer than 2,048
// characters: the parser reads no more, and says so.
const (
	SecurityTxtMaxBytes = 32 << 10
	SecurityTxtMaxLines = 1000
	SecurityTxtMaxLine  = 2048
	// secTxtMaxProblems bounds the problems recorded of one file (a
	// 1,000-line file of garbage gives one problem a line otherwise).
	secTxtMaxProblems = 100
)

// Problem levels: an error breaks a MUST of RFC 9116 (fail), a warning a
// SHOULD, a RECOMMENDED or the UK expectation of a Policy (warn).
const (
	SecTxtError   = "error"
	SecTxtWarning = "warning"
)

// SecTxtProblem is one thing wrong with a security.txt file.
type SecTxtProblem struct {
	Line  int    `json:"line,omitempty"` // 1-based line of the file; 0: the whole file
	Level string `json:"level"`          // SecTxtError or SecTxtWarning
	Code  string `json:"code"`           // stable short name: "no-contact", "expired", …
	Msg   string `json:"msg"`
}

func (p SecTxtProblem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s", p.Line, p.Msg)
	}
	return p.Msg
}

// SecTxtField is one field of the file that RFC 9116 §2.5 defines, with
// its name in the RFC's spelling.
type SecTxtField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Line  int    `json:"line"`
	// Bad: the value breaks the field's syntax (a problem says how); it
	// still counts towards the field's occurrences.
	Bad bool `json:"bad,omitempty"`
}

// SecurityTxt is a parsed security.txt file.
type SecurityTxt struct {
	Signed   bool            `json:"signed,omitempty"` // OpenPGP cleartext framing (the signature is not verified)
	Fields   []SecTxtField   `json:"fields,omitempty"` // the RFC's fields, in file order
	Unknown  int             `json:"unknown,omitempty"`
	Lines    int             `json:"lines"`
	Problems []SecTxtProblem `json:"problems,omitempty"`
	dropped  int
}

// Values returns the fields named name (the RFC's spelling).
func (s *SecurityTxt) Values(name string) []SecTxtField {
	var out []SecTxtField
	for _, f := range s.Fields {
		if f.Name == name {
			out = append(out, f)
		}
	}
	return out
}

// secTxtFields maps lower-case field names to the RFC's spelling
// (RFC 9116 §2.5; field names are case-insensitive, §2).
var secTxtFields = map[string]string{
	"acknowledgments":     "Acknowledgments",
	"canonical":           "Canonical",
	"contact":             "Contact",
	"encryption":          "Encryption",
	"expires":             "Expires",
	"hiring":              "Hiring",
	"policy":              "Policy",
	"preferred-languages": "Preferred-Languages",
}

// secTxtURIFields are the fields whose value is a URI (RFC 9116 §4
// ABNF: ack-field, can-field, contact-field, encryption-field,
// hiring-field, policy-field).
var secTxtURIFields = map[string]bool{
	"Acknowledgments": true, "Canonical": true, "Contact": true, "Encryption": true, "Hiring": true, "Policy": true,
}

const (
	pgpSignedHeader = "-----BEGIN PGP SIGNED MESSAGE-----"
	pgpSigBegin     = "-----BEGIN PGP SIGNATURE-----"
	pgpSigEnd       = "-----END PGP SIGNATURE-----"
)

func (s *SecurityTxt) add(line int, level, code, format string, a ...any) {
	if len(s.Problems) >= secTxtMaxProblems {
		s.dropped++
		return
	}
	s.Problems = append(s.Problems, SecTxtProblem{Line: line, Level: level, Code: code, Msg: fmt.Sprintf(format, a...)})
}

// Dropped is how many problems went unrecorded past the bound.
func (s *SecurityTxt) Dropped() int { return s.dropped }

// ParseSecurityTxt parses a security.txt file (RFC 9116 §2, §4): lines
// end in LF or CRLF (§2.2), "#" starts a comment (§2.1), field names are
// case-insensitive and unknown fields are ignored (§2.4), and an OpenPGP
// cleartext signature's framing (§2.3, RFC 4880 §7) is stripped and its
// dash-escaping undone. It records every syntax problem with its line
// and never fails; the checks that need a clock or the URL the file was
// fetched from are SecurityTxt.Check's. Input past SecurityTxtMaxBytes,
// lines past SecurityTxtMaxLines and longer than SecurityTxtMaxLine are
// not read (each an error).
func ParseSecurityTxt(b []byte) *SecurityTxt {
	s := &SecurityTxt{}
	if len(b) > SecurityTxtMaxBytes {
		s.add(0, SecTxtError, "too-large", "the file is larger than %d bytes, which RFC 9116 §5.4 lets tools refuse: only its start is read", SecurityTxtMaxBytes)
		b = b[:SecurityTxtMaxBytes]
	}
	if bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		s.add(0, SecTxtWarning, "bom", "the file starts with a byte-order mark, which Net-Unicode (RFC 5198, required by RFC 9116 §4) excludes and which some parsers read as part of the first field name")
		b = b[3:]
	}
	const (
		stUnsigned = iota
		stArmor    // the Hash: headers after BEGIN PGP SIGNED MESSAGE
		stClear    // the signed text
		stSig      // the signature block
		stAfter    // after END PGP SIGNATURE
	)
	state, sawContent, hashes := stUnsigned, false, 0
	n := 0
	for len(b) > 0 {
		var raw []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			raw, b = b[:i], b[i+1:]
		} else {
			raw, b = b, nil
		}
		n++
		if n > SecurityTxtMaxLines {
			s.add(0, SecTxtError, "too-many-lines", "the file has more than %d lines, which RFC 9116 §5.4 lets tools refuse: the rest is not read", SecurityTxtMaxLines)
			n--
			break
		}
		raw = bytes.TrimSuffix(raw, []byte("\r"))
		if len(raw) > SecurityTxtMaxLine {
			s.add(n, SecTxtError, "line-too-long", "the line is %d bytes long, over the %d that RFC 9116 §5.4 lets tools refuse: it is not read", len(raw), SecurityTxtMaxLine)
			sawContent = true
			continue
		}
		if !utf8.Valid(raw) {
			s.add(n, SecTxtError, "not-utf8", "the line is not valid UTF-8 (RFC 9116 §4)")
			raw = bytes.ToValidUTF8(raw, []byte("\uFFFD"))
		}
		line := strings.TrimRight(string(raw), " \t")
		if strings.Contains(line, "\r") {
			s.add(n, SecTxtError, "bare-cr", "the line holds a carriage return not followed by a line feed: lines end in CRLF or LF (RFC 9116 §2.2)")
			line = strings.ReplaceAll(line, "\r", " ")
		}
		switch state {
		case stUnsigned:
			if !sawContent && line == pgpSignedHeader {
				s.Signed, state = true, stArmor
				continue
			}
			if line != "" {
				sawContent = true
			}
			s.parseLine(n, line)
		case stArmor:
			switch {
			case line == "":
				if hashes == 0 {
					s.add(n, SecTxtWarning, "pgp-no-hash", "the signed message has no Hash: header (RFC 9116 §4 signed production)")
				}
				state = stClear
			case strings.HasPrefix(line, "Hash: "):
				hashes++
			default:
				s.add(n, SecTxtError, "pgp-armor", "only Hash: headers and then an empty line may follow %s (RFC 4880 §7)", pgpSignedHeader)
			}
		case stClear:
			if line == pgpSigBegin {
				state = stSig
				continue
			}
			// RFC 4880 §7.1: a line of the signed text that starts
			// with "- " has been dash-escaped.
			line = strings.TrimPrefix(line, "- ")
			s.parseLine(n, line)
		case stSig:
			if line == pgpSigEnd {
				state = stAfter
			}
		case stAfter:
			if line != "" {
				s.add(n, SecTxtError, "after-signature", "text after %s is outside the signed message", pgpSigEnd)
			}
		}
	}
	s.Lines = n
	switch state {
	case stArmor, stClear:
		s.add(0, SecTxtError, "pgp-unclosed", "the file starts a signed message but has no %s", pgpSigBegin)
	case stSig:
		s.add(0, SecTxtError, "pgp-unclosed", "the signature is not closed by %s", pgpSigEnd)
	}
	return s
}

// parseLine reads one line of the text (after the signature's framing).
func (s *SecurityTxt) parseLine(n int, line string) {
	if line == "" || strings.HasPrefix(line, "#") {
		return
	}
	if t := strings.TrimLeft(line, " \t"); t != line {
		s.add(n, SecTxtWarning, "leading-space", "the line starts with white space: a field starts at the line's first character (RFC 9116 §4)")
		line = t
		if strings.HasPrefix(line, "#") {
			return
		}
	}
	name, value, ok := strings.Cut(line, ":")
	if !ok {
		s.add(n, SecTxtError, "not-a-field", "%q is not a field (name: value), a comment or an empty line (RFC 9116 §2, §4)", secTxtClip(line))
		return
	}
	if t := strings.TrimRight(name, " \t"); t != name {
		s.add(n, SecTxtWarning, "space-before-colon", "white space between the field name and the colon (RFC 9116 §4)")
		name = t
	}
	if !secTxtFieldName(name) {
		s.add(n, SecTxtError, "bad-name", "%q is not a field name (RFC 5322 §3.6.8 field-name, RFC 9116 §2)", secTxtClip(name))
		return
	}
	if value != "" && value[0] != ' ' {
		s.add(n, SecTxtWarning, "no-space", "the colon after %s is not followed by a space (RFC 9116 §4)", secTxtClip(name))
	}
	value = strings.TrimLeft(value, " \t")
	canon, known := secTxtFields[strings.ToLower(name)]
	if !known {
		// RFC 9116 §2.4: fields a reader does not support are ignored.
		s.Unknown++
		return
	}
	f := SecTxtField{Name: canon, Value: value, Line: n}
	switch {
	case value == "":
		s.add(n, SecTxtError, "empty-value", "%s has no value: a field MUST consist of a name and a value (RFC 9116 §2)", canon)
		f.Bad = true
	case secTxtURIFields[canon]:
		if msg := secTxtURIProblem(canon, value); msg != "" {
			s.add(n, SecTxtError, "bad-uri", "%s %q: %s", canon, secTxtClip(value), msg)
			f.Bad = true
		}
	case canon == "Expires":
		if _, err := ParseRFC3339(value); err != nil {
			s.add(n, SecTxtError, "bad-expires", "Expires %q is not an RFC 3339 date-time (RFC 9116 §2.5.5, §4): %v", secTxtClip(value), err)
			f.Bad = true
		}
	case canon == "Preferred-Languages":
		for _, tag := range strings.Split(value, ",") {
			if tag = strings.Trim(tag, " \t"); !secTxtLangTag(tag) {
				s.add(n, SecTxtError, "bad-language", "Preferred-Languages holds %q, which is not a language tag (RFC 5646; RFC 9116 §2.5.8)", secTxtClip(tag))
				f.Bad = true
				break
			}
		}
	}
	s.Fields = append(s.Fields, f)
}

// secTxtFieldName is RFC 5322 §3.6.8's field-name: 1*ftext, printable
// US-ASCII except the colon.
func secTxtFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// secTxtLangTag is a loose RFC 5646 Language-Tag: 1–8 letters, then
// subtags of 1–8 letters or digits separated by hyphens (or a private
// use or grandfathered tag starting "x-" / "i-").
func secTxtLangTag(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for i, sub := range strings.Split(t, "-") {
		if sub == "" || len(sub) > 8 {
			return false
		}
		for j := 0; j < len(sub); j++ {
			c := sub[j]
			alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !alpha && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

// secTxtURIProblem says what is wrong with a URI field's value ("" when
// nothing): it must be an absolute URI (RFC 3986 §3, RFC 9116 §2.5.3),
// and a web URI must begin with https:// (§2.5.1–§2.5.7).
func secTxtURIProblem(field, v string) string {
	if strings.ContainsAny(v, " \t\"<>\\^`{|}") {
		return "not a URI: it holds characters a URI cannot (RFC 3986 §2)"
	}
	scheme, rest, ok := strings.Cut(v, ":")
	if !ok || !secTxtScheme(scheme) {
		if field == "Contact" && strings.Contains(v, "@") {
			return "not a URI: an email address must be written mailto:" + secTxtClip(v) + " (RFC 9116 §2.5.3)"
		}
		return "not a URI: it has no scheme (RFC 3986 §3)"
	}
	u, err := url.Parse(v)
	if err != nil {
		return "not a URI (RFC 3986 §3)"
	}
	switch strings.ToLower(scheme) {
	case "http":
		return "a web URI MUST begin with https:// (RFC 9116 §2.5)"
	case "https":
		if u.Host == "" || !strings.HasPrefix(rest, "//") {
			return "an https URI without a host"
		}
	case "mailto", "tel":
		if strings.Trim(rest, "/") == "" {
			return "a " + strings.ToLower(scheme) + ": URI without an address"
		}
	}
	return ""
}

// secTxtScheme is RFC 3986 §3.1's scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func secTxtScheme(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

func secTxtClip(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// ParseRFC3339 parses RFC 3339 §5.6's date-time strictly: full-date "T"
// full-time, with "T" and "Z" in either case (§5.6 NOTE), fractions of a
// second, a leap second (:60, read as the next second), and a numeric
// offset or Z. Day numbers are checked against the month.
func ParseRFC3339(s string) (time.Time, error) {
	// 2006-01-02T15:04:05[.frac](Z|±hh:mm)
	if len(s) < 20 || len(s) > 64 {
		return time.Time{}, fmt.Errorf("want YYYY-MM-DDThh:mm:ss with Z or an offset")
	}
	num := func(p string) (int, bool) {
		v := 0
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return 0, false
			}
			v = v*10 + int(p[i]-'0')
		}
		return v, true
	}
	bad := fmt.Errorf("want YYYY-MM-DDThh:mm:ss with Z or an offset")
	if s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, bad
	}
	y, ok1 := num(s[0:4])
	mo, ok2 := num(s[5:7])
	d, ok3 := num(s[8:10])
	h, ok4 := num(s[11:13])
	mi, ok5 := num(s[14:16])
	sec, ok6 := num(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, bad
	}
	rest := s[19:]
	nsec := 0
	if rest[0] == '.' {
		j := 1
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j == 1 {
			return time.Time{}, fmt.Errorf("a decimal point without digits")
		}
		frac := rest[1:j]
		if len(frac) > 9 {
			frac = frac[:9]
		}
		v, _ := num(frac)
		for k := len(frac); k < 9; k++ {
			v *= 10
		}
		nsec, rest = v, rest[j:]
	}
	var loc *time.Location
	switch {
	case rest == "Z" || rest == "z":
		loc = time.UTC
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := num(rest[1:3])
		om, okm := num(rest[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, fmt.Errorf("an offset out of range")
		}
		off := oh*3600 + om*60
		if rest[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	default:
		return time.Time{}, fmt.Errorf("want Z or an offset ±hh:mm at the end")
	}
	if mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60 {
		return time.Time{}, fmt.Errorf("a field out of range")
	}
	if last := time.Date(y, time.Month(mo)+1, 0, 0, 0, 0, 0, time.UTC).Day(); d > last {
		return time.Time{}, fmt.Errorf("day %d of a month of %d days", d, last)
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, nsec, loc), nil
}

// Check returns the file's problems: its syntax problems and what RFC
// 9116 asks of the whole file at time at — Contact at least once
// (§2.5.3), Expires exactly once and in the future (§2.5.5; more than a
// year ahead is a warning, the RFC RECOMMENDing less), Preferred-Languages
// at most once (§2.5.8), a Policy (warning: the UK's three fields), and,
// when retrieved is not empty, a Canonical that lists one of the URLs the
// file was retrieved from (§2.5.2). Each problem once, in line order of
// the fields where it has one.
func (s *SecurityTxt) Check(retrieved []string, at time.Time) []SecTxtProblem {
	out := append([]SecTxtProblem(nil), s.Problems...)
	add := func(line int, level, code, format string, a ...any) {
		out = append(out, SecTxtProblem{Line: line, Level: level, Code: code, Msg: fmt.Sprintf(format, a...)})
	}
	lines := func(fs []SecTxtField) string {
		var l []string
		for _, f := range fs {
			l = append(l, fmt.Sprint(f.Line))
		}
		if len(l) == 1 {
			return "line " + l[0]
		}
		return "lines " + strings.Join(l, ", ")
	}
	if len(s.Values("Contact")) == 0 {
		add(0, SecTxtError, "no-contact", "no Contact field: it MUST be present (RFC 9116 §2.5.3)")
	}
	exp := s.Values("Expires")
	switch {
	case len(exp) == 0:
		add(0, SecTxtError, "no-expires", "no Expires field: it MUST be present (RFC 9116 §2.5.5)")
	case len(exp) > 1:
		add(exp[1].Line, SecTxtError, "expires-twice", "Expires appears %d times (%s): it MUST NOT appear more than once (RFC 9116 §2.5.5)", len(exp), lines(exp))
	}
	for _, f := range exp {
		t, err := ParseRFC3339(f.Value)
		if err != nil {
			continue // a syntax problem already
		}
		switch {
		case !t.After(at):
			add(f.Line, SecTxtError, "expired", "the file expired on %s (Expires %s): its contents are stale and should not be used (RFC 9116 §2.5.5, §5.3)", t.UTC().Format(time.RFC3339), secTxtClip(f.Value))
		case t.After(at.AddDate(1, 0, 0)):
			add(f.Line, SecTxtWarning, "expires-far", "Expires %s is more than a year ahead (%d days): RFC 9116 §2.5.5 recommends less than a year, to avoid staleness", secTxtClip(f.Value), int(t.Sub(at).Hours()/24))
		}
	}
	if l := s.Values("Preferred-Languages"); len(l) > 1 {
		add(l[1].Line, SecTxtError, "languages-twice", "Preferred-Languages appears %d times (%s): it MUST NOT appear more than once (RFC 9116 §2.5.8)", len(l), lines(l))
	}
	if len(s.Values("Policy")) == 0 {
		add(0, SecTxtWarning, "no-policy", "no Policy field: UK government guidance expects a link to the vulnerability disclosure policy beside Contact and Expires (RFC 9116 §2.5.7)")
	}
	if can := s.Values("Canonical"); len(can) > 0 && len(retrieved) > 0 {
		match := false
		for _, c := range can {
			for _, r := range retrieved {
				if secTxtSameURL(c.Value, r) {
					match = true
				}
			}
		}
		if !match {
			add(can[0].Line, SecTxtError, "canonical-mismatch", "Canonical (%s) does not list %s, the URL the file was retrieved from: its contents SHOULD NOT be trusted there (RFC 9116 §2.5.2)", lines(can), strings.Join(retrieved, " or "))
		}
	}
	if s.dropped > 0 {
		add(0, SecTxtError, "more", "%d further problems were not recorded", s.dropped)
	}
	return out
}

// secTxtSameURL compares two URLs as the same resource: scheme and host
// case-insensitively, the default port and a trailing dot of the host
// ignored, the path and query exactly.
func secTxtSameURL(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	norm := func(u *url.URL) string {
		host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		port := u.Port()
		scheme := strings.ToLower(u.Scheme)
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			port = ""
		}
		if port != "" {
			host += ":" + port
		}
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		return scheme + "://" + host + p + "?" + u.RawQuery
	}
	return norm(ua) == norm(ub)
}
