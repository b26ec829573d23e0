package mtasts

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/tlscheck"
	"github.com/nhsx/posture/checks/tlsprobe"
)

// Bounds of the policy fetch (RFC 8461 §3.3 suggests senders limit the
// body to 64 KiB and the fetch to a minute; we keep to less).
const (
	MaxBody      = 64 << 10
	maxHeader    = 16 << 10
	maxCerts     = 8
	maxCertBytes = 64 << 10
	// FetchTimeout bounds the whole fetch: resolve, connect, handshake,
	// request and body.
	FetchTimeout = 15 * time.Second
)

// WellKnownPath is where the policy is served (RFC 8461 §3.3).
const WellKnownPath = "/.well-known/mta-sts.txt"

// Lookup is one DNS query as evidence.
type Lookup struct {
	Name    string         `json:"name"`
	Type    string         `json:"type"`
	Rcode   string         `json:"rcode,omitempty"`
	Answers []string       `json:"answers,omitempty"` // rdata of the asked type
	Error   string         `json:"error,omitempty"`   // could not tell
	Class   check.ErrClass `json:"class,omitempty"`
}

func (l Lookup) failed() bool { return l.Error != "" }

// query runs one lookup and records it; an error is recorded, not returned.
func query(ctx context.Context, r *dnsq.Client, name string, qtype uint16) Lookup {
	l := Lookup{Name: strings.TrimSuffix(name, "."), Type: dns.TypeToString[qtype]}
	resp, err := r.Query(ctx, name, qtype)
	if err != nil {
		l.Error, l.Class = err.Error(), check.Classify(err)
		return l
	}
	l.Rcode = resp.Rcode
	for _, rr := range resp.Of(qtype) {
		switch v := rr.(type) {
		case *dns.TXT:
			l.Answers = append(l.Answers, strings.Join(v.Txt, ""))
		case *dns.MX:
			l.Answers = append(l.Answers, strings.ToLower(strings.TrimSuffix(v.Mx, ".")))
		}
	}
	return l
}

// Discovery is what a sender looks at to find a domain's MTA-STS policy
// (RFC 8461 §3): the TXT record at _mta-sts.<domain> and, when there is an
// MTA-STS record, the policy at https://mta-sts.<domain>/.well-known/
// mta-sts.txt. It is raw: Evaluate judges it (the certificate against the
// policy's trust anchors, at the collection time).
type Discovery struct {
	Domain string `json:"domain"`
	Record Lookup `json:"record"`
	// Policy is the fetch of the policy file: nil when the record lookup
	// failed or found no v=STSv1 record (senders then look no further).
	Policy *Fetch `json:"policy,omitempty"`
}

// STSRecords are the v=STSv1 records among the TXT strings.
func (d Discovery) STSRecords() []string {
	var out []string
	for _, s := range d.Record.Answers {
		if IsSTS(s) {
			out = append(out, s)
		}
	}
	return out
}

// Discover looks up the MTA-STS record of domain and, if the name holds at
// least one v=STSv1 record, fetches the policy (even when the record is
// invalid, so that the policy can be judged on its own).
func Discover(ctx context.Context, env *check.Env, domain string) Discovery {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	d := Discovery{Domain: domain}
	d.Record = query(ctx, dnsq.Over(env.DNS), "_mta-sts."+domain+".", dns.TypeTXT)
	if d.Record.failed() || len(d.STSRecords()) == 0 {
		return d
	}
	f := FetchPolicy(ctx, env, domain)
	d.Policy = &f
	return d
}

// Fetch is one HTTPS GET of a policy file, as the server answered it.
// Redirects are not followed (RFC 8461 §3.3) and the certificate is not
// verified here: it is recorded (DER) and judged in Evaluate.
type Fetch struct {
	URL  string `json:"url"`
	Host string `json:"host"`
	// NoHost: the policy host has no address (NXDOMAIN, or no A or AAAA).
	NoHost bool `json:"no_host,omitempty"`
	// Refused: the connection to port 443 was refused.
	Refused bool `json:"refused,omitempty"`
	// Alerted: the server ended the TLS handshake with an alert (it would
	// not speak TLS with us for the name: no certificate for it, no
	// common version or suite).
	Alerted bool `json:"alerted,omitempty"`
	// Cert is the TLS handshake: the certificates as served.
	Cert *tlscheck.Endpoint `json:"cert,omitempty"`
	// Status, Location and ContentType are from the HTTP response.
	Status      int    `json:"status,omitempty"`
	Location    string `json:"location,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	// Body is the response body, at most MaxBody bytes.
	Body string `json:"body,omitempty"`
	// TooLarge: the headers or the body went over their bounds.
	TooLarge bool `json:"too_large,omitempty"`
	// Error is what stopped the fetch when it could not tell (a timeout,
	// a hang-up, garbage); Class its error class.
	Error string         `json:"error,omitempty"`
	Class check.ErrClass `json:"class,omitempty"`
}

// Failed reports a fetch that could not tell what is served.
func (f Fetch) Failed() bool {
	return f.Error != "" && !f.NoHost && !f.Refused && !f.Alerted && !f.TooLarge
}

// FetchPolicy fetches https://mta-sts.<domain>/.well-known/mta-sts.txt as
// RFC 8461 §3.3 says senders do: HTTPS on port 443 (env.Port), an HTTP/1.1
// GET, no redirect followed, the body bounded. Every connection goes
// through env.Dial (the scope guard on a scan). The certificate is taken
// as served, for Evaluate to judge against the policy's trust anchors.
// FetchTimeout bounds it.
func FetchPolicy(ctx context.Context, env *check.Env, domain string) Fetch {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	host := "mta-sts." + domain
	f := Fetch{URL: "https://" + host + WellKnownPath, Host: host}
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	// fail records what stopped the fetch: its class, or def when the
	// error knows none.
	fail := func(def check.ErrClass, err error) Fetch {
		f.Error, f.Class = err.Error(), check.Classify(err)
		if f.Class == check.ErrOther && def != "" {
			f.Class = def
		}
		return f
	}
	addrs, _, err := dnsq.Over(env.DNS).Addrs(ctx, host)
	if err != nil {
		return fail("", fmt.Errorf("mta-sts: resolve %s: %w", host, err))
	}
	if len(addrs) == 0 {
		f.NoHost = true
		f.Error = host + " has no address"
		return f
	}
	conn, err := env.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(env.Port(443))))
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			f.Refused = true
		}
		return fail("", fmt.Errorf("mta-sts: connect %s: %w", host, err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tc := tls.Client(conn, &tls.Config{
		ServerName: host,
		// Recorded here, verified in Evaluate (against Policy.Roots, at
		// the collection time), so that a re-evaluation can judge it.
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS10,
		NextProtos:         []string{"http/1.1"},
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "remote error" {
			// crypto/tls reports an alert from the peer as a net.OpError
			// whose Op is "remote error".
			f.Alerted = true
		}
		return fail(check.ErrBlocked, fmt.Errorf("mta-sts: tls handshake with %s: %w", host, err))
	}
	f.Cert = endpoint(conn.RemoteAddr().String(), tc.ConnectionState())

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	req.Header.Set("User-Agent", "posture (MTA-STS policy check)")
	req.Header.Set("Accept", "text/plain")
	req.Close = true
	if err := req.Write(tc); err != nil {
		return fail(check.ErrBlocked, fmt.Errorf("mta-sts: send request to %s: %w", host, err))
	}
	lr := &io.LimitedReader{R: tc, N: maxHeader}
	resp, err := http.ReadResponse(bufio.NewReader(lr), req)
	if err != nil {
		if lr.N <= 0 {
			f.TooLarge = true
			return fail(check.ErrTooLarge, fmt.Errorf("mta-sts: %s: the response headers exceed %d bytes", host, maxHeader))
		}
		return fail(check.ErrMalformed, fmt.Errorf("mta-sts: read response from %s: %w", host, err))
	}
	defer resp.Body.Close()
	f.Status = resp.StatusCode
	f.Location = clip(resp.Header.Get("Location"), 512)
	f.ContentType = clip(resp.Header.Get("Content-Type"), 256)
	if f.Status != http.StatusOK {
		return f
	}
	// The body may be chunked: allow its framing some room past MaxBody.
	lr.N = MaxBody + 16<<10
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	switch {
	case len(body) > MaxBody || err != nil && lr.N <= 0:
		f.TooLarge = true
		f.Body = string(body[:min(len(body), MaxBody)])
		return fail(check.ErrTooLarge, fmt.Errorf("mta-sts: %s: the policy body exceeds %d bytes", host, MaxBody))
	case err != nil:
		return fail(check.ErrMalformed, fmt.Errorf("mta-sts: read body from %s: %w", host, err))
	}
	f.Body = string(body)
	return f
}

// endpoint records a handshake's certificates (bounded) for tlscheck's
// judgement.
func endpoint(addr string, st tls.ConnectionState) *tlscheck.Endpoint {
	ep := &tlscheck.Endpoint{Addr: addr, Via: "crypto/tls", Version: tlsprobe.Version(st.Version), Suite: tlsprobe.SuiteID(st.CipherSuite)}
	size := 0
	for _, c := range st.PeerCertificates {
		if len(ep.Certs) == maxCerts || size+len(c.Raw) > maxCertBytes {
			break
		}
		size += len(c.Raw)
		ep.Certs = append(ep.Certs, c.Raw)
	}
	if len(ep.Certs) == 0 {
		ep.Error, ep.ErrorClass = "the server sent no certificate", check.ErrOther
	}
	return ep
}
