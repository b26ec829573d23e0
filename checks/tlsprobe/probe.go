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
func (p *Prober) exchange(parent context.Context, addr string, msg []byte, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(parent, p.timeout())
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
		return p.ioError(parent, ctx, "write hello", err, 0)
	}
	cr := &countReader{r: conn}
	if err := read(cr); err != nil {
		return p.ioError(parent, ctx, "read answer", err, cr.n)
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
// caller sees as a closed connection (errReset). No answer within the
// probe's own timeout, while the caller's context is still alive, is a
// stall (*stallError).
func (p *Prober) ioError(parent, ctx context.Context, what string, err error, read int) error {
	if c := check.Classify(err); c == check.ErrMalformed {
		return err
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return check.WithClass(check.ErrCanceled, fmt.Errorf("%s: %w", what, ctx.Err()))
	}
	if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
		err = check.WithClass(check.ErrTimeout, fmt.Errorf("%s: no answer in time: %w", what, err))
		if parent.Err() == nil {
			return &stallError{err}
		}
		return err
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		if read == 0 {
			return errReset
		}
		return malformed("connection reset in the middle of the answer")
	}
	return fmt.Errorf("%s: %w", what, err)
}

// stallError: the connection was made and the hello sent (or being
// sent), and no complete answer came within the probe's timeout. Its
// class is timeout. Unlike a refusal it says nothing about what the server
// supports: the server, or a middlebox in front of it, hangs on this hello
// (some hang on one size, version or suite list and answer the others).
type stallError struct{ err error }

func (e *stallError) Error() string { return e.err.Error() }
func (e *stallError) Unwrap() error { return e.err }

// errReset: the server reset the connection after our hello. That is how
// many stacks refuse a version, so Scan counts it as a refusal.
var errReset = errors.New("connection reset by the server")

// dialError marks a failure to connect (as opposed to a failure after the
// hello), which Scan remembers so that a dead address costs one timeout.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// notTriedError: a probe of a Scan that was not sent, because an earlier
// failure (cause) says the address, or this line of probes, can go no
// further. Its class is the cause's.
type notTriedError struct {
	what  string
	cause error
}

func (e *notTriedError) Error() string {
	return "tlsprobe: not tried, " + e.what + ": " + e.cause.Error()
}
func (e *notTriedError) Unwrap() error { return e.cause }

// stalled reports whether err is the stall of a hello that was sent (not
// a probe skipped because of an earlier stall).
func stalled(err error) bool {
	var se *stallError
	var nt *notTriedError
	return errors.As(err, &se) && !errors.As(err, &nt)
}

// health is what one Scan has learned about its address. A failed connect
// ends the scan's probes at once (nothing listens, or the way there is
// blocked: a dead address costs one attempt), and so does the end of the
// caller's context. A stall does not: a middlebox may hang on one hello's
// shape (its size, its version, its suite list) and answer every other,
// so the address is taken as stalled only at its second stall: a second,
// different hello, or the one retry of the scan's first hello. A tarpit
// that stalls every hello costs two timeouts.
type health struct {
	mu     sync.Mutex
	dead   error // set: every later probe fails at once with it
	stalls int
}

func (h *health) get() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dead
}

// note records the outcome of a probe that was sent.
func (h *health) note(err error) {
	if err == nil {
		return
	}
	var de *dialError
	c := check.Classify(err)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case stalled(err):
		h.stalls++
		if h.stalls < 2 {
			return
		}
	case errors.As(err, &de), c == check.ErrTimeout, c == check.ErrCanceled:
	default:
		return
	}
	if h.dead == nil {
		h.dead = err
	}
}
