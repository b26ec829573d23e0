package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// Breaker wraps a service client so that a service that fails at the
// transport (a timeout, a refused or reset connection) is not asked again
// for the rest of the run: a down RDAP or CT service costs one timeout per
// run, not one per domain. HTTP error statuses do not trip it (the service
// answered). The client's Timeout moves into the breaker, so that the
// breaker can tell its own timer (the service stalled: trip) from the
// caller giving up (its job's deadline: no trip). The returned error keeps
// the first failure.
func Breaker(c *http.Client) *http.Client {
	if c == nil {
		return nil
	}
	b := *c
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	b.Transport = &breaker{rt: rt, timeout: c.Timeout}
	b.Timeout = 0
	return &b
}

type breaker struct {
	rt      http.RoundTripper
	timeout time.Duration // per request, body included; 0: none
	mu      sync.Mutex
	trip    error
}

// ServiceDownError is returned for every request after the service failed.
type ServiceDownError struct {
	Host  string
	First error
}

func (e *ServiceDownError) Error() string {
	return fmt.Sprintf("%s failed earlier in this run and is not asked again: %v", e.Host, e.First)
}
func (e *ServiceDownError) Unwrap() error { return e.First }

func (b *breaker) tripped() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.trip
}

func (b *breaker) fail(err error) {
	b.mu.Lock()
	if b.trip == nil {
		b.trip = err
	}
	b.mu.Unlock()
}

func (b *breaker) RoundTrip(r *http.Request) (*http.Response, error) {
	if trip := b.tripped(); trip != nil {
		return nil, &ServiceDownError{Host: r.URL.Host, First: trip}
	}
	caller := r.Context()
	ctx, cancel := caller, context.CancelFunc(func() {})
	if b.timeout > 0 {
		ctx, cancel = context.WithTimeout(caller, b.timeout)
	}
	resp, err := b.rt.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		if caller.Err() == nil {
			// The caller did not give up: the service did.
			switch check.Classify(err) {
			case check.ErrTimeout, check.ErrUnreachable:
				b.fail(err)
			}
		}
		return nil, err
	}
	resp.Body = &timedBody{ReadCloser: resp.Body, cancel: cancel, caller: caller, ctx: ctx, b: b}
	return resp, nil
}

// timedBody ends the request's timer when the body is closed, and trips
// the breaker when the service stalls mid-body past the timeout.
type timedBody struct {
	io.ReadCloser
	cancel      context.CancelFunc
	caller, ctx context.Context
	b           *breaker
}

func (t *timedBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err != nil && err != io.EOF && t.caller.Err() == nil && t.ctx.Err() != nil {
		t.b.fail(fmt.Errorf("reading the response: %w", t.ctx.Err()))
	}
	return n, err
}

func (t *timedBody) Close() error {
	t.cancel()
	return t.ReadCloser.Close()
}
