package smtptls_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
	"github.com/nhsx/posture/checks/mtasts"
	"github.com/nhsx/posture/checks/smtptls"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
)

// TestMXCertIsHighUnderAnEnforcedMTASTSPolicy: the MX host's domain
// (Asset.Domain) publishes MTA-STS; a certificate that fails is high when
// the domain's valid policy is in enforce mode, medium in testing mode,
// without a policy, for an asset that names no domain, and for version 2
// evidence (which has no MTA-STS discovery). A good certificate passes
// whatever the mode.
func TestMXCertIsHighUnderAnEnforcedMTASTSPolicy(t *testing.T) {
	ca, err := tlstest.NewCA("Posture Lab")
	if err != nil {
		t.Fatal(err)
	}
	good, _ := ca.Issue(tlstest.Leaf{Names: []string{mx}})
	self, _ := ca.Issue(tlstest.Leaf{Names: []string{mx}, SelfSigned: true})
	policyCert, _ := ca.Issue(tlstest.Leaf{Names: []string{"mta-sts.enforce.nhs.uk", "mta-sts.testing.nhs.uk"}})
	policy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode, _, _ := strings.Cut(strings.TrimPrefix(r.Host, "mta-sts."), ".")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "version: STSv1\r\nmode: %s\r\nmx: %s\r\nmax_age: 1209600\r\n", mode, mx)
	}))
	policy.TLS = &tls.Config{Certificates: []tls.Certificate{policyCert.Cert}}
	policy.StartTLS()
	defer policy.Close()
	_, pp, _ := net.SplitHostPort(policy.Listener.Addr().String())
	policyPort, _ := strconv.Atoi(pp)

	recs := []string{mx + ". 60 IN A 127.0.0.1"}
	for _, d := range []string{"enforce", "testing", "plain"} {
		z := d + ".nhs.uk."
		recs = append(recs, z+" 60 IN MX 10 "+mx+".")
		if d != "plain" {
			recs = append(recs, "_mta-sts."+z+` 60 IN TXT "v=STSv1; id=1"`, "mta-sts."+z+" 60 IN A 127.0.0.1")
		}
	}
	dnsS, err := dnstest.Start([]string{"nhs.uk."}, recs...)
	if err != nil {
		t.Fatal(err)
	}
	defer dnsS.Close()
	env := func(smtpAddr string) *check.Env {
		_, p, _ := net.SplitHostPort(smtpAddr)
		port, _ := strconv.Atoi(p)
		return &check.Env{
			DNS: &dnsq.Resolver{Servers: []string{dnsS.Addr}, Timeout: time.Second},
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if h, p, _ := net.SplitHostPort(addr); strings.HasPrefix(h, "mta-sts.") {
					addr = net.JoinHostPort("127.0.0.1", p)
				}
				return tlstest.DialLoopback(ctx, network, addr)
			},
			PortMap: map[int]int{25: port, 443: policyPort},
		}
	}
	goodAddr := startSMTP(t, &tls.Config{Certificates: []tls.Certificate{good.Cert}})
	selfAddr := startSMTP(t, &tls.Config{Certificates: []tls.Certificate{self.Cert}})
	p := check.DefaultPolicy()
	p.Roots = ca.Pool()
	c := smtptls.CheckWith(smtptls.Options{Timeout: 5 * time.Second})
	tests := []struct {
		name    string
		addr    string
		domain  string
		v2      bool
		outcome check.Outcome
		sev     check.Severity
	}{
		{"enforce, bad certificate", selfAddr, "enforce.nhs.uk", false, check.Fail, check.High},
		{"testing, bad certificate", selfAddr, "testing.nhs.uk", false, check.Fail, check.Medium},
		{"no MTA-STS, bad certificate", selfAddr, "plain.nhs.uk", false, check.Fail, check.Medium},
		{"no domain known, bad certificate", selfAddr, "", false, check.Fail, check.Medium},
		{"enforce, version 2 evidence", selfAddr, "enforce.nhs.uk", true, check.Fail, check.Medium},
		{"enforce, good certificate", goodAddr, "enforce.nhs.uk", false, check.Pass, check.Medium},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ev, err := c.Collect(ctx, env(tt.addr), check.Asset{Kind: check.KindMail, Name: mx, Domain: tt.domain})
			if err != nil {
				t.Fatal(err)
			}
			var e smtptls.Evidence
			if err := json.Unmarshal(ev.Data, &e); err != nil {
				t.Fatal(err)
			}
			if (e.MTASTS != nil) != (tt.domain != "") {
				t.Fatalf("MTA-STS discovery %+v for domain %q", e.MTASTS, tt.domain)
			}
			if tt.v2 {
				e.MTASTS = nil
				ev.Data, _ = json.Marshal(e)
				ev.Version = 2
			}
			for _, f := range c.Evaluate(ev, p) {
				if f.CheckID != smtptls.MXCert {
					continue
				}
				if f.Outcome != tt.outcome || f.Severity != tt.sev {
					t.Fatalf("%s at %s (%s), want %s at %s", f.Outcome, f.Severity, f.Message, tt.outcome, tt.sev)
				}
				if high := f.Severity == check.High; high != strings.Contains(f.Message, "enforce mode") {
					t.Fatalf("message %q", f.Message)
				}
				return
			}
			t.Fatal("no email.mx.cert finding")
		})
	}
	if mode, known := mtasts.InForce(mtasts.Discover(context.Background(), env(goodAddr), "enforce.nhs.uk"), time.Now(), p); mode != mtasts.ModeEnforce || !known {
		t.Fatalf("the fixture's policy is %q (known %v), not enforce", mode, known)
	}
}

// TestVersion1EvidenceIsNotMisread: only version 2 evidence is upgraded.
func TestVersion1EvidenceIsNotMisread(t *testing.T) {
	c := smtptls.Check()
	fs := c.Evaluate(check.Evidence{CheckID: c.ID(), Version: 1, Data: json.RawMessage(`{"host":"mx.lab.nhs.uk"}`)}, nil)
	for _, f := range fs {
		if f.Outcome != check.Unknown || f.Reason != string(check.ErrEvidenceVersion) {
			t.Fatalf("%s: %s %s", f.CheckID, f.Outcome, f.Reason)
		}
	}
}
