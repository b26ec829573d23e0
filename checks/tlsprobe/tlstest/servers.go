package tlstest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Server is a loopback TCP server that runs handle on every connection.
// Close stops it and waits for every handler to return.
type Server struct {
	Addr string
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]bool
	n    int
}

// Serve starts handle on a loopback port (127.0.0.1).
func Serve(handle func(net.Conn)) (*Server, error) { return ServeOn("127.0.0.1:0", handle) }

// ServeOn starts handle on addr ("127.0.0.5:0" for a lab address).
func ServeOn(addr string, handle func(net.Conn)) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln, open: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.open[c] = true
			s.n++
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					s.mu.Lock()
					delete(s.open, c)
					s.mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	return s, nil
}

// Conns is the number of connections accepted so far.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Close stops accepting, closes open connections and waits for handlers.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// TLSHandler answers each connection with a crypto/tls server handshake
// (and then closes it).
func TLSHandler(cfg *tls.Config) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(tc, 1)) // wait for the client to hang up
		}
	}
}

// ByHello reads the first hello (a TLS record, or an SSLv2 message) of each
// connection and hands the connection, with that hello replayed, to the
// handler route picks for it: a server, or a middlebox in front of one,
// that treats hellos differently by their shape. A nil handler hangs up.
func ByHello(route func(hello []byte) func(net.Conn)) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		rec, err := ReadHello(c)
		if err != nil {
			return
		}
		if next := route(rec); next != nil {
			next(Replay(c, rec))
		}
	}
}

// Replay returns c with read already put back in front of what is left to
// read.
func Replay(c net.Conn, read []byte) net.Conn {
	return &prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(read), c)}
}

// Stall accepts and never answers, until the client or Close hangs up.
func Stall(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// Respond reads one ClientHello record and writes reply, then waits for the
// client to hang up.
func Respond(reply []byte) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := ReadHello(c); err != nil {
			return
		}
		_, _ = c.Write(reply)
		_, _ = io.Copy(io.Discard, c)
	}
}

// RespondAndClose is Respond that hangs up right after the reply.
func RespondAndClose(reply []byte) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := ReadHello(c); err == nil {
			_, _ = c.Write(reply)
		}
	}
}

// ReadHello reads one TLS record (or SSLv2 message) and returns it whole.
func ReadHello(r io.Reader) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return nil, err
	}
	if hdr[0]&0x80 != 0 { // SSLv2
		n := int(hdr[0]&0x7f)<<8 | int(hdr[1])
		body := make([]byte, n)
		_, err := io.ReadFull(r, body)
		return append(hdr[:2:2], body...), err
	}
	if _, err := io.ReadFull(r, hdr[2:]); err != nil {
		return nil, err
	}
	n := int(hdr[3])<<8 | int(hdr[4])
	body := make([]byte, n)
	_, err := io.ReadFull(r, body)
	return append(hdr[:], body...), err
}

// Record frames body as one TLS record.
func Record(typ byte, version uint16, body []byte) []byte {
	return append([]byte{typ, byte(version >> 8), byte(version), byte(len(body) >> 8), byte(len(body))}, body...)
}

// Handshake frames a handshake message.
func Handshake(typ byte, body []byte) []byte {
	n := len(body)
	return append([]byte{typ, byte(n >> 16), byte(n >> 8), byte(n)}, body...)
}

// ServerHello builds a ServerHello body choosing version and suite.
func ServerHello(version, suite uint16) []byte {
	b := []byte{byte(version >> 8), byte(version)}
	b = append(b, make([]byte, 32)...) // random
	b[2] = 1                           // not the HelloRetryRequest random
	b = append(b, 0)                   // session id
	b = append(b, byte(suite>>8), byte(suite), 0)
	return b
}

// Lines runs a command and returns its output lines (for listing what a
// stack was configured to accept).
func Lines(ctx context.Context, name string, args ...string) ([]string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("%s %v: %w", name, args, err)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, nil
}

// DialLoopback is a DialFunc over the real loopback network.
func DialLoopback(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Addrs is a host name served on several loopback addresses, each by its
// own server: Lookup gives the addresses, Dial maps "ip:port" to where
// that address's server listens (tests of probes that judge every address).
type Addrs struct {
	IPs []netip.Addr
	To  map[string]string // "ip:port" → the listener's real address
}

// Lookup returns the addresses, whatever the name.
func (a *Addrs) Lookup(context.Context, string) ([]netip.Addr, error) { return a.IPs, nil }

// Dial dials the server of the address asked for.
func (a *Addrs) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if to, ok := a.To[addr]; ok {
		addr = to
	}
	return DialLoopback(ctx, network, addr)
}
