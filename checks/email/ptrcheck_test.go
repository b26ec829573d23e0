package email

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
)

func TestCollectAndEvaluatePTR(t *testing.T) {
	zones := []string{"nhs.uk", "in-addr.arpa", "ip6.arpa"}
	mx := "mx.trust.nhs.uk"
	for _, tc := range []struct {
		name    string
		records []string
		drop    []string
		want    check.Outcome
		reason  string
		says    []string
	}{
		{"a PTR that resolves back passes", []string{
			mx + ". 300 IN A 192.0.2.25",
			"25.2.0.192.in-addr.arpa. 300 IN PTR " + mx + ".",
		}, nil, check.Pass, "", []string{"192.0.2.25 has PTR mx.trust.nhs.uk, which resolves back to it"}},
		{"a PTR to another name of the same address passes", []string{
			mx + ". 300 IN CNAME smtp.provider.nhs.uk.",
			"smtp.provider.nhs.uk. 300 IN A 192.0.2.26",
			"26.2.0.192.in-addr.arpa. 300 IN PTR smtp.provider.nhs.uk.",
		}, nil, check.Pass, "", []string{"PTR smtp.provider.nhs.uk"}},
		{"IPv6 addresses are followed back with AAAA", []string{
			mx + ". 300 IN AAAA 2001:db8::25",
			"5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR " + mx + ".",
		}, nil, check.Pass, "", []string{"2001:db8::25 has PTR"}},
		{"no PTR fails", []string{mx + ". 300 IN A 192.0.2.27"}, nil, check.Fail, "",
			[]string{"192.0.2.27 has no PTR record (27.2.0.192.in-addr.arpa does not exist)"}},
		{"a PTR that does not resolve back fails", []string{
			mx + ". 300 IN A 192.0.2.28",
			"28.2.0.192.in-addr.arpa. 300 IN PTR host-192-0-2-28.isp.nhs.uk.",
		}, nil, check.Fail, "", []string{"host-192-0-2-28.isp.nhs.uk (no A record)", "does not resolve back"}},
		{"a PTR whose name resolves elsewhere fails", []string{
			mx + ". 300 IN A 192.0.2.29",
			"29.2.0.192.in-addr.arpa. 300 IN PTR other.trust.nhs.uk.",
			"other.trust.nhs.uk. 300 IN A 192.0.2.30",
		}, nil, check.Fail, "", []string{"other.trust.nhs.uk (resolves to 192.0.2.30)"}},
		{"one address of two without PTR fails", []string{
			mx + ". 300 IN A 192.0.2.25", mx + ". 300 IN A 192.0.2.31",
			"25.2.0.192.in-addr.arpa. 300 IN PTR " + mx + ".",
		}, nil, check.Fail, "", []string{"192.0.2.25 has PTR", "192.0.2.31 has no PTR"}},
		{"a PTR lookup that times out is unknown", []string{mx + ". 300 IN A 192.0.2.32"},
			[]string{"32.2.0.192.in-addr.arpa"}, check.Unknown, "timeout", []string{"the PTR lookup failed"}},
		{"a forward lookup that times out is unknown", []string{
			mx + ". 300 IN A 192.0.2.33",
			"33.2.0.192.in-addr.arpa. 300 IN PTR slow.trust.nhs.uk.",
		}, []string{"slow.trust.nhs.uk"}, check.Unknown, "timeout", []string{"not confirmed"}},
		{"a host without address is n/a", nil, nil, check.NA, "", []string{"has no address"}},
		{"an address lookup that times out is unknown", nil, []string{mx}, check.Unknown, "timeout", []string{"lookup of mx.trust.nhs.uk failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _ := dkimServe(t, zones, tc.drop, tc.records...)
			f, _, _ := dkimRun[PTREvidence](t, PTR(), env, check.Asset{Kind: check.KindMail, Name: mx})
			if f.CheckID != MXPTR || f.Outcome != tc.want || f.Reason != tc.reason {
				t.Errorf("%s %s (reason %q): %q; want %s (reason %q)", f.CheckID, f.Outcome, f.Reason, f.Message, tc.want, tc.reason)
			}
			for _, w := range tc.says {
				if !strings.Contains(f.Message, w) {
					t.Errorf("message %q does not say %q", f.Message, w)
				}
			}
			if f.Severity != check.Low {
				t.Errorf("severity %s", f.Severity)
			}
		})
	}
}

func TestPTRChecksAtMostEightAddresses(t *testing.T) {
	mx := "mx.trust.nhs.uk"
	var recs []string
	for i := 1; i <= 10; i++ {
		recs = append(recs, fmt.Sprintf("%s. 300 IN A 192.0.2.%d", mx, i))
	}
	env, _ := dkimServe(t, []string{"nhs.uk", "in-addr.arpa"}, nil, recs...)
	f, ev, _ := dkimRun[PTREvidence](t, PTR(), env, check.Asset{Kind: check.KindMail, Name: mx})
	if len(ev.Addrs) != ptrMaxAddrs || ev.Skipped != 2 || !strings.Contains(f.Message, "2 more addresses not checked") {
		t.Errorf("%d addresses, %d skipped: %q", len(ev.Addrs), ev.Skipped, f.Message)
	}
}
