package webcheck

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

// SameSite values of a cookie (RFC 6265bis: an unrecognised value is
// "Default" enforcement, as when the attribute is absent).
const (
	SameSiteDefault = ""
	SameSiteNone    = "none"
	SameSiteLax     = "lax"
	SameSiteStrict  = "strict"
)

// Bounds of ParseSetCookie, from RFC 6265bis: a name and value of more
// than 4096 octets together make the cookie ignored, an attribute value of
// more than 1024 octets is ignored.
const (
	cookieMaxNameValue = 4096
	cookieMaxAttrValue = 1024
	cookieMaxLen       = 64 << 10 // a longer set-cookie-string is not parsed
	cookieMaxAttrs     = 256      // attributes read of one cookie
)

// Why a Set-Cookie value is ignored by browsers.
var (
	errCookieCTL   = errors.New("it contains a control character")
	errCookieEmpty = errors.New("its name and value are empty")
	errCookieLong  = errors.New("its name and value exceed 4096 octets")
)

// Cookie is one Set-Cookie value as a browser reads it (RFC 6265bis
// §5.6): the last valid attribute of each name wins; an invalid Max-Age
// or Expires is ignored.
type Cookie struct {
	Name, Value string
	Secure      bool
	HTTPOnly    bool
	SameSite    string // SameSiteNone, Lax, Strict, or Default ("")
	// MaxAge is set when a valid Max-Age was given (seconds; <= 0 means
	// delete now); Expires when a valid Expires was.
	MaxAge  *int64
	Expires *time.Time
	Domain  string // the Domain attribute, lower case, "" without one
	Path    string // the Path attribute, "" without one
	HasPath bool
}

// ParseSetCookie parses one set-cookie-string after RFC 6265bis §5.6. An
// error says why a browser ignores the whole value.
func ParseSetCookie(s string) (Cookie, error) {
	var c Cookie
	if len(s) > cookieMaxLen {
		return c, errCookieLong
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return c, errCookieCTL
		}
	}
	nvp, attrs, hasAttrs := strings.Cut(s, ";")
	if name, value, ok := strings.Cut(nvp, "="); ok {
		c.Name, c.Value = name, value
	} else {
		c.Value = nvp
	}
	c.Name, c.Value = strings.Trim(c.Name, " \t"), strings.Trim(c.Value, " \t")
	if len(c.Name)+len(c.Value) > cookieMaxNameValue {
		return Cookie{}, errCookieLong
	}
	if c.Name == "" && c.Value == "" {
		return Cookie{}, errCookieEmpty
	}
	if !hasAttrs {
		return c, nil
	}
	avs := strings.SplitN(attrs, ";", cookieMaxAttrs+1)
	if len(avs) > cookieMaxAttrs {
		avs = avs[:cookieMaxAttrs]
	}
	for _, av := range avs {
		name, value, _ := strings.Cut(av, "=")
		name, value = strings.Trim(name, " \t"), strings.Trim(value, " \t")
		if len(value) > cookieMaxAttrValue {
			continue
		}
		switch strings.ToLower(name) {
		case "expires":
			if t, ok := parseCookieDate(value); ok {
				c.Expires = &t
			}
		case "max-age":
			if v, ok := parseMaxAge(value); ok {
				c.MaxAge = &v
			}
		case "domain":
			if value != "" {
				c.Domain = strings.ToLower(strings.TrimPrefix(value, "."))
			}
		case "path":
			c.Path, c.HasPath = value, true
		case "secure":
			c.Secure = true
		case "httponly":
			c.HTTPOnly = true
		case "samesite":
			switch strings.ToLower(value) {
			case SameSiteNone, SameSiteLax, SameSiteStrict:
				c.SameSite = strings.ToLower(value)
			default:
				c.SameSite = SameSiteDefault
			}
		}
	}
	return c, nil
}

// parseMaxAge reads a Max-Age value: an optional "-" and digits, else the
// attribute is ignored. Huge values saturate.
func parseMaxAge(v string) (int64, bool) {
	if v == "" || !(v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
		return 0, false
	}
	digits := strings.TrimPrefix(v, "-")
	if digits == "" {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		n = 1 << 62 // out of range: very long
	}
	if v[0] == '-' {
		return -n, true
	}
	return n, true
}

// cookieDelim reports a cookie-date delimiter (RFC 6265bis §5.4.1.1):
// %x09 / %x20-2F / %x3B-40 / %x5B-60 / %x7B-7E.
func cookieDelim(b byte) bool {
	return b == 0x09 || b >= 0x20 && b <= 0x2f || b >= 0x3b && b <= 0x40 || b >= 0x5b && b <= 0x60 || b >= 0x7b && b <= 0x7e
}

// cookieDigits returns the leading digits of s (at most max+1 of them, so
// a caller can tell "too many").
func cookieDigits(s string, max int) string {
	i := 0
	for i < len(s) && i <= max && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

var cookieMonths = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// parseCookieDate is RFC 6265bis §5.4.1.1's cookie-date algorithm.
func parseCookieDate(s string) (time.Time, bool) {
	var tokens []string
	for i := 0; i < len(s); {
		for i < len(s) && cookieDelim(s[i]) {
			i++
		}
		j := i
		for j < len(s) && !cookieDelim(s[j]) {
			j++
		}
		if j > i {
			tokens = append(tokens, s[i:j])
		}
		i = j
	}
	// n digits (1..max) followed by nothing or a non-digit.
	num := func(t string, min, max int) (int, string, bool) {
		d := cookieDigits(t, max)
		if len(d) < min || len(d) > max {
			return 0, "", false
		}
		n, _ := strconv.Atoi(d)
		return n, t[len(d):], true
	}
	var (
		foundTime, foundDay, foundMonth, foundYear bool
		hour, minute, second, day, month, year     int
	)
	for _, t := range tokens {
		if !foundTime {
			h, r, ok := num(t, 1, 2)
			if ok && strings.HasPrefix(r, ":") {
				m, r2, ok2 := num(r[1:], 1, 2)
				if ok2 && strings.HasPrefix(r2, ":") {
					sec, r3, ok3 := num(r2[1:], 1, 2)
					if ok3 && (r3 == "" || r3[0] < '0' || r3[0] > '9') {
						foundTime, hour, minute, second = true, h, m, sec
						continue
					}
				}
			}
		}
		if !foundDay {
			if d, r, ok := num(t, 1, 2); ok && (r == "" || r[0] < '0' || r[0] > '9') {
				foundDay, day = true, d
				continue
			}
		}
		if !foundMonth && len(t) >= 3 {
			found := false
			for i, m := range cookieMonths {
				if strings.EqualFold(t[:3], m) {
					foundMonth, month, found = true, i+1, true
					break
				}
			}
			if found {
				continue
			}
		}
		if !foundYear {
			if y, r, ok := num(t, 2, 4); ok && (r == "" || r[0] < '0' || r[0] > '9') {
				foundYear, year = true, y
				continue
			}
		}
	}
	if !foundTime || !foundDay || !foundMonth || !foundYear {
		return time.Time{}, false
	}
	switch {
	case year >= 70 && year <= 99:
		year += 1900
	case year >= 0 && year <= 69:
		year += 2000
	}
	if day < 1 || day > 31 || year < 1601 || hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, 0, time.UTC)
	if t.Day() != day { // 30 February
		return time.Time{}, false
	}
	return t, true
}

// cookieCSRF reports a CSRF token's name: scripts must read it (the
// double-submit pattern), so it is not held to the session rules.
func cookieCSRF(lower string) bool {
	return strings.Contains(lower, "csrf") || strings.Contains(lower, "xsrf") || strings.Contains(lower, "antiforgery")
}

// cookieAuthName reports a session or authentication cookie's name: a
// framework's session cookie, or a word of the name (split at anything
// but letters and digits) with session, auth, token or jwt in it, starting
// with sess (Drupal's SSESS too) or ending in sessid, or the word sid.
// CSRF tokens are not (scripts must read them).
func cookieAuthName(name string) bool {
	l := strings.ToLower(name)
	l = strings.TrimPrefix(strings.TrimPrefix(l, "__secure-"), "__host-")
	if cookieCSRF(l) {
		return false
	}
	switch l {
	case "asp.net_sessionid", "jsessionid", "phpsessid", "connect.sid", "laravel_session":
		return true
	}
	if strings.HasPrefix(l, ".aspnetcore.") {
		return true
	}
	for _, w := range strings.FieldsFunc(l, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
		switch {
		case w == "sid", strings.HasPrefix(w, "sess"), strings.HasPrefix(w, "ssess"), strings.HasSuffix(w, "sessid"):
			return true
		}
		for _, k := range []string{"session", "auth", "token", "jwt"} {
			if strings.Contains(w, k) {
				return true
			}
		}
	}
	return false
}

// cookieIssue is one problem with one cookie.
type cookieIssue struct {
	outcome check.Outcome
	text    string
}

// judgeCookie judges one cookie set on hop h at collection time at; it
// returns ok=false when a browser would not store it (then note says
// why), and the problems of a stored one.
func judgeCookie(raw string, h *webfetch.Hop, at time.Time) (issues []cookieIssue, stored bool, note string) {
	c, err := ParseSetCookie(raw)
	if err != nil {
		return nil, false, "ignored by browsers: " + err.Error()
	}
	lname := strings.ToLower(c.Name)
	switch {
	case strings.HasPrefix(lname, "__secure-") && !c.Secure:
		return nil, false, "ignored by browsers: a __Secure- cookie without Secure"
	case strings.HasPrefix(lname, "__host-") && (!c.Secure || c.Domain != "" || c.Path != "/"):
		return nil, false, "ignored by browsers: a __Host- cookie needs Secure, Path=/ and no Domain"
	case c.Secure && !h.TLS:
		return nil, false, "ignored by browsers: a Secure cookie set over plain HTTP"
	case c.SameSite == SameSiteNone && !c.Secure:
		return nil, false, "ignored by browsers: SameSite=None without Secure"
	}
	switch {
	case c.MaxAge != nil && *c.MaxAge <= 0:
		return nil, false, "a deletion (Max-Age <= 0)"
	case c.MaxAge == nil && c.Expires != nil && !at.IsZero() && !c.Expires.After(at):
		return nil, false, "a deletion (Expires in the past)"
	}
	if !c.Secure {
		issues = append(issues, cookieIssue{check.Fail, "no Secure"})
		if !h.TLS {
			issues[0].text = "set over plain HTTP without Secure"
		}
	}
	session := c.MaxAge == nil && c.Expires == nil
	if (session || cookieAuthName(c.Name)) && !cookieCSRF(lname) {
		if !c.HTTPOnly {
			issues = append(issues, cookieIssue{check.Fail, "a session cookie without HttpOnly"})
		}
		switch c.SameSite {
		case SameSiteNone:
			issues = append(issues, cookieIssue{check.Fail, "a session cookie with SameSite=None"})
		case SameSiteDefault:
			issues = append(issues, cookieIssue{check.Warn, "a session cookie without SameSite (Lax in Chrome only)"})
		}
	}
	return issues, true, ""
}

// evaluateCookies judges every cookie set on a hop of either chain.
func evaluateCookies(ev Evidence, at time.Time) check.Finding {
	x := check.Finding{CheckID: Cookies, Rule: hdrRule(Cookies)}
	outcome := check.Pass
	var problems, notes []string
	judged, clipped := 0, false
	// The https:// page is usually a hop of both chains: judge a cookie
	// from one URL once.
	seen := map[string]bool{}
	for _, c := range []*Chain{&ev.HTTP, &ev.HTTPS} {
		for i := range c.Hops {
			h := &c.Hops[i]
			if h.Failed() {
				continue
			}
			sc := h.Headers["Set-Cookie"]
			clipped = clipped || sc.Clipped
			for _, raw := range sc.Values {
				key := h.URL + "\x00" + raw
				if seen[key] {
					continue
				}
				seen[key] = true
				name, _, _ := strings.Cut(raw, "=")
				name = hdrClip(strings.TrimSpace(strings.SplitN(name, ";", 2)[0]))
				issues, stored, note := judgeCookie(raw, h, at)
				if !stored {
					if len(notes) < 3 {
						notes = append(notes, fmt.Sprintf("%q from %s %s", name, hdrClip(h.URL), note))
					}
					continue
				}
				judged++
				for _, is := range issues {
					outcome = check.Worst(outcome, is.outcome)
				}
				if len(issues) > 0 && len(problems) < 5 {
					var ts []string
					for _, is := range issues {
						ts = append(ts, is.text)
					}
					problems = append(problems, fmt.Sprintf("%q from %s: %s", name, hdrClip(h.URL), strings.Join(ts, ", ")))
				}
			}
		}
	}
	tail := ""
	if len(notes) > 0 {
		tail = "; not judged: " + strings.Join(notes, "; ")
	}
	switch {
	case outcome == check.Pass && clipped:
		x.Outcome, x.Reason = check.Unknown, string(check.ErrTooLarge)
		x.Message = "could not tell: more or longer Set-Cookie headers were sent than recorded; those recorded are Secure" + tail
	case outcome == check.Pass && judged == 0:
		x.Outcome = check.Pass
		x.Message = "no cookie is set on the front page's http:// and https:// chains" + tail
	case outcome == check.Pass:
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s set, all Secure, and session cookies HttpOnly and SameSite Lax or Strict", cookieCount(judged)) + tail
	default:
		x.Outcome = outcome
		x.Message = fmt.Sprintf("%s set; %s", cookieCount(judged), strings.Join(problems, "; ")) + tail
	}
	return x
}

func cookieCount(n int) string {
	if n == 1 {
		return "1 cookie"
	}
	return fmt.Sprintf("%d cookies", n)
}
