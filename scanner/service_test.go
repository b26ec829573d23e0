package scanner

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestBreakerAsksADownServiceOncePerRun: after a service times out, every
// later request fails at once, without a connection, naming the first
// failure; a service that answers with an error status does not trip it.
func TestBreakerAsksADownServiceOncePerRun(t *testing.T) {
	var dials atomic.Int64
	hang := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, &net.OpError{Op: "dial", Net: network, Err: timeoutErr{}}
	}
	c := Breaker(&http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: hang}})
	for i := range 5 {
		_, err := c.Get("http://rdap.invalid/domain/x.nhs.uk")
		var down *ServiceDownError
		if i > 0 && !errors.As(err, &down) {
			t.Fatalf("request %d: %v, want ServiceDownError", i, err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connection attempts to a down service, want 1", n)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestBreakerTripsOnTheServicesStallNotTheCallers: a service that sends its
// headers and then stalls the body past the client's timeout trips the
// breaker; a caller whose own deadline passes first does not.
func TestBreakerTripsOnTheServicesStallNotTheCallers(t *testing.T) {
	var hits atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select { // stall mid-body
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	// The caller gives up first (its context), the client's timeout is long:
	// not the service's fault.
	c := Breaker(&http.Client{Timeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	if resp, err := c.Do(req); err == nil {
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	cancel()
	if b := c.Transport.(*breaker); b.tripped() != nil {
		t.Fatalf("tripped by the caller's own deadline: %v", b.tripped())
	}

	// The client's timeout fires while the body stalls: the service's fault.
	c = Breaker(&http.Client{Timeout: 200 * time.Millisecond})
	if resp, err := c.Get(srv.URL); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatal("a stalled body read without error")
		}
	}
	before := hits.Load()
	_, err := c.Get(srv.URL)
	var down *ServiceDownError
	if !errors.As(err, &down) || hits.Load() != before {
		t.Fatalf("after a stall: %v (%d more requests reached the service), want ServiceDownError and none", err, hits.Load()-before)
	}
}
