package lab

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
	"github.com/nhsx/posture/checks/email"
)

// TestEmailCasesGroundTruth runs the SPF and DMARC checks against each email
// case served by a loopback DNS server and compares the worst outcome of
// every catalogue id with the case's Expect, both ways.
func TestEmailCasesGroundTruth(t *testing.T) {
	cases := emailCases()
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.Name] {
			t.Fatalf("duplicate case name %q", c.Name)
		}
		names[c.Name] = true
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			base := "lab-" + c.Name + ".nhs.uk"
			dom := c.Build(base)
			for _, r := range dom.Records {
				owner := strings.TrimSuffix(strings.Fields(r)[0], ".")
				if owner != base && !strings.HasSuffix(owner, "."+base) {
					t.Fatalf("record %q is outside %s", r, base)
				}
			}
			recs := dom.Records
			// As in the lab: a domain whose case sets no MX gets the
			// lab's shared MX hosts, which have an A record and no AAAA.
			if !dom.Absent && !hasMX(recs, dom.Name) {
				recs = append(recs, dom.Name+". 300 IN MX 10 "+MX1+".", dom.Name+". 300 IN MX 20 "+MX2+".")
			}
			recs = append(recs, MX1+". 300 IN A 127.1.0.3", MX2+". 300 IN A 127.1.0.4")
			recs = append(recs, sharedSPFRecords()...)
			// As in the lab, the server answers for all of nhs.uk, so the
			// DMARC walk's last name, _dmarc.nhs.uk, gets NXDOMAIN.
			srv, err := dnstest.Start([]string{"nhs.uk."}, recs...)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			srv.Drop(dom.Drop...)
			env := &check.Env{DNS: &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: 200 * time.Millisecond, Retries: 1}}
			asset := check.Asset{Kind: check.KindDomain, Name: dom.Name}

			got := map[string]check.Outcome{}
			for _, c := range []check.Check{email.SPF(), email.DMARC()} {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ev, _ := c.Collect(ctx, env, asset)
				cancel()
				for _, f := range c.Evaluate(ev, check.DefaultPolicy()) {
					if f.Asset.Kind != check.KindDomain || f.Asset.Name != dom.Name {
						t.Errorf("finding on %v, want the domain asset %s", f.Asset, dom.Name)
					}
					got[f.CheckID] = check.Worst(got[f.CheckID], f.Outcome)
					if f.Outcome == check.Fail && f.Remediation == "" {
						t.Errorf("%s fails with no remediation", f.CheckID)
					}
					if f.Message == "" || f.Rule == "" || len(f.Standards) == 0 {
						t.Errorf("%s: finding lacks message, rule or standards: %+v", f.CheckID, f)
					}
					t.Logf("%s %s [%s] %s", f.Outcome, f.CheckID, f.Rule, f.Message)
				}
			}
			want := map[string]check.Outcome{}
			for _, e := range dom.Expect {
				if e.Kind != check.KindDomain || e.Name != dom.Name {
					t.Errorf("expectation on %s %s, want the domain asset %s", e.Kind, e.Name, dom.Name)
				}
				want[e.CheckID] = e.Outcome
			}
			for _, id := range EmailCheckIDs {
				if _, ok := want[id]; !ok {
					t.Errorf("case states no outcome for %s", id)
				}
			}
			for id, w := range want {
				if got[id] != w {
					t.Errorf("%s = %q, want %q", id, got[id], w)
				}
			}
			for id, g := range got {
				if _, ok := want[id]; !ok {
					t.Errorf("unexpected %s = %q", id, g)
				}
			}
		})
	}
}

func hasMX(records []string, name string) bool {
	for _, r := range records {
		f := strings.Fields(r)
		if len(f) > 3 && strings.TrimSuffix(f[0], ".") == name && slices.Contains(f[1:4], "MX") {
			return true
		}
	}
	return false
}
