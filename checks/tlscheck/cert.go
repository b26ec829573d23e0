package tlscheck

import (
	"bytes"
	"context"
	"crypto/dsa" //nolint:staticcheck // DSA keys are still served by old hosts; we only measure them
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlsprobe"
)

// Bounds on what one handshake may add to the evidence (a job stays well
// under 1 MiB with four addresses).
const (
	maxCerts     = 8        // certificates kept per endpoint
	maxCertBytes = 64 << 10 // DER kept per endpoint
	maxStaple    = 16 << 10 // a stapled OCSP response
)

// CertInfo describes one served certificate for reports. Verdicts are
// taken from the DER (Endpoint.Certs), not from these fields.
type CertInfo struct {
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	Serial     string    `json:"serial"`
	SHA256     string    `json:"sha256"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	KeyType    string    `json:"key_type"` // RSA, ECDSA, Ed25519, DSA, unknown
	KeyBits    int       `json:"key_bits"`
	SigAlg     string    `json:"sig_alg"`
	SelfSigned bool      `json:"self_signed,omitempty"`
	CA         bool      `json:"ca,omitempty"`
	DNSNames   []string  `json:"dns_names,omitempty"`
	// CRL are the certificate's http(s) CRL distribution points.
	CRL []string `json:"crl,omitempty"`
}

// Endpoint is one certificate handshake with one address: what the server
// sent, as it sent it, so that Evaluate (and `posture reeval`, with other
// trust anchors or another time) judges the raw material.
type Endpoint struct {
	Addr       string         `json:"addr"`
	Error      string         `json:"error,omitempty"`
	ErrorClass check.ErrClass `json:"error_class,omitempty"`
	// Refused: the connection was refused (nothing listens on the port),
	// told from the error chain at collection.
	Refused bool `json:"refused,omitempty"`
	// Via says how the certificates were read: "crypto/tls", or "raw
	// hello" when crypto/tls could not complete (SSLv3-only, DSA, exotic
	// curves, a certificate it cannot parse) and the prober's plaintext
	// Certificate message was used.
	Via       string           `json:"via,omitempty"`
	ViaReason string           `json:"via_reason,omitempty"`
	Version   tlsprobe.Version `json:"version,omitempty"`
	Suite     tlsprobe.SuiteID `json:"suite,omitempty"`
	// Certs are the served certificates, DER, leaf first, as sent.
	Certs [][]byte `json:"certs,omitempty"`
	// Served describes them (reports only).
	Served []CertInfo `json:"served,omitempty"`
	// OCSP is the stapled OCSP response as sent (none: nil).
	OCSP []byte `json:"ocsp,omitempty"`
	// CRLs are the facts of the CRLs of the leaf and of the intermediates
	// (served, or found when building a chain at collection).
	CRLs []CRLFacts `json:"crls,omitempty"`
}

// failed reports an endpoint whose certificates could not be read.
func (e Endpoint) failed() bool { return e.Error != "" }

// clientConfig offers everything crypto/tls can speak, so that old
// servers still show their certificate; judging is Evaluate's.
func clientConfig(host string) *tls.Config {
	var suites []uint16
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		suites = append(suites, cs.ID)
	}
	cfg := &tls.Config{
		InsecureSkipVerify: true, // we record what is served; Evaluate verifies
		MinVersion:         tls.VersionTLS10,
		CipherSuites:       suites,
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	return cfg
}

// Handshake runs a crypto/tls client handshake on conn (already
// connected, or upgraded by STARTTLS) with host as SNI, under the
// context's deadline. It closes conn.
func Handshake(ctx context.Context, conn net.Conn, host string) (tls.ConnectionState, error) {
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tc := tls.Client(conn, clientConfig(host))
	if err := tc.HandshakeContext(ctx); err != nil {
		err = fmt.Errorf("tls handshake: %w", err)
		if ctx.Err() != nil {
			return tls.ConnectionState{}, check.WithClass(check.Classify(ctx.Err()), err)
		}
		// Anything else (a protocol mismatch, or a certificate crypto/tls
		// cannot parse, which it reports only in words) is for the raw
		// fallback to tell apart.
		return tls.ConnectionState{}, err
	}
	return tc.ConnectionState(), nil
}

// transportError: the peer or the network failed us; no second try.
func transportError(err error) bool {
	switch check.Classify(err) {
	case check.ErrTimeout, check.ErrUnreachable, check.ErrCanceled, check.ErrMalformed, check.ErrBlocked, check.ErrScope:
		return true
	}
	return false
}

// CertOf makes one certificate handshake: dial addr, run crypto/tls, and
// record what was served. When crypto/tls cannot complete for protocol
// reasons, it dials again for one raw TLS 1.2 hello and reads the
// plaintext Certificate message instead (a server that speaks only SSLv3
// or uses suites Go lacks still has its certificate judged).
func CertOf(ctx context.Context, dial tlsprobe.DialFunc, addr, host string, timeout time.Duration) Endpoint {
	ctx1, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(ctx1, "tcp", addr)
	if err != nil {
		return failedEndpoint(addr, fmt.Errorf("connect: %w", err))
	}
	return CertFrom(ctx1, conn, addr, host, func() Endpoint {
		return rawCert(ctx, dial, addr, host, timeout)
	})
}

// CertFrom runs the handshake on an open conn (closing it) and records the
// result; fallback, if set, is tried when crypto/tls fails for a protocol
// reason.
func CertFrom(ctx context.Context, conn net.Conn, addr, host string, fallback func() Endpoint) Endpoint {
	st, err := Handshake(ctx, conn, host)
	if err != nil {
		if fallback != nil && !transportError(err) {
			ep := fallback()
			ep.ViaReason = err.Error()
			return ep
		}
		return failedEndpoint(addr, err)
	}
	ep := Endpoint{Addr: addr, Via: "crypto/tls", Version: tlsprobe.Version(st.Version), Suite: tlsprobe.SuiteID(st.CipherSuite)}
	var ders [][]byte
	for _, c := range st.PeerCertificates {
		ders = append(ders, c.Raw)
	}
	record(&ep, ders)
	if n := len(st.OCSPResponse); n > 0 && n <= maxStaple {
		ep.OCSP = st.OCSPResponse
	}
	return ep
}

func rawCert(ctx context.Context, dial tlsprobe.DialFunc, addr, host string, timeout time.Duration) Endpoint {
	p := &tlsprobe.Prober{Dial: dial, Timeout: timeout}
	resp, err := p.Probe(ctx, addr, tlsprobe.Hello{Version: tlsprobe.TLS12, ServerName: host, Suites: allLegacy()})
	switch {
	case err != nil:
		return failedEndpoint(addr, err)
	case !resp.Accepted():
		class := check.ErrOther
		if resp.Alert == nil {
			// Closed on both hellos without a word: as tls.protocols
			// says of such a port, the probe was turned away.
			class = check.ErrBlocked
		}
		return failedEndpoint(addr, check.WithClass(class, fmt.Errorf("no handshake completes: crypto/tls failed and a raw TLS 1.2 hello was refused (%s)", resp.Refusal())))
	case len(resp.Certificates) == 0:
		return failedEndpoint(addr, check.WithClass(check.ErrOther, fmt.Errorf("the server chose %v, which sends no certificate", resp.ServerHello.Suite)))
	}
	ep := Endpoint{Addr: addr, Via: "raw hello", Version: resp.ServerHello.Version, Suite: resp.ServerHello.Suite}
	record(&ep, resp.Certificates)
	return ep
}

// record keeps the served DER (bounded) and describes what parses. A
// certificate that does not parse fails the endpoint as malformed: no
// client could use it either. The DER stays, as evidence.
func record(ep *Endpoint, ders [][]byte) {
	if len(ders) == 0 {
		ep.Error, ep.ErrorClass = "the server sent no certificate", check.ErrOther
		return
	}
	size := 0
	for _, der := range ders {
		if len(ep.Certs) == maxCerts || size+len(der) > maxCertBytes {
			break
		}
		size += len(der)
		ep.Certs = append(ep.Certs, der)
	}
	for i, der := range ep.Certs {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			ep.Served = nil
			ep.Error, ep.ErrorClass = fmt.Sprintf("cannot parse certificate #%d as served: %v", i, err), check.ErrMalformed
			return
		}
		info := certInfo(c)
		if i > 0 {
			info.DNSNames = nil
		}
		ep.Served = append(ep.Served, info)
	}
}

// allLegacy offers every suite that authenticates the server, so the
// Certificate message is sent.
func allLegacy() []uint16 {
	var out []uint16
	for _, s := range tlsprobe.SuitesAt(tlsprobe.TLS12) {
		if !s.Has(tlsprobe.FlagAnon) {
			out = append(out, s.ID)
		}
	}
	return out
}

func failedEndpoint(addr string, err error) Endpoint {
	return Endpoint{Addr: addr, Error: err.Error(), ErrorClass: check.Classify(err), Refused: errors.Is(err, syscall.ECONNREFUSED)}
}

func certInfo(c *x509.Certificate) CertInfo {
	sum := sha256.Sum256(c.Raw)
	info := CertInfo{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: c.SerialNumber.Text(16),
		SHA256: hex.EncodeToString(sum[:]), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		SigAlg: c.SignatureAlgorithm.String(), CA: c.IsCA, DNSNames: c.DNSNames, SelfSigned: selfSigned(c),
	}
	if len(info.DNSNames) > 20 {
		info.DNSNames = info.DNSNames[:20]
	}
	info.CRL = crlURLs(c)
	info.KeyType, info.KeyBits = keyOf(c)
	return info
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// crlURLs are a certificate's http(s) distribution points (at most 4).
func crlURLs(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.CRLDistributionPoints {
		if len(out) < 4 && (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
			out = append(out, u)
		}
	}
	return out
}

func keyOf(c *x509.Certificate) (string, int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	case *dsa.PublicKey:
		return "DSA", k.P.BitLen()
	}
	return "unknown", 0
}

// fingerprint is the hex SHA-256 of a certificate's DER.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// spkiHash is the hex SHA-256 of a certificate's SubjectPublicKeyInfo: the
// identity of a key that signs CRLs.
func spkiHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}
