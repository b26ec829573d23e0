package tlsprobe_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/nhsx/posture/checks/tlsprobe"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

// The F5 band (RFC 7685): handshake messages of 256 to 511 bytes hang some
// F5 load balancers.
const f5Min, f5Max = 256, 511

func inF5Band(n int) bool { return n >= f5Min && n <= f5Max }

// ext is one extension of a parsed ClientHello.
type ext struct {
	typ  uint16
	data []byte
}

// parsedHello is what the F5 tests read back from a hello record.
type parsedHello struct {
	msgLen int   // handshake header and body
	block  bool  // an extensions block is present
	exts   []ext // in order
}

// parseHello reads a ClientHello record byte by byte, strictly: any byte
// left over or missing is an error.
func parseHello(rec []byte) (parsedHello, error) {
	var p parsedHello
	s := cryptobyte.String(rec)
	var typ uint8
	var ver uint16
	var frag cryptobyte.String
	if !s.ReadUint8(&typ) || typ != 22 || !s.ReadUint16(&ver) || !s.ReadUint16LengthPrefixed(&frag) || !s.Empty() {
		return p, fmt.Errorf("not one handshake record")
	}
	p.msgLen = len(frag)
	var msgType uint8
	var body cryptobyte.String
	if !frag.ReadUint8(&msgType) || msgType != 1 || !frag.ReadUint24LengthPrefixed(&body) || !frag.Empty() {
		return p, fmt.Errorf("not one ClientHello message")
	}
	var random, sid, suites, comp cryptobyte.String
	if !body.ReadUint16(&ver) || !body.ReadBytes((*[]byte)(&random), 32) || !body.ReadUint8LengthPrefixed(&sid) ||
		!body.ReadUint16LengthPrefixed(&suites) || !body.ReadUint8LengthPrefixed(&comp) {
		return p, fmt.Errorf("truncated ClientHello")
	}
	if body.Empty() {
		return p, nil
	}
	var exts cryptobyte.String
	if !body.ReadUint16LengthPrefixed(&exts) || !body.Empty() {
		return p, fmt.Errorf("bad extensions block")
	}
	p.block = true
	for !exts.Empty() {
		var e ext
		var data cryptobyte.String
		if !exts.ReadUint16(&e.typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return p, fmt.Errorf("bad extension")
		}
		e.data = data
		p.exts = append(p.exts, e)
	}
	return p, nil
}

// padding returns the padding extension's data length, or -1.
func (p parsedHello) padding() int {
	for _, e := range p.exts {
		if e.typ == 21 {
			return len(e.data)
		}
	}
	return -1
}

func suiteIDs(suites []tlsprobe.Suite) []uint16 {
	out := make([]uint16, len(suites))
	for i, s := range suites {
		out[i] = s.ID
	}
	return out
}

// TestHelloIsPaddedOutOfTheF5Band builds every hello a scan can send, and
// more: each version, every length of suite list (a scan offers a version's
// whole list, then that list less the suites already chosen, then the
// accepted suites reversed, so any length up to the whole list; beyond the
// registry, filler ids up to 300 suites so that SSLv3 hellos reach the band
// too), with no SNI, an IP literal and names of several lengths. No
// handshake message may be 256–511 bytes long; a padded one is padded as
// BoringSSL pads (to 512 bytes, one byte at least, padding last).
func TestHelloIsPaddedOutOfTheF5Band(t *testing.T) {
	names := []string{"", "192.0.2.7", "a.uk", "www.lab.nhs.uk",
		"a-rather-long-host-name-for-a-trust.lab.nhs.uk",
		strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)}
	for _, v := range []tlsprobe.Version{tlsprobe.SSL30, tlsprobe.TLS10, tlsprobe.TLS11, tlsprobe.TLS12, tlsprobe.TLS13} {
		t.Run(v.String(), func(t *testing.T) {
			registry := suiteIDs(tlsprobe.SuitesAt(v))
			all := registry
			for id := uint16(0xFE00); len(all) < 300; id++ { // unassigned ids
				all = append(all, id)
			}
			padded, lo, hi := 0, 1<<30, 0
			for _, sni := range names {
				for n := 1; n <= len(all); n++ {
					h := tlsprobe.Hello{Version: v, ServerName: sni, Suites: all[:n]}
					rec, err := h.Marshal()
					if err != nil {
						t.Fatal(err)
					}
					p, err := parseHello(rec)
					if err != nil {
						t.Fatalf("%d suites, SNI %q: %v", n, sni, err)
					}
					if n <= len(registry) {
						lo, hi = min(lo, p.msgLen), max(hi, p.msgLen)
					}
					if inF5Band(p.msgLen) {
						t.Errorf("%d suites, SNI %q: a %d-byte ClientHello is in the F5 band", n, sni, p.msgLen)
					}
					if p.block && len(p.exts) > 0 && len(p.exts[len(p.exts)-1].data) == 0 {
						t.Errorf("%d suites, SNI %q: the last extension (%d) is empty", n, sni, p.exts[len(p.exts)-1].typ)
					}
					pad := p.padding()
					if pad < 0 {
						if v == tlsprobe.SSL30 && p.block {
							t.Errorf("%d suites: an SSLv3 hello with extensions but no padding", n)
						}
						continue
					}
					padded++
					last := p.exts[len(p.exts)-1]
					if last.typ != 21 || pad == 0 || strings.Trim(string(last.data), "\x00") != "" {
						t.Errorf("%d suites, SNI %q: padding not last, empty or not zeros: %v", n, sni, p.exts)
					}
					overhead := 4 // the padding extension's header
					if v == tlsprobe.SSL30 {
						overhead += 2 // its extensions block, there only for it
						if len(p.exts) != 1 {
							t.Errorf("%d suites: an SSLv3 hello carries %v", n, p.exts)
						}
					}
					unpadded := p.msgLen - pad - overhead
					if !inF5Band(unpadded) {
						t.Errorf("%d suites, SNI %q: padded a %d-byte hello that was outside the band", n, sni, unpadded)
					}
					if want := max(512, unpadded+overhead+1); p.msgLen != want {
						t.Errorf("%d suites, SNI %q: %d bytes padded to %d, want %d (as BoringSSL)", n, sni, unpadded, p.msgLen, want)
					}
				}
			}
			if padded == 0 {
				t.Errorf("no %v hello needed padding: the band was never reached", v)
			}
			t.Logf("%v: hellos a scan sends are %d..%d bytes (handshake message); %d of the lists tried were padded", v, lo, hi, padded)
		})
	}
}

// bandHello is a hello of version v that is in the F5 band before padding.
func bandHello(v tlsprobe.Version) tlsprobe.Hello {
	switch v {
	case tlsprobe.SSL30: // no registry list is long enough: fillers
		ids := suiteIDs(tlsprobe.SuitesAt(v))
		for id := uint16(0xFE00); len(ids) < 150; id++ {
			ids = append(ids, id)
		}
		return tlsprobe.Hello{Version: v, Suites: ids}
	case tlsprobe.TLS13: // five suites: a long name does it
		return tlsprobe.Hello{Version: v, ServerName: "a-rather-long-host-name-for-a-trust.lab.nhs.uk", Suites: suiteIDs(tlsprobe.SuitesAt(v))}
	case tlsprobe.TLS12:
		return tlsprobe.Hello{Version: v, ServerName: "www.lab.nhs.uk", Suites: suiteIDs(tlsprobe.SuitesAt(v))[:60]}
	}
	return tlsprobe.Hello{Version: v, ServerName: "www.lab.nhs.uk", Suites: suiteIDs(tlsprobe.SuitesAt(v))}
}

// TestPaddedHelloIsAnsweredByRealStacks sends a padded hello of each
// version to Go's crypto/tls, OpenSSL and GnuTLS servers (and SSLv3 to the
// hand-built server) and expects each to accept it.
func TestPaddedHelloIsAnsweredByRealStacks(t *testing.T) {
	for _, v := range []tlsprobe.Version{tlsprobe.SSL30, tlsprobe.TLS10, tlsprobe.TLS11, tlsprobe.TLS12, tlsprobe.TLS13} {
		rec, err := bandHello(v).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseHello(rec)
		if err != nil || p.padding() < 0 {
			t.Fatalf("%v: the test's hello is not padded (%d bytes, %v)", v, p.msgLen, err)
		}
	}
	ca := newCA(t)
	rsa := issue(t, ca, tlstest.Leaf{RSABits: 2048})
	goTLS := func(t *testing.T) string {
		return tlsmust.StartTLS(t, &tls.Config{Certificates: []tls.Certificate{rsa.Cert}, MinVersion: tls.VersionTLS10}).Addr
	}
	sslv3 := func(t *testing.T) string {
		return tlsmust.Start(t, tlstest.SSLv3Handler([]uint16{0x000A, 0x002F}, rsa.Cert.Certificate, nil)).Addr
	}
	external := func(name string, args func(cert, key string) []string) func(t *testing.T) string {
		return func(t *testing.T) string {
			dir := t.TempDir()
			cert, key, _ := tlsmust.PeerFiles(t, ca, dir, "www.lab.nhs.uk")
			return tlsmust.StartProcess(t, name, args(cert, key)...).Addr
		}
	}
	openssl := external("openssl", func(cert, key string) []string {
		return []string{"s_server", "-accept", "127.0.0.1:{port}", "-cert", cert, "-key", key, "-quiet", "-no_ticket",
			"-min_protocol", "TLSv1", "-cipher", "DEFAULT:@SECLEVEL=0"}
	})
	gnutls := external("gnutls-serv", func(cert, key string) []string {
		return []string{"--port", "{port}", "--x509certfile", cert, "--x509keyfile", key,
			"--priority", "NORMAL:+VERS-TLS1.0:+VERS-TLS1.1", "-a", "-q", "--noticket"}
	})
	tlsVersions := []tlsprobe.Version{tlsprobe.TLS10, tlsprobe.TLS11, tlsprobe.TLS12, tlsprobe.TLS13}
	cases := []struct {
		name     string
		start    func(t *testing.T) string
		versions []tlsprobe.Version
	}{
		{"go-crypto-tls", goTLS, tlsVersions},
		{"openssl-s_server", openssl, tlsVersions},
		{"gnutls-serv", gnutls, tlsVersions},
		{"hand-built-sslv3", sslv3, []tlsprobe.Version{tlsprobe.SSL30}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			addr := tc.start(t)
			for _, v := range tc.versions {
				resp, err := prober().Probe(context.Background(), addr, bandHello(v))
				if err != nil {
					t.Errorf("%v: %v", v, err)
					continue
				}
				if !resp.Accepted() || resp.ServerHello.Version != v {
					t.Errorf("%v: padded hello answered %v %v (%s)", v, resp.ServerHello.Version, resp.ServerHello.Suite, resp.Refusal())
				}
			}
		})
	}
}

// goClientHello captures the ClientHello Go's crypto/tls client sends
// with cfg and returns the length of its handshake message.
func goClientHello(t *testing.T, cfg *tls.Config) int {
	t.Helper()
	client, server := net.Pipe()
	done := make(chan error, 1)
	go func() {
		defer client.Close()
		_ = client.SetDeadline(time.Now().Add(5 * time.Second))
		done <- tls.Client(client, cfg).Handshake()
	}()
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	rec, err := tlstest.ReadHello(server)
	server.Close()
	<-done
	if err != nil {
		t.Fatalf("read crypto/tls's hello: %v", err)
	}
	if len(rec) < 9 || rec[0] != 22 || rec[5] != 1 {
		t.Fatalf("not a ClientHello record: % x", rec[:min(len(rec), 9)])
	}
	msgLen := 4 + (int(rec[6])<<16 | int(rec[7])<<8 | int(rec[8]))
	if msgLen > len(rec)-5 {
		t.Fatalf("the hello (%d bytes) spans records; the capture reads one", msgLen)
	}
	return msgLen
}

// TestGoClientHelloOfTLSCheckIsOutsideTheF5Band: tls.cert's handshake is
// Go's crypto/tls client, which does not pad, offering every suite Go
// knows from TLS 1.0 up (tlscheck.clientConfig). Its hello must be outside
// the band on its own (Go sends an X25519MLKEM768 key share, over 1 KiB),
// with no SNI (an IP literal host), a short name and the longest name.
func TestGoClientHelloOfTLSCheckIsOutsideTheF5Band(t *testing.T) {
	var suites []uint16
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		suites = append(suites, cs.ID)
	}
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	for _, sni := range []string{"", "www.lab.nhs.uk", long} {
		cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, CipherSuites: suites, ServerName: sni}
		n := goClientHello(t, cfg)
		if inF5Band(n) {
			t.Errorf("SNI %q: crypto/tls sends a %d-byte ClientHello, in the F5 band", sni, n)
		}
		t.Logf("crypto/tls ClientHello with SNI of %d bytes: %d bytes (handshake message)", len(sni), n)
	}
}
