// Package webfetch is the web family's HTTP probe: it fetches a URL the
// way a browser reaches a site, following redirects itself, and records
// every hop as raw evidence for the web checks (docs/checks.md §1.2–§1.4)
// to judge in Evaluate: the URL asked, TLS or not, the status, the
// Location as sent and as resolved, the headers those checks read, the
// TLS version and the certificates as served (not verified here), timing,
// and the start of the body after decompression.
//
// Every server is taken to be hostile, so everything is bounded:
//   - every connection goes through the injected dialer (check.Env's
//     DialContext: the scope guard on a scan), and every hop's host is
//     first put to Options.Allowed: a Location out of scope ends the chain
//     and is recorded, never fetched;
//   - hops (Options.MaxHops, default 10), redirect loops (a URL asked twice
//     ends the chain), and Locations to other schemes (ftp:, javascript:)
//     end the chain;
//   - total time (the context and Options.Timeout, default 20 s), also set
//     as the connection's deadline, so a server that trickles is cut off
//     and what it sent is kept;
//   - response headers (Options.MaxHeaderBytes, default 1 MiB, through
//     net/http's MaxResponseHeaderBytes), the values recorded (MaxValues,
//     MaxCookies, MaxValueLen, MaxHeaderBudget), the Location followed
//     (MaxLocation);
//   - the body (Options.MaxBody, default 1 MiB) after gzip or deflate
//     decoding (a compression bomb stops at the cap), and the bytes read
//     off the wire for it; br is not decoded (no decoder in the standard
//     library; it is not asked for) and says so.
//
// Failures are typed (check.ErrClass: timeout, too-large, malformed,
// unreachable, blocked, scope) from the error chain and from what was
// measured (bytes read), never from an error's wording. HTTP/1.1 only,
// one connection per hop, no cookies carried, no proxy.
package webfetch

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nhsx/posture/checks/check"
)

// Defaults of Options.
const (
	DefaultMaxHops        = 10
	DefaultMaxBody        = 1 << 20
	DefaultMaxHeaderBytes = 1 << 20
	DefaultTimeout        = 20 * time.Second
	DefaultWaitTimeout    = 8 * time.Second
	// maxCerts and maxCertBytes bound the certificates kept of a hop.
	maxCerts     = 10
	maxCertBytes = 64 << 10
	// wireSlack is how far the bytes read for a body may exceed MaxBody
	// (gzip framing, chunk sizes) before the read stops.
	wireSlack = 64 << 10
	userAgent = "posture (NHS security posture scan)"
)

// Options bound and steer one Fetch. The zero value is usable.
type Options struct {
	// Allowed says whether a hop's host (lower case, no trailing dot, an
	// IP literal without brackets) may be fetched; the scanner passes the
	// scope guard's test. nil: only the first URL's host.
	Allowed func(host string) bool
	// MaxHops is the most requests made (default DefaultMaxHops).
	MaxHops int
	// MaxBody is the most body bytes kept, after decoding (default
	// DefaultMaxBody).
	MaxBody int64
	// MaxHeaderBytes bounds a response's header block (default
	// DefaultMaxHeaderBytes).
	MaxHeaderBytes int64
	// Timeout bounds the whole chain (default DefaultTimeout), within the
	// context's own deadline.
	Timeout time.Duration
	// WaitTimeout bounds each silent wait of a hop: the TLS handshake and
	// the response headers after the request (default DefaultWaitTimeout).
	// A server that accepts and says nothing (a tarpit) costs this, not
	// the whole Timeout; a trickling one is still cut by Timeout.
	WaitTimeout time.Duration
	// BodyEveryHop reads the body of every hop, not only the last.
	BodyEveryHop bool
	// UserAgent is sent on every request (default: posture's).
	UserAgent string
}

func (o Options) withDefaults() Options {
	if o.MaxHops <= 0 {
		o.MaxHops = DefaultMaxHops
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = DefaultWaitTimeout
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.UserAgent == "" {
		o.UserAgent = userAgent
	}
	return o
}

// End says why a chain ended.
type End string

const (
	EndFinal       End = "final"        // the last response was not a redirect
	EndNoLocation  End = "no-location"  // a redirect status without a Location
	EndScope       End = "out-of-scope" // the next host is out of scope: not fetched
	EndLoop        End = "loop"         // the next URL was already asked
	EndMaxHops     End = "max-hops"     // MaxHops requests made and still redirected
	EndScheme      End = "scheme"       // the next URL is not http or https
	EndBadLocation End = "bad-location" // the Location cannot be followed (Result.NextEnd says why)
	EndError       End = "error"        // the last hop failed (its Class says how)
)

// Stage says where a hop failed.
type Stage string

const (
	StageDial     Stage = "dial"     // no connection (refused, scope, timeout)
	StageTLS      Stage = "tls"      // the TLS handshake failed
	StageResponse Stage = "response" // sending the request or reading the response head
)

// Result is the evidence of one Fetch: the chain of hops from URL.
//
// Schema (JSON): {"url", "hops": [Hop], "end": End, "next"?: the URL not
// followed (out of scope, loop, other scheme, hop cap), "next_end"?:
// LocationEnd, "class"?: check.ErrClass of the end ("scope" for
// out-of-scope, else the failed hop's), "error"?: its message (for
// people, never for verdicts), "elapsed_ms"}.
type Result struct {
	URL       string         `json:"url"`
	Hops      []Hop          `json:"hops"`
	End       End            `json:"end"`
	Next      string         `json:"next,omitempty"`
	NextEnd   LocationEnd    `json:"next_end,omitempty"`
	Class     check.ErrClass `json:"class,omitempty"`
	Error     string         `json:"error,omitempty"`
	ElapsedMS int64          `json:"elapsed_ms"`
}

// Last returns the last hop fetched (nil when none was).
func (r *Result) Last() *Hop {
	if len(r.Hops) == 0 {
		return nil
	}
	return &r.Hops[len(r.Hops)-1]
}

// Hop is one request and its response.
//
// Schema (JSON): {"url", "tls": bool (https), "status"?, "proto"?,
// "location"?: as sent (bounded, valid UTF-8), "next"?: resolved,
// "headers"?: Headers, "conn"?: TLSConn, "headers_ms", "elapsed_ms",
// "body"?: Body, "stage"?, "class"?, "error"?, "alerted"?}.
type Hop struct {
	URL      string  `json:"url"`
	TLS      bool    `json:"tls"`
	Status   int     `json:"status,omitempty"`
	Proto    string  `json:"proto,omitempty"`
	Location string  `json:"location,omitempty"`
	Next     string  `json:"next,omitempty"`
	Headers  Headers `json:"headers,omitempty"`
	// Conn is the TLS session (https hops that reached the handshake).
	Conn *TLSConn `json:"conn,omitempty"`
	// HeadersMS is the time to the response head; ElapsedMS to the end
	// of the hop (body included).
	HeadersMS int64 `json:"headers_ms"`
	ElapsedMS int64 `json:"elapsed_ms"`
	Body      *Body `json:"body,omitempty"`
	// Stage, Class and Error say why there is no response.
	Stage Stage          `json:"stage,omitempty"`
	Class check.ErrClass `json:"class,omitempty"`
	Error string         `json:"error,omitempty"`
	// Alerted: the server ended the TLS handshake with an alert.
	Alerted bool `json:"alerted,omitempty"`
}

// Failed reports a hop without a response.
func (h *Hop) Failed() bool { return h.Stage != "" }

// TLSConn is a TLS session as negotiated, its certificates as served.
type TLSConn struct {
	Version    uint16   `json:"version"`
	Suite      uint16   `json:"suite,omitempty"`
	ServerName string   `json:"server_name,omitempty"`
	ALPN       string   `json:"alpn,omitempty"`
	Certs      [][]byte `json:"certs,omitempty"` // DER, leaf first, at most 10 and 64 KiB
}

// Body is the start of a response body.
//
// Schema (JSON): {"data"?: base64 of the decoded bytes (at most MaxBody),
// "truncated"?: the body went on past the cap, "wire_bytes": bytes read
// off the connection for it, "codings"?: Content-Encoding undone, in the
// order applied, "not_decoded"?: why the body was not decoded (then data
// is empty), "utf8": data is valid UTF-8, "class"?, "error"?: what cut
// the read short (data holds what came before)}.
type Body struct {
	Data       []byte         `json:"data,omitempty"`
	Truncated  bool           `json:"truncated,omitempty"`
	WireBytes  int64          `json:"wire_bytes"`
	Codings    []string       `json:"codings,omitempty"`
	NotDecoded string         `json:"not_decoded,omitempty"`
	UTF8       bool           `json:"utf8"`
	Class      check.ErrClass `json:"class,omitempty"`
	Error      string         `json:"error,omitempty"`
}

// redirect reports a status whose Location is followed (RFC 9110 §15.4;
// 300 and 304 are not followed).
func redirect(status int) bool {
	switch status {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// hostOf is the host put to Options.Allowed.
func hostOf(u *url.URL) string {
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// Fetch GETs rawURL (http or https) and follows its redirects within
// o's bounds, through env's dialer. It always returns a Result; its End
// says how the chain ended.
func Fetch(ctx context.Context, env *check.Env, rawURL string, o Options) (res Result) {
	o = o.withDefaults()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	res = Result{URL: clip(strings.ToValidUTF8(rawURL, "\uFFFD"), MaxLocation), Hops: []Hop{}}
	defer func() { res.ElapsedMS = time.Since(start).Milliseconds() }()

	base, err := url.Parse(rawURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		res.End, res.NextEnd = EndBadLocation, LocationBad
		return res
	}
	cur, end := Resolve(base, "")
	if end != LocationOK {
		res.End, res.NextEnd = EndBadLocation, end
		return res
	}
	allowed := o.Allowed
	if allowed == nil {
		first := hostOf(base)
		allowed = func(h string) bool { return h == first }
	}
	seen := map[string]bool{}
	for {
		u, _ := url.Parse(cur) // Resolve returned it
		if !allowed(hostOf(u)) {
			res.End, res.Next, res.Class = EndScope, cur, check.ErrScope
			return res
		}
		if len(res.Hops) == o.MaxHops {
			res.End, res.Next = EndMaxHops, cur
			return res
		}
		seen[cur] = true
		hop, resp := roundTrip(ctx, env, u, o)
		if resp == nil {
			res.Hops = append(res.Hops, hop)
			res.End, res.Class, res.Error = EndError, hop.Class, hop.Error
			return res
		}
		// Decide whether the chain goes on before reading the body: the
		// last hop's body is read.
		var next string
		var lend LocationEnd
		var stop End
		switch {
		case !redirect(resp.StatusCode):
			stop = EndFinal
		case resp.Header.Get("Location") == "":
			stop = EndNoLocation
		default:
			next, lend = Resolve(u, resp.Header.Get("Location"))
			hop.Next = next
			switch {
			case lend == LocationScheme:
				stop = EndScheme
			case lend != LocationOK:
				stop = EndBadLocation
			case seen[next]:
				stop = EndLoop
			}
			if next != "" && stop == "" {
				nu, _ := url.Parse(next)
				if !allowed(hostOf(nu)) {
					stop = EndScope
				} else if len(res.Hops)+1 == o.MaxHops {
					stop = EndMaxHops
				}
			}
		}
		if stop != "" || o.BodyEveryHop {
			hop.Body = readBody(resp, o.MaxBody)
		}
		resp.Body.Close()
		hop.ElapsedMS = time.Since(start).Milliseconds() - sumElapsed(res.Hops)
		res.Hops = append(res.Hops, hop)
		if stop != "" {
			res.End = stop
			switch stop {
			case EndScope:
				res.Next, res.Class = next, check.ErrScope
			case EndScheme, EndLoop, EndMaxHops:
				res.Next = next
			case EndBadLocation:
				res.Next, res.NextEnd = next, lend
			}
			return res
		}
		cur = next
	}
}

func sumElapsed(hops []Hop) int64 {
	var n int64
	for _, h := range hops {
		n += h.ElapsedMS
	}
	return n
}

// hopTrace is what the dialer and the TLS hook saw of one hop.
type hopTrace struct {
	deadline time.Time
	dialed   atomic.Bool
	read     atomic.Int64 // bytes read off the connection

	mu   sync.Mutex
	conn *TLSConn
}

func (ht *hopTrace) recordTLS(cs tls.ConnectionState) {
	c := &TLSConn{Version: cs.Version, Suite: cs.CipherSuite, ServerName: clip(cs.ServerName, 255), ALPN: clip(cs.NegotiatedProtocol, 64)}
	size := 0
	for _, cert := range cs.PeerCertificates {
		if len(c.Certs) == maxCerts || size+len(cert.Raw) > maxCertBytes {
			break
		}
		size += len(cert.Raw)
		c.Certs = append(c.Certs, cert.Raw)
	}
	ht.mu.Lock()
	ht.conn = c
	ht.mu.Unlock()
}

func (ht *hopTrace) tls() *TLSConn {
	ht.mu.Lock()
	defer ht.mu.Unlock()
	return ht.conn
}

// countConn counts the bytes read off a connection.
type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// transport is one hop's: its own, so that its TLS hook and dialer record
// into that hop, with keep-alives off (one connection, closed with the
// body) and compression handled here (so that its cap is ours).
func transport(env *check.Env, ht *hopTrace, o Options) *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil {
				if p, err := strconv.Atoi(port); err == nil {
					addr = net.JoinHostPort(host, strconv.Itoa(env.Port(p)))
				}
			}
			// net/http dials under a context without the request's
			// deadline: bound the dial and the connection with ours.
			ctx, cancel := context.WithDeadline(ctx, ht.deadline)
			defer cancel()
			c, err := env.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			_ = c.SetDeadline(ht.deadline)
			ht.dialed.Store(true)
			return &countConn{Conn: c, n: &ht.read}, nil
		},
		TLSClientConfig: &tls.Config{
			// Recorded here, judged in Evaluate against Policy.Roots at
			// the collection time.
			InsecureSkipVerify: true,
			MinVersion:         tls.VersionTLS10,
			NextProtos:         []string{"http/1.1"},
			VerifyConnection: func(cs tls.ConnectionState) error {
				ht.recordTLS(cs)
				return nil
			},
		},
		TLSHandshakeTimeout:    min(time.Until(ht.deadline), o.WaitTimeout),
		ResponseHeaderTimeout:  o.WaitTimeout,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: o.MaxHeaderBytes,
		MaxIdleConnsPerHost:    -1,
	}
}

// roundTrip makes one request. resp is nil when there is no response (the
// hop says why); the caller closes resp.Body.
func roundTrip(ctx context.Context, env *check.Env, u *url.URL, o Options) (Hop, *http.Response) {
	hop := Hop{URL: u.String(), TLS: u.Scheme == "https"}
	t0 := time.Now()
	deadline, _ := ctx.Deadline()
	ht := &hopTrace{deadline: deadline}
	tr := transport(env, ht, o)
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		hop.Stage, hop.Class, hop.Error = StageResponse, check.ErrMalformed, err.Error()
		return hop, nil
	}
	req.Header.Set("User-Agent", o.UserAgent)
	req.Header.Set("Accept", "*/*")
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	req.Close = true
	resp, err := tr.RoundTrip(req)
	hop.HeadersMS = time.Since(t0).Milliseconds()
	hop.ElapsedMS = hop.HeadersMS
	if hop.TLS {
		hop.Conn = ht.tls()
	}
	if err != nil {
		hop.Error = err.Error()
		hop.Stage, hop.Class = classifyTrip(err, ht, hop.TLS, o)
		var op *net.OpError
		// crypto/tls reports a peer's alert as a net.OpError whose Op
		// is "remote error".
		hop.Alerted = hop.Stage == StageTLS && errors.As(err, &op) && op.Op == "remote error"
		return hop, nil
	}
	if resp.TLS != nil && hop.Conn == nil {
		ht.recordTLS(*resp.TLS)
		hop.Conn = ht.tls()
	}
	hop.Status = resp.StatusCode
	hop.Proto = clip(resp.Proto, 16)
	hop.Headers = BoundHeaders(resp.Header)
	hop.Location = strings.ToValidUTF8(clip(resp.Header.Get("Location"), MaxLocation), "\uFFFD")
	return hop, resp
}

// classifyTrip types a failed round trip by where it stopped and what was
// read, then by the error chain.
func classifyTrip(err error, ht *hopTrace, isTLS bool, o Options) (Stage, check.ErrClass) {
	c := check.Classify(err)
	switch {
	case !ht.dialed.Load():
		if c == check.ErrOther {
			c = check.ErrUnreachable
		}
		return StageDial, c
	case isTLS && ht.tls() == nil && c != check.ErrTimeout && c != check.ErrCanceled:
		// No certificate reached the hook: the handshake failed.
		if c == check.ErrOther || c == check.ErrUnreachable {
			c = check.ErrBlocked
		}
		return StageTLS, c
	case ht.read.Load() >= o.MaxHeaderBytes:
		// net/http stops reading a head at MaxResponseHeaderBytes; the
		// bytes read (TLS records included) say we got there.
		return StageResponse, check.ErrTooLarge
	case c == check.ErrTimeout || c == check.ErrCanceled || c == check.ErrScope:
		if isTLS && ht.tls() == nil {
			return StageTLS, c
		}
		return StageResponse, c
	case ht.read.Load() == 0:
		// Connected, then nothing: the peer dropped the request.
		return StageResponse, check.ErrBlocked
	default:
		return StageResponse, check.ErrMalformed
	}
}

// errWireCap stops a body read that went past its wire budget.
var errWireCap = errors.New("webfetch: body read past its bound")

// capReader counts what it reads and stops at a budget.
type capReader struct {
	r    io.Reader
	left int64
	read int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errWireCap
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.read += int64(n)
	c.left -= int64(n)
	return n, err
}

// readBody reads at most max decoded bytes of resp's body.
func readBody(resp *http.Response, max int64) *Body {
	b := &Body{}
	wire := &capReader{r: resp.Body, left: max + wireSlack}
	defer func() {
		b.WireBytes = wire.read
		b.UTF8 = utf8.Valid(b.Data)
	}()
	codings, ok := Codings(resp.Header.Get("Content-Encoding"))
	if !ok {
		b.Codings, b.NotDecoded = codings, "more than 3 content codings"
		return b
	}
	b.Codings = codings
	var r io.Reader = wire
	for i := len(codings) - 1; i >= 0; i-- {
		var err error
		switch codings[i] {
		case "gzip", "x-gzip":
			r, err = gzip.NewReader(r)
		case "deflate":
			r, err = deflateReader(r)
		case "br":
			b.NotDecoded = "br: no Brotli decoder in the Go standard library (not asked for)"
			return b
		default:
			b.NotDecoded = "unsupported content coding " + strconv.Quote(codings[i])
			return b
		}
		if err != nil {
			b.Error, b.Class = err.Error(), classifyBody(err)
			return b
		}
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if int64(len(data)) > max {
		data, b.Truncated, err = data[:max], true, nil
	}
	if errors.Is(err, errWireCap) {
		b.Truncated, err = true, nil
	}
	b.Data = data
	if err != nil {
		b.Error, b.Class = err.Error(), classifyBody(err)
	}
	return b
}

// deflateReader undoes HTTP's "deflate", which RFC 9110 §8.4.1.2 defines
// as zlib (RFC 1950) but which some servers send raw (RFC 1951): the
// first two bytes tell.
func deflateReader(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 512)
	h, err := br.Peek(2)
	if err != nil {
		return nil, err
	}
	if h[0]&0x0f == 8 && h[0]>>4 <= 7 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

func classifyBody(err error) check.ErrClass {
	switch c := check.Classify(err); c {
	case check.ErrTimeout, check.ErrCanceled, check.ErrUnreachable:
		return c
	}
	return check.ErrMalformed
}
