package tlscheck_test

import (
	"crypto"
	"crypto/tls"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlscheck"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

type want map[string]check.Outcome

func staple(t *testing.T, ca *tlstest.CA, is *tlstest.Issued, status int) []byte {
	t.Helper()
	now := time.Now()
	resp, err := ocsp.CreateResponse(ca.Intermediate, ca.Intermediate, ocsp.Response{
		Status: status, SerialNumber: new(big.Int).Set(is.Leaf.SerialNumber), ThisUpdate: now.Add(-time.Hour),
		NextUpdate: now.Add(24 * time.Hour), RevokedAt: now.Add(-2 * time.Hour),
	}, ca.InterKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestCertificateVerdictsForLabCertificates(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	good := issue(t, ca, tlstest.Leaf{})
	revoked := issue(t, ca, tlstest.Leaf{})
	cases := []struct {
		name   string
		cert   *tlstest.Issued
		staple func() []byte
		want   want
		sev    check.Severity // expected expiry severity, if set
		msg    map[string]string
	}{
		{"good", good, nil, want{tlscheck.CertChain: check.Pass, tlscheck.CertName: check.Pass, tlscheck.CertExpiry: check.Pass,
			tlscheck.CertKey: check.Pass, tlscheck.CertSigAlg: check.Pass, tlscheck.CertRevoke: check.Unknown}, "", nil},
		{"expired", issue(t, ca, tlstest.Leaf{NotBefore: now.AddDate(0, 0, -100), NotAfter: now.AddDate(0, 0, -1)}), nil,
			want{tlscheck.CertExpiry: check.Fail, tlscheck.CertChain: check.Pass}, check.Critical, map[string]string{tlscheck.CertExpiry: "expired on"}},
		{"not-yet-valid", issue(t, ca, tlstest.Leaf{NotBefore: now.AddDate(0, 0, 10), NotAfter: now.AddDate(0, 0, 100)}), nil,
			want{tlscheck.CertExpiry: check.Fail, tlscheck.CertChain: check.Pass}, check.Critical, map[string]string{tlscheck.CertExpiry: "not valid until"}},
		{"expires-in-5-days", issue(t, ca, tlstest.Leaf{NotAfter: now.Add(5*24*time.Hour + time.Hour)}), nil,
			want{tlscheck.CertExpiry: check.Warn}, check.High, map[string]string{tlscheck.CertExpiry: "in 5 days"}},
		{"expires-in-10-days", issue(t, ca, tlstest.Leaf{NotAfter: now.Add(10*24*time.Hour + time.Hour)}), nil,
			want{tlscheck.CertExpiry: check.Warn}, check.Medium, map[string]string{tlscheck.CertExpiry: "in 10 days"}},
		{"wrong-name", issue(t, ca, tlstest.Leaf{Names: []string{"other.lab.nhs.uk"}}), nil,
			want{tlscheck.CertName: check.Fail, tlscheck.CertChain: check.Pass}, "", map[string]string{tlscheck.CertName: "other.lab.nhs.uk"}},
		{"wildcard", issue(t, ca, tlstest.Leaf{Names: []string{"*.lab.nhs.uk"}}), nil, want{tlscheck.CertName: check.Pass}, "", nil},
		{"self-signed", issue(t, ca, tlstest.Leaf{SelfSigned: true}), nil,
			want{tlscheck.CertChain: check.Fail, tlscheck.CertName: check.Pass}, "", map[string]string{tlscheck.CertChain: "self-signed"}},
		{"rsa-1024", issue(t, ca, tlstest.Leaf{RSABits: 1024}), nil,
			want{tlscheck.CertKey: check.Fail, tlscheck.CertChain: check.Pass}, "", map[string]string{tlscheck.CertKey: "1024-bit RSA"}},
		{"rsa-2048", issue(t, ca, tlstest.Leaf{RSABits: 2048}), nil, want{tlscheck.CertKey: check.Pass}, "", nil},
		{"sha1-signed", issue(t, ca, tlstest.Leaf{RSABits: 2048, SHA1: true}), nil,
			want{tlscheck.CertSigAlg: check.Fail, tlscheck.CertChain: check.Fail}, "", map[string]string{tlscheck.CertSigAlg: "SHA1-RSA", tlscheck.CertChain: "insecure algorithm"}},
		{"missing-intermediate", issue(t, ca, tlstest.Leaf{OmitIntermediate: true}), nil,
			want{tlscheck.CertChain: check.Fail, tlscheck.CertName: check.Pass}, "", map[string]string{tlscheck.CertChain: "incomplete"}},
		{"ocsp-good", good, func() []byte { return staple(t, ca, good, ocsp.Good) }, want{tlscheck.CertRevoke: check.Pass}, "", nil},
		{"ocsp-revoked", revoked, func() []byte { return staple(t, ca, revoked, ocsp.Revoked) }, want{tlscheck.CertRevoke: check.Fail}, "", nil},
		{"ocsp-garbage", good, func() []byte { return []byte("not ocsp") }, want{tlscheck.CertRevoke: check.Unknown}, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			cert := tc.cert.Cert
			if tc.staple != nil {
				cert.OCSPStaple = tc.staple()
			}
			srv := tlsmust.StartTLS(t, &tls.Config{Certificates: []tls.Certificate{cert}})
			_, got := run(t, tlscheck.Certificate(), labEnv(t, srv.Addr, ca.Pool()))
			for id, o := range tc.want {
				if got[id].Outcome != o {
					t.Errorf("%s: %s (%s), want %s", id, got[id].Outcome, got[id].Message, o)
				}
			}
			if tc.sev != "" && got[tlscheck.CertExpiry].Severity != tc.sev {
				t.Errorf("expiry severity %s, want %s", got[tlscheck.CertExpiry].Severity, tc.sev)
			}
			for id, m := range tc.msg {
				if !strings.Contains(got[id].Message, m) {
					t.Errorf("%s message %q does not say %q", id, got[id].Message, m)
				}
			}
		})
	}
}

func TestCertificateOfMalformedExtensionIsUnknownMalformed(t *testing.T) {
	tlsmust.NoLeak(t)
	ca := newCA(t)
	bad := issue(t, ca, tlstest.Leaf{BadExtension: true})
	srv := tlsmust.StartTLS(t, &tls.Config{Certificates: []tls.Certificate{bad.Cert}})
	start := time.Now()
	_, got := run(t, tlscheck.CertificateWith(tlscheck.Options{Timeout: time.Second}), labEnv(t, srv.Addr, ca.Pool()))
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	for _, id := range []string{tlscheck.CertChain, tlscheck.CertName, tlscheck.CertExpiry, tlscheck.CertKey, tlscheck.CertSigAlg} {
		f := got[id]
		if f.Outcome != check.Unknown || f.Reason != string(check.ErrMalformed) || !strings.Contains(f.Message, "parse certificate") {
			t.Errorf("%s: %s reason %q (%s), want unknown/malformed", id, f.Outcome, f.Reason, f.Message)
		}
	}
}

func TestCertificateOfSSLv3OnlyServerIsReadFromTheRawHello(t *testing.T) {
	ca := newCA(t)
	is := issue(t, ca, tlstest.Leaf{RSABits: 2048})
	srv := tlsmust.Start(t, tlstest.SSLv3Handler([]uint16{0x000A}, is.Cert.Certificate, nil))
	ev, got := run(t, tlscheck.Certificate(), labEnv(t, srv.Addr, ca.Pool()))
	var ce tlscheck.CertEvidence
	if err := json.Unmarshal(ev.Data, &ce); err != nil || len(ce.Endpoints) != 1 {
		t.Fatalf("evidence %s: %v", ev.Data, err)
	}
	if ep := ce.Endpoints[0]; ep.Via != "raw hello" || ep.ViaReason == "" {
		t.Errorf("via %q (%q), want the raw hello after crypto/tls failed", ep.Via, ep.ViaReason)
	}
	for _, id := range []string{tlscheck.CertChain, tlscheck.CertName, tlscheck.CertExpiry, tlscheck.CertKey, tlscheck.CertSigAlg} {
		if got[id].Outcome != check.Pass {
			t.Errorf("%s: %s (%s)", id, got[id].Outcome, got[id].Message)
		}
	}
}

func TestCertificateOfClosedPortIsNotApplicable(t *testing.T) {
	srv := tlsmust.Start(t, tlstest.Stall)
	addr := srv.Addr
	srv.Close()
	_, got := run(t, tlscheck.Certificate(), labEnv(t, addr, nil))
	for id, f := range got {
		if f.Outcome != check.NA {
			t.Errorf("%s: %s (%s), want n/a", id, f.Outcome, f.Message)
		}
	}
}

func TestCertificateOfStalledServerIsUnknownTimeout(t *testing.T) {
	tlsmust.NoLeak(t)
	srv := tlsmust.Start(t, tlstest.Stall)
	start := time.Now()
	_, got := run(t, tlscheck.CertificateWith(tlscheck.Options{Timeout: 300 * time.Millisecond}), labEnv(t, srv.Addr, nil))
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %v with a 300ms timeout", el)
	}
	for id, f := range got {
		if f.Outcome != check.Unknown || f.Reason != string(check.ErrTimeout) {
			t.Errorf("%s: %s reason %q, want unknown/timeout", id, f.Outcome, f.Reason)
		}
		if f.Rule != tlscheck.Rule(id) {
			t.Errorf("%s: rule %q on a failed collection, %q otherwise: the finding id would change", id, f.Rule, tlscheck.Rule(id))
		}
	}
}

func TestEvaluateIsPureOverStoredEvidence(t *testing.T) {
	// The same evidence, re-evaluated later (posture reeval), judges
	// expiry at the collection time, not at evaluation time.
	ca := newCA(t)
	is := issue(t, ca, tlstest.Leaf{NotAfter: time.Now().Add(30 * 24 * time.Hour)})
	srv := tlsmust.StartTLS(t, &tls.Config{Certificates: []tls.Certificate{is.Cert}})
	c := tlscheck.Certificate()
	env := labEnv(t, srv.Addr, ca.Pool())
	ev, first := run(t, c, env)
	b, _ := json.Marshal(ev)
	var stored check.Evidence
	_ = json.Unmarshal(b, &stored)
	for _, f := range c.Evaluate(stored, policyFor(env)) {
		if f.Outcome != first[f.CheckID].Outcome || f.Message != first[f.CheckID].Message {
			t.Errorf("%s: re-evaluation gave %s %q, first %s %q", f.CheckID, f.Outcome, f.Message, first[f.CheckID].Outcome, first[f.CheckID].Message)
		}
	}
	tp := tlscheck.Settings.Defaults()
	tp.CertWarnDays = 40 // a stricter policy warns on the same evidence
	p := tlscheck.Settings.Set(policyFor(env), tp)
	for _, f := range c.Evaluate(stored, p) {
		if f.CheckID == tlscheck.CertExpiry && f.Outcome != check.Warn {
			t.Errorf("expiry under a 40-day policy: %s", f.Outcome)
		}
	}
}
