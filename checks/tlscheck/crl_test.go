package tlscheck

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/crl"
)

func TestCRLVerdictJudgesTheRecordedFacts(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	leafWithCDP := []CertInfo{{CRL: []string{"http://crl.example/ca.crl"}}}
	current := func(c CRLStatus) *CRLStatus {
		c.URL, c.Signature = "http://crl.example/ca.crl", "ok"
		c.ThisUpdate, c.NextUpdate = now.Add(-time.Hour), now.Add(24*time.Hour)
		return &c
	}
	tests := []struct {
		name    string
		ep      Endpoint
		outcome check.Outcome
		reason  string
		msg     string
	}{
		{"a current list without the serial passes", Endpoint{Served: leafWithCDP, CRL: current(CRLStatus{})}, check.Pass, "", "the certificate is not on its issuer's CRL"},
		{"a listed serial fails with its date", Endpoint{Served: leafWithCDP, CRL: current(CRLStatus{Listed: true, RevokedAt: now.AddDate(0, 0, -3)})},
			check.Fail, "", "revoked on 2026-05-29"},
		{"a listed serial on a stale list still fails", Endpoint{Served: leafWithCDP, CRL: func() *CRLStatus {
			c := current(CRLStatus{Listed: true, RevokedAt: now.AddDate(0, 0, -3)})
			c.NextUpdate = now.Add(-time.Hour)
			return c
		}()}, check.Fail, "", "revoked"},
		{"a stale list is unknown", Endpoint{Served: leafWithCDP, CRL: func() *CRLStatus {
			c := current(CRLStatus{})
			c.NextUpdate = now.Add(-time.Hour)
			return c
		}()}, check.Unknown, "stale", "stale"},
		{"a list due now is stale", Endpoint{Served: leafWithCDP, CRL: func() *CRLStatus {
			c := current(CRLStatus{})
			c.NextUpdate = now
			return c
		}()}, check.Unknown, "stale", "stale"},
		{"a list without a next update is unknown", Endpoint{Served: leafWithCDP, CRL: func() *CRLStatus {
			c := current(CRLStatus{})
			c.NextUpdate = time.Time{}
			return c
		}()}, check.Unknown, "stale", "no next update"},
		{"a badly signed list is unknown, even listing the serial", Endpoint{Served: leafWithCDP, CRL: func() *CRLStatus {
			c := current(CRLStatus{Listed: true})
			c.Signature, c.SignatureError = "bad", "x509: ECDSA verification failure"
			return c
		}()}, check.Unknown, "bad-signature", "is not signed by its issuer"},
		{"a list with no known issuer is unknown", Endpoint{Served: leafWithCDP, CRL: func() *CRLStatus {
			c := current(CRLStatus{})
			c.Signature = "no-issuer"
			return c
		}()}, check.Unknown, "no-issuer", "issuer is not known"},
		{"an unreadable list is unknown with its class", Endpoint{Served: leafWithCDP, CRL: &CRLStatus{URL: "http://crl.example/ca.crl",
			Error: "crl: too big", ErrorClass: crl.ClassTooLarge}}, check.Unknown, crl.ClassTooLarge, "could not be read"},
		{"no distribution point is not checked", Endpoint{Served: []CertInfo{{}}}, check.Unknown, "not-stapled", "no http(s) CRL distribution point"},
		{"a distribution point never fetched is unknown", Endpoint{Served: leafWithCDP}, check.Unknown, CRLNotFetched, "was not fetched"},
		{"a stapled answer takes precedence", Endpoint{Served: leafWithCDP, OCSP: &OCSPStatus{Status: "good"},
			CRL: current(CRLStatus{Listed: true})}, check.Pass, "", "stapled OCSP response says good"},
		{"a revoked intermediate fails despite a good staple", Endpoint{Served: leafWithCDP, OCSP: &OCSPStatus{Status: "good"},
			IntermediateCRLs: []CRLStatus{*current(CRLStatus{Subject: "CN=Inter", Listed: true, RevokedAt: now})}},
			check.Fail, "", `lists the intermediate "CN=Inter" as revoked`},
		{"an unreadable intermediate list makes a good leaf unknown", Endpoint{Served: leafWithCDP, CRL: current(CRLStatus{}),
			IntermediateCRLs: []CRLStatus{{Subject: "CN=Inter", URL: "http://crl.example/root.crl", Error: "timeout", ErrorClass: crl.ClassTimeout}}},
			check.Unknown, crl.ClassTimeout, `the CRL of the intermediate "CN=Inter"`},
		{"an intermediate whose issuer is unknown is not judged", Endpoint{Served: leafWithCDP, CRL: current(CRLStatus{}),
			IntermediateCRLs: []CRLStatus{func() CRLStatus { c := *current(CRLStatus{Subject: "CN=Inter"}); c.Signature = "no-issuer"; return c }()}},
			check.Pass, "", "the certificate is not on"},
		{"a good intermediate is named in the pass", Endpoint{Served: leafWithCDP, CRL: current(CRLStatus{}),
			IntermediateCRLs: []CRLStatus{*current(CRLStatus{Subject: "CN=Inter"})}},
			check.Pass, "", `; the intermediate "CN=Inter" is not on its issuer's CRL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := revocationVerdict(tt.ep, now)
			if v.Outcome != tt.outcome || v.Reason != tt.reason || !strings.Contains(v.Message, tt.msg) {
				t.Errorf("got %s [%s] %q; want %s [%s] containing %q", v.Outcome, v.Reason, v.Message, tt.outcome, tt.reason, tt.msg)
			}
		})
	}
}

// crlPKI is a root that issues leaves and CRLs directly.
type crlPKI struct {
	root  *x509.Certificate
	key   *ecdsa.PrivateKey
	roots *x509.CertPool
}

func newCRLPKI(t *testing.T) crlPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "crl test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return crlPKI{root, key, pool}
}

func (p crlPKI) leaf(t *testing.T, serial int64, cdp string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "www.lab.nhs.uk"},
		DNSNames: []string{"www.lab.nhs.uk"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		CRLDistributionPoints: []string{cdp}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, key.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (p crlPKI) crl(t *testing.T, next time.Time, key *ecdsa.PrivateKey, revoked ...int64) []byte {
	t.Helper()
	var es []x509.RevocationListEntry
	for _, s := range revoked {
		es = append(es, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now().Add(-48 * time.Hour)})
	}
	issuer := p.root
	if key != p.key { // a list signed by another key, under the root's name
		issuer = &x509.Certificate{Subject: p.root.Subject, SubjectKeyId: p.root.SubjectKeyId, KeyUsage: x509.KeyUsageCRLSign}
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: next, RevokedCertificateEntries: es}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestCheckCRLRecordsWhatTheListSays fetches CRLs from a loopback server
// for certificates that name it, and judges what was recorded.
func TestCheckCRLRecordsWhatTheListSays(t *testing.T) {
	p := newCRLPKI(t)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(7 * 24 * time.Hour)
	bodies := map[string][]byte{
		"/good.crl":    p.crl(t, later, p.key, 99),
		"/revoked.crl": p.crl(t, later, p.key, 99, 5),
		"/stale.crl":   p.crl(t, time.Now().Add(-time.Minute), p.key),
		"/badsig.crl":  p.crl(t, later, other, 5),
		"/garbage.crl": []byte("this is not a CRL"),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big.crl" {
			chunk := make([]byte, 1<<20)
			for range crl.MaxSize/len(chunk) + 1 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	env := &check.Env{Services: srv.Client(), CRLs: &crl.Cache{}}

	tests := []struct {
		name    string
		path    string
		env     *check.Env
		outcome check.Outcome
		reason  string
	}{
		{"not listed on a current, signed list passes", "/good.crl", env, check.Pass, ""},
		{"listed fails", "/revoked.crl", env, check.Fail, ""},
		{"a stale list is unknown", "/stale.crl", env, check.Unknown, "stale"},
		{"a list signed by another key is unknown", "/badsig.crl", env, check.Unknown, "bad-signature"},
		{"garbage is unknown (malformed)", "/garbage.crl", env, check.Unknown, crl.ClassMalformed},
		{"an oversized list is unknown (too large)", "/big.crl", env, check.Unknown, crl.ClassTooLarge},
		{"a missing list is unknown (unreachable)", "/missing.crl", env, check.Unknown, crl.ClassUnreachable},
		{"no service client: not fetched", "/good.crl", &check.Env{}, check.Unknown, CRLNotFetched},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := p.leaf(t, 5, srv.URL+tt.path)
			var ep Endpoint
			now := time.Now()
			Inspect(&ep, []*x509.Certificate{leaf}, "www.lab.nhs.uk", p.roots, now)
			CheckCRL(context.Background(), tt.env, &ep)
			if ep.CRL == nil {
				t.Fatal("no CRL recorded")
			}
			v := revocationVerdict(ep, now)
			if v.Outcome != tt.outcome || v.Reason != tt.reason {
				t.Errorf("got %s [%s] %q; want %s [%s]", v.Outcome, v.Reason, v.Message, tt.outcome, tt.reason)
			}
			if tt.outcome == check.Pass && (ep.CRL.NextUpdate.IsZero() || ep.CRL.ThisUpdate.IsZero() || ep.CRL.Size == 0 || ep.CRL.Signature != "ok") {
				t.Errorf("evidence incomplete: %+v", ep.CRL)
			}
		})
	}
}

func TestCheckCRLJudgesAnIntermediateOnItsIssuersList(t *testing.T) {
	p := newCRLPKI(t)
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	list := p.crl(t, time.Now().Add(time.Hour), p.key, 77)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(list) }))
	defer srv.Close()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "crl test intermediate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		CRLDistributionPoints: []string{srv.URL + "/root.crl"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, interKey.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	leaf := crlPKI{root: inter, key: interKey}.leaf(t, 5, "")
	leaf.CRLDistributionPoints = nil
	// A good staple covers the leaf only: the intermediate's list still counts.
	ep := Endpoint{OCSP: &OCSPStatus{Status: "good"}}
	now := time.Now()
	Inspect(&ep, []*x509.Certificate{leaf, inter}, "www.lab.nhs.uk", p.roots, now)
	CheckCRL(context.Background(), &check.Env{Services: srv.Client()}, &ep)
	if len(ep.IntermediateCRLs) != 1 || ep.IntermediateCRLs[0].Signature != "ok" || !ep.IntermediateCRLs[0].Listed {
		t.Fatalf("intermediate CRLs: %+v", ep.IntermediateCRLs)
	}
	if v := revocationVerdict(ep, now); v.Outcome != check.Fail || !strings.Contains(v.Message, "crl test intermediate") {
		t.Errorf("got %s %q; want fail naming the intermediate", v.Outcome, v.Message)
	}
}

func TestCheckCRLLeavesAStapledAnswerAlone(t *testing.T) {
	p := newCRLPKI(t)
	ep := Endpoint{OCSP: &OCSPStatus{Status: "good"}}
	Inspect(&ep, []*x509.Certificate{p.leaf(t, 5, "http://127.0.0.1:1/none.crl")}, "www.lab.nhs.uk", p.roots, time.Now())
	CheckCRL(context.Background(), &check.Env{Services: http.DefaultClient}, &ep)
	if ep.CRL != nil {
		t.Errorf("CRL fetched despite a staple: %+v", ep.CRL)
	}
}
