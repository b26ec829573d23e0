package scanner

import (
	"context"
	"errors"
	"net"
	"net/http"
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
