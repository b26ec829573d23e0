package webfetch

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

func TestFollowsChainRecordingEveryHop(t *testing.T) {
	tlsmust.NoLeak(t)
	l := newLab()
	l.serveHTTP(t, "a.test", redirectTo(301, "https://a.test/"))
	mux := http.NewServeMux()
	mux.Handle("/{$}", redirectTo(302, "home?x=1#frag"))
	mux.HandleFunc("/home", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		h.Set("X-Frame-Options", "DENY")
		h.Add("Set-Cookie", "a=1; Secure")
		h.Add("Set-Cookie", "b=2; HttpOnly")
		h.Set("X-Unrecorded", "x")
		fmt.Fprint(w, "hello")
	})
	l.serveHTTPS(t, "a.test", mux)

	r := Fetch(context.Background(), l.env(), "http://a.test", Options{Timeout: 5 * time.Second})
	if r.End != EndFinal || len(r.Hops) != 3 {
		t.Fatalf("end %q with %d hops: %+v", r.End, len(r.Hops), r)
	}
	want := []struct {
		url      string
		tls      bool
		status   int
		location string
		next     string
	}{
		{"http://a.test/", false, 301, "https://a.test/", "https://a.test/"},
		{"https://a.test/", true, 302, "home?x=1#frag", "https://a.test/home?x=1"},
		{"https://a.test/home?x=1", true, 200, "", ""},
	}
	for i, w := range want {
		h := r.Hops[i]
		if h.URL != w.url || h.TLS != w.tls || h.Status != w.status || h.Location != w.location || h.Next != w.next {
			t.Errorf("hop %d = %s tls=%v %d %q -> %q; want %+v", i, h.URL, h.TLS, h.Status, h.Location, h.Next, w)
		}
		if (h.Body != nil) != (i == 2) {
			t.Errorf("hop %d: body read = %v; only the last hop's is", i, h.Body != nil)
		}
		if w.tls {
			if h.Conn == nil || h.Conn.Version == 0 || len(h.Conn.Certs) == 0 {
				t.Fatalf("hop %d: no TLS session recorded: %+v", i, h.Conn)
			}
			if _, err := x509.ParseCertificate(h.Conn.Certs[0]); err != nil {
				t.Errorf("hop %d: the recorded leaf is not DER: %v", i, err)
			}
			if h.Conn.ServerName != "a.test" {
				t.Errorf("hop %d: SNI %q", i, h.Conn.ServerName)
			}
		} else if h.Conn != nil {
			t.Errorf("hop %d: a TLS session on plain http", i)
		}
	}
	last := r.Last()
	if got := last.Headers.Get("strict-transport-security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("HSTS %q", got)
	}
	if got := last.Headers.Values("Set-Cookie"); !reflect.DeepEqual(got, []string{"a=1; Secure", "b=2; HttpOnly"}) {
		t.Errorf("cookies %q", got)
	}
	if last.Headers.Has("X-Unrecorded") {
		t.Error("an unlisted header was recorded")
	}
	if string(last.Body.Data) != "hello" || last.Body.Truncated || !last.Body.UTF8 {
		t.Errorf("body %+v", last.Body)
	}
	roundTripJSON(t, r)
}

// roundTripJSON: the evidence survives storage as it is.
func roundTripJSON(t *testing.T, r Result) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back.ElapsedMS = r.ElapsedMS
	if !reflect.DeepEqual(back, r) {
		t.Errorf("JSON round trip changed the evidence:\n%+v\n%+v", r, back)
	}
}

func TestOffScopeLocationIsRecordedNotFetched(t *testing.T) {
	tlsmust.NoLeak(t)
	l := newLab()
	l.serveHTTPS(t, "a.test", redirectTo(302, "https://evil.test/x"))
	l.serveHTTPS(t, "evil.test", ok("should not be fetched"))
	allowed := func(h string) bool { return h == "a.test" }
	r := Fetch(context.Background(), l.env(), "https://a.test/", Options{Allowed: allowed, Timeout: 5 * time.Second})
	if r.End != EndScope || r.Next != "https://evil.test/x" || r.Class != check.ErrScope || len(r.Hops) != 1 {
		t.Fatalf("got %+v", r)
	}
	if n := l.dialed("evil.test:443"); n != 0 {
		t.Fatalf("the out-of-scope host was dialled %d times", n)
	}
	if r.Hops[0].Body == nil {
		t.Error("the last hop fetched has no body")
	}
	// With no Allowed, only the first host is in scope.
	r = Fetch(context.Background(), l.env(), "https://a.test/", Options{Timeout: 5 * time.Second})
	if r.End != EndScope || l.dialed("evil.test:443") != 0 {
		t.Fatalf("nil Allowed followed another host: %+v", r)
	}
}

func TestOutOfScopeFirstURLIsNotFetched(t *testing.T) {
	l := newLab()
	r := Fetch(context.Background(), l.env(), "https://b.test/", Options{Allowed: func(string) bool { return false }})
	if r.End != EndScope || len(r.Hops) != 0 || l.dialed("b.test:443") != 0 {
		t.Fatalf("got %+v", r)
	}
}

func TestDialerRefusalIsScope(t *testing.T) {
	l := newLab() // no routes: the dialer refuses everything
	r := Fetch(context.Background(), l.env(), "https://b.test/", Options{Allowed: func(string) bool { return true }})
	if r.End != EndError || r.Class != check.ErrScope || r.Hops[0].Stage != StageDial {
		t.Fatalf("got %+v", r)
	}
}

func TestRedirectEnds(t *testing.T) {
	tests := []struct {
		name     string
		handler  http.Handler
		opts     Options
		end      End
		hops     int
		next     string
		nextEnd  LocationEnd
		fetchedB bool
	}{
		{name: "loop", handler: loopHandler(), end: EndLoop, hops: 2, next: "https://a.test/a"},
		{name: "max hops", handler: countingHandler(), opts: Options{MaxHops: 5}, end: EndMaxHops, hops: 5, next: "https://a.test/5"},
		{name: "ftp", handler: redirectTo(301, "ftp://a.test/file"), end: EndScheme, hops: 1, next: "ftp://a.test/file"},
		{name: "javascript", handler: redirectTo(302, "javascript:alert(1)"), end: EndScheme, hops: 1, next: "javascript:alert(1)"},
		{name: "relative", handler: relHandler("../b/c"), end: EndFinal, hops: 2},
		{name: "protocol-relative", handler: relHandler("//b.test/p"), end: EndFinal, hops: 2, fetchedB: true},
		{name: "backslash as a browser reads it", handler: relHandler(`/\b.test/p`), end: EndFinal, hops: 2, fetchedB: true},
		{name: "no location", handler: redirectTo(302, ""), end: EndNoLocation, hops: 1},
		{name: "userinfo", handler: redirectTo(302, "https://u:p@a.test/"), end: EndBadLocation, hops: 1, next: "https://a.test/", nextEnd: LocationUserinfo},
		{name: "bad port", handler: redirectTo(302, "https://a.test:99999/"), end: EndBadLocation, hops: 1, nextEnd: LocationBadPort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			l := newLab()
			l.serveHTTPS(t, "a.test", tc.handler)
			l.serveHTTPS(t, "b.test", ok("b"))
			tc.opts.Allowed = func(h string) bool { return h == "a.test" || h == "b.test" }
			tc.opts.Timeout = 5 * time.Second
			r := Fetch(context.Background(), l.env(), "https://a.test/a", tc.opts)
			if r.End != tc.end || len(r.Hops) != tc.hops || r.Next != tc.next || r.NextEnd != tc.nextEnd {
				t.Fatalf("end %q, %d hops, next %q (%q); want %q, %d, %q (%q)\n%+v", r.End, len(r.Hops), r.Next, r.NextEnd, tc.end, tc.hops, tc.next, tc.nextEnd, r)
			}
			if got := l.dialed("b.test:443") > 0; got != tc.fetchedB {
				t.Errorf("b.test fetched = %v", got)
			}
			if r.Last().Body == nil {
				t.Error("the last hop has no body")
			}
		})
	}
}

func loopHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next := "/b"
		if r.URL.Path == "/b" {
			next = "https://a.test/a"
		}
		redirectTo(302, next).ServeHTTP(w, r)
	})
}

func countingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		fmt.Sscanf(r.URL.Path, "/%d", &n)
		redirectTo(302, fmt.Sprintf("/%d", n+1)).ServeHTTP(w, r)
	})
}

func relHandler(loc string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			redirectTo(302, loc).ServeHTTP(w, r)
			return
		}
		ok("end").ServeHTTP(w, r)
	})
}

func TestScriptInHeadersIsRecordedVerbatim(t *testing.T) {
	tlsmust.NoLeak(t)
	l := newLab()
	script := `<script>alert("x")</script>`
	l.serveHTTPS(t, "a.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", script)
		w.Header().Set("Content-Security-Policy", "default-src 'self'; "+script)
		w.Header().Set("X-Powered-By", "caf\xe9") // not UTF-8
		fmt.Fprint(w, "<title>"+script+"</title>")
	}))
	r := Fetch(context.Background(), l.env(), "https://a.test/", Options{Timeout: 5 * time.Second})
	h := r.Last()
	if h.Headers.Get("Server") != script || !strings.HasSuffix(h.Headers.Get("Content-Security-Policy"), script) {
		t.Errorf("headers not verbatim: %+v", h.Headers)
	}
	if got := h.Headers.Get("X-Powered-By"); got != "caf\uFFFD" {
		t.Errorf("invalid UTF-8 kept as %q", got)
	}
	if !bytes.Contains(h.Body.Data, []byte(script)) {
		t.Errorf("body %q", h.Body.Data)
	}
	roundTripJSON(t, r)
}

func TestNonUTF8BodyIsKeptAsBytes(t *testing.T) {
	tlsmust.NoLeak(t)
	l := newLab()
	raw := []byte("Contact: mailto:a@b\n\xff\xfe\x00caf\xe9")
	l.serveHTTPS(t, "a.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(raw) }))
	r := Fetch(context.Background(), l.env(), "https://a.test/", Options{Timeout: 5 * time.Second})
	b := r.Last().Body
	if !bytes.Equal(b.Data, raw) || b.UTF8 {
		t.Fatalf("body %+v", b)
	}
	roundTripJSON(t, r)
}

func TestContentCodings(t *testing.T) {
	const text = "Contact: mailto:security@a.test\n"
	enc := func(f func(*bytes.Buffer)) []byte { var b bytes.Buffer; f(&b); return b.Bytes() }
	gz := enc(func(b *bytes.Buffer) { w := gzip.NewWriter(b); w.Write([]byte(text)); w.Close() })
	zl := enc(func(b *bytes.Buffer) { w := zlib.NewWriter(b); w.Write([]byte(text)); w.Close() })
	fl := enc(func(b *bytes.Buffer) { w, _ := flate.NewWriter(b, 5); w.Write([]byte(text)); w.Close() })
	gzgz := enc(func(b *bytes.Buffer) { w := gzip.NewWriter(b); w.Write(gz); w.Close() })
	tests := []struct {
		name, coding string
		body         []byte
		want         string
		notDecoded   bool
		class        check.ErrClass
	}{
		{"identity", "", []byte(text), text, false, ""},
		{"gzip", "gzip", gz, text, false, ""},
		{"deflate as zlib", "deflate", zl, text, false, ""},
		{"deflate sent raw", "Deflate", fl, text, false, ""},
		{"gzip twice", "gzip, gzip", gzgz, text, false, ""},
		{"br", "br", []byte{0x0b, 0x02, 0x80}, "", true, ""},
		{"unknown", "zstd", []byte{1, 2, 3}, "", true, ""},
		{"too many", "gzip,gzip,gzip,gzip", gz, "", true, ""},
		{"corrupt gzip", "gzip", append(gz[:12:12], 0xff, 0xff, 0xff), "", false, check.ErrMalformed},
		{"not gzip", "gzip", []byte("plain"), "", false, check.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			l := newLab()
			l.serveHTTPS(t, "a.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.coding != "" {
					w.Header().Set("Content-Encoding", tc.coding)
				}
				w.Write(tc.body)
			}))
			r := Fetch(context.Background(), l.env(), "https://a.test/", Options{Timeout: 5 * time.Second})
			b := r.Last().Body
			if tc.class != "" {
				if b.Class != tc.class || string(b.Data) == text {
					t.Fatalf("body %+v", b)
				}
				return
			}
			if string(b.Data) != tc.want || (b.NotDecoded != "") != tc.notDecoded || b.Class != "" {
				t.Fatalf("body %+v", b)
			}
		})
	}
}

// TestHugeBodyStopsAtTheCap: a server announcing and streaming 2 GB.
func TestHugeBodyStopsAtTheCap(t *testing.T) {
	tlsmust.NoLeak(t)
	l := newLab()
	l.serveRaw(t, "a.test:80", func(c net.Conn) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n", int64(2)<<30)
		chunk := bytes.Repeat([]byte("A"), 64<<10)
		for sent := 0; sent < 2<<30; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	start := time.Now()
	r := Fetch(context.Background(), l.env(), "http://a.test/", Options{Timeout: 10 * time.Second})
	if took := time.Since(start).Milliseconds(); r.ElapsedMS > took || r.ElapsedMS < r.Hops[0].ElapsedMS {
		t.Errorf("elapsed %d ms recorded, hop %d ms, %d ms measured", r.ElapsedMS, r.Hops[0].ElapsedMS, took)
	}
	b := r.Last().Body
	if !b.Truncated || len(b.Data) != DefaultMaxBody || b.Class != "" {
		t.Fatalf("truncated=%v len=%d class=%q", b.Truncated, len(b.Data), b.Class)
	}
	if b.WireBytes > DefaultMaxBody+wireSlack {
		t.Errorf("read %d bytes off the wire", b.WireBytes)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestGzipBombStopsAtTheCapAfterDecoding: gzip of up to 2 GiB of zeros.
func TestGzipBombStopsAtTheCapAfterDecoding(t *testing.T) {
	tlsmust.NoLeak(t)
	l := newLab()
	l.serveHTTPS(t, "a.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
		zeros := make([]byte, 1<<20)
		for range 2048 {
			if _, err := zw.Write(zeros); err != nil {
				return
			}
		}
		zw.Close()
	}))
	r := Fetch(context.Background(), l.env(), "https://a.test/", Options{Timeout: 10 * time.Second})
	b := r.Last().Body
	if !b.Truncated || len(b.Data) != DefaultMaxBody || b.Class != "" {
		t.Fatalf("truncated=%v len=%d class=%q err=%s", b.Truncated, len(b.Data), b.Class, b.Error)
	}
	if b.WireBytes > 64<<10 {
		t.Errorf("read %d compressed bytes for 1 MiB of zeros", b.WireBytes)
	}
	t.Logf("1 MiB decoded from %d bytes on the wire", b.WireBytes)
}

// TestTricklingServerIsCutOffAndWhatItSentKept: one byte a second.
func TestTricklingServerIsCutOffAndWhatItSentKept(t *testing.T) {
	tlsmust.NoLeak(t)
	l := newLab()
	trickle := func(head string) func(net.Conn) {
		return func(c net.Conn) {
			c.Write([]byte(head))
			for range 60 {
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}
	}
	l.serveRaw(t, "a.test:80", trickle("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"))
	l.serveRaw(t, "b.test:80", trickle("HTTP/1.1 200 OK\r\nServer: slow"))
	for _, tc := range []struct {
		host  string
		check func(r Result)
	}{
		{"a.test", func(r Result) {
			b := r.Last().Body
			if r.End != EndFinal || b.Class != check.ErrTimeout || len(b.Data) == 0 || !bytes.HasPrefix(b.Data, []byte("x")) {
				t.Errorf("body trickle: end %q body %+v", r.End, b)
			}
		}},
		{"b.test", func(r Result) {
			if r.End != EndError || r.Class != check.ErrTimeout || r.Last().Stage != StageResponse {
				t.Errorf("header trickle: %+v", r)
			}
		}},
	} {
		start := time.Now()
		r := Fetch(context.Background(), l.env(), "http://"+tc.host+"/", Options{Timeout: 1500 * time.Millisecond, Allowed: func(string) bool { return true }})
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: took %v for a 1.5 s budget", tc.host, d)
		}
		tc.check(r)
	}
}

// TestTwentyThousandHeadersAreTooLarge: a head over MaxHeaderBytes.
func TestTwentyThousandHeadersAreTooLarge(t *testing.T) {
	tlsmust.NoLeak(t)
	l := newLab()
	head := func(c net.Conn) {
		var b bytes.Buffer
		b.WriteString("HTTP/1.1 200 OK\r\n")
		for i := range 20000 {
			fmt.Fprintf(&b, "X-Header-%05d: %s\r\n", i, strings.Repeat("v", 50))
		}
		b.WriteString("\r\n")
		c.Write(b.Bytes())
	}
	l.serveRaw(t, "a.test:80", head)
	r := Fetch(context.Background(), l.env(), "http://a.test/", Options{Timeout: 5 * time.Second})
	if r.End != EndError || r.Class != check.ErrTooLarge || r.Hops[0].Stage != StageResponse {
		t.Fatalf("got %+v", r)
	}
	// The same head is read within a larger bound.
	r = Fetch(context.Background(), l.env(), "http://a.test/", Options{Timeout: 5 * time.Second, MaxHeaderBytes: 4 << 20})
	if r.End != EndFinal || r.Last().Status != 200 {
		t.Fatalf("under a 4 MiB bound: %+v", r.End)
	}
}

func TestFailuresAreTyped(t *testing.T) {
	tlsmust.NoLeak(t)
	l := newLab()
	l.serveRaw(t, "garbage.test:80", func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n\r\n")) })
	l.serveRaw(t, "hangup.test:80", func(c net.Conn) {})
	plain := tlsmust.Start(t, func(c net.Conn) {
		defer c.Close()
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	})
	l.route("plain.test:443", plain.Addr)
	l.route("refused.test:80", tlsmust.FreePort(t))
	tests := []struct {
		url   string
		stage Stage
		class check.ErrClass
	}{
		{"http://garbage.test/", StageResponse, check.ErrMalformed},
		{"http://hangup.test/", StageResponse, check.ErrBlocked},
		{"https://plain.test/", StageTLS, check.ErrBlocked},
		{"http://refused.test/", StageDial, check.ErrUnreachable},
		{"http://unrouted.test/", StageDial, check.ErrScope},
	}
	for _, tc := range tests {
		r := Fetch(context.Background(), l.env(), tc.url, Options{Timeout: 3 * time.Second})
		h := r.Last()
		if r.End != EndError || h == nil || h.Stage != tc.stage || h.Class != tc.class || r.Class != tc.class {
			t.Errorf("%s: %+v", tc.url, r)
		}
	}
}

func TestBadStartURL(t *testing.T) {
	for _, u := range []string{"ftp://a.test/", "a.test", "http://", "https://a.test:0/", "http://a b/"} {
		r := Fetch(context.Background(), newLab().env(), u, Options{})
		if r.End != EndBadLocation || len(r.Hops) != 0 {
			t.Errorf("%q: %+v", u, r)
		}
	}
}

func TestResolve(t *testing.T) {
	base, _ := url.Parse("https://a.test/dir/page?q=1")
	tests := []struct {
		loc, next string
		end       LocationEnd
	}{
		{"/x", "https://a.test/x", LocationOK},
		{"x#f", "https://a.test/dir/x", LocationOK},
		{"../../../x", "https://a.test/x", LocationOK},
		{"?y", "https://a.test/dir/page?y", LocationOK},
		{"//b.test", "https://b.test/", LocationOK},
		{"  //b.test/p\t ", "https://b.test/p", LocationOK},
		{`\\b.test\p?a\b`, `https://b.test/p?a\b`, LocationOK},
		{"/\r\n/b.test/", "https://b.test/", LocationOK},
		{"HTTP://B.test:8443/", "http://B.test:8443/", LocationOK},
		{"http://b.test:/", "http://b.test/", LocationOK},
		{"ftp://b.test/f", "ftp://b.test/f", LocationScheme},
		{"javascript:alert(1)", "javascript:alert(1)", LocationScheme},
		{"data:text/html,<b>", "data:text/html,<b>", LocationScheme},
		{"https://u:p@b.test/", "https://b.test/", LocationUserinfo},
		{"https:///x", "", LocationNoHost},
		{"http://b.test:0/", "", LocationBadPort},
		{"http://b.test:x/", "", LocationBad},
		{"http://[::1/", "", LocationBad},
		{"/" + strings.Repeat("a", MaxLocation), "", LocationTooLong},
	}
	for _, tc := range tests {
		next, end := Resolve(base, tc.loc)
		if next != tc.next || end != tc.end {
			t.Errorf("Resolve(%q) = %q, %q; want %q, %q", tc.loc, next, end, tc.next, tc.end)
		}
	}
}

func TestBoundHeaders(t *testing.T) {
	h := http.Header{}
	for i := range 100 {
		h.Add("Set-Cookie", fmt.Sprintf("c%d=1", i))
	}
	for range 6 {
		h.Add("Strict-Transport-Security", "max-age=1")
	}
	h.Set("Content-Security-Policy", strings.Repeat("a", MaxValueLen+10))
	got := BoundHeaders(h)
	if c := got["Set-Cookie"]; len(c.Values) != MaxCookies || c.Count != 100 || !c.Clipped {
		t.Errorf("cookies: %d kept of %d, clipped %v", len(c.Values), c.Count, c.Clipped)
	}
	if s := got["Strict-Transport-Security"]; len(s.Values) != MaxValues || s.Count != 6 || !s.Clipped {
		t.Errorf("HSTS: %+v", s)
	}
	if c := got["Content-Security-Policy"]; len(c.Values[0]) != MaxValueLen || !c.Clipped {
		t.Errorf("CSP: %d bytes", len(c.Values[0]))
	}
	// The budget bounds a hop however many headers there are.
	big := http.Header{}
	for _, n := range Recorded {
		for range MaxCookies {
			big.Add(n, strings.Repeat("b", MaxValueLen))
		}
	}
	size := 0
	for _, v := range BoundHeaders(big) {
		for _, s := range v.Values {
			size += len(s)
		}
	}
	if size > MaxHeaderBudget {
		t.Errorf("%d bytes recorded over a %d budget", size, MaxHeaderBudget)
	}
}

// TestSilentServerCostsTheWaitTimeoutNotTheWholeBudget: a server that
// accepts and never answers (a tarpit), on HTTP or in the TLS handshake,
// ends the hop after WaitTimeout as could-not-tell, well before Timeout.
func TestSilentServerCostsTheWaitTimeoutNotTheWholeBudget(t *testing.T) {
	tlsmust.NoLeak(t)
	l := newLab()
	silent := func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
	l.serveRaw(t, "tarpit.test:80", silent)
	l.serveRaw(t, "tarpit.test:443", silent)
	for _, u := range []string{"http://tarpit.test/", "https://tarpit.test/"} {
		start := time.Now()
		r := Fetch(context.Background(), l.env(), u, Options{Timeout: 10 * time.Second, WaitTimeout: 300 * time.Millisecond})
		took := time.Since(start)
		last := r.Hops[len(r.Hops)-1]
		if took > 3*time.Second {
			t.Errorf("%s: took %v, want about the 300 ms wait timeout", u, took)
		}
		if last.Class != check.ErrTimeout && last.Class != check.ErrBlocked {
			t.Errorf("%s: class %q (%s), want timeout or blocked", u, last.Class, last.Error)
		}
	}
}
