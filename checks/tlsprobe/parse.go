package tlsprobe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"

	"github.com/nhsx/posture/checks/check"
)

// Bounds on what a server may send in answer to one hello. Everything a
// server sends is hostile: a record longer than TLS allows, a handshake
// longer than any real first flight, or too many records is malformed.
const (
	MaxRecord       = 16384 + 2048 // TLSCiphertext.length limit (RFC 5246 §6.2.3)
	MaxHandshake    = 64 << 10     // default bound on the server's first flight
	maxRecords      = 128
	maxCertificates = 16
)

// hrrRandom is the ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3).
var hrrRandom = []byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// Alert is a TLS alert.
type Alert struct {
	Level       uint8 `json:"level"`
	Description uint8 `json:"description"`
}

var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
	22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure", 41: "no_certificate",
	42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
	45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca",
	49: "access_denied", 50: "decode_error", 51: "decrypt_error", 60: "export_restriction",
	70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
	86: "inappropriate_fallback", 90: "user_canceled", 100: "no_renegotiation",
	109: "missing_extension", 110: "unsupported_extension", 112: "unrecognized_name",
	113: "bad_certificate_status_response", 115: "unknown_psk_identity",
	116: "certificate_required", 120: "no_application_protocol",
}

func (a Alert) String() string {
	if n, ok := alertNames[a.Description]; ok {
		return n
	}
	return fmt.Sprintf("alert %d", a.Description)
}

// ServerHello is the parsed ServerHello (or HelloRetryRequest).
type ServerHello struct {
	// Version is the negotiated version: supported_versions when present,
	// else the legacy version field.
	Version       Version `json:"version"`
	LegacyVersion Version `json:"legacy_version"`
	Suite         SuiteID `json:"suite"`
	Compression   uint8   `json:"compression,omitempty"`
	HelloRetry    bool    `json:"hello_retry,omitempty"`
	// Group is the TLS 1.3 key-share group (or the one a HelloRetryRequest
	// asks for).
	Group Group `json:"group,omitempty"`
	// Downgrade is the RFC 8446 §4.1.3 sentinel in the random: "TLS1.3"
	// when a TLS 1.3 server negotiated TLS 1.2, "TLS1.2" when a TLS 1.2+
	// server negotiated TLS 1.1 or below, "" when absent.
	Downgrade  string   `json:"downgrade,omitempty"`
	Extensions []uint16 `json:"extensions,omitempty"`
}

// KeyExchange is what a TLS 1.0–1.2 ServerKeyExchange revealed.
type KeyExchange struct {
	Kind     string `json:"kind"`               // DHE, ECDHE, RSA_EXPORT
	DHBits   int    `json:"dh_bits,omitempty"`  // size of the finite-field prime
	Curve    Group  `json:"curve,omitempty"`    // named curve
	Explicit bool   `json:"explicit,omitempty"` // explicit curve parameters
	RSABits  int    `json:"rsa_bits,omitempty"` // temporary export RSA key
	Unparsed bool   `json:"unparsed,omitempty"` // kind not recognised
	DHPrime  []byte `json:"-"`                  // for tests that compare groups
}

// Response is a server's answer to one hello: accepted (ServerHello) or
// refused (an alert, or the connection closed).
type Response struct {
	ServerHello *ServerHello `json:"server_hello,omitempty"`
	Alert       *Alert       `json:"alert,omitempty"`
	Closed      bool         `json:"closed,omitempty"`
	KeyExchange *KeyExchange `json:"key_exchange,omitempty"`
	// Certificates are the DER certificates served (TLS ≤ 1.2 only: TLS
	// 1.3 encrypts them).
	Certificates [][]byte `json:"-"`
	OCSPStapled  bool     `json:"ocsp_stapled,omitempty"`
	// Note records oddities that do not change the verdict (an alert
	// after the ServerHello).
	Note string `json:"note,omitempty"`
}

// Accepted reports whether the server chose a suite.
func (r *Response) Accepted() bool { return r != nil && r.ServerHello != nil }

// Refusal says how the server refused, for evidence.
func (r *Response) Refusal() string {
	switch {
	case r == nil || r.Accepted():
		return ""
	case r.Alert != nil:
		return "alert " + r.Alert.String()
	}
	return "connection closed"
}

// malformed classifies a protocol violation by the server.
func malformed(format string, args ...any) error {
	return check.WithClass(check.ErrMalformed, fmt.Errorf("tlsprobe: "+format, args...))
}

// errClean is a connection closed at a record boundary.
var errClean = errors.New("connection closed")

type recordReader struct {
	r       io.Reader
	records int
	hdr     [5]byte
}

func (rr *recordReader) next() (typ uint8, body []byte, err error) {
	if rr.records >= maxRecords {
		return 0, nil, malformed("more than %d records in the first flight", maxRecords)
	}
	if _, err := io.ReadFull(rr.r, rr.hdr[:1]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, errClean
		}
		return 0, nil, err
	}
	if _, err := io.ReadFull(rr.r, rr.hdr[1:]); err != nil {
		return 0, nil, truncated(err)
	}
	rr.records++
	typ = rr.hdr[0]
	if typ < recordChangeCipherSpec || typ > recordHeartbeat || rr.hdr[1] != 3 {
		return 0, nil, malformed("not a TLS record (header % x)", rr.hdr[:])
	}
	n := int(rr.hdr[3])<<8 | int(rr.hdr[4])
	if n > MaxRecord {
		return 0, nil, malformed("record of %d bytes exceeds the %d-byte limit", n, MaxRecord)
	}
	body = make([]byte, n)
	if _, err := io.ReadFull(rr.r, body); err != nil {
		return 0, nil, truncated(err)
	}
	return typ, body, nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed("connection closed inside a record")
	}
	return err
}

// handshakeReader reassembles handshake messages from records.
type handshakeReader struct {
	rr    recordReader
	buf   []byte
	total int
	max   int
	// alert is set when an alert record arrives instead of a message.
	alert *Alert
}

// nextMsg returns the next handshake message (type, body), or an alert
// (h.alert set, typ 0), or an error. A warning alert other than
// close_notify is skipped.
func (h *handshakeReader) nextMsg() (typ uint8, body []byte, err error) {
	for {
		if len(h.buf) >= 4 {
			n := int(h.buf[1])<<16 | int(h.buf[2])<<8 | int(h.buf[3])
			if n > h.max {
				return 0, nil, malformed("handshake message of %d bytes exceeds the %d-byte limit", n, h.max)
			}
			if len(h.buf) >= 4+n {
				typ, body = h.buf[0], h.buf[4:4+n]
				h.buf = h.buf[4+n:]
				return typ, body, nil
			}
		}
		rt, rb, err := h.rr.next()
		if err != nil {
			if errors.Is(err, errClean) && len(h.buf) > 0 {
				return 0, nil, malformed("connection closed inside a handshake message")
			}
			return 0, nil, err
		}
		switch rt {
		case recordHandshake:
			if len(rb) == 0 {
				return 0, nil, malformed("empty handshake record")
			}
			h.total += len(rb)
			if h.total > h.max {
				return 0, nil, malformed("first flight exceeds %d bytes", h.max)
			}
			h.buf = append(h.buf, rb...)
		case recordAlert:
			if len(h.buf) > 0 {
				return 0, nil, malformed("alert inside a handshake message")
			}
			if len(rb) < 2 {
				return 0, nil, malformed("alert record of %d bytes", len(rb))
			}
			a := &Alert{Level: rb[0], Description: rb[1]}
			if a.Level == 1 && a.Description != 0 {
				continue // warning (e.g. unrecognized_name): the handshake goes on
			}
			h.alert = a
			return 0, nil, nil
		default:
			return 0, nil, malformed("unexpected record type %d in the handshake", rt)
		}
	}
}

// ReadResponse reads a server's answer to hello from r: records and
// handshake messages up to ServerHelloDone (TLS ≤ 1.2) or the first
// encrypted record after the ServerHello (TLS 1.3), and nothing after a
// HelloRetryRequest (the server waits for a second hello). maxHandshake
// bounds the first flight; 0 means MaxHandshake.
//
// A refusal (alert, or the connection closed before any byte) is a
// Response, not an error; errors are could-not-tell: malformed answers
// (class malformed) and I/O errors (timeouts are the caller's to classify).
func ReadResponse(r io.Reader, hello Hello, maxHandshake int) (*Response, error) {
	if maxHandshake <= 0 {
		maxHandshake = MaxHandshake
	}
	h := &handshakeReader{rr: recordReader{r: r}, max: maxHandshake}
	resp := &Response{}
	typ, body, err := h.nextMsg()
	switch {
	case errors.Is(err, errClean):
		resp.Closed = true
		return resp, nil
	case err != nil:
		return nil, err
	case h.alert != nil:
		if h.alert.Description == 0 {
			resp.Closed = true
		} else {
			resp.Alert = h.alert
		}
		return resp, nil
	case typ != msgServerHello:
		return nil, malformed("expected ServerHello, got handshake message %d", typ)
	}
	sh, err := ParseServerHello(body)
	if err != nil {
		return nil, err
	}
	if err := checkServerHello(sh, hello); err != nil {
		return nil, err
	}
	resp.ServerHello = sh

	if sh.Version == TLS13 {
		if len(h.buf) > 0 {
			return nil, malformed("plaintext handshake data after a TLS 1.3 ServerHello")
		}
		if sh.HelloRetry {
			return resp, nil
		}
		return resp, expectEncrypted(&h.rr)
	}

	suite, _ := SuiteByID(uint16(sh.Suite))
	for {
		typ, body, err := h.nextMsg()
		switch {
		case errors.Is(err, errClean):
			return nil, malformed("connection closed before ServerHelloDone")
		case err != nil:
			return nil, err
		case h.alert != nil:
			resp.Note = "alert after ServerHello: " + h.alert.String()
			return resp, nil
		}
		switch typ {
		case msgCertificate:
			certs, err := parseCertificates(body)
			if err != nil {
				return nil, err
			}
			resp.Certificates = certs
		case msgServerKeyExchange:
			kx, err := parseServerKeyExchange(body, suite.KxClass())
			if err != nil {
				return nil, err
			}
			resp.KeyExchange = kx
		case msgCertificateStatus:
			resp.OCSPStapled = true
		case msgCertificateReq:
		case msgServerHelloDone:
			if len(body) != 0 {
				return nil, malformed("ServerHelloDone with a body")
			}
			if len(h.buf) > 0 {
				return nil, malformed("%d bytes after ServerHelloDone", len(h.buf))
			}
			return resp, nil
		default:
			return nil, malformed("unexpected handshake message %d after ServerHello", typ)
		}
	}
}

// expectEncrypted reads what follows a TLS 1.3 ServerHello: an optional
// ChangeCipherSpec, then an encrypted record. Garbage there is malformed.
func expectEncrypted(rr *recordReader) error {
	for i := 0; i < 2; i++ {
		typ, body, err := rr.next()
		switch {
		case errors.Is(err, errClean):
			return malformed("connection closed after ServerHello")
		case err != nil:
			return err
		case typ == recordChangeCipherSpec && i == 0:
			if !bytes.Equal(body, []byte{1}) {
				return malformed("bad ChangeCipherSpec")
			}
		case typ == recordApplicationData:
			return nil
		case typ == recordAlert:
			return nil // refused after choosing; the ServerHello still stands
		default:
			return malformed("unexpected record type %d after a TLS 1.3 ServerHello", typ)
		}
	}
	return malformed("no encrypted record after a TLS 1.3 ServerHello")
}

// checkServerHello rejects a ServerHello that does not answer our hello.
func checkServerHello(sh *ServerHello, hello Hello) error {
	offered := false
	for _, s := range hello.Suites {
		if uint16(sh.Suite) == s {
			offered = true
			break
		}
	}
	if !offered {
		return malformed("server chose %v, which was not offered", sh.Suite)
	}
	if sh.Compression != 0 {
		return malformed("server chose compression method %d, which was not offered", sh.Compression)
	}
	switch {
	case hello.Version == TLS13 && sh.Version != TLS13:
		return malformed("server answered a TLS 1.3-only hello with %v", sh.Version)
	case hello.Version != TLS13 && sh.Version == TLS13:
		return malformed("server chose TLS 1.3, which was not offered")
	case sh.Version < SSL30 || sh.Version > hello.Version:
		return malformed("server chose version %v above the offered %v", sh.Version, hello.Version)
	}
	if s, ok := SuiteByID(uint16(sh.Suite)); ok && !s.ValidAt(sh.Version) {
		return malformed("server chose %v, which does not exist in %v", sh.Suite, sh.Version)
	}
	return nil
}

// ParseServerHello parses a ServerHello handshake body.
func ParseServerHello(body []byte) (*ServerHello, error) {
	s := cryptobyte.String(body)
	var (
		legacy, suite uint16
		random        []byte
		sid           cryptobyte.String
		comp          uint8
	)
	if !s.ReadUint16(&legacy) || !s.ReadBytes(&random, 32) || !s.ReadUint8LengthPrefixed(&sid) ||
		!s.ReadUint16(&suite) || !s.ReadUint8(&comp) {
		return nil, malformed("short ServerHello (%d bytes)", len(body))
	}
	if len(sid) > 32 {
		return nil, malformed("ServerHello session id of %d bytes", len(sid))
	}
	sh := &ServerHello{Version: Version(legacy), LegacyVersion: Version(legacy), Suite: SuiteID(suite), Compression: comp}
	sh.HelloRetry = bytes.Equal(random, hrrRandom)
	switch string(random[24:]) {
	case "DOWNGRD\x01":
		sh.Downgrade = "TLS1.3"
	case "DOWNGRD\x00":
		sh.Downgrade = "TLS1.2"
	}
	if s.Empty() {
		return sh, nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, malformed("bad ServerHello extensions block")
	}
	seen := map[uint16]bool{}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, malformed("bad ServerHello extension")
		}
		if seen[typ] {
			return nil, malformed("ServerHello repeats extension %d", typ)
		}
		seen[typ] = true
		sh.Extensions = append(sh.Extensions, typ)
		switch typ {
		case extSupportedVersions:
			var v uint16
			if !data.ReadUint16(&v) || !data.Empty() {
				return nil, malformed("bad supported_versions in ServerHello")
			}
			sh.Version = Version(v)
		case extKeyShare:
			var g uint16
			if !data.ReadUint16(&g) {
				return nil, malformed("bad key_share in ServerHello")
			}
			sh.Group = Group(g)
		}
	}
	if sh.HelloRetry && sh.Version != TLS13 {
		return nil, malformed("HelloRetryRequest without TLS 1.3")
	}
	return sh, nil
}

func parseCertificates(body []byte) ([][]byte, error) {
	s := cryptobyte.String(body)
	var list cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&list) || !s.Empty() {
		return nil, malformed("bad Certificate message")
	}
	var out [][]byte
	for !list.Empty() {
		var c cryptobyte.String
		if !list.ReadUint24LengthPrefixed(&c) || len(c) == 0 {
			return nil, malformed("bad certificate in Certificate message")
		}
		if len(out) < maxCertificates {
			out = append(out, append([]byte(nil), c...))
		}
	}
	return out, nil
}

// parseServerKeyExchange reads the parameters; the signature that follows
// is not checked (we never finish the handshake).
func parseServerKeyExchange(body []byte, kind string) (*KeyExchange, error) {
	s := cryptobyte.String(body)
	kx := &KeyExchange{Kind: kind}
	switch kind {
	case "DHE":
		var p, g, y cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&p) || !s.ReadUint16LengthPrefixed(&g) || !s.ReadUint16LengthPrefixed(&y) ||
			len(p) == 0 || len(g) == 0 || len(y) == 0 {
			return nil, malformed("bad DHE ServerKeyExchange")
		}
		kx.DHBits = new(big.Int).SetBytes(p).BitLen()
		kx.DHPrime = append([]byte(nil), p...)
	case "ECDHE":
		var curveType uint8
		if !s.ReadUint8(&curveType) {
			return nil, malformed("bad ECDHE ServerKeyExchange")
		}
		switch curveType {
		case 3:
			var g uint16
			var point cryptobyte.String
			if !s.ReadUint16(&g) || !s.ReadUint8LengthPrefixed(&point) || len(point) == 0 {
				return nil, malformed("bad ECDHE ServerKeyExchange")
			}
			kx.Curve = Group(g)
		case 1, 2:
			kx.Explicit = true
		default:
			return nil, malformed("ECDHE ServerKeyExchange with curve type %d", curveType)
		}
	case "RSA_EXPORT":
		var n, e cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&n) || !s.ReadUint16LengthPrefixed(&e) || len(n) == 0 {
			return nil, malformed("bad RSA export ServerKeyExchange")
		}
		kx.RSABits = new(big.Int).SetBytes(n).BitLen()
	default:
		kx.Unparsed = true
	}
	return kx, nil
}

// SSLv2 message types.
const sslv2ServerHello = 4

// readSSLv2Response reads the answer to an SSLv2 CLIENT-HELLO: an SSLv2
// SERVER-HELLO offering at least one cipher kind means SSLv2 is accepted;
// a TLS alert, a TLS handshake record or a closed connection is a refusal.
func readSSLv2Response(r io.Reader) (*Response, []uint32, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		if errors.Is(err, io.EOF) {
			return &Response{Closed: true}, nil, nil
		}
		return nil, nil, err
	}
	if hdr[0]&0x80 == 0 {
		// A TLS record: servers that do not speak SSLv2 answer with an
		// alert (or, leniently, a TLS ServerHello). Either way, no SSLv2.
		if hdr[0] == recordAlert {
			var rest [6]byte
			if n, _ := io.ReadFull(r, rest[:]); n == 6 {
				return &Response{Alert: &Alert{Level: rest[4], Description: rest[5]}}, nil, nil
			}
		}
		if hdr[0] >= recordChangeCipherSpec && hdr[0] <= recordHeartbeat {
			return &Response{Closed: true}, nil, nil
		}
		return nil, nil, malformed("not an SSLv2 or TLS answer (first byte %#02x)", hdr[0])
	}
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		return nil, nil, truncated(err)
	}
	n := int(hdr[0]&0x7f)<<8 | int(hdr[1])
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, nil, truncated(err)
	}
	s := cryptobyte.String(body)
	var typ, hit, certType uint8
	var ver, certLen, specLen, idLen uint16
	if !s.ReadUint8(&typ) {
		return nil, nil, malformed("empty SSLv2 message")
	}
	if typ != sslv2ServerHello {
		// SSLv2 ERROR (0) or anything else: refused.
		return &Response{Closed: true, Note: fmt.Sprintf("SSLv2 message %d", typ)}, nil, nil
	}
	var cert, specs cryptobyte.String
	if !s.ReadUint8(&hit) || !s.ReadUint8(&certType) || !s.ReadUint16(&ver) || !s.ReadUint16(&certLen) ||
		!s.ReadUint16(&specLen) || !s.ReadUint16(&idLen) || !s.ReadBytes((*[]byte)(&cert), int(certLen)) ||
		!s.ReadBytes((*[]byte)(&specs), int(specLen)) || specLen%3 != 0 {
		return nil, nil, malformed("bad SSLv2 SERVER-HELLO")
	}
	var kinds []uint32
	for i := 0; i+3 <= len(specs); i += 3 {
		kinds = append(kinds, uint32(specs[i])<<16|uint32(specs[i+1])<<8|uint32(specs[i+2]))
	}
	if len(kinds) == 0 {
		return &Response{Closed: true, Note: "SSLv2 SERVER-HELLO with no cipher"}, nil, nil
	}
	resp := &Response{ServerHello: &ServerHello{Version: SSL20, LegacyVersion: Version(ver)}}
	if len(cert) > 0 {
		resp.Certificates = [][]byte{append([]byte(nil), cert...)}
	}
	return resp, kinds, nil
}
