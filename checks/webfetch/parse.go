package webfetch

import (
	"net/http"
	"net/url"
	"strings"
)

// Header bounds: what one hop may record of the fields that matter.
const (
	// MaxValueLen bounds one header value (bytes): a longer value is cut
	// there and the header marked Clipped. 8 KiB holds any sane CSP.
	MaxValueLen = 8 << 10
	// MaxValues bounds the values kept of one header; MaxCookies those of
	// Set-Cookie. Count still says how many the server sent.
	MaxValues  = 4
	MaxCookies = 32
	// MaxHeaderBudget bounds the bytes of all recorded values of one hop;
	// values past it are counted, not kept.
	MaxHeaderBudget = 64 << 10
	// MaxLocation bounds a Location the fetcher will resolve and follow.
	MaxLocation = 8 << 10
	// maxCodings bounds the Content-Encoding layers undone.
	maxCodings = 3
)

// Recorded are the response headers a hop keeps (canonical names): those
// the web checks judge (docs/checks.md §1.2–§1.4: transport, security
// headers, info leaks, deprecated headers, cookies, body framing). The
// Location is kept on the Hop itself.
var Recorded = []string{
	"Strict-Transport-Security",
	"Content-Security-Policy",
	"Content-Security-Policy-Report-Only",
	"X-Frame-Options",
	"X-Content-Type-Options",
	"Referrer-Policy",
	"Permissions-Policy",
	"Set-Cookie",
	"Server",
	"X-Powered-By",
	"X-Aspnet-Version",
	"X-Aspnetmvc-Version",
	"Public-Key-Pins",
	"Public-Key-Pins-Report-Only",
	"Expect-Ct",
	"X-Xss-Protection",
	"Content-Type",
	"Content-Encoding",
	"Content-Length",
	"Cache-Control",
}

// Header is one recorded response header.
type Header struct {
	// Values in the order received, at most MaxValues (MaxCookies for
	// Set-Cookie), each at most MaxValueLen bytes, invalid UTF-8 replaced
	// by U+FFFD (so that the evidence survives a JSON round trip as is).
	// Values are data: script in them is kept verbatim; reports escape.
	Values []string `json:"values"`
	// Count is how many fields of this name the server sent.
	Count int `json:"count"`
	// Clipped: a value was cut or values were dropped by a bound.
	Clipped bool `json:"clipped,omitempty"`
}

// Headers are the recorded headers of one response, by canonical name.
type Headers map[string]Header

// Get returns the first value of name ("" when absent).
func (h Headers) Get(name string) string {
	v := h[http.CanonicalHeaderKey(name)]
	if len(v.Values) == 0 {
		return ""
	}
	return v.Values[0]
}

// Values returns every kept value of name.
func (h Headers) Values(name string) []string { return h[http.CanonicalHeaderKey(name)].Values }

// Has reports whether the server sent name at all.
func (h Headers) Has(name string) bool { return h[http.CanonicalHeaderKey(name)].Count > 0 }

// BoundHeaders keeps the Recorded headers of hdr within the bounds.
func BoundHeaders(hdr http.Header) Headers {
	out := Headers{}
	budget := MaxHeaderBudget
	for _, name := range Recorded {
		vs := hdr[name]
		if len(vs) == 0 {
			continue
		}
		limit := MaxValues
		if name == "Set-Cookie" {
			limit = MaxCookies
		}
		h := Header{Count: len(vs), Values: []string{}}
		for i, v := range vs {
			if i == limit || budget <= 0 {
				h.Clipped = true
				break
			}
			if len(v) > MaxValueLen {
				v, h.Clipped = v[:MaxValueLen], true
			}
			if len(v) > budget {
				v, h.Clipped = v[:budget], true
			}
			budget -= len(v)
			h.Values = append(h.Values, strings.ToValidUTF8(v, "\uFFFD"))
		}
		out[name] = h
	}
	return out
}

// LocationEnd says why a Location cannot be followed ("" when it can).
type LocationEnd string

const (
	LocationOK       LocationEnd = ""
	LocationTooLong  LocationEnd = "too-long"  // over MaxLocation
	LocationBad      LocationEnd = "malformed" // not a URI reference
	LocationScheme   LocationEnd = "scheme"    // not http or https (ftp:, javascript:, data: …)
	LocationNoHost   LocationEnd = "no-host"   // http(s) without a host
	LocationBadPort  LocationEnd = "bad-port"  // a port that is not a number in 1–65535
	LocationUserinfo LocationEnd = "userinfo"  // credentials in the URL
)

// Resolve resolves a Location against the URL that answered it as a
// browser would (RFC 3986 §5.2 reference resolution after the WHATWG URL
// standard's clean-up for http and https: leading and trailing C0
// controls and spaces trimmed, tabs and newlines removed, backslashes
// before the query taken as slashes), so that "/\evil.example" goes where
// a browser goes. It returns the absolute URL without its fragment, or
// why it cannot be followed; next is still set, bounded, where it could
// be resolved (an ftp: target is recorded).
func Resolve(base *url.URL, loc string) (next string, end LocationEnd) {
	if len(loc) > MaxLocation {
		return "", LocationTooLong
	}
	loc = cleanLocation(loc)
	ref, err := url.Parse(loc)
	if err != nil {
		return "", LocationBad
	}
	u := base.ResolveReference(ref)
	if loc == "" && base.ForceQuery {
		// An empty reference is the base itself, its empty query too.
		u.ForceQuery = true
	}
	u.Fragment, u.RawFragment = "", ""
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return strings.ToValidUTF8(clip(u.String(), MaxLocation), "\uFFFD"), LocationScheme
	}
	u.Scheme = scheme
	if u.User != nil {
		u.User = nil
		return clip(u.String(), MaxLocation), LocationUserinfo
	}
	if strings.HasSuffix(u.Host, ":") {
		// An empty port is the default one (RFC 3986 §6.2.3).
		u.Host = strings.TrimSuffix(u.Host, ":")
	}
	if u.Hostname() == "" || u.Opaque != "" {
		return "", LocationNoHost
	}
	if p := u.Port(); p != "" && !validPort(p) {
		return "", LocationBadPort
	}
	if u.Path == "" {
		u.Path = "/"
	}
	next = u.String()
	if len(next) > MaxLocation {
		// Escaping may triple a reference's length.
		return "", LocationTooLong
	}
	return next, LocationOK
}

// cleanLocation applies the WHATWG URL parser's input clean-up.
func cleanLocation(s string) string {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= 0x20 })
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
	// Backslashes are slashes in http(s) URLs, up to the query.
	end := len(s)
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		end = i
	}
	if scheme, ok := schemeOf(s); !ok || scheme == "http" || scheme == "https" {
		s = strings.ReplaceAll(s[:end], `\`, "/") + s[end:]
	}
	return s
}

// schemeOf returns the lower-cased scheme of a URL reference, if it has
// one (RFC 3986 §3.1).
func schemeOf(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') && i > 0:
		case c == ':' && i > 0:
			return strings.ToLower(s[:i]), true
		default:
			return "", false
		}
	}
	return "", false
}

func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}

// Codings parses a Content-Encoding value into the codings applied, in
// the order applied (RFC 9110 §8.4), lower-cased, without "identity";
// ok is false when there are more than maxCodings.
func Codings(v string) (codings []string, ok bool) {
	for _, c := range strings.Split(v, ",") {
		c = strings.ToLower(strings.TrimSpace(c))
		if c == "" || c == "identity" {
			continue
		}
		if len(codings) == maxCodings {
			return codings, false
		}
		codings = append(codings, clip(c, 32))
	}
	return codings, true
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
