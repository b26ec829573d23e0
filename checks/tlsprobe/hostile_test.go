package tlsprobe_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlsprobe"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

// Hostile servers: every one must give unknown with a reason, within the
// timeout, and leave no goroutine behind.
func TestScanOfHostileServerIsUnknownWithReasonInTime(t *testing.T) {
	sh := tlstest.Record(22, 0x0303, tlstest.Handshake(2, tlstest.ServerHello(0x0303, 0xC02F)))
	bigCert := make([]byte, 70<<10)
	var huge []byte // a Certificate message over 64 KiB, in legal-size records
	msg := tlstest.Handshake(2, tlstest.ServerHello(0x0303, 0xC02F))
	msg = append(msg, tlstest.Handshake(11, append([]byte{byte(len(bigCert) + 3>>16), byte(len(bigCert) + 3>>8), byte(len(bigCert) + 3),
		byte(len(bigCert) >> 16), byte(len(bigCert) >> 8), byte(len(bigCert))}, bigCert...))...)
	for len(msg) > 0 {
		n := min(len(msg), 16384)
		huge = append(huge, tlstest.Record(22, 0x0303, msg[:n])...)
		msg = msg[n:]
	}
	cases := []struct {
		name      string
		handle    func([]byte) []byte // reply to a hello; nil: stall
		hangUp    bool                // close after the reply
		wantClass check.ErrClass
		wantMsg   string
	}{
		{"garbage-after-server-hello", func([]byte) []byte { return append(sh, []byte("HTTP/1.1 400 Bad Request\r\n\r\n")...) }, false,
			check.ErrMalformed, "not a TLS record"},
		{"oversized-record", func([]byte) []byte { return []byte{22, 3, 3, 0x50, 0x00} }, false,
			check.ErrMalformed, "exceeds the 18432-byte limit"},
		{"handshake-over-64KiB", func([]byte) []byte { return huge }, false, check.ErrMalformed, "exceeds"},
		{"truncated-record-then-close", func([]byte) []byte { return []byte{22, 3, 3, 0, 80, 2, 0} }, true,
			check.ErrMalformed, "closed inside a record"},
		{"suite-not-offered", func([]byte) []byte {
			return tlstest.Record(22, 0x0303, tlstest.Handshake(2, tlstest.ServerHello(0x0303, 0xEEEE)))
		}, false, check.ErrMalformed, "not offered"},
		{"http-server", func([]byte) []byte { return []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") }, false,
			check.ErrMalformed, "not a TLS record"},
		{"stall", nil, false, check.ErrTimeout, "no answer in time"},
	}
	const timeout = 400 * time.Millisecond
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			handle := tlstest.Stall
			if tc.handle != nil {
				handle = tlstest.Respond(tc.handle(nil))
				if tc.hangUp {
					handle = tlstest.RespondAndClose(tc.handle(nil))
				}
			}
			srv := tlsmust.Start(t, handle)
			p := &tlsprobe.Prober{Dial: tlstest.DialLoopback, Timeout: timeout}
			start := time.Now()
			rep, err := p.Scan(context.Background(), srv.Addr, "www.lab.nhs.uk")
			elapsed := time.Since(start)
			if elapsed > 2*timeout+200*time.Millisecond {
				t.Errorf("scan took %v with a %v timeout: a hostile server must not cost a timeout per probe", elapsed, timeout)
			}
			for _, v := range []tlsprobe.Version{tlsprobe.TLS12, tlsprobe.TLS11, tlsprobe.TLS10, tlsprobe.SSL30, tlsprobe.TLS13} {
				r := rep.Version(v)
				if r.State != tlsprobe.Unknown {
					t.Errorf("%v: %s, want unknown", v, r.State)
					continue
				}
				if v == tlsprobe.TLS12 && (r.ErrorClass != tc.wantClass || !strings.Contains(r.Error, tc.wantMsg)) {
					t.Errorf("%v: class %q reason %q; want %q containing %q", v, r.ErrorClass, r.Error, tc.wantClass, tc.wantMsg)
				}
			}
			if rep.Version(tlsprobe.SSL20).State == tlsprobe.Accepted {
				t.Errorf("SSLv2 accepted by a hostile server")
			}
			if tc.handle == nil {
				if err == nil || check.Classify(err) != check.ErrTimeout {
					t.Errorf("stalled scan: err %v (class %q), want a timeout error", err, check.Classify(err))
				}
				// One stall is not enough to give up on an address (a
				// middlebox may hang on one hello only); two are.
				if n := srv.Conns(); n > 2 {
					t.Errorf("%d connections to a tarpit, want at most 2: the first hello and its retry", n)
				}
				if r := rep.Version(tlsprobe.TLS12); !r.Stalled {
					t.Errorf("TLS1.2 not marked stalled: %+v", r)
				}
			}
			t.Logf("%v, %d connections: %s", elapsed.Round(time.Millisecond), rep.Connections, rep.Version(tlsprobe.TLS12).Error)
		})
	}
}

func TestScanOfDeadAddressCostsOneAttempt(t *testing.T) {
	srv := tlsmust.Start(t, tlstest.Stall)
	addr := srv.Addr
	srv.Close() // now refused
	p := prober()
	rep, err := p.Scan(context.Background(), addr, "www.lab.nhs.uk")
	if err == nil || check.Classify(err) != check.ErrUnreachable {
		t.Fatalf("err %v (class %q), want unreachable", err, check.Classify(err))
	}
	if p.Conns() != 1 {
		t.Errorf("%d connection attempts to a dead address, want 1", p.Conns())
	}
	_ = rep
}

func TestScanStopsWhenContextEnds(t *testing.T) {
	tlsmust.NoLeak(t)
	srv := tlsmust.Start(t, tlstest.Stall)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	p := &tlsprobe.Prober{Dial: tlstest.DialLoopback, Timeout: 10 * time.Second}
	start := time.Now()
	_, err := p.Scan(ctx, srv.Addr, "x")
	if time.Since(start) > 2*time.Second || !errors.Is(err, context.Canceled) && check.Classify(err) != check.ErrCanceled {
		t.Errorf("after %v: %v (class %q), want canceled promptly", time.Since(start), err, check.Classify(err))
	}
}

func TestReadResponseClassifiesRefusals(t *testing.T) {
	hello := tlsprobe.Hello{Version: tlsprobe.TLS12, Suites: []uint16{0xC02F}}
	cases := []struct {
		name, in, want string
	}{
		{"fatal-alert", string(tlstest.Record(21, 0x0303, []byte{2, 40})), "alert handshake_failure"},
		{"protocol-version", string(tlstest.Record(21, 0x0301, []byte{2, 70})), "alert protocol_version"},
		{"close", "", "connection closed"},
		{"close-notify", string(tlstest.Record(21, 0x0303, []byte{1, 0})), "connection closed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tlsprobe.ReadResponse(bytes.NewReader([]byte(tc.in)), hello, 0)
			if err != nil {
				t.Fatal(err)
			}
			if r.Accepted() || r.Refusal() != tc.want {
				t.Errorf("refusal %q accepted %v, want %q", r.Refusal(), r.Accepted(), tc.want)
			}
		})
	}
}
