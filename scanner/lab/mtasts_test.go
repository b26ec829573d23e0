package lab

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/smtptls"
)

// TestMXCertUnderTheLabsEnforcePolicyIsHigh: the MX host of
// mtasts-enforce-bad-mx-cert, found under its domain (as discovery sets
// Asset.Domain), fails email.mx.cert at severity high; found under no
// domain, at medium; the lab's shared MX host under an enforce domain
// passes.
func TestMXCertUnderTheLabsEnforcePolicyIsHigh(t *testing.T) {
	l := startLab(t, Config{cases: mtastsCases()})
	env, pol := l.Env(), l.Policy()
	bad := domainName("mtasts-enforce-bad-mx-cert", 1)
	tests := []struct {
		host, domain string
		outcome      check.Outcome
		sev          check.Severity
	}{
		{"mx." + bad, bad, check.Fail, check.High},
		{"mx." + bad, "", check.Fail, check.Medium},
		{MX1, domainName("mtasts-enforce", 1), check.Pass, check.Medium},
	}
	c := smtptls.Check()
	for _, tt := range tests {
		t.Run(tt.host+" under "+tt.domain, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ev, err := c.Collect(ctx, env, check.Asset{Kind: check.KindMail, Name: tt.host, Domain: tt.domain})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range c.Evaluate(ev, pol) {
				if f.CheckID != smtptls.MXCert {
					continue
				}
				if f.Outcome != tt.outcome || f.Severity != tt.sev {
					t.Fatalf("%s at %s (%s), want %s at %s", f.Outcome, f.Severity, f.Message, tt.outcome, tt.sev)
				}
				return
			}
			t.Fatal("no email.mx.cert finding")
		})
	}
}

// TestMTASTSCompleteStatesTheRulesOnOtherDomains: a receiving domain of
// another family that publishes nothing fails the record and TLS-RPT
// checks (policy and mode n/a); a parked domain is n/a; a domain that
// does not exist is unknown.
func TestMTASTSCompleteStatesTheRulesOnOtherDomains(t *testing.T) {
	var cs []Case
	for _, c := range cases() {
		switch c.Name {
		case "email-good", "parked-gov-bundle", "domain-nxdomain":
			cs = append(cs, c)
		}
	}
	cs = append(cs, mtastsCases()[0])
	l := startLab(t, Config{cases: cs})
	want := map[string]string{
		domainName("email-good", 1):        "fail n/a n/a fail",
		domainName("parked-gov-bundle", 1): "n/a n/a n/a n/a",
		domainName("domain-nxdomain", 1):   "unknown unknown unknown unknown",
		domainName("mtasts-enforce", 1):    "pass pass pass pass",
	}
	got := map[string][]string{}
	for _, e := range l.Truth() {
		for _, id := range MTASTSCheckIDs {
			if e.CheckID == id && e.Kind == check.KindDomain {
				got[e.Name] = append(got[e.Name], string(e.Outcome))
			}
		}
	}
	for d, w := range want {
		if g := strings.Join(got[d], " "); g != w {
			t.Errorf("%s: truth %q, want %q", d, g, w)
		}
	}
}
