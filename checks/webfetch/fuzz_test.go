package webfetch

import (
	"bufio"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzBases = []string{"https://a.test/dir/page?q=1", "http://a.test", "https://[::1]:8443/x/"}

// FuzzResolve: whatever a server puts in Location, a followable result is
// an absolute http(s) URL with a host, no credentials and no fragment,
// bounded, and resolving it again changes nothing.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/x", "//b.test/p", `/\b.test`, "ftp://b.test/", "javascript:alert(1)", "https://u:p@b/",
		"http://b.test:99999/", " \t//b.test\n/", "?q#f", "../../..", "http://[::1/", "HTTPS://B.TEST:/", "%zz", "http:b.test"} {
		f.Add(uint8(0), s)
	}
	f.Fuzz(func(t *testing.T, which uint8, loc string) {
		base, _ := url.Parse(fuzzBases[int(which)%len(fuzzBases)])
		next, end := Resolve(base, loc)
		if len(next) > MaxLocation {
			t.Fatalf("resolved to %d bytes", len(next))
		}
		if end != LocationOK {
			if end == LocationScheme && !utf8.ValidString(next) {
				t.Fatalf("recorded invalid UTF-8 %q", next)
			}
			return
		}
		u, err := url.Parse(next)
		if err != nil {
			t.Fatalf("%q resolved to %q, which does not parse: %v", loc, next, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
			t.Fatalf("%q resolved to %q", loc, next)
		}
		if again, end := Resolve(u, ""); end != LocationOK || again != next {
			t.Fatalf("%q: resolving %q again gave %q (%q)", loc, next, again, end)
		}
	})
}

// FuzzBoundHeaders: whatever head a server sends, what is recorded stays
// within the bounds, is valid UTF-8, and counts what was sent.
func FuzzBoundHeaders(f *testing.F) {
	f.Add("Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nServer: <script>x</script>\r\n")
	f.Add("Strict-Transport-Security: max-age=1\r\nstrict-transport-security: max-age=2\r\nX-Powered-By: caf\xe9\r\n")
	f.Add("Content-Encoding: gzip, br, deflate, x\r\n")
	f.Fuzz(func(t *testing.T, head string) {
		if len(head) > 1<<20 {
			return
		}
		h, _ := textproto.NewReader(bufio.NewReader(strings.NewReader(head + "\r\n\r\n"))).ReadMIMEHeader()
		hdr := http.Header(h)
		got := BoundHeaders(hdr)
		total := 0
		for name, v := range got {
			limit := MaxValues
			if name == "Set-Cookie" {
				limit = MaxCookies
			}
			if v.Count != len(hdr[name]) || len(v.Values) > limit || len(v.Values) > v.Count {
				t.Fatalf("%s: %d kept, count %d, sent %d", name, len(v.Values), v.Count, len(hdr[name]))
			}
			for _, s := range v.Values {
				if !utf8.ValidString(s) || len(s) > MaxValueLen+2*len("\uFFFD")*MaxValueLen {
					t.Fatalf("%s: value %q", name, s)
				}
				total += len(s)
			}
		}
		// U+FFFD may replace a byte by three.
		if total > 3*MaxHeaderBudget {
			t.Fatalf("%d bytes recorded", total)
		}
		codings, ok := Codings(hdr.Get("Content-Encoding"))
		if len(codings) > maxCodings || (!ok && len(codings) != maxCodings) {
			t.Fatalf("codings %q ok=%v", codings, ok)
		}
	})
}
