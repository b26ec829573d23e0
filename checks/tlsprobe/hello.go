package tlsprobe

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/crypto/cryptobyte"
)

// Record content types.
const (
	recordChangeCipherSpec = 20
	recordAlert            = 21
	recordHandshake        = 22
	recordApplicationData  = 23
	recordHeartbeat        = 24
)

// Handshake message types.
const (
	msgClientHello       = 1
	msgServerHello       = 2
	msgCertificate       = 11
	msgServerKeyExchange = 12
	msgCertificateReq    = 13
	msgServerHelloDone   = 14
	msgCertificateStatus = 22
)

// Extension types.
const (
	extServerName        = 0
	extStatusRequest     = 5
	extSupportedGroups   = 10
	extECPointFormats    = 11
	extSignatureAlgs     = 13
	extPadding           = 21 // RFC 7685
	extExtendedMaster    = 23
	extSupportedVersions = 43
	extPSKModes          = 45
	extKeyShare          = 51
	extRenegotiationInfo = 0xff01
)

// scsvRenegotiation (TLS_EMPTY_RENEGOTIATION_INFO_SCSV) is sent in every
// pre-1.3 hello: some servers refuse clients that do not signal secure
// renegotiation. TLS_FALLBACK_SCSV is never sent: it would make a server
// refuse the lower versions we are probing for.
const scsvRenegotiation = 0x00FF

// legacyGroups are offered in TLS 1.0–1.2 hellos: every named curve a
// server might be configured with, and no finite-field group, so that a
// server uses its own DH parameters (RFC 7919 §4) and their size is seen.
var legacyGroups = []Group{
	GroupX25519, GroupSecp256r1, GroupSecp384r1, GroupSecp521r1, GroupX448,
	26, 27, 28, 22, 21, 20, 19, 18, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1,
}

// tls13Groups are offered in TLS 1.3 hellos; a key share is sent for X25519
// only, and a server preferring another group answers HelloRetryRequest,
// which is enough to see that it speaks TLS 1.3.
var tls13Groups = []Group{
	GroupX25519, GroupSecp256r1, GroupSecp384r1, GroupSecp521r1, GroupX448,
	GroupFFDHE2048, GroupFFDHE3072, GroupFFDHE4096,
}

// signatureAlgs covers TLS 1.3 schemes and every TLS 1.2 hash/signature
// pair, SHA-1 and DSA included, so no server refuses for want of one.
var signatureAlgs = []uint16{
	0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b,
	0x0401, 0x0501, 0x0601, 0x0301, 0x0302, 0x0303, 0x0402, 0x0502, 0x0602,
	0x0201, 0x0202, 0x0203,
}

// Hello is a ClientHello to send.
type Hello struct {
	// Version is the highest version offered: the client_version of an
	// SSLv3–TLS 1.2 hello; TLS13 sends legacy_version 1.2 with
	// supported_versions offering 1.3 alone.
	Version Version
	// ServerName is sent as SNI unless empty or an IP literal.
	ServerName string
	Suites     []uint16
}

// Marshal writes the hello as one handshake record. SSLv3 hellos carry no
// extensions (unless padded); TLS 1.3 hellos carry a fresh X25519 key
// share. Every hello is padded out of the F5 band (see padF5).
func (h Hello) Marshal() ([]byte, error) {
	if !h.Version.known() {
		return nil, fmt.Errorf("tlsprobe: cannot write a %v hello", h.Version)
	}
	if len(h.Suites) == 0 {
		return nil, fmt.Errorf("tlsprobe: hello offers no cipher suite")
	}
	var random [32]byte
	if _, err := rand.Read(random[:]); err != nil {
		return nil, err
	}
	legacy := h.Version
	if legacy == TLS13 {
		legacy = TLS12
	}
	var body cryptobyte.Builder
	body.AddUint16(uint16(legacy))
	body.AddBytes(random[:])
	body.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
		if h.Version == TLS13 { // middlebox compatibility mode (RFC 8446 D.4)
			var sid [32]byte
			_, _ = rand.Read(sid[:])
			b.AddBytes(sid[:])
		}
	})
	body.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, s := range h.Suites {
			b.AddUint16(s)
		}
		if h.Version != TLS13 {
			b.AddUint16(scsvRenegotiation)
		}
	})
	body.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) }) // null compression
	head, err := body.Bytes()
	if err != nil {
		return nil, fmt.Errorf("tlsprobe: build hello: %w", err)
	}
	var ext []byte
	if h.Version != SSL30 {
		if ext, err = h.extensions(); err != nil {
			return nil, err
		}
	}
	ext, block := padF5(len(head), ext, h.Version != SSL30)
	msg := head
	if block {
		msg = binary.BigEndian.AppendUint16(slices.Clip(head), uint16(len(ext)))
		msg = append(msg, ext...)
	}

	recVer := uint16(TLS10) // what browsers put on the first record
	if h.Version == SSL30 {
		recVer = uint16(SSL30)
	}
	var rec cryptobyte.Builder
	rec.AddUint8(recordHandshake)
	rec.AddUint16(recVer)
	rec.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(msgClientHello)
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(msg) })
	})
	return rec.Bytes()
}

// The F5 band: some F5 BIG-IP load balancers hang on a ClientHello whose
// handshake message (4-byte header and body) is 256 to 511 bytes long,
// taking it for an SSLv2 hello; clients pad such hellos to 512 bytes with
// the padding extension (RFC 7685; BoringSSL, OpenSSL, NSS do).
const (
	f5BandMin = 256
	f5BandMax = 511
	f5Target  = 512
)

// padF5 returns the extensions of a hello whose body before the extensions
// block is headLen bytes long, with a padding extension appended when the
// handshake message would otherwise fall in the F5 band. hasBlock says
// whether the hello has an extensions block (an SSLv3 hello has none, and
// gets one only to carry the padding: SSL 3.0 servers must ignore data
// after the compression methods, RFC 6101 5.6.1.2); block reports whether
// the hello now has one.
//
// As BoringSSL's ext_padding: the padding's data makes the message 512
// bytes, and is never empty (WebSphere Application Server 7.0 is intolerant
// of an empty last extension), so a 508–511-byte message gets one byte and
// ends up a little over 512.
func padF5(headLen int, ext []byte, hasBlock bool) (_ []byte, block bool) {
	msgLen := 4 + headLen
	overhead := 4 // the padding extension's type and length
	if hasBlock {
		msgLen += 2 + len(ext)
	} else {
		overhead += 2 // the extensions block's length
	}
	if msgLen < f5BandMin || msgLen > f5BandMax {
		return ext, hasBlock
	}
	n := max(1, f5Target-msgLen-overhead)
	ext = binary.BigEndian.AppendUint16(slices.Clip(ext), extPadding)
	ext = binary.BigEndian.AppendUint16(ext, uint16(n))
	return append(ext, make([]byte, n)...), true
}

func (h Hello) extensions() ([]byte, error) {
	var b cryptobyte.Builder
	add := func(typ uint16, body func(*cryptobyte.Builder)) {
		b.AddUint16(typ)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { body(b) })
	}
	if sni := h.ServerName; sni != "" {
		if _, err := netip.ParseAddr(sni); err != nil {
			add(extServerName, func(b *cryptobyte.Builder) {
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					b.AddUint8(0) // host_name
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(sni)) })
				})
			})
		}
	}
	if h.Version != TLS13 {
		// Empty, so never last (WebSphere 7.0 is intolerant of an empty
		// last extension).
		add(extExtendedMaster, func(*cryptobyte.Builder) {})
	}
	groups := legacyGroups
	if h.Version == TLS13 {
		groups = tls13Groups
	}
	add(extSupportedGroups, func(b *cryptobyte.Builder) {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, g := range groups {
				b.AddUint16(uint16(g))
			}
		})
	})
	add(extECPointFormats, func(b *cryptobyte.Builder) {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) })
	})
	if h.Version >= TLS12 {
		add(extSignatureAlgs, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, s := range signatureAlgs {
					b.AddUint16(s)
				}
			})
		})
	}
	if h.Version == TLS13 {
		key, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		add(extSupportedVersions, func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(uint16(TLS13)) })
		})
		add(extPSKModes, func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(1) }) // psk_dhe_ke
		})
		add(extKeyShare, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint16(uint16(GroupX25519))
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(key.PublicKey().Bytes()) })
			})
		})
	}
	return b.Bytes()
}

// SSLv2 cipher kinds (RFC draft "The SSL Protocol", Appendix C).
var sslv2Kinds = []uint32{
	0x010080, // SSL_CK_RC4_128_WITH_MD5
	0x020080, // SSL_CK_RC4_128_EXPORT40_WITH_MD5
	0x030080, // SSL_CK_RC2_128_CBC_WITH_MD5
	0x040080, // SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5
	0x050080, // SSL_CK_IDEA_128_CBC_WITH_MD5
	0x060040, // SSL_CK_DES_64_CBC_WITH_MD5
	0x0700C0, // SSL_CK_DES_192_EDE3_CBC_WITH_MD5
}

// sslv2Hello is an SSLv2 CLIENT-HELLO offering every SSLv2 cipher kind.
// Its length is below 256, so the first byte is 0x80, which TLS stacks
// recognise and refuse at once rather than waiting for more bytes.
func sslv2Hello() []byte {
	var challenge [16]byte
	_, _ = rand.Read(challenge[:])
	var body cryptobyte.Builder
	body.AddUint8(1) // CLIENT-HELLO
	body.AddUint16(uint16(SSL20))
	body.AddUint16(uint16(3 * len(sslv2Kinds)))
	body.AddUint16(0) // session id length
	body.AddUint16(uint16(len(challenge)))
	for _, k := range sslv2Kinds {
		body.AddUint8(uint8(k >> 16))
		body.AddUint16(uint16(k))
	}
	body.AddBytes(challenge[:])
	msg := body.BytesOrPanic()
	return append([]byte{0x80 | byte(len(msg)>>8), byte(len(msg))}, msg...)
}
