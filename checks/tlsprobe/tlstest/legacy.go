package tlstest

import (
	"errors"
	"io"
	"net"
	"slices"
	"time"
)

// ClientHello is the part of a ClientHello the hand-built servers (and
// middleboxes that pick hellos by shape, see ByHello) need.
type ClientHello struct {
	SSLv2   bool
	Version uint16 // client_version
	Suites  []uint16
	// Extensions are the extension types, in order (none for SSLv2, or an
	// SSLv3-style hello without an extensions block).
	Extensions []uint16
}

// ParseClientHello reads a hello record as returned by ReadHello.
func ParseClientHello(rec []byte) (ClientHello, error) {
	bad := errors.New("tlstest: malformed ClientHello")
	if len(rec) >= 2 && rec[0]&0x80 != 0 { // SSLv2 CLIENT-HELLO
		b := rec[2:]
		if len(b) < 9 || b[0] != 1 {
			return ClientHello{}, bad
		}
		return ClientHello{SSLv2: true, Version: uint16(b[1])<<8 | uint16(b[2])}, nil
	}
	if len(rec) < 5+4+2+32+1 || rec[0] != 22 || rec[5] != 1 {
		return ClientHello{}, bad
	}
	b := rec[9:]
	h := ClientHello{Version: uint16(b[0])<<8 | uint16(b[1])}
	b = b[34:]
	sid := int(b[0])
	if len(b) < 1+sid+2 {
		return h, bad
	}
	b = b[1+sid:]
	n := int(b[0])<<8 | int(b[1])
	if len(b) < 2+n || n%2 != 0 {
		return h, bad
	}
	for i := 0; i < n; i += 2 {
		h.Suites = append(h.Suites, uint16(b[2+i])<<8|uint16(b[3+i]))
	}
	b = b[2+n:]
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return h, bad
	}
	b = b[1+int(b[0]):] // compression methods
	if len(b) == 0 {
		return h, nil
	}
	if len(b) < 2 || len(b) < 2+(int(b[0])<<8|int(b[1])) {
		return h, bad
	}
	for b = b[2 : 2+(int(b[0])<<8|int(b[1]))]; len(b) > 0; {
		if len(b) < 4 || len(b) < 4+(int(b[2])<<8|int(b[3])) {
			return h, bad
		}
		h.Extensions = append(h.Extensions, uint16(b[0])<<8|uint16(b[1]))
		b = b[4+(int(b[2])<<8|int(b[3])):]
	}
	return h, nil
}

// prefixConn replays bytes already read before reading from the conn.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// SSLv3Handler is a hand-built SSLv3 server (no TLS stack serves SSLv3
// any more). It answers an SSLv3 hello, or any hello when next is nil (an
// SSLv3-only server), with an SSLv3 ServerHello choosing the first of
// suites the client offered, the certificates and ServerHelloDone; it
// refuses with handshake_failure when none is offered. Hellos of a higher
// version go to next (e.g. TLSHandler), so an SSLv3-and-TLS server is
// SSLv3Handler(suites, certs, TLSHandler(cfg)).
func SSLv3Handler(suites []uint16, certs [][]byte, next func(net.Conn)) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		rec, err := ReadHello(c)
		if err != nil {
			return
		}
		h, err := ParseClientHello(rec)
		if err != nil || h.SSLv2 {
			return
		}
		if h.Version > 0x0300 && next != nil {
			next(Replay(c, rec))
			return
		}
		var chosen uint16
		for _, s := range suites {
			if slices.Contains(h.Suites, s) {
				chosen = s
				break
			}
		}
		if chosen == 0 {
			_, _ = c.Write(Record(21, 0x0300, []byte{2, 40}))
			return
		}
		var list []byte
		for _, der := range certs {
			list = append(list, byte(len(der)>>16), byte(len(der)>>8), byte(len(der)))
			list = append(list, der...)
		}
		certMsg := append([]byte{byte(len(list) >> 16), byte(len(list) >> 8), byte(len(list))}, list...)
		flight := Handshake(2, ServerHello(0x0300, chosen))
		flight = append(flight, Handshake(11, certMsg)...)
		flight = append(flight, Handshake(14, nil)...)
		_, _ = c.Write(Record(22, 0x0300, flight))
		_, _ = io.Copy(io.Discard, c)
	}
}

// SSLv2Handler is a hand-built SSLv2 server: it answers an SSLv2
// CLIENT-HELLO with a SERVER-HELLO offering SSL_CK_RC4_128_WITH_MD5 and
// the certificate, and hands any other hello to next (or hangs up).
func SSLv2Handler(cert []byte, next func(net.Conn)) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		rec, err := ReadHello(c)
		if err != nil {
			return
		}
		h, err := ParseClientHello(rec)
		if err != nil {
			return
		}
		if !h.SSLv2 {
			if next != nil {
				next(Replay(c, rec))
			}
			return
		}
		connID := []byte("0123456789abcdef")
		body := []byte{4, 0, 1, 0x00, 0x02,
			byte(len(cert) >> 8), byte(len(cert)), 0, 3, 0, byte(len(connID))}
		body = append(body, cert...)
		body = append(body, 0x01, 0x00, 0x80)
		body = append(body, connID...)
		_, _ = c.Write(append([]byte{0x80 | byte(len(body)>>8), byte(len(body))}, body...))
		_, _ = io.Copy(io.Discard, c)
	}
}
