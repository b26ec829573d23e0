package lab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Staples that a client must not take at their word, and the OpenSSL
// shapes it must.
const (
	// StapleWrongCert: good, for another serial of the same issuer.
	StapleWrongCert Staple = "wrong-cert"
	// StapleForged: good, under the issuer's name, signed by another key.
	StapleForged Staple = "forged"
	// StapleStale: good, but its next update was due days ago.
	StapleStale Staple = "stale"
	// StapleRevokedEmbedded: revoked, signed by the issuer with the
	// issuer's own certificate embedded (OpenSSL's default).
	StapleRevokedEmbedded Staple = "revoked-embedded"
	// StapleDelegated: good, from a responder the issuer delegated to
	// (id-kp-OCSPSigning), its certificate embedded.
	StapleDelegated Staple = "delegated"
)

// oddStaple makes the staples beyond good, revoked and unknown. r is a
// current good response for the leaf by issuer.
func (p *pki) oddStaple(st Staple, r ocsp.Response, issuer *x509.Certificate, key crypto.Signer) ([]byte, error) {
	responder := issuer
	switch st {
	case StapleWrongCert:
		r.SerialNumber = new(big.Int).Add(r.SerialNumber, big.NewInt(1<<40))
	case StapleForged:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		key = k
	case StapleStale:
		r.ThisUpdate, r.NextUpdate = p.now.Add(-10*24*time.Hour), p.now.Add(-3*24*time.Hour)
	case StapleRevokedEmbedded:
		r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, p.now.Add(-48*time.Hour), ocsp.KeyCompromise
		r.Certificate = issuer
	case StapleDelegated:
		c, k, err := p.responder(issuer, key)
		if err != nil {
			return nil, err
		}
		responder, key, r.Certificate = c, k, c
	default:
		return nil, fmt.Errorf("unknown staple %q", st)
	}
	return ocsp.CreateResponse(issuer, responder, r, key)
}

// responder is an OCSP responder certificate issued by issuer, valid
// around the lab's start.
func (p *pki) responder(issuer *x509.Certificate, issuerKey crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial.Add(1)),
		Subject:      pkix.Name{CommonName: issuer.Subject.CommonName + " OCSP responder", Organization: []string{"posture lab"}},
		NotBefore:    p.now.Add(-24 * time.Hour),
		NotAfter:     p.now.Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, k.Public(), issuerKey)
	if err != nil {
		return nil, nil, fmt.Errorf("lab: OCSP responder: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("lab: OCSP responder: %w", err)
	}
	return c, k, nil
}

// crossSigned is the lab root's key and name, certified by an older root;
// both expired before the lab started. Made on first use.
func (p *pki) crossSigned() (*x509.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cross != nil {
		return p.cross, nil
	}
	oldKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	old := &x509.Certificate{
		SerialNumber:          big.NewInt(p.serial.Add(1)),
		Subject:               pkix.Name{CommonName: "posture lab Old Root", Organization: []string{"posture lab"}},
		NotBefore:             p.now.Add(-3 * caBackdate),
		NotAfter:              p.now.Add(-365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	oldDER, err := x509.CreateCertificate(rand.Reader, old, old, oldKey.Public(), oldKey)
	if err != nil {
		return nil, fmt.Errorf("lab: old root: %w", err)
	}
	if old, err = x509.ParseCertificate(oldDER); err != nil {
		return nil, fmt.Errorf("lab: old root: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(p.serial.Add(1)),
		Subject:               p.caCert.Subject,
		SubjectKeyId:          p.caCert.SubjectKeyId,
		NotBefore:             p.now.Add(-caBackdate),
		NotAfter:              p.now.Add(-30 * 24 * time.Hour),
		KeyUsage:              p.caCert.KeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, old, p.caCert.PublicKey, oldKey)
	if err != nil {
		return nil, fmt.Errorf("lab: cross-signed root: %w", err)
	}
	if p.cross, err = x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("lab: cross-signed root: %w", err)
	}
	return p.cross, nil
}
