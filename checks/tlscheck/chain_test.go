package tlscheck

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/nhsx/posture/checks/check"
)

// TestLeafMustAllowServerAuthentication: serverAuth or no EKU at all; a
// clientAuth-only leaf, or an issuer that restricts the path to client
// authentication, fails tls.cert.chain and says why.
func TestLeafMustAllowServerAuthentication(t *testing.T) {
	p := newPKI(t)
	clientCA := caTemplate("client-only intermediate", p.now.AddDate(-1, 0, 0), p.now.AddDate(1, 0, 0))
	clientCA.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	clientInter, clientKey := sign(t, clientCA, p.root, p.rootKey, nil)
	underClient, _ := sign(t, p.leafTemplate(), clientInter, clientKey, nil)
	eku := func(us ...x509.ExtKeyUsage) func(*x509.Certificate) {
		return func(c *x509.Certificate) { c.ExtKeyUsage = us }
	}
	tests := []struct {
		name    string
		ep      Endpoint
		outcome check.Outcome
		msg     string
	}{
		{"serverAuth", endpoint(p.leaf(t, nil), p.inter), check.Pass, "verifies to the trusted root"},
		{"no EKU", endpoint(p.leaf(t, eku()), p.inter), check.Pass, "verifies"},
		{"serverAuth and clientAuth", endpoint(p.leaf(t, eku(x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth)), p.inter), check.Pass, "verifies"},
		{"any", endpoint(p.leaf(t, eku(x509.ExtKeyUsageAny)), p.inter), check.Pass, "verifies"},
		{"clientAuth only", endpoint(p.leaf(t, eku(x509.ExtKeyUsageClientAuth)), p.inter), check.Fail,
			"extended key usage (clientAuth) does not include server authentication"},
		{"email protection only", endpoint(p.leaf(t, eku(x509.ExtKeyUsageEmailProtection)), p.inter), check.Fail, "(emailProtection)"},
		{"an intermediate restricted to clientAuth", endpoint(underClient, clientInter), check.Fail,
			`the issuer "CN=client-only intermediate" restricts its extended key usage to clientAuth`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := p.eval(tt.ep, nil)
			v := vs[CertChain]
			if v.Outcome != tt.outcome || !strings.Contains(v.Message, tt.msg) {
				t.Errorf("chain %s %q, want %s saying %q", v.Outcome, v.Message, tt.outcome, tt.msg)
			}
			if tt.outcome == check.Fail && !strings.Contains(v.Message, "not valid for server authentication") {
				t.Errorf("chain message %q does not say it is about server authentication", v.Message)
			}
			if n := vs[CertName]; n.Outcome != check.Pass {
				t.Errorf("name %s: the EKU is the chain's business", n.Outcome)
			}
		})
	}
}

// TestDatesKeysAndSignaturesJudgeThePathClientsBuild: a certificate the
// server sends that is not on the verified path (an expired cross-signed
// root, a stray weak certificate) is a note at most; without a verified
// path, the served certificates except self-signed roots are judged.
func TestDatesKeysAndSignaturesJudgeThePathClientsBuild(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, nil)
	// The ISRG Root X1 / DST Root CA X3 shape: the root, cross-signed by
	// an old root that expired before the cross-certificate did.
	oldRoot, oldKey := sign(t, caTemplate("old root", p.now.AddDate(-20, 0, 0), p.now.AddDate(-3, 0, 0)), nil, nil, nil)
	crossT := caTemplate("test root", p.now.AddDate(-6, 0, 0), p.now.AddDate(0, 0, -30))
	cross, _ := sign(t, crossT, oldRoot, oldKey, p.rootKey)
	// A stray served certificate with a 1024-bit RSA key, signed with SHA-1.
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	strayT := caTemplate("stray SHA-1 CA", p.now.AddDate(-1, 0, 0), p.now.AddDate(1, 0, 0))
	strayT.SignatureAlgorithm = x509.SHA1WithRSA
	stray, _ := sign(t, strayT, nil, nil, weakKey)
	// A chain to a root nobody trusts, served with that root, expired.
	uRoot, uRootKey := sign(t, caTemplate("untrusted root", p.now.AddDate(-5, 0, 0), p.now.AddDate(0, 0, -1)), nil, nil, nil)
	uInter, uInterKey := sign(t, caTemplate("untrusted intermediate", p.now.AddDate(-1, 0, 0), p.now.AddDate(1, 0, 0)), uRoot, uRootKey, nil)
	uLeaf, _ := sign(t, p.leafTemplate(), uInter, uInterKey, nil)
	expiredInterT := caTemplate("expired untrusted intermediate", p.now.AddDate(-2, 0, 0), p.now.AddDate(0, 0, -2))
	uExpiredInter, uExpiredKey := sign(t, expiredInterT, uRoot, uRootKey, nil)
	uLeaf2, _ := sign(t, p.leafTemplate(), uExpiredInter, uExpiredKey, nil)

	type want struct {
		chain, expiry, key, sig check.Outcome
		note                    string
	}
	tests := []struct {
		name string
		ep   Endpoint
		want want
	}{
		{"an expired cross-signed root served after the path", endpoint(leaf, p.inter, cross),
			want{check.Pass, check.Pass, check.Pass, check.Pass, `note: the server also sends "CN=test root", expired on`}},
		// (out of order: the chain rule warns of the stray, not the others)
		{"a stray weak certificate served after the path", endpoint(leaf, p.inter, stray),
			want{check.Warn, check.Pass, check.Pass, check.Pass, ""}},
		{"no verified path: a served self-signed root is not judged", endpoint(uLeaf, uInter, uRoot),
			want{check.Fail, check.Pass, check.Pass, check.Pass, ""}},
		{"no verified path: a served intermediate is judged", endpoint(uLeaf2, uExpiredInter, uRoot),
			want{check.Fail, check.Fail, check.Pass, check.Pass, `the intermediate "CN=expired untrusted intermediate" expired`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := p.eval(tt.ep, nil)
			for id, o := range map[string]check.Outcome{CertChain: tt.want.chain, CertExpiry: tt.want.expiry, CertKey: tt.want.key, CertSigAlg: tt.want.sig} {
				if vs[id].Outcome != o {
					t.Errorf("%s: %s %q, want %s", id, vs[id].Outcome, vs[id].Message, o)
				}
			}
			if !strings.Contains(vs[CertExpiry].Message, tt.want.note) {
				t.Errorf("expiry %q does not say %q", vs[CertExpiry].Message, tt.want.note)
			}
			if vs[CertExpiry].Severity != "" && tt.want.expiry == check.Pass {
				t.Errorf("expiry severity %s on a pass", vs[CertExpiry].Severity)
			}
		})
	}
}

// TestExpiredLeafStillHasItsChainJudged: the chain is verified inside the
// leaf's validity, so expiry is said once, by tls.cert.expiry.
func TestExpiredLeafStillHasItsChainJudged(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = p.now.AddDate(0, 0, -100), p.now.AddDate(0, 0, -1)
	})
	vs := p.eval(endpoint(leaf, p.inter), nil)
	if vs[CertChain].Outcome != check.Pass || vs[CertExpiry].Outcome != check.Fail {
		t.Errorf("chain %s %q, expiry %s %q", vs[CertChain].Outcome, vs[CertChain].Message, vs[CertExpiry].Outcome, vs[CertExpiry].Message)
	}
}

// TestRefusalIsToldFromTheErrorChainNotItsWording: an error that merely
// says "connection refused" is not a refusal; a wrapped ECONNREFUSED is,
// however it is worded.
func TestRefusalIsToldFromTheErrorChainNotItsWording(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a wrapped ECONNREFUSED", fmt.Errorf("connect: %w", refused), true},
		{"ECONNREFUSED under a class", check.WithClass(check.ErrUnreachable, fmt.Errorf("tlsprobe: %w", refused)), true},
		{"text that says connection refused", errors.New("dial tcp: connect: connection refused"), false},
		{"no route to host", fmt.Errorf("connect: %w", syscall.EHOSTUNREACH), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := failedEndpoint("192.0.2.1:443", tt.err).Refused; got != tt.want {
				t.Errorf("endpoint refused = %v, want %v", got, tt.want)
			}
			if got := NewAddrError("192.0.2.1:443", tt.err).Refused; got != tt.want {
				t.Errorf("address error refused = %v, want %v", got, tt.want)
			}
		})
	}
	// And what counts: every address refused is n/a, anything else is not.
	eps := []Endpoint{failedEndpoint("a", fmt.Errorf("connect: %w", refused)), failedEndpoint("b", errors.New("connection refused"))}
	var closed bool
	if err := endpointsErr(&closed, eps); closed || err == nil {
		t.Errorf("closed %v (err %v) when one address only says it was refused", closed, err)
	}
	if err := endpointsErr(&closed, eps[:1]); !closed || err != nil {
		t.Errorf("closed %v (err %v) when the only address refused", closed, err)
	}
}

func TestSettingsRejectOutOfRangeThresholds(t *testing.T) {
	tests := []struct {
		yaml string
		err  string // "" for valid
	}{
		{"tls: {cert_warn_days: 30, cert_high_days: 10}", ""},
		{"tls: {min_ec_bits: 256, min_rsa_bits: 3072, min_dh_bits: 4096}", ""},
		{"tls: {cert_warn_days: -1}", "tls.cert_warn_days"},
		{"tls: {cert_high_days: 20}", "tls.cert_high_days: 20 is outside 0..14"},
		{"tls: {min_rsa_bits: 256}", "tls.min_rsa_bits"},
		{"tls: {min_dh_bits: 100}", "tls.min_dh_bits"},
		{"tls: {min_ec_bits: 64}", "tls.min_ec_bits"},
		{"tls: {cert_warn_dayz: 3}", `unknown setting "cert_warn_dayz"`},
	}
	for _, tt := range tests {
		p, err := check.ParsePolicy("policy.yaml", []byte(tt.yaml), []check.Sectioner{Settings})
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.yaml, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want one saying %q", tt.yaml, err, tt.err)
		case tt.err == "" && Settings.Get(p) == Settings.Defaults():
			t.Errorf("%s: the defaults are still in force", tt.yaml)
		}
	}
}

// TestEvidenceOfFourAddressesStaysSmall: the raw evidence of a host with
// four addresses serving a long chain, a staple and CRL facts is well
// under 1 MiB.
func TestEvidenceOfFourAddressesStaysSmall(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, func(c *x509.Certificate) {
		for i := range 100 {
			c.DNSNames = append(c.DNSNames, fmt.Sprintf("name-%d.lab.nhs.uk", i))
		}
	})
	var eps []Endpoint
	for range 4 {
		ep := endpoint(leaf, p.inter, p.root)
		ep.OCSP = p.goodStaple(t, leaf)
		ep.CRLs = []CRLFacts{p.crlOK(leaf, p.inter, false), p.crlOK(p.inter, p.root, false)}
		eps = append(eps, ep)
	}
	ev := CertEvidence{Host: testHost, Port: 443, Endpoints: eps}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 256<<10 {
		t.Errorf("%d bytes of evidence", len(b))
	}
	t.Logf("%d bytes", len(b))
}
