package tlscheck

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/nhsx/posture/checks/check"
)

const testHost = "www.lab.nhs.uk"

// testPKI is a root and an intermediate that issue what a test needs, and
// the policy that trusts the root. now is the collection time.
type testPKI struct {
	now      time.Time
	root     *x509.Certificate
	rootKey  crypto.Signer
	inter    *x509.Certificate
	interKey crypto.Signer
	policy   *check.Policy
}

var testSerial atomic.Int64

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign issues tmpl (its key: key, or a new one) from parent.
func sign(t testing.TB, tmpl, parent *x509.Certificate, parentKey crypto.Signer, key crypto.Signer) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	if key == nil {
		key = newKey(t)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(1000 + testSerial.Add(1))
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func caTemplate(cn string, from, to time.Time) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, NotBefore: from, NotAfter: to,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true}
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	p := &testPKI{now: now}
	p.root, p.rootKey = sign(t, caTemplate("test root", now.AddDate(-5, 0, 0), now.AddDate(10, 0, 0)), nil, nil, nil)
	p.inter, p.interKey = sign(t, caTemplate("test intermediate", now.AddDate(-5, 0, 0), now.AddDate(5, 0, 0)), p.root, p.rootKey, nil)
	pool := x509.NewCertPool()
	pool.AddCert(p.root)
	p.policy = check.DefaultPolicy()
	p.policy.Roots = pool
	return p
}

// leafTemplate is a good server certificate for testHost, valid now.
func (p *testPKI) leafTemplate() *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: testHost}, DNSNames: []string{testHost},
		NotBefore: p.now.Add(-24 * time.Hour), NotAfter: p.now.AddDate(0, 0, 90),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
}

// leaf issues a good leaf from the intermediate, changed by mod.
func (p *testPKI) leaf(t testing.TB, mod func(*x509.Certificate)) *x509.Certificate {
	tmpl := p.leafTemplate()
	if mod != nil {
		mod(tmpl)
	}
	c, _ := sign(t, tmpl, p.inter, p.interKey, nil)
	return c
}

// staple signs r for serial with key, naming issuer in the CertID and
// embedding embed (nil: nothing).
func (p *testPKI) staple(t testing.TB, issuer *x509.Certificate, key crypto.Signer, embed *x509.Certificate, r ocsp.Response) []byte {
	t.Helper()
	if r.ThisUpdate.IsZero() {
		r.ThisUpdate = p.now.Add(-time.Hour)
	}
	r.Certificate = embed
	responder := issuer
	if embed != nil {
		responder = embed
	}
	der, err := ocsp.CreateResponse(issuer, responder, r, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// goodStaple is a current good response for c by the intermediate.
func (p *testPKI) goodStaple(t testing.TB, c *x509.Certificate) []byte {
	return p.staple(t, p.inter, p.interKey, nil, ocsp.Response{Status: ocsp.Good, SerialNumber: c.SerialNumber, NextUpdate: p.now.Add(24 * time.Hour)})
}

// endpoint is what a handshake served: certs as DER.
func endpoint(certs ...*x509.Certificate) Endpoint {
	ep := Endpoint{Addr: "192.0.2.1:443", Via: "crypto/tls"}
	for _, c := range certs {
		ep.Certs = append(ep.Certs, c.Raw)
		ep.Served = append(ep.Served, certInfo(c))
	}
	return ep
}

// crlOK is the facts of a current list by issuer about c.
func (p *testPKI) crlOK(c, issuer *x509.Certificate, listed bool) CRLFacts {
	f := CRLFacts{For: fingerprint(c), Subject: c.Subject.String(), URL: "http://crl.example/ca.crl", Size: 500,
		ThisUpdate: p.now.Add(-time.Hour), NextUpdate: p.now.Add(24 * time.Hour), Listed: listed,
		Tried: []string{spkiHash(issuer)}, Signers: []string{spkiHash(issuer)}}
	if listed {
		f.RevokedAt = p.now.AddDate(0, 0, -3)
	}
	return f
}

// eval judges one endpoint at p.now under policy (nil: p's).
func (p *testPKI) eval(ep Endpoint, policy *check.Policy) map[string]Verdict {
	if policy == nil {
		policy = p.policy
	}
	return EvalCert(testHost, []Endpoint{ep}, p.now, policy)
}
