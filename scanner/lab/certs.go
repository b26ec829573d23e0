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
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// pki is the lab CA and the certificates it issues. Keys are cached per key
// type and certificates per host, both made on first use, so a lab of 10,000
// hosts starts without signing 10,000 certificates.
type pki struct {
	now    time.Time
	caKey  crypto.Signer
	caCert *x509.Certificate
	caPEM  []byte
	roots  *x509.CertPool
	serial atomic.Int64

	mu   sync.Mutex
	keys map[KeyType]crypto.Signer
}

func newPKI(now time.Time) (*pki, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("lab: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "posture lab CA", Organization: []string{"posture lab"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("lab: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lab: CA certificate: %w", err)
	}
	// Leaf certificates share one P-256 key, distinct from the CA's.
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("lab: key: %w", err)
	}
	p := &pki{now: now, caKey: key, caCert: cert, roots: x509.NewCertPool(),
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keys:  map[KeyType]crypto.Signer{KeyECDSAP256: leafKey}}
	p.roots.AddCert(cert)
	p.serial.Store(1)
	return p, nil
}

func (p *pki) key(t KeyType) (crypto.Signer, error) {
	if t == "" {
		t = KeyECDSAP256
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if k, ok := p.keys[t]; ok {
		return k, nil
	}
	var k crypto.Signer
	var err error
	switch t {
	case KeyRSA2048:
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

// issue makes a certificate for names following spec.
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
	if life < 0 {
		notBefore = p.now.Add(life - 90*24*time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial.Add(1)),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     p.now.Add(life),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
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
	parent, signer := p.caCert, p.caKey
	if spec.SelfSigned {
		tmpl.Issuer = tmpl.Subject
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("lab: certificate for %s: %w", names[0], err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lab: certificate for %s: %w", names[0], err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
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
