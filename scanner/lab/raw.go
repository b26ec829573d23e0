package lab

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
)

// RawHandler serves one TCP connection to a lab host in place of the lab's
// own server for that port (WebSpec.Raw, SMTPSpec.Raw): the behaviours no
// standard server shows, such as answering SSLv3 or saying nothing. It owns
// the connection until it returns (the lab then closes it) or hands it to
// the lab's server with RawConn.Serve. The lab closes the connection when
// the lab closes, so a handler that only reads or waits ends then.
type RawHandler func(c *RawConn)

// RawConn is a connection handed to a RawHandler.
type RawConn struct {
	net.Conn
	Host string // the lab host's name
	// TLS is the host's TLS configuration for this port: the certificate
	// of its CertSpec, the settings of its template.
	TLS *tls.Config

	serve  func(net.Conn)
	handed atomic.Bool
}

// Serve hands c (the connection itself, or a wrapper that replays bytes
// the handler has read) to the lab's own server for the host and port:
// TLS and HTTP on 443, SMTP on 25, which owns it from then on. Call it at
// most once, from the handler. It clears c's deadlines.
func (rc *RawConn) Serve(c net.Conn) {
	rc.handed.Store(true)
	_ = c.SetDeadline(time.Time{})
	rc.serve(c)
}

// raw runs handle on c in a goroutine that Close waits for.
func (l *Lab) raw(c net.Conn, name string, handle RawHandler, cfg *tls.Config, serve func(net.Conn)) {
	rc := &RawConn{Conn: c, Host: name, TLS: cfg, serve: serve}
	l.rawMu.Lock()
	select {
	case <-l.done:
		l.rawMu.Unlock()
		c.Close()
		return
	default:
	}
	l.rawConns[c] = struct{}{}
	l.wg.Add(1)
	l.rawMu.Unlock()
	go func() {
		defer l.wg.Done()
		handle(rc)
		l.rawMu.Lock()
		delete(l.rawConns, c)
		l.rawMu.Unlock()
		if !rc.handed.Load() {
			c.Close()
		}
	}()
}

// closeRaw closes the connections raw handlers still hold.
func (l *Lab) closeRaw() {
	l.rawMu.Lock()
	defer l.rawMu.Unlock()
	for c := range l.rawConns {
		c.Close()
	}
}

// Tarpit accepts the connection and says nothing until the client hangs up.
func Tarpit(c *RawConn) { _, _ = io.Copy(io.Discard, c) }

// TarpitFor is Tarpit that hangs up, still silent, after d: a server that
// holds a client for a while before dropping it.
func TarpitFor(d time.Duration) RawHandler {
	return func(c *RawConn) {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, _ = io.Copy(io.Discard, c)
	}
}

// HangUp reads what the client sends first (a hello) and hangs up without
// a word: a filter in front of the port, or a service that is not TLS.
// Reading first makes the close a clean one (FIN, not a reset).
func HangUp(c *RawConn) {
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = c.Read(make([]byte, 16<<10))
}

// SMTPHangUp sends an SMTP greeting and hangs up: a server that drops the
// client before EHLO.
func SMTPHangUp(c *RawConn) { _, _ = io.WriteString(c, "220 "+c.Host+" ESMTP lab\r\n") }

// SSLv3 answers an SSLv3 hello with a hand-built SSLv3 ServerHello (no TLS
// stack serves SSLv3 any more) choosing the first of suites the client
// offers, then the host's certificate chain; it refuses with
// handshake_failure when none is offered. Hellos of a higher version go
// to the lab's own server: a host that still accepts SSLv3 beside TLS.
func SSLv3(suites ...uint16) RawHandler { return sslv3(suites, true) }

// SSLv3Only is SSLv3 answering every hello with SSLv3: a host that speaks
// nothing newer.
func SSLv3Only(suites ...uint16) RawHandler { return sslv3(suites, false) }

func sslv3(suites []uint16, tlsToo bool) RawHandler {
	return func(c *RawConn) {
		chain, err := chainOf(c.TLS, c.Host)
		if err != nil {
			return
		}
		var next func(net.Conn)
		if tlsToo {
			next = c.Serve
		}
		tlstest.SSLv3Handler(suites, chain, next)(c)
	}
}

// chainOf is the DER chain a TLS configuration serves for name.
func chainOf(cfg *tls.Config, name string) ([][]byte, error) {
	if cfg == nil {
		return nil, errors.New("lab: no TLS configuration")
	}
	if cfg.GetCertificate != nil {
		c, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		if err != nil || c == nil {
			return nil, errors.Join(errors.New("lab: no certificate"), err)
		}
		return c.Certificate, nil
	}
	if len(cfg.Certificates) == 0 {
		return nil, errors.New("lab: no certificate")
	}
	return cfg.Certificates[0].Certificate, nil
}

// F5Band stalls, silent, on a ClientHello whose handshake message is 256 to
// 511 bytes long, as old F5 BIG-IP load balancers do (RFC 7685 §1), and
// hands every other hello to the lab's TLS server.
func F5Band(c *RawConn) {
	tlstest.ByHello(func(rec []byte) func(net.Conn) {
		if len(rec) >= 9 && rec[0] == 22 && rec[5] == 1 {
			if n := (int(rec[6])<<16 | int(rec[7])<<8 | int(rec[8])) + 4; n >= 256 && n <= 511 {
				return tlstest.Stall
			}
		}
		return c.Serve
	})(c)
}
