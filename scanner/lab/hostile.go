package lab

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webcheck"
)

// hostileFamily: web servers that attack the scanner, each a host of
// lab-web-hostile.nhs.uk (the trickles: of lab-web-hostile-slow.nhs.uk and
// lab-web-hostile-drip.nhs.uk) serving HTTPS (its HTTP port redirects
// there, as a good host's does). Every path of a host gets the same hostile answer
// (/, /.well-known/security.txt, whatever a template asks), so every
// check that fetches from it meets the behaviour:
//
//	huge.<d>   200, a 2 GiB body (Content-Length 2147483648), streamed
//	           from one 32 KiB buffer: never built in memory.
//	bomb.<d>   200, Content-Encoding: gzip, 1 GiB of zeros compressed to
//	           about 1 MB on the wire (built once, from a repeated
//	           deflate segment).
//	loop.<d>   302 between / and /loop for ever (a redirect loop).
//	slow.<d>   200 with its headers at once, then the body one byte a
//	           second, until the client goes (at most two minutes).
//	drip.<d>   the status line and headers one byte a second, never
//	           finished (at most two minutes).
//	many.<d>   200 with 20,000 extra headers (about 420 KB, under the
//	           fetcher's 1 MiB header cap).
//	xss.<d>    200, script in the page title and in header values
//	           (Server, X-Powered-By, and the Strict-Transport-Security
//	           value itself): <script>alert(1)</script> and
//	           "><img src=x onerror=alert(1)>.
//
// Each sends the good page's headers (goodPage: HSTS with a year and
// includeSubDomains, CSP, nosniff, DENY, a referrer policy) besides its
// hostility, xss's HSTS value excepted.
//
// The scanner bounds each (checks/webfetch): 20 s for a chain, 8 s for a
// silent wait, 1 MiB of body after decoding, 1 MiB of headers; what it
// read is recorded (a cut body is evidence, not an error that loses the
// hop). What it finds (hostileHandler.expect, stated by the web family's
// Complete through webExpectHost):
//
//	host   https.available  http.enforced  hsts.present  .max-age  .subdomains  redirect.scope
//	huge   pass             pass           pass          pass      n/a          pass
//	bomb   pass             pass           pass          pass      n/a          pass
//	loop   pass             pass           pass          pass      n/a          warn (a loop)
//	slow   pass             pass           pass          pass      n/a          pass
//	drip   unknown          pass           unknown       unknown   unknown      unknown
//	many   pass             pass           pass          pass      n/a          pass
//	xss    pass             pass           fail          n/a       n/a          pass
//
// web.hsts.preload and web.nonprod.protected are n/a on all (www-like
// names below the apex). Other families judging these hosts state their
// own ids: as exposure.go does, take web.https.available from
// webExpectHost (unknown on drip: the scanner never gets its headers).
// Asked in-process (webAsk, not over a connection), a hostile handler
// answers at once with the same status and headers and at most 64 KiB of
// body, so deriving truth from it never streams gigabytes or sleeps.
var hostileFamily = Family{Name: "hostile", Cases: hostileCases}

// HostileCase is the main case's name; its domain is
// lab-web-hostile.nhs.uk (HostileHost names each host).
const HostileCase = "web-hostile"

// hostileKinds are the hosts, by first label.
var hostileKinds = []string{"huge", "bomb", "loop", "slow", "drip", "many", "xss"}

// Hostile payloads (shown escaped in every report).
const (
	HostileScript = "<script>alert(1)</script>"
	HostileImg    = `"><img src=x onerror=alert(1)>`
)

const (
	hostileHugeSize  = 2 << 30 // bytes the huge host declares and would send
	hostileBombSize  = 1 << 30 // bytes the bomb decodes to
	hostileTrickle   = 120     // most bytes a trickle sends, one a second
	hostileInProcess = 64 << 10
	hostileHeaders   = 20_000
)

// hostileGroups are the cases and their hosts. The trickles have domains
// of their own: the scanner runs at most 4 jobs of one estate domain at a
// time (politeness), so on a shared domain their long jobs (a chain's
// whole 20 s budget each) would queue behind one another and the rest of
// the domain's; alone, they run beside the rest of the scan.
var hostileGroups = []struct {
	name  string
	kinds []string
}{
	{HostileCase, []string{"huge", "bomb", "loop", "many", "xss"}},
	{HostileCase + "-slow", []string{"slow"}},
	{HostileCase + "-drip", []string{"drip"}},
}

func hostileCases() []Case {
	var cs []Case
	for _, g := range hostileGroups {
		cs = append(cs, Case{Name: g.name, Build: func(d string) Domain {
			dom := Domain{Name: d}
			for _, k := range g.kinds {
				n := k + "." + d
				dom.Hosts = append(dom.Hosts, Host{Name: n, Web: &WebSpec{HTTPS: &hostileHandler{kind: k}}})
				dom.CT = append(dom.CT, n)
			}
			return dom
		}})
	}
	return cs
}

// HostileHost is the name of a hostile host (first stamp) by kind.
func HostileHost(kind string) string {
	for _, g := range hostileGroups {
		if slices.Contains(g.kinds, kind) {
			return kind + ".lab-" + g.name + ".nhs.uk"
		}
	}
	return ""
}

// hostileHandler serves one hostile behaviour on every path.
type hostileHandler struct{ kind string }

// expect is what the scanner finds on the host (see the table above).
func (h *hostileHandler) expect() map[string]check.Outcome {
	P, W, F, U, N := check.Pass, check.Warn, check.Fail, check.Unknown, check.NA
	w := map[string]check.Outcome{webcheck.HTTPSAvailable: P, webcheck.HTTPEnforced: P, webcheck.HSTSPresent: P,
		webcheck.HSTSMaxAge: P, webcheck.HSTSSubdomains: N, webcheck.HSTSPreload: N, webcheck.RedirectScope: P,
		webcheck.NonprodProtected: N}
	switch h.kind {
	case "loop":
		w[webcheck.RedirectScope] = W
	case "drip":
		w[webcheck.HTTPSAvailable], w[webcheck.HSTSPresent], w[webcheck.HSTSMaxAge], w[webcheck.HSTSSubdomains] = U, U, U, U
		w[webcheck.RedirectScope] = U
	case "xss":
		w[webcheck.HSTSPresent], w[webcheck.HSTSMaxAge] = F, N
	}
	return w
}

// hostileLive reports a request that came over a connection to the lab's
// server (not webAsk's in-process recorder).
func hostileLive(r *http.Request) bool { return r.Context().Value(http.ServerContextKey) != nil }

func (h *hostileHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	live := hostileLive(r)
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Strict-Transport-Security", webHSTS)
	hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	switch h.kind {
	case "huge":
		hd.Set("Content-Length", strconv.Itoa(hostileHugeSize))
		w.WriteHeader(http.StatusOK)
		hostileStream(w, hostileHugeSize, live)
	case "bomb":
		bomb := hostileBomb()
		hd.Set("Content-Encoding", "gzip")
		hd.Set("Content-Length", strconv.Itoa(len(bomb)))
		w.WriteHeader(http.StatusOK)
		w.Write(bomb)
	case "loop":
		to := "/loop"
		if r.URL.Path == "/loop" {
			to = "/"
		}
		http.Redirect(w, r, to, http.StatusFound)
	case "slow":
		w.WriteHeader(http.StatusOK)
		hostileTrickleBody(w, r, live)
	case "drip":
		hostileDrip(w, live)
	case "many":
		for i := range hostileHeaders {
			hd["X-Lab-Noise-"+strconv.Itoa(10000+i)] = []string{"1"}
		}
		fmt.Fprint(w, "<!doctype html><title>many headers</title><p>A lab host of posture.</p>\n")
	case "xss":
		hd.Set("Strict-Transport-Security", webHSTS+"; "+HostileScript)
		hd.Set("Server", HostileScript)
		hd.Set("X-Powered-By", HostileImg)
		fmt.Fprintf(w, "<!doctype html><title>%s%s</title><p>A lab host of posture.</p>\n", HostileScript, HostileImg)
	}
}

// hostileChunk is what the huge and slow bodies repeat.
var hostileChunk = bytes.Repeat([]byte("<p>posture lab: a body that does not end.</p>\n"), 32<<10/47)

// hostileStream writes n bytes from one buffer (64 KiB in-process) until
// the client goes.
func hostileStream(w http.ResponseWriter, n int, live bool) {
	if !live {
		n = hostileInProcess
	}
	for n > 0 {
		b := hostileChunk[:min(len(hostileChunk), n)]
		if _, err := w.Write(b); err != nil {
			return
		}
		n -= len(b)
	}
}

// hostileTrickleBody sends one byte a second until the client goes.
func hostileTrickleBody(w http.ResponseWriter, r *http.Request, live bool) {
	if !live {
		w.Write(hostileChunk[:64])
		return
	}
	f, _ := w.(http.Flusher)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for i := range hostileTrickle {
		if _, err := w.Write(hostileChunk[i%len(hostileChunk) : i%len(hostileChunk)+1]); err != nil {
			return
		}
		if f != nil {
			f.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

// hostileDrip takes the connection and writes the response head one byte
// a second, never finishing it.
func hostileDrip(w http.ResponseWriter, live bool) {
	if !live {
		fmt.Fprint(w, "<p>the response head never ends</p>")
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Lab-Drip: " + string(bytes.Repeat([]byte("."), hostileTrickle)))
	for i := range min(len(head), hostileTrickle) {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(head[i : i+1]); err != nil {
			return
		}
		time.Sleep(time.Second)
	}
}

// hostileBomb is a gzip member that decodes to hostileBombSize zeros: the
// deflate encoding of 1 MiB of zeros after 1 MiB of zeros, repeated (a
// back-reference into the previous segment finds zeros too), closed by an
// empty final block and the right CRC-32 and length.
var hostileBomb = sync.OnceValue(func() []byte {
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	fw.Write(zeros)
	fw.Flush()
	first := z.Len()
	fw.Write(zeros)
	fw.Flush()
	seg := bytes.Clone(z.Bytes()[first:])
	n := hostileBombSize >> 20
	out := bytes.NewBuffer(make([]byte, 0, first+len(seg)*(n-1)+32))
	out.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff}) // gzip header: deflate, best compression, unknown OS
	out.Write(z.Bytes()[:first])
	for range n - 1 {
		out.Write(seg)
	}
	out.Write([]byte{0x01, 0x00, 0x00, 0xff, 0xff}) // a final, empty stored block
	crc := uint32(0)
	for range n {
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	var tr [8]byte
	binary.LittleEndian.PutUint32(tr[:4], crc)
	binary.LittleEndian.PutUint32(tr[4:], uint32(hostileBombSize))
	out.Write(tr[:])
	return out.Bytes()
})
