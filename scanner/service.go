package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// MaxServiceBody bounds a response from a configured service (the CT search,
// the GitHub API): a broken or hostile endpoint cannot exhaust memory.
const MaxServiceBody = 64 << 20

// ServiceClient is the HTTP client for configured services. dial may be nil
// (the host's network).
func ServiceClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	tr := &http.Transport{
		DialContext:           dial,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   4,
		Proxy:                 http.ProxyFromEnvironment,
	}
	return &http.Client{Timeout: 2 * time.Minute, Transport: capped{tr}}
}

type capped struct{ rt http.RoundTripper }

func (c capped) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: MaxServiceBody}
	return resp, nil
}

// ErrServiceBodyTooLarge is returned when a service response passes the cap.
var ErrServiceBodyTooLarge = errors.New("response larger than the limit")

type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("service: %w (%d bytes)", ErrServiceBodyTooLarge, MaxServiceBody)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// Breaker wraps a service client so that a service that fails is not
// asked again for the rest of the run: a down RDAP or CT service costs one
// timeout per run, not one per domain. A timeout trips it at once (each
// costs the whole wait); other transport failures (a refused or reset
// connection) and 5xx answers trip it after BreakerThreshold in a row,
// and any other answer resets the count. Until the service has answered
// once, one request at a time is let through, so that a service that is
// down from the start costs one timeout even with many callers waiting.
// The client's Timeout moves into the breaker, so that the breaker can
// tell its own timer (the service stalled: trip) from the caller giving
// up (its job's deadline: no trip). The returned error keeps the first
// failure.
func Breaker(c *http.Client) *http.Client { return (*Services)(nil).Client("", c) }

// BreakerThreshold is how many failures in a row (other than a timeout,
// which trips at once) trip a breaker.
const BreakerThreshold = 3

// Services watches a run's configured services (CT, RDAP, GitHub): one
// breaker per service, one warning when a service is found down, and the
// list of those that were (the run summary's "unavailable").
type Services struct {
	Log  *slog.Logger // nil: discard
	mu   sync.Mutex
	down map[string]error
}

// Client wraps c in the breaker of service name (see Breaker). A nil
// Services gives an anonymous breaker that reports to no one.
func (s *Services) Client(name string, c *http.Client) *http.Client {
	if c == nil {
		return nil
	}
	b := *c
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	b.Transport = &breaker{rt: rt, timeout: c.Timeout, name: name, owner: s, probe: make(chan struct{}, 1)}
	b.Timeout = 0
	return &b
}

// Down lists the services found down in the run, with their first failure.
func (s *Services) Down() map[string]string {
	out := map[string]string{}
	if s == nil {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, err := range s.down {
		out[n] = err.Error()
	}
	return out
}

func (s *Services) report(name, host string, err error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.down == nil {
		s.down = map[string]error{}
	}
	_, dup := s.down[name]
	if !dup {
		s.down[name] = err
	}
	s.mu.Unlock()
	if !dup && s.Log != nil {
		s.Log.Warn("configured service unavailable: not asked again in this run", "service", name, "host", host, "err", err)
	}
}

type breaker struct {
	rt      http.RoundTripper
	timeout time.Duration // per request, body included; 0: none
	name    string
	owner   *Services
	probe   chan struct{} // one request at a time until the service answers
	mu      sync.Mutex
	trip    error
	fails   int  // failures in a row
	open    bool // the service has answered
}

// ServiceDownError is returned for every request after the service failed.
type ServiceDownError struct {
	Service string // the configured service's name ("" when unnamed)
	Host    string
	First   error
}

func (e *ServiceDownError) Error() string {
	return fmt.Sprintf("%s failed earlier in this run and is not asked again: %v", e.Host, e.First)
}
func (e *ServiceDownError) Unwrap() error { return e.First }

// ServiceDown marks the error for discovery (discover.ServiceDown).
func (e *ServiceDownError) ServiceDown() bool { return true }

func (b *breaker) tripped() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.trip
}

// fail counts a failure; now trips at once.
func (b *breaker) fail(host string, err error, now bool) {
	b.mu.Lock()
	b.fails++
	tripped := false
	if b.trip == nil && (now || b.fails >= BreakerThreshold) {
		b.trip, tripped = err, true
	}
	b.mu.Unlock()
	if tripped {
		b.owner.report(b.name, host, err)
	}
}

func (b *breaker) answered() {
	b.mu.Lock()
	b.fails, b.open = 0, true
	b.mu.Unlock()
}

func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

func (b *breaker) down(r *http.Request, trip error) error {
	return &ServiceDownError{Service: b.name, Host: r.URL.Host, First: trip}
}

func (b *breaker) RoundTrip(r *http.Request) (*http.Response, error) {
	if trip := b.tripped(); trip != nil {
		return nil, b.down(r, trip)
	}
	caller := r.Context()
	if !b.isOpen() {
		select {
		case b.probe <- struct{}{}:
		case <-caller.Done():
			return nil, caller.Err()
		}
		defer func() { <-b.probe }()
		if trip := b.tripped(); trip != nil {
			return nil, b.down(r, trip)
		}
	}
	ctx, cancel := caller, context.CancelFunc(func() {})
	if b.timeout > 0 {
		ctx, cancel = context.WithTimeout(caller, b.timeout)
	}
	resp, err := b.rt.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		if caller.Err() == nil {
			// The caller did not give up: the service did.
			b.fail(r.URL.Host, err, check.Classify(err) == check.ErrTimeout)
		}
		return nil, err
	}
	if resp.StatusCode >= 500 {
		b.fail(r.URL.Host, fmt.Errorf("HTTP %d", resp.StatusCode), false)
	} else {
		b.answered()
	}
	resp.Body = &timedBody{ReadCloser: resp.Body, cancel: cancel, caller: caller, ctx: ctx, b: b, host: r.URL.Host}
	return resp, nil
}

// timedBody ends the request's timer when the body is closed, and trips
// the breaker when the service stalls mid-body past the timeout.
type timedBody struct {
	io.ReadCloser
	cancel      context.CancelFunc
	caller, ctx context.Context
	b           *breaker
	host        string
}

func (t *timedBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err != nil && err != io.EOF && t.caller.Err() == nil && t.ctx.Err() != nil {
		t.b.fail(t.host, fmt.Errorf("reading the response: %w", t.ctx.Err()), true)
	}
	return n, err
}

func (t *timedBody) Close() error {
	t.cancel()
	return t.ReadCloser.Close()
}
