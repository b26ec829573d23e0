package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
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
