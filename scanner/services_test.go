package scanner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
	"github.com/nhsx/posture/scanner/discover"
	"github.com/nhsx/posture/scanner/estate"
)

// TestBreakerTripsAfterFailuresInARowNotScatteredOnes: 5xx answers trip
// the breaker after BreakerThreshold in a row; an answer in between
// resets the count; once tripped, nothing more reaches the service.
func TestBreakerTripsAfterFailuresInARowNotScatteredOnes(t *testing.T) {
	var hits atomic.Int64
	var codes = []int{500, 502, 200, 503, 500, 404, 500, 500, 500, 200}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(codes[hits.Add(1)-1])
	}))
	defer srv.Close()
	var log bytes.Buffer
	svcs := &Services{Log: slog.New(slog.NewTextHandler(&log, nil))}
	c := svcs.Client("ct", &http.Client{Timeout: time.Second})
	var downAt int
	for i := range len(codes) {
		resp, err := c.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
			continue
		}
		var down *ServiceDownError
		if !errors.As(err, &down) || down.Service != "ct" {
			t.Fatalf("request %d: %v", i, err)
		}
		if downAt == 0 {
			downAt = i
		}
	}
	if downAt != 9 || hits.Load() != 9 {
		t.Errorf("down from request %d after %d requests, want from 9 (the three 500s at 6-8 in a row) after 9", downAt, hits.Load())
	}
	if d := svcs.Down(); len(d) != 1 || !strings.Contains(d["ct"], "HTTP 500") {
		t.Errorf("Down() = %v, want ct with its first failure", d)
	}
	if n := strings.Count(log.String(), "configured service unavailable"); n != 1 {
		t.Errorf("%d warnings, want one:\n%s", n, log.String())
	}
}

// TestBreakerLetsOneRequestThroughUntilTheServiceAnswers: twenty callers
// at once on a service that never answers: one connection, one timeout,
// the others fail at once when it trips.
func TestBreakerLetsOneRequestThroughUntilTheServiceAnswers(t *testing.T) {
	ln, accepted := blackhole(t)
	c := (&Services{}).Client("rdap", &http.Client{Timeout: 300 * time.Millisecond})
	start := time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := c.Get("http://" + ln + "/domain/x.nhs.uk"); err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if n, took := accepted.Load(), time.Since(start); n != 1 || took > 900*time.Millisecond {
		t.Errorf("%d connections in %v, want 1 in about one timeout (300 ms)", n, took)
	}
}

// blackhole is a listener that accepts and never answers; it counts the
// connections.
func blackhole(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String(), &n
}

// TestDownCTCostsOneTimeoutFor1000Domains is issue 9's: discovery on a
// 1,000-domain estate with a CT endpoint that never answers (and one
// that refuses) takes at most one CT timeout more than without CT; the
// service is asked once (refused: BreakerThreshold times), reported
// down once, and every other domain's search is skipped.
func TestDownCTCostsOneTimeoutFor1000Domains(t *testing.T) {
	srv, err := dnstest.Start([]string{"uk."})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := &estate.Estate{Scope: estate.Scope{Suffixes: []string{"nhs.uk"}}}
	for i := range 1000 {
		e.Organisations = append(e.Organisations, estate.Organisation{Code: fmt.Sprintf("R%04d", i),
			Domains: []string{fmt.Sprintf("trust%04d.nhs.uk", i)}})
	}
	const timeout = 500 * time.Millisecond
	discoverWith := func(ctURL string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*discover.Result, *Services, time.Duration) {
		svcs := &Services{Log: slog.New(slog.DiscardHandler)}
		hc := &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: dial}}
		start := time.Now()
		res, err := discover.Run(context.Background(), e, discover.Options{
			DNS:   &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: time.Second, Retries: -1},
			CTURL: ctURL, HTTP: svcs.Client("ct", hc), Concurrency: 16,
			Kinds: map[check.Kind]bool{check.KindDomain: true}, Names: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return res, svcs, time.Since(start)
	}
	var d net.Dialer
	_, _, base := discoverWith("", d.DialContext)

	hole, accepted := blackhole(t)
	res, svcs, took := discoverWith("http://"+hole+"/", d.DialContext)
	t.Logf("1,000 domains: %v without CT, %v with a silent CT (timeout %v)", base, took, timeout)
	if took-base > timeout+time.Second || accepted.Load() != 1 {
		t.Errorf("silent CT: %v (%v without CT), %d connections; want at most one timeout (%v) more, one connection", took, base, accepted.Load(), timeout)
	}
	if _, ok := svcs.Down()["ct"]; !ok || res.CT.Skipped != 999 || res.CT.Domains != 1000 {
		t.Errorf("silent CT: down %v, stats %+v; want ct down, 999 searches skipped", svcs.Down(), res.CT)
	}
	if n := len(res.Errors); n > 1 {
		t.Errorf("%d discovery errors, want the one that found the service down", n)
	}

	// Refused: cheap, so BreakerThreshold tries, then skipped.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	var dials atomic.Int64
	counting := func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, a)
	}
	res, svcs, took = discoverWith("http://"+addr+"/", counting)
	if dials.Load() > BreakerThreshold || res.CT.Skipped < 1000-BreakerThreshold || took-base > timeout+time.Second {
		t.Errorf("refused CT: %d dials, stats %+v, %v (%v without); want at most %d dials", dials.Load(), res.CT, took, base, BreakerThreshold)
	}
	if _, ok := svcs.Down()["ct"]; !ok {
		t.Errorf("refused CT not reported down: %v", svcs.Down())
	}
}
