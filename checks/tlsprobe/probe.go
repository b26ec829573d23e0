// Package tlsprobe is a raw TLS prober: it writes ClientHellos byte by byte
// and parses what the server answers (ServerHello, alerts, Certificate,
// ServerKeyExchange), so that it can test what crypto/tls cannot offer:
// SSLv2, SSLv3, TLS 1.0 and 1.1, RC4, 3DES, EXPORT, NULL and anonymous
// suites, and finite-field DH groups. It never completes a handshake.
//
// Scan enumerates each version's accepted suites by elimination (offer the
// set, drop the suite the server chose, repeat), so a host costs about one
// connection per accepted suite, and it records whether the server imposes
// its own order.
package tlsprobe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// DialFunc opens a connection; ctx first. For SMTP it is a dialer that has
// already done EHLO and STARTTLS.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Prober sends hellos to servers. It is safe for concurrent use; its zero
// value needs only Dial.
type Prober struct {
	Dial DialFunc
	// Timeout bounds one connection (dial, hello, answer); the context's
	// deadline, if sooner, wins. 0: 5 s.
	Timeout time.Duration
	// MaxHandshake bounds the server's first flight; 0: MaxHandshake.
	MaxHandshake int
	// Parallel is how many connections one Scan keeps open at once (TLS
	// 1.3 and the older versions are enumerated side by side); 0: 2.
	Parallel int
	// MaxConns bounds the connections of one Scan; 0: 600.
	MaxConns int

	conns atomic.Int64
}

// Conns is the number of connections the prober has opened (or tried to).
func (p *Prober) Conns() int64 { return p.conns.Load() }

func (p *Prober) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 5 * time.Second
}

// Probe sends one hello on a fresh connection and reads the answer. A
// refusal is a Response; the error is for could-not-tell (unreachable,
// timeout, malformed answer), classified through Class().
func (p *Prober) Probe(ctx context.Context, addr string, h Hello) (*Response, error) {
	msg, err := h.Marshal()
	if err != nil {
		return nil, check.WithClass(check.ErrInternal, err)
	}
	var resp *Response
	err = p.exchange(ctx, addr, msg, func(r io.Reader) error {
		var err error
		resp, err = ReadResponse(r, h, p.MaxHandshake)
		return err
	})
	if errors.Is(err, errReset) {
		return &Response{Closed: true, Note: "connection reset"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tlsprobe: %v hello to %s: %w", h.Version, addr, err)
	}
	return resp, nil
}

// ProbeSSLv2 sends an SSLv2 CLIENT-HELLO. Accepted means the server
// answered an SSLv2 SERVER-HELLO with at least one cipher kind.
func (p *Prober) ProbeSSLv2(ctx context.Context, addr string) (*Response, []uint32, error) {
	var resp *Response
	var kinds []uint32
	err := p.exchange(ctx, addr, sslv2Hello(), func(r io.Reader) error {
		var err error
		resp, kinds, err = readSSLv2Response(r)
		return err
	})
	if errors.Is(err, errReset) {
		return &Response{Closed: true, Note: "connection reset"}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tlsprobe: SSLv2 hello to %s: %w", addr, err)
	}
	return resp, kinds, nil
}

// exchange dials, writes msg and runs read under a deadline taken from the
// context (bounded by Timeout). The connection is closed on return, and a
// cancelled context unblocks the read at once.
func (p *Prober) exchange(ctx context.Context, addr string, msg []byte, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	if p.Dial == nil {
		return check.ErrNoNetwork
	}
	p.conns.Add(1)
	conn, err := p.Dial(ctx, "tcp", addr)
	if err != nil {
		return &dialError{err}
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := conn.Write(msg); err != nil {
		return p.ioError(ctx, "write hello", err, 0)
	}
	cr := &countReader{r: conn}
	if err := read(cr); err != nil {
		return p.ioError(ctx, "read answer", err, cr.n)
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
}

// ioError turns an I/O error into a classified one: a context that ended
// first explains the error; a reset after our hello is a refusal the
// caller sees as a closed connection (errReset).
func (p *Prober) ioError(ctx context.Context, what string, err error, read int) error {
	if c := check.Classify(err); c == check.ErrMalformed {
		return err
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return check.WithClass(check.ErrCanceled, fmt.Errorf("%s: %w", what, ctx.Err()))
	}
	if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return check.WithClass(check.ErrTimeout, fmt.Errorf("%s: no answer in time: %w", what, err))
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		if read == 0 {
			return errReset
		}
		return malformed("connection reset in the middle of the answer")
	}
	return fmt.Errorf("%s: %w", what, err)
}

// errReset: the server reset the connection after our hello. That is how
// many stacks refuse a version, so Scan counts it as a refusal.
var errReset = errors.New("connection reset by the server")

// dialError marks a failure to connect (as opposed to a failure after the
// hello), which Scan remembers so that a dead address costs one timeout.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// memo remembers, within one Scan, why an address stopped answering: its
// remaining probes fail at once with the same reason.
type memo struct {
	mu  sync.Mutex
	err error
}

func (m *memo) get() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// note records err if it means the address is dead or stalled: a failed
// connect, or no answer in time.
func (m *memo) note(err error) {
	if err == nil {
		return
	}
	var de *dialError
	c := check.Classify(err)
	if errors.As(err, &de) || c == check.ErrTimeout || c == check.ErrCanceled {
		m.mu.Lock()
		if m.err == nil {
			m.err = err
		}
		m.mu.Unlock()
	}
}
