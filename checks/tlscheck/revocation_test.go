package tlscheck

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/crl"
)

// TestStapleCountsOnlyWhenSignedForTheLeafAndCurrent judges stapled
// responses of every shape twice: beside a current CRL that does not list
// the leaf (an unusable staple falls back to it, saying why), and alone
// (an unusable staple leaves revocation unknown, with its reason).
func TestStapleCountsOnlyWhenSignedForTheLeafAndCurrent(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, nil)
	serial := leaf.SerialNumber
	good := func(r ocsp.Response) ocsp.Response {
		r.SerialNumber = serial
		if r.NextUpdate.IsZero() {
			r.NextUpdate = p.now.Add(24 * time.Hour)
		}
		return r
	}
	ocspEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	delegated, delegatedKey := sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "test OCSP responder"}, NotBefore: p.now.Add(-time.Hour),
		NotAfter: p.now.AddDate(0, 1, 0), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: ocspEKU}, p.inter, p.interKey, nil)
	noEKU, noEKUKey := sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "test responder without OCSPSigning"}, NotBefore: p.now.Add(-time.Hour),
		NotAfter: p.now.AddDate(0, 1, 0), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, p.inter, p.interKey, nil)
	byRoot, byRootKey := sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "test responder of the root"}, NotBefore: p.now.Add(-time.Hour),
		NotAfter: p.now.AddDate(0, 1, 0), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: ocspEKU}, p.root, p.rootKey, nil)
	expiredResp, expiredRespKey := sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "test expired responder"}, NotBefore: p.now.AddDate(0, -2, 0),
		NotAfter: p.now.AddDate(0, -1, 0), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: ocspEKU}, p.inter, p.interKey, nil)
	otherCA, otherKey := sign(t, caTemplate("test intermediate", p.now.AddDate(-1, 0, 0), p.now.AddDate(1, 0, 0)), nil, nil, nil)

	tests := []struct {
		name    string
		staple  []byte
		withCRL check.Outcome // beside a current CRL that does not list the leaf
		alone   check.Outcome // with no CRL at all
		reason  string        // of the unknown alone
		msg     string
	}{
		{"good, signed by the issuer", p.staple(t, p.inter, p.interKey, nil, good(ocsp.Response{Status: ocsp.Good})),
			check.Pass, check.Pass, "", "signed by the issuer, says good"},
		{"good, signed by the issuer with its own certificate embedded (OpenSSL)", p.staple(t, p.inter, p.interKey, p.inter, good(ocsp.Response{Status: ocsp.Good})),
			check.Pass, check.Pass, "", "signed by the issuer, says good"},
		{"revoked, signed by the issuer with its own certificate embedded (OpenSSL)", p.staple(t, p.inter, p.interKey, p.inter,
			good(ocsp.Response{Status: ocsp.Revoked, RevokedAt: p.now.AddDate(0, 0, -2)})),
			check.Fail, check.Fail, "", "revoked on"},
		{"good, from a delegated responder with OCSPSigning", p.staple(t, p.inter, delegatedKey, delegated, good(ocsp.Response{Status: ocsp.Good})),
			check.Pass, check.Pass, "", `delegated responder "CN=test OCSP responder"`},
		{"good, from a responder without OCSPSigning", p.staple(t, p.inter, noEKUKey, noEKU, good(ocsp.Response{Status: ocsp.Good})),
			check.Pass, check.Unknown, OCSPBadSignature, "not authorised for OCSP signing"},
		{"good, from a responder the issuer did not issue", p.staple(t, p.inter, byRootKey, byRoot, good(ocsp.Response{Status: ocsp.Good})),
			check.Pass, check.Unknown, OCSPBadSignature, "not issued by the issuer"},
		{"good, from an out-of-date responder", p.staple(t, p.inter, expiredRespKey, expiredResp, good(ocsp.Response{Status: ocsp.Good})),
			check.Pass, check.Unknown, OCSPBadSignature, "out of date"},
		{"good, forged (signed by an unrelated key)", p.staple(t, p.inter, otherKey, nil, good(ocsp.Response{Status: ocsp.Good})),
			check.Pass, check.Unknown, OCSPBadSignature, "does not verify with the issuer's key"},
		{"good, forged, carrying a certificate that names the issuer", p.staple(t, p.inter, otherKey, otherCA, good(ocsp.Response{Status: ocsp.Good})),
			check.Pass, check.Unknown, OCSPBadSignature, "not issued by the issuer"},
		{"good, for another serial", p.staple(t, p.inter, p.interKey, nil, ocsp.Response{Status: ocsp.Good, SerialNumber: big.NewInt(7),
			NextUpdate: p.now.Add(time.Hour)}), check.Pass, check.Unknown, OCSPWrongCert, "for another certificate"},
		{"good, for the serial under another issuer", p.staple(t, otherCA, p.interKey, nil, good(ocsp.Response{Status: ocsp.Good})),
			check.Pass, check.Unknown, OCSPWrongCert, "of another issuer"},
		{"good, stale", p.staple(t, p.inter, p.interKey, nil, good(ocsp.Response{Status: ocsp.Good, ThisUpdate: p.now.AddDate(0, 0, -8),
			NextUpdate: p.now.Add(-time.Hour)})), check.Pass, check.Unknown, OCSPStale, "stale"},
		{"good, due at collection", p.staple(t, p.inter, p.interKey, nil, good(ocsp.Response{Status: ocsp.Good, NextUpdate: p.now})),
			check.Pass, check.Unknown, OCSPStale, "stale"},
		{"good, not valid yet", p.staple(t, p.inter, p.interKey, nil, good(ocsp.Response{Status: ocsp.Good, ThisUpdate: p.now.Add(time.Hour),
			NextUpdate: p.now.Add(48 * time.Hour)})), check.Pass, check.Unknown, OCSPStale, "not valid yet"},
		{"good, no next update, 3 days old", p.staple(t, p.inter, p.interKey, nil, ocsp.Response{Status: ocsp.Good, SerialNumber: serial,
			ThisUpdate: p.now.AddDate(0, 0, -3)}), check.Pass, check.Pass, "", "says good"},
		{"good, no next update, 8 days old", p.staple(t, p.inter, p.interKey, nil, ocsp.Response{Status: ocsp.Good, SerialNumber: serial,
			ThisUpdate: p.now.AddDate(0, 0, -8)}), check.Pass, check.Unknown, OCSPStale, "more than 7 days old"},
		{"revoked and stale: revocation is final", p.staple(t, p.inter, p.interKey, nil, good(ocsp.Response{Status: ocsp.Revoked,
			RevokedAt: p.now.AddDate(0, 0, -9), ThisUpdate: p.now.AddDate(0, 0, -8), NextUpdate: p.now.AddDate(0, 0, -1)})),
			check.Fail, check.Fail, "", "revoked on"},
		{"revoked, forged", p.staple(t, p.inter, otherKey, nil, good(ocsp.Response{Status: ocsp.Revoked, RevokedAt: p.now.AddDate(0, 0, -1)})),
			check.Pass, check.Unknown, OCSPBadSignature, "not signed by the issuer"},
		{"status unknown", p.staple(t, p.inter, p.interKey, nil, good(ocsp.Response{Status: ocsp.Unknown})),
			check.Warn, check.Warn, "", "status unknown"},
		{"garbage", []byte("not an OCSP response"), check.Pass, check.Unknown, OCSPUnparsed, "does not parse"},
		{"an error status (try later)", ocsp.TryLaterErrorResponse, check.Pass, check.Unknown, OCSPUnparsed, "error from the responder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := endpoint(leaf, p.inter)
			ep.OCSP = tt.staple
			alone := p.eval(ep, nil)[CertRevoke]
			ep.CRLs = []CRLFacts{p.crlOK(leaf, p.inter, false)}
			with := p.eval(ep, nil)[CertRevoke]
			if with.Outcome != tt.withCRL {
				t.Errorf("beside a good CRL: %s [%s] %q, want %s", with.Outcome, with.Reason, with.Message, tt.withCRL)
			}
			if alone.Outcome != tt.alone || (tt.alone == check.Unknown && alone.Reason != tt.reason) {
				t.Errorf("alone: %s [%s] %q, want %s [%s]", alone.Outcome, alone.Reason, alone.Message, tt.alone, tt.reason)
			}
			if !strings.Contains(alone.Message, tt.msg) {
				t.Errorf("alone: %q does not say %q", alone.Message, tt.msg)
			}
			if tt.reason != "" && (!strings.Contains(with.Message, "so the CRL decides") || !strings.Contains(with.Message, tt.msg)) {
				t.Errorf("beside a good CRL: %q does not say why the staple was not used", with.Message)
			}
		})
	}
}

func TestForgedGoodStapleDoesNotHideARevokingCRL(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, nil)
	_, otherKey := sign(t, caTemplate("test intermediate", p.now.AddDate(-1, 0, 0), p.now.AddDate(1, 0, 0)), nil, nil, nil)
	ep := endpoint(leaf, p.inter)
	ep.OCSP = p.staple(t, p.inter, otherKey, nil, ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber, NextUpdate: p.now.Add(time.Hour)})
	ep.CRLs = []CRLFacts{p.crlOK(leaf, p.inter, true)}
	if v := p.eval(ep, nil)[CertRevoke]; v.Outcome != check.Fail || !strings.Contains(v.Message, "lists the certificate as revoked") {
		t.Errorf("%s %q, want fail from the CRL", v.Outcome, v.Message)
	}
}

// TestStapleIssuerComesFromTheVerifiedPath: the staple is checked with the
// issuer of the path Evaluate builds, not with whatever was served second.
func TestStapleIssuerComesFromTheVerifiedPath(t *testing.T) {
	p := newPKI(t)
	fromRoot, _ := sign(t, p.leafTemplate(), p.root, p.rootKey, nil)
	leaf := p.leaf(t, nil)
	stray, _ := sign(t, caTemplate("a stray CA", p.now.AddDate(-1, 0, 0), p.now.AddDate(1, 0, 0)), nil, nil, nil)
	// A certificate with the intermediate's name and another key, served
	// in its place: it must not vouch for a staple it signed.
	impostor, impostorKey := sign(t, caTemplate("test intermediate", p.now.AddDate(-1, 0, 0), p.now.AddDate(1, 0, 0)), nil, nil, nil)
	tests := []struct {
		name    string
		ep      Endpoint
		staple  []byte
		outcome check.Outcome
		reason  string
		chain   check.Outcome
	}{
		{"a leaf served alone, issued by a root the policy trusts", endpoint(fromRoot),
			p.staple(t, p.root, p.rootKey, nil, ocsp.Response{Status: ocsp.Good, SerialNumber: fromRoot.SerialNumber, NextUpdate: p.now.Add(time.Hour)}),
			check.Pass, "", check.Pass},
		{"a stray certificate served second", endpoint(leaf, stray, p.inter), p.goodStaple(t, leaf), check.Pass, "", check.Warn},
		{"the intermediate missing", endpoint(leaf), p.goodStaple(t, leaf), check.Unknown, OCSPNoIssuer, check.Fail},
		{"an impostor in the intermediate's place", endpoint(leaf, impostor),
			p.staple(t, impostor, impostorKey, nil, ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber, NextUpdate: p.now.Add(time.Hour)}),
			check.Unknown, OCSPNoIssuer, check.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ep.OCSP = tt.staple
			vs := p.eval(tt.ep, nil)
			if v := vs[CertRevoke]; v.Outcome != tt.outcome || v.Reason != tt.reason {
				t.Errorf("revocation %s [%s] %q, want %s [%s]", v.Outcome, v.Reason, v.Message, tt.outcome, tt.reason)
			}
			if v := vs[CertChain]; v.Outcome != tt.chain {
				t.Errorf("chain %s %q, want %s", v.Outcome, v.Message, tt.chain)
			}
		})
	}
}

// TestCRLVerdictJudgesTheRecordedFacts: what a recorded CRL says, against
// the issuer on the path.
func TestCRLVerdictJudgesTheRecordedFacts(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, func(c *x509.Certificate) { c.CRLDistributionPoints = []string{"http://crl.example/ca.crl"} })
	noDP := p.leaf(t, nil)
	ok := func(mod func(*CRLFacts)) []CRLFacts {
		f := p.crlOK(leaf, p.inter, false)
		if mod != nil {
			mod(&f)
		}
		return []CRLFacts{f}
	}
	interCRL := func(mod func(*CRLFacts)) CRLFacts {
		f := p.crlOK(p.inter, p.root, false)
		if mod != nil {
			mod(&f)
		}
		return f
	}
	untrusted := check.DefaultPolicy()
	untrusted.Roots = x509.NewCertPool()
	tests := []struct {
		name    string
		ep      Endpoint
		policy  *check.Policy
		outcome check.Outcome
		reason  string
		msg     string
	}{
		{"a current list without the serial passes", Endpoint{CRLs: ok(nil)}, nil, check.Pass, "", "the certificate is not on its issuer's CRL"},
		{"a listed serial fails with its date", Endpoint{CRLs: ok(func(f *CRLFacts) { f.Listed, f.RevokedAt = true, p.now.AddDate(0, 0, -3) })},
			nil, check.Fail, "", "revoked on " + p.now.AddDate(0, 0, -3).Format(time.DateOnly)},
		{"a listed serial on a stale list still fails", Endpoint{CRLs: ok(func(f *CRLFacts) { f.Listed, f.NextUpdate = true, p.now.Add(-time.Hour) })},
			nil, check.Fail, "", "revoked"},
		{"a stale list is unknown", Endpoint{CRLs: ok(func(f *CRLFacts) { f.NextUpdate = p.now.Add(-time.Hour) })}, nil, check.Unknown, "stale", "stale"},
		{"a list due now is stale", Endpoint{CRLs: ok(func(f *CRLFacts) { f.NextUpdate = p.now })}, nil, check.Unknown, "stale", "stale"},
		{"a list without a next update is unknown", Endpoint{CRLs: ok(func(f *CRLFacts) { f.NextUpdate = time.Time{} })}, nil, check.Unknown, "stale", "no next update"},
		{"a list the issuer's key does not verify is unknown, even listing the serial", Endpoint{CRLs: ok(func(f *CRLFacts) { f.Listed, f.Signers = true, nil })},
			nil, check.Unknown, "bad-signature", "is not signed by its issuer"},
		{"a list never checked with the issuer's key is unknown", Endpoint{CRLs: ok(func(f *CRLFacts) { f.Tried, f.Signers = nil, nil })},
			nil, check.Unknown, "signer-unchecked", "was not checked against the key"},
		{"an unreadable list is unknown with its class", Endpoint{CRLs: []CRLFacts{{For: fingerprint(leaf), URL: "http://crl.example/ca.crl",
			Error: "crl: too big", ErrorClass: crl.ClassTooLarge}}}, nil, check.Unknown, crl.ClassTooLarge, "could not be read"},
		{"a distribution point never fetched is unknown", Endpoint{}, nil, check.Unknown, CRLNotFetched, "was not fetched"},
		{"a revoked intermediate fails despite a good staple", Endpoint{OCSP: p.goodStaple(t, leaf),
			CRLs: []CRLFacts{interCRL(func(f *CRLFacts) { f.Listed, f.RevokedAt = true, p.now })}},
			nil, check.Fail, "", `lists the intermediate "CN=test intermediate" as revoked`},
		{"an unreadable intermediate list makes a good leaf unknown", Endpoint{CRLs: append(ok(nil),
			CRLFacts{For: fingerprint(p.inter), URL: "http://crl.example/root.crl", Error: "timeout", ErrorClass: crl.ClassTimeout})},
			nil, check.Unknown, crl.ClassTimeout, `the CRL of the intermediate "CN=test intermediate"`},
		{"a good intermediate is named in the pass", Endpoint{CRLs: append(ok(nil), interCRL(nil))},
			nil, check.Pass, "", `; the intermediate "CN=test intermediate" is not on its issuer's CRL`},
		{"without a path, an intermediate whose issuer was not served is not judged", Endpoint{CRLs: append(ok(nil),
			interCRL(func(f *CRLFacts) { f.Listed = true }))}, untrusted, check.Pass, "", "the certificate is not on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := endpoint(leaf, p.inter)
			ep.OCSP, ep.CRLs = tt.ep.OCSP, tt.ep.CRLs
			v := p.eval(ep, tt.policy)[CertRevoke]
			if v.Outcome != tt.outcome || v.Reason != tt.reason || !strings.Contains(v.Message, tt.msg) {
				t.Errorf("got %s [%s] %q; want %s [%s] containing %q", v.Outcome, v.Reason, v.Message, tt.outcome, tt.reason, tt.msg)
			}
		})
	}
	t.Run("no distribution point and nothing stapled is not checked", func(t *testing.T) {
		v := p.eval(endpoint(noDP, p.inter), nil)[CertRevoke]
		if v.Outcome != check.Unknown || v.Reason != "not-stapled" || !strings.Contains(v.Message, "no http(s) CRL distribution point") {
			t.Errorf("got %s [%s] %q", v.Outcome, v.Reason, v.Message)
		}
	})
}

// crlServer serves lists by path; /big.crl is over the size limit.
func crlServer(t *testing.T, bodies map[string][]byte) *httptest.Server {
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
	t.Cleanup(srv.Close)
	return srv
}

func (p *testPKI) crlDER(t *testing.T, issuer *x509.Certificate, key crypto.Signer, next time.Time, revoked ...*big.Int) []byte {
	t.Helper()
	var es []x509.RevocationListEntry
	for _, s := range revoked {
		es = append(es, x509.RevocationListEntry{SerialNumber: s, RevocationTime: p.now.Add(-48 * time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: p.now.Add(-time.Hour), NextUpdate: next, RevokedCertificateEntries: es}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestCollectCRLsRecordsWhatTheListSays fetches lists from a loopback
// server for leaves issued by a root and served alone (the root, the
// list's signer, is met only by building the chain at collection), and
// judges what was recorded.
func TestCollectCRLsRecordsWhatTheListSays(t *testing.T) {
	p := newPKI(t)
	_, otherKey := sign(t, caTemplate("test root", p.now, p.now.AddDate(1, 0, 0)), nil, nil, nil)
	impostor := &x509.Certificate{Subject: p.root.Subject, SubjectKeyId: p.root.SubjectKeyId, KeyUsage: x509.KeyUsageCRLSign}
	later := p.now.Add(7 * 24 * time.Hour)
	serial := big.NewInt(5)
	srv := crlServer(t, map[string][]byte{
		"/good.crl":    p.crlDER(t, p.root, p.rootKey, later, big.NewInt(99)),
		"/revoked.crl": p.crlDER(t, p.root, p.rootKey, later, big.NewInt(99), serial),
		"/stale.crl":   p.crlDER(t, p.root, p.rootKey, p.now.Add(-time.Minute)),
		"/badsig.crl":  p.crlDER(t, impostor, otherKey, later, serial),
		"/garbage.crl": []byte("this is not a CRL"),
	})
	env := &check.Env{CRLs: crl.Source{Client: srv.Client(), Cache: &crl.Cache{}}, Roots: p.policy.Roots, Now: func() time.Time { return p.now }}
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
		{"no CRL source: not fetched", "/good.crl", &check.Env{Roots: p.policy.Roots}, check.Unknown, CRLNotFetched},
		{"a source without a client: not fetched", "/good.crl", &check.Env{CRLs: crl.Source{}}, check.Unknown, CRLNotFetched},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf, _ := sign(t, func() *x509.Certificate {
				c := p.leafTemplate()
				c.SerialNumber, c.CRLDistributionPoints = serial, []string{srv.URL + tt.path}
				return c
			}(), p.root, p.rootKey, nil)
			ep := endpoint(leaf)
			CollectCRLs(context.Background(), tt.env, &ep)
			if len(ep.CRLs) != 1 {
				t.Fatalf("CRLs recorded: %+v", ep.CRLs)
			}
			v := p.eval(ep, nil)[CertRevoke]
			if v.Outcome != tt.outcome || v.Reason != tt.reason {
				t.Errorf("got %s [%s] %q; want %s [%s]", v.Outcome, v.Reason, v.Message, tt.outcome, tt.reason)
			}
			f := ep.CRLs[0]
			if tt.outcome == check.Pass && (f.NextUpdate.IsZero() || f.ThisUpdate.IsZero() || f.Size == 0 || !slices.Contains(f.Signers, spkiHash(p.root))) {
				t.Errorf("evidence incomplete: %+v", f)
			}
		})
	}
}

func TestCollectCRLsFetchesTheLeafsListEvenWhenStapled(t *testing.T) {
	p := newPKI(t)
	srv := crlServer(t, map[string][]byte{"/inter.crl": p.crlDER(t, p.inter, p.interKey, p.now.Add(time.Hour))})
	leaf := p.leaf(t, func(c *x509.Certificate) { c.CRLDistributionPoints = []string{srv.URL + "/inter.crl"} })
	ep := endpoint(leaf, p.inter)
	ep.OCSP = p.goodStaple(t, leaf)
	CollectCRLs(context.Background(), &check.Env{CRLs: crl.Source{Client: srv.Client()}, Roots: p.policy.Roots}, &ep)
	if len(ep.CRLs) != 1 || ep.CRLs[0].For != fingerprint(leaf) || ep.CRLs[0].Error != "" {
		t.Fatalf("CRLs: %+v", ep.CRLs)
	}
}

func TestCollectCRLsChecksAnIntermediateOnItsIssuersList(t *testing.T) {
	p := newPKI(t)
	srv := crlServer(t, nil)
	list := p.crlDER(t, p.root, p.rootKey, p.now.Add(time.Hour), big.NewInt(77))
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(list) })
	tmpl := caTemplate("listed intermediate", p.now.AddDate(-1, 0, 0), p.now.AddDate(1, 0, 0))
	tmpl.SerialNumber, tmpl.CRLDistributionPoints = big.NewInt(77), []string{srv.URL + "/root.crl"}
	inter, interKey := sign(t, tmpl, p.root, p.rootKey, nil)
	leaf, _ := sign(t, p.leafTemplate(), inter, interKey, nil)
	ep := endpoint(leaf, inter)
	CollectCRLs(context.Background(), &check.Env{CRLs: crl.Source{Client: srv.Client()}, Roots: p.policy.Roots}, &ep)
	if len(ep.CRLs) != 1 || !ep.CRLs[0].Listed || ep.CRLs[0].For != fingerprint(inter) {
		t.Fatalf("CRLs: %+v", ep.CRLs)
	}
	// The chain reaches the root only through the policy's anchors.
	if v := p.eval(ep, nil)[CertRevoke]; v.Outcome != check.Fail || !strings.Contains(v.Message, "listed intermediate") {
		t.Errorf("got %s %q; want fail naming the intermediate", v.Outcome, v.Message)
	}
}

// TestReevaluationJudgesTheStoredDER: evidence keeps the DER and the
// staple, so a later evaluation with other anchors judges again.
func TestReevaluationJudgesTheStoredDER(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, nil)
	ep := endpoint(leaf, p.inter)
	ep.OCSP = p.goodStaple(t, leaf)
	b, err := json.Marshal(CertEvidence{Host: testHost, Port: 443, Endpoints: []Endpoint{ep}})
	if err != nil {
		t.Fatal(err)
	}
	var stored CertEvidence
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	if vs := p.eval(stored.Endpoints[0], nil); vs[CertChain].Outcome != check.Pass || vs[CertRevoke].Outcome != check.Pass {
		t.Errorf("with the issuing root: chain %s, revocation %s", vs[CertChain].Outcome, vs[CertRevoke].Outcome)
	}
	other := check.DefaultPolicy()
	other.Roots = x509.NewCertPool()
	other.Roots.AddCert(newPKI(t).root)
	if v := p.eval(stored.Endpoints[0], other)[CertChain]; v.Outcome != check.Fail {
		t.Errorf("with other anchors: chain %s %q, want fail", v.Outcome, v.Message)
	}
}
