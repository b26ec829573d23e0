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
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlsprobe"
)

// CertInfo is one served certificate, as evidence.
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

// Chain is the verdict of chain building against the trust anchors.
type Chain struct {
	Trusted bool `json:"trusted"`
	// Problem names why not: self-signed, untrusted-root,
	// missing-intermediate, insecure-signature, invalid.
	Problem string `json:"problem,omitempty"`
	Detail  string `json:"detail,omitempty"` // the verifier's words
	// Built is the verified chain, leaf to root, by subject.
	Built []string `json:"built,omitempty"`
	// InOrder: each served certificate is issued by the next one.
	InOrder bool `json:"in_order"`
	// CheckedAt is set when the chain was verified at another time than
	// collection because the certificate is out of date (so that expiry is
	// judged once, by tls.cert.expiry).
	CheckedAt *time.Time `json:"checked_at,omitempty"`
}

// OCSPStatus is a stapled OCSP response.
type OCSPStatus struct {
	Status     string    `json:"status"` // good, revoked, unknown, unparsed
	ThisUpdate time.Time `json:"this_update,omitempty"`
	NextUpdate time.Time `json:"next_update,omitempty"`
	RevokedAt  time.Time `json:"revoked_at,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// Endpoint is one certificate handshake with one address.
type Endpoint struct {
	Addr       string         `json:"addr"`
	Error      string         `json:"error,omitempty"`
	ErrorClass check.ErrClass `json:"error_class,omitempty"`
	// Via says how the certificates were read: "crypto/tls", or "raw
	// hello" when crypto/tls could not complete (SSLv3-only, DSA, exotic
	// curves) and the prober's plaintext Certificate message was used.
	Via       string           `json:"via,omitempty"`
	ViaReason string           `json:"via_reason,omitempty"`
	Version   tlsprobe.Version `json:"version,omitempty"`
	Suite     tlsprobe.SuiteID `json:"suite,omitempty"`
	Served    []CertInfo       `json:"served,omitempty"`
	Chain     *Chain           `json:"chain,omitempty"`
	NameMatch bool             `json:"name_match"`
	NameError string           `json:"name_error,omitempty"`
	OCSP      *OCSPStatus      `json:"ocsp,omitempty"`
	// CRL is what the leaf's CRL said, fetched when nothing was stapled.
	CRL *CRLStatus `json:"crl,omitempty"`
	// IntermediateCRLs are what the served intermediates' CRLs (their
	// issuers') said, fetched whether or not anything was stapled (a
	// staple speaks for the leaf only).
	IntermediateCRLs []CRLStatus       `json:"intermediate_crls,omitempty"`
	Extra            map[string]string `json:"extra,omitempty"`

	// The parsed certificates, for the CRL fetch after the handshake.
	certs []*x509.Certificate // as served
	built []*x509.Certificate // the verified chain, if any
}

// failed reports an endpoint whose certificates could not be read.
func (e Endpoint) failed() bool { return e.Error != "" }

// clientConfig offers everything crypto/tls can speak, so that old
// servers still show their certificate; verification is ours.
func clientConfig(host string) *tls.Config {
	var suites []uint16
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		suites = append(suites, cs.ID)
	}
	cfg := &tls.Config{
		InsecureSkipVerify: true, // we verify below, to say why a chain fails
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
		return tls.ConnectionState{}, classifyHandshake(ctx, err)
	}
	return tc.ConnectionState(), nil
}

// classifyHandshake tells could-not-tell errors apart: timeouts and
// drops are the network's; an unparsable certificate is malformed; the
// rest is a protocol mismatch (class "error"), which the raw fallback may
// get past.
func classifyHandshake(ctx context.Context, err error) error {
	err = fmt.Errorf("tls handshake: %w", err)
	switch {
	case ctx.Err() != nil:
		return check.WithClass(check.Classify(ctx.Err()), err)
	case strings.Contains(err.Error(), "failed to parse certificate"):
		return check.WithClass(check.ErrMalformed, err)
	}
	return err
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
// inspect what was served. When crypto/tls cannot complete for protocol
// reasons, it dials again for one raw TLS 1.2 hello and reads the
// plaintext Certificate message instead (a server that speaks only SSLv3
// or uses suites Go lacks still has its certificate judged).
func CertOf(ctx context.Context, dial tlsprobe.DialFunc, addr, host string, roots *x509.CertPool, now time.Time, timeout time.Duration) Endpoint {
	ctx1, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(ctx1, "tcp", addr)
	if err != nil {
		return failedEndpoint(addr, fmt.Errorf("connect: %w", err))
	}
	return CertFrom(ctx1, conn, addr, host, roots, now, func() Endpoint {
		return rawCert(ctx, dial, addr, host, roots, now, timeout)
	})
}

// CertFrom runs the handshake on an open conn (closing it) and inspects
// the result; fallback, if set, is tried when crypto/tls fails for a
// protocol reason.
func CertFrom(ctx context.Context, conn net.Conn, addr, host string, roots *x509.CertPool, now time.Time, fallback func() Endpoint) Endpoint {
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
	Inspect(&ep, st.PeerCertificates, host, roots, now)
	if len(st.OCSPResponse) > 0 {
		ep.OCSP = parseOCSP(st.OCSPResponse, st.PeerCertificates)
	}
	return ep
}

func rawCert(ctx context.Context, dial tlsprobe.DialFunc, addr, host string, roots *x509.CertPool, now time.Time, timeout time.Duration) Endpoint {
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
	var certs []*x509.Certificate
	for _, der := range resp.Certificates {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return failedEndpoint(addr, check.WithClass(check.ErrMalformed, fmt.Errorf("parse served certificate: %w", err)))
		}
		certs = append(certs, c)
	}
	ep := Endpoint{Addr: addr, Via: "raw hello", Version: resp.ServerHello.Version, Suite: resp.ServerHello.Suite}
	Inspect(&ep, certs, host, roots, now)
	return ep
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
	return Endpoint{Addr: addr, Error: err.Error(), ErrorClass: check.Classify(err)}
}

// Inspect fills in what the served certificates say: details of each, the
// chain verdict, the name match.
func Inspect(ep *Endpoint, certs []*x509.Certificate, host string, roots *x509.CertPool, now time.Time) {
	if len(certs) == 0 {
		ep.Error, ep.ErrorClass = "the server sent no certificate", check.ErrOther
		return
	}
	for i, c := range certs {
		info := certInfo(c)
		if i > 0 {
			info.DNSNames = nil
		}
		ep.Served = append(ep.Served, info)
	}
	leaf := certs[0]
	if err := leaf.VerifyHostname(host); err != nil {
		ep.NameError = err.Error()
	} else {
		ep.NameMatch = true
	}
	ep.certs = certs
	ep.Chain, ep.built = verifyChain(certs, roots, now)
}

func certInfo(c *x509.Certificate) CertInfo {
	sum := sha256.Sum256(c.Raw)
	info := CertInfo{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: c.SerialNumber.Text(16),
		SHA256: hex.EncodeToString(sum[:]), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		SigAlg: c.SignatureAlgorithm.String(), CA: c.IsCA, DNSNames: c.DNSNames,
		SelfSigned: bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil,
	}
	if len(info.DNSNames) > 20 {
		info.DNSNames = info.DNSNames[:20]
	}
	for _, u := range c.CRLDistributionPoints {
		if len(info.CRL) < 4 && (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
			info.CRL = append(info.CRL, u)
		}
	}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		info.KeyType, info.KeyBits = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		info.KeyType, info.KeyBits = "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		info.KeyType, info.KeyBits = "Ed25519", 256
	case *dsa.PublicKey:
		info.KeyType, info.KeyBits = "DSA", k.P.BitLen()
	default:
		info.KeyType = "unknown"
	}
	return info
}

// verifyChain builds a chain from the served certificates to the roots
// (nil: the system roots). Validity dates are judged by tls.cert.expiry,
// so an out-of-date chain is verified again at a time inside every served
// certificate's validity.
func verifyChain(certs []*x509.Certificate, roots *x509.CertPool, now time.Time) (*Chain, []*x509.Certificate) {
	ch := &Chain{InOrder: true}
	inter := x509.NewCertPool()
	for i, c := range certs[1:] {
		inter.AddCert(c)
		if !bytes.Equal(certs[i].RawIssuer, c.RawSubject) {
			ch.InOrder = false
		}
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	chains, err := certs[0].Verify(opts)
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		if t, ok := insideValidity(certs); ok {
			opts.CurrentTime = t
			ch.CheckedAt = &t
			chains, err = certs[0].Verify(opts)
		}
	}
	if err == nil {
		ch.Trusted = true
		for _, c := range chains[0] {
			ch.Built = append(ch.Built, c.Subject.String())
		}
		return ch, chains[0]
	}
	ch.Detail = err.Error()
	var ua x509.UnknownAuthorityError
	var ia x509.InsecureAlgorithmError
	last := certs[len(certs)-1]
	lastSelf := bytes.Equal(last.RawSubject, last.RawIssuer)
	switch {
	case errors.As(err, &ia):
		ch.Problem = "insecure-signature"
	case errors.As(err, &ua) && insecureLink(certs) != "":
		// Verify rejects a SHA-1 (or MD5) signature between served
		// certificates as an unknown authority, keeping the reason to
		// itself: say it, rather than blame a missing intermediate.
		ch.Problem, ch.Detail = "insecure-signature", insecureLink(certs)
	case errors.As(err, &ua) && len(certs) == 1 && lastSelf:
		ch.Problem = "self-signed"
	case errors.As(err, &ua) && lastSelf:
		ch.Problem = "untrusted-root"
	case errors.As(err, &ua):
		ch.Problem = "missing-intermediate"
		ch.Detail = fmt.Sprintf("the issuer of %q (%q) was not served and is not a trusted root: %v",
			last.Subject.String(), last.Issuer.String(), err)
	default:
		ch.Problem = "invalid"
	}
	return ch, nil
}

// insecureLink describes the first served certificate whose signature by
// the next served one (its issuer) uses an algorithm verifiers reject, or
// returns "".
func insecureLink(certs []*x509.Certificate) string {
	for i := 0; i+1 < len(certs); i++ {
		if !bytes.Equal(certs[i].RawIssuer, certs[i+1].RawSubject) {
			continue
		}
		var ia x509.InsecureAlgorithmError
		if err := certs[i].CheckSignatureFrom(certs[i+1]); errors.As(err, &ia) {
			return fmt.Sprintf("%q is signed by %q with %v", certs[i].Subject.String(), certs[i+1].Subject.String(), certs[i].SignatureAlgorithm)
		}
	}
	return ""
}

// insideValidity is a time inside every certificate's validity window,
// if there is one.
func insideValidity(certs []*x509.Certificate) (time.Time, bool) {
	lo, hi := certs[0].NotBefore, certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotBefore.After(lo) {
			lo = c.NotBefore
		}
		if c.NotAfter.Before(hi) {
			hi = c.NotAfter
		}
	}
	if !lo.Before(hi) {
		return time.Time{}, false
	}
	return lo.Add(hi.Sub(lo) / 2).UTC(), true
}

func parseOCSP(staple []byte, certs []*x509.Certificate) *OCSPStatus {
	var issuer *x509.Certificate
	if len(certs) > 1 {
		issuer = certs[1]
	}
	var resp *ocsp.Response
	var err error
	if issuer != nil {
		resp, err = ocsp.ParseResponseForCert(staple, certs[0], issuer)
	} else {
		resp, err = ocsp.ParseResponse(staple, nil)
	}
	if err != nil {
		return &OCSPStatus{Status: "unparsed", Error: err.Error()}
	}
	st := &OCSPStatus{ThisUpdate: resp.ThisUpdate.UTC(), NextUpdate: resp.NextUpdate.UTC()}
	switch resp.Status {
	case ocsp.Good:
		st.Status = "good"
	case ocsp.Revoked:
		st.Status, st.RevokedAt = "revoked", resp.RevokedAt.UTC()
	default:
		st.Status = "unknown"
	}
	return st
}
