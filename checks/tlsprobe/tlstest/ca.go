// Package tlstest provides TLS peers for tests and the lab: a test CA that
// issues good and bad certificates (expired, wrong name, self-signed, weak
// key, SHA-1, malformed extension, with or without an intermediate), Go
// TLS servers on loopback, hand-built SSLv2/SSLv3 servers and hostile
// servers.
//
// Like net/http/httptest it does not import "testing": the lab (scanner/lab)
// uses it and ships in the posture binary for `posture demo`. The helpers
// that take a testing.TB (fail the test on error, clean up when it ends,
// run gnutls-serv and openssl s_server as child processes) are in the
// subpackage tlsmust, which only _test.go files import.
package tlstest

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
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// CA is a test certificate authority: a root and one intermediate.
type CA struct {
	Root         *x509.Certificate
	RootKey      crypto.Signer
	Intermediate *x509.Certificate
	InterKey     crypto.Signer
}

var serial atomic.Int64

func nextSerial() *big.Int { return big.NewInt(time.Now().UnixNano() + serial.Add(1)) }

// NewCA makes a root ("<name> Root") and an intermediate signed by it,
// both ECDSA P-256, valid from two years ago (so that backdated test leaves chain to them) for years.
func NewCA(name string) (*CA, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rootTpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name + " Root", Organization: []string{name}},
		NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, rootTpl, rootTpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	root, _ := x509.ParseCertificate(der)
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	interTpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name + " Intermediate", Organization: []string{name}},
		NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err = x509.CreateCertificate(rand.Reader, interTpl, root, interKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	inter, _ := x509.ParseCertificate(der)
	return &CA{Root: root, RootKey: rootKey, Intermediate: inter, InterKey: interKey}, nil
}

// Pool returns a pool holding the root.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root)
	return p
}

// Leaf describes a certificate to issue. The zero value (plus Names) is a
// good certificate: ECDSA P-256, SHA-256, valid from a day ago for 90
// days, issued by the intermediate and served with it.
type Leaf struct {
	Names     []string
	NotBefore time.Time // zero: a day ago
	NotAfter  time.Time // zero: 90 days on
	// RSABits, if set, makes an RSA key of that size (1024 for a weak key).
	RSABits int
	// SHA1 signs the leaf with SHA-1 (by an RSA issuer key made for it).
	SHA1 bool
	// SelfSigned signs the leaf with its own key.
	SelfSigned bool
	// FromRoot has the root sign the leaf directly (no intermediate).
	FromRoot bool
	// OmitIntermediate serves the leaf without the intermediate that
	// signed it (a missing intermediate).
	OmitIntermediate bool
	// BadExtension adds a subjectAltName extension that is not DER.
	BadExtension bool
}

// Issued is a certificate and the chain a server should send.
type Issued struct {
	Cert  tls.Certificate // Certificate holds the served chain
	Leaf  *x509.Certificate
	Chain []*x509.Certificate // as served (nil entries never)
}

// Issue makes a certificate as described.
func (ca *CA) Issue(l Leaf) (*Issued, error) {
	var key crypto.Signer
	var err error
	if l.RSABits > 0 {
		key, err = rsa.GenerateKey(rand.Reader, l.RSABits)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	nb, na := l.NotBefore, l.NotAfter
	if nb.IsZero() {
		nb = now.Add(-24 * time.Hour)
	}
	if na.IsZero() {
		na = now.AddDate(0, 0, 90)
	}
	cn := "leaf"
	if len(l.Names) > 0 {
		cn = l.Names[0]
	}
	tpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: nb, NotAfter: na, DNSNames: l.Names,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if l.BadExtension {
		tpl.DNSNames = nil
		tpl.ExtraExtensions = []pkix.Extension{{Id: []int{2, 5, 29, 17}, Value: []byte{0xff, 0x01, 0x02}}}
	}
	parent, parentKey := ca.Intermediate, ca.InterKey
	served := []*x509.Certificate{ca.Intermediate}
	switch {
	case l.SelfSigned:
		parent, parentKey, served = tpl, key, nil
	case l.FromRoot:
		parent, parentKey, served = ca.Root, ca.RootKey, nil
	case l.OmitIntermediate:
		served = nil
	}
	if l.SHA1 {
		// SHA-1 needs an RSA issuer: a one-off intermediate with an RSA
		// key, signed by the root and served.
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		itpl := &x509.Certificate{
			SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: ca.Root.Subject.CommonName + " RSA Intermediate"},
			NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(5, 0, 0),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, itpl, ca.Root, rk.Public(), ca.RootKey)
		if err != nil {
			return nil, err
		}
		inter, _ := x509.ParseCertificate(der)
		parent, parentKey, served = inter, rk, []*x509.Certificate{inter}
		tpl.SignatureAlgorithm = x509.SHA1WithRSA
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("tlstest: issue %v: %w", l.Names, err)
	}
	out := &Issued{Cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
	if leaf, err := x509.ParseCertificate(der); err == nil {
		out.Leaf = leaf
		out.Chain = append(out.Chain, leaf)
	}
	for _, c := range served {
		out.Cert.Certificate = append(out.Cert.Certificate, c.Raw)
		out.Chain = append(out.Chain, c)
	}
	return out, nil
}

// WritePEM writes the served chain and the key as PEM files in dir, for
// servers run as child processes, and returns their paths.
func (i *Issued) WritePEM(dir, name string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	var certs []byte
	for _, der := range i.Cert.Certificate {
		certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(i.Cert.PrivateKey)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, certs, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
