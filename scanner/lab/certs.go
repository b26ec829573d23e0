package lab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"
)

// pki is the lab CA and the certificates it issues. Keys are cached per key
// type and certificates per host, both made on first use, so a lab of 10,000
// hosts starts without signing 10,000 certificates.
//
// The root and its intermediate are backdated by years, so that a leaf's
// own dates (expired, not yet valid) are the only dates that fail: the
// chain still verifies at a time inside the leaf's validity.
type pki struct {
	now    time.Time
	caKey  crypto.Signer // the root's
	caCert *x509.Certificate
	caPEM  []byte
	roots  *x509.CertPool
	serial atomic.Int64

	interKey  crypto.Signer // the intermediate that issues leaves
	interCert *x509.Certificate

	crl     []byte // the intermediate's CRL (DER), signed once at start
	rootCRL []byte // the root's, listing no intermediate

	mu    sync.Mutex
	keys  map[KeyType]crypto.Signer
	sha1  *x509.Certificate // the RSA intermediate that signs SHA-1 leaves
	sha1K crypto.Signer
	cross *x509.Certificate // the root, cross-signed by an expired old root
}

// caBackdate is how long before the lab's start its CAs became valid.
const caBackdate = 5 * 365 * 24 * time.Hour

// keyCARSA is the RSA key of the SHA-1 intermediate (SHA-1 needs an RSA
// signer); internal, not a leaf profile.
const keyCARSA KeyType = "ca-rsa-2048"

func newPKI(now time.Time) (*pki, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("lab: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "posture lab CA", Organization: []string{"posture lab"}},
		NotBefore:             now.Add(-caBackdate),
		NotAfter:              now.Add(20 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1, // the root, then one intermediate
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("lab: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lab: CA certificate: %w", err)
	}
	// Leaf certificates share one P-256 key, distinct from the CAs'.
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("lab: key: %w", err)
	}
	p := &pki{now: now, caKey: key, caCert: cert, roots: x509.NewCertPool(),
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keys:  map[KeyType]crypto.Signer{KeyECDSAP256: leafKey}}
	p.roots.AddCert(cert)
	p.serial.Store(1)
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("lab: intermediate key: %w", err)
	}
	if p.interCert, err = p.intermediate("posture lab Intermediate", interKey); err != nil {
		return nil, err
	}
	p.interKey = interKey
	// One CRL per CA for the lab's life: the root's lists nothing, the
	// intermediate's the one revoked leaf serial.
	p.rootCRL, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(7 * 24 * time.Hour),
	}, cert, key)
	if err != nil {
		return nil, fmt.Errorf("lab: root CRL: %w", err)
	}
	p.crl, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:     big.NewInt(1),
		ThisUpdate: now.Add(-time.Hour),
		NextUpdate: now.Add(7 * 24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: revokedSerial, RevocationTime: now.Add(-48 * time.Hour), ReasonCode: 1}, // keyCompromise
		},
	}, p.interCert, interKey)
	if err != nil {
		return nil, fmt.Errorf("lab: CRL: %w", err)
	}
	return p, nil
}

// revokedSerial is the serial of every leaf marked CRLRevoked (the one
// entry of the lab CRL); issued serials count up from 2 and never reach it.
var revokedSerial = big.NewInt(0x7e7e_0000_0001)

// intermediate issues an intermediate CA certificate from the root.
func (p *pki) intermediate(cn string, key crypto.Signer) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(p.serial.Add(1)),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"posture lab"}},
		NotBefore:             p.now.Add(-caBackdate),
		NotAfter:              p.now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		CRLDistributionPoints: []string{RootCRLURL},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, key.Public(), p.caKey)
	if err != nil {
		return nil, fmt.Errorf("lab: %s: %w", cn, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lab: %s: %w", cn, err)
	}
	return c, nil
}

func (p *pki) key(t KeyType) (crypto.Signer, error) {
	if t == "" {
		t = KeyECDSAP256
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keyLocked(t)
}

func (p *pki) keyLocked(t KeyType) (crypto.Signer, error) {
	if k, ok := p.keys[t]; ok {
		return k, nil
	}
	var k crypto.Signer
	var err error
	switch t {
	case KeyRSA2048, keyCARSA:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA1024:
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	default:
		return nil, fmt.Errorf("lab: unknown key type %q", t)
	}
	if err != nil {
		return nil, fmt.Errorf("lab: %s key: %w", t, err)
	}
	p.keys[t] = k
	return k, nil
}

// sha1Issuer is the RSA intermediate that signs SHA-1 leaves, made on
// first use.
func (p *pki) sha1Issuer() (*x509.Certificate, crypto.Signer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sha1 != nil {
		return p.sha1, p.sha1K, nil
	}
	k, err := p.keyLocked(keyCARSA)
	if err != nil {
		return nil, nil, err
	}
	c, err := p.intermediate("posture lab RSA Intermediate", k)
	if err != nil {
		return nil, nil, err
	}
	p.sha1, p.sha1K = c, k
	return c, k, nil
}

// issue makes a certificate for names following spec: the served chain,
// its key and, unless self-signed or told otherwise, a stapled OCSP
// response from its issuer.
func (p *pki) issue(spec CertSpec, names []string) (*tls.Certificate, error) {
	if len(spec.Names) > 0 {
		names = spec.Names
	}
	key, err := p.key(spec.Key)
	if err != nil {
		return nil, err
	}
	life := spec.NotAfter
	if life == 0 {
		life = 90 * 24 * time.Hour
	}
	notBefore := p.now.Add(-24 * time.Hour)
	switch {
	case spec.NotBefore != 0:
		notBefore = p.now.Add(spec.NotBefore)
	case life < 0:
		notBefore = p.now.Add(life - 90*24*time.Hour)
	}
	notAfter := p.now.Add(life)
	if !notBefore.Before(notAfter) || notBefore.Before(p.caCert.NotBefore) {
		return nil, fmt.Errorf("lab: certificate for %s: validity %s to %s is empty or before the lab CA's", names[0],
			notBefore.Format(time.DateOnly), notAfter.Format(time.DateOnly))
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial.Add(1)),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if spec.ClientAuthOnly {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if _, isRSA := key.(*rsa.PrivateKey); isRSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if spec.BadExtension {
		// As tlstest does: a subjectAltName that is not DER.
		tmpl.DNSNames, tmpl.IPAddresses = nil, nil
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: []byte{0xff, 0x01, 0x02}}}
	}
	parent, signer := p.interCert, p.interKey
	served := []*x509.Certificate{p.interCert}
	goodCRL := CRLURL
	if spec.FromRoot {
		parent, signer, served, goodCRL = p.caCert, p.caKey, nil, RootCRLURL
	}
	switch spec.CRL {
	case CRLGood:
		tmpl.CRLDistributionPoints = []string{goodCRL}
	case CRLRevoked:
		if spec.FromRoot {
			return nil, fmt.Errorf("lab: certificate for %s: the root's CRL lists no leaf", names[0])
		}
		tmpl.CRLDistributionPoints = []string{CRLURL}
		tmpl.SerialNumber = revokedSerial
	case CRLDead:
		tmpl.CRLDistributionPoints = []string{DeadCRLURL}
	default:
		return nil, fmt.Errorf("lab: certificate for %s: unknown CRL mark %q", names[0], spec.CRL)
	}
	switch {
	case spec.SelfSigned:
		tmpl.CRLDistributionPoints = nil
		tmpl.Issuer = tmpl.Subject
		parent, signer, served = tmpl, key, nil
	case spec.SHA1:
		if parent, signer, err = p.sha1Issuer(); err != nil {
			return nil, err
		}
		served = []*x509.Certificate{parent}
		tmpl.SignatureAlgorithm = x509.SHA1WithRSA
		tmpl.CRLDistributionPoints = nil // the lab CRL is the other intermediate's
	}
	if spec.MissingIntermediate {
		served = nil
	}
	if spec.CrossSigned && len(served) > 0 {
		cross, err := p.crossSigned()
		if err != nil {
			return nil, err
		}
		served = append(served, cross)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("lab: certificate for %s: %w", names[0], err)
	}
	out := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	for _, c := range served {
		out.Certificate = append(out.Certificate, c.Raw)
	}
	if !spec.BadExtension { // which does not parse, by design
		if out.Leaf, err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("lab: certificate for %s: %w", names[0], err)
		}
	}
	if !spec.SelfSigned && spec.Staple != StapleNone {
		if out.OCSPStaple, err = p.staple(spec.Staple, tmpl.SerialNumber, parent, signer); err != nil {
			return nil, fmt.Errorf("lab: OCSP response for %s: %w", names[0], err)
		}
	}
	return out, nil
}

// staple is an OCSP response from the certificate's issuer.
func (p *pki) staple(st Staple, serial *big.Int, issuer *x509.Certificate, key crypto.Signer) ([]byte, error) {
	r := ocsp.Response{Status: ocsp.Good, SerialNumber: serial,
		ThisUpdate: p.now.Add(-time.Hour), NextUpdate: p.now.Add(7 * 24 * time.Hour)}
	switch st {
	case StapleGood:
	case StapleRevoked:
		r.Status, r.RevokedAt, r.RevocationReason = ocsp.Revoked, p.now.Add(-48*time.Hour), ocsp.KeyCompromise
	case StapleUnknown:
		r.Status = ocsp.Unknown
	default:
		return p.oddStaple(st, r, issuer, key)
	}
	return ocsp.CreateResponse(issuer, issuer, r, key)
}

// lazyCert issues one certificate on first use and keeps it.
type lazyCert struct {
	once sync.Once
	cert *tls.Certificate
	err  error
}

func (c *lazyCert) get(p *pki, spec CertSpec, names []string) (*tls.Certificate, error) {
	c.once.Do(func() { c.cert, c.err = p.issue(spec, names) })
	return c.cert, c.err
}

// serverTLS builds a host's TLS configuration from its template, with the
// certificate issued on the first handshake.
func serverTLS(tmpl *tls.Config, get func() (*tls.Certificate, error)) *tls.Config {
	var cfg *tls.Config
	if tmpl != nil {
		cfg = tmpl.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil {
		cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return get() }
	}
	return cfg
}
