package email

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
)

const daneSHA256 = "0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6"

func TestEvaluateDANE(t *testing.T) {
	tlsa := func(u, s, m uint8, d string) TLSA { return TLSA{Usage: u, Selector: s, MatchingType: m, Data: d} }
	for _, tc := range []struct {
		name string
		ev   DANEEvidence
		want check.Outcome
		says []string
	}{
		{"no TLSA is a note", DANEEvidence{Rcode: "NXDOMAIN"}, check.Pass, []string{"no DANE"}},
		{"DANE-EE passes", DANEEvidence{Record: []TLSA{tlsa(3, 1, 1, daneSHA256)}}, check.Pass,
			[]string{"3 1 1 0c72ac70b745ac19… (DANE-EE)", "not checked yet"}},
		{"DANE-TA passes", DANEEvidence{Record: []TLSA{tlsa(2, 0, 1, daneSHA256)}}, check.Pass, []string{"(DANE-TA)"}},
		{"PKIX-EE warns", DANEEvidence{Record: []TLSA{tlsa(1, 1, 1, daneSHA256)}}, check.Warn,
			[]string{"usage 1 (PKIX-EE) is unusable for SMTP"}},
		{"PKIX-TA warns", DANEEvidence{Record: []TLSA{tlsa(0, 0, 1, daneSHA256)}}, check.Warn, []string{"PKIX-TA"}},
		{"a digest of the wrong length warns", DANEEvidence{Record: []TLSA{tlsa(3, 1, 1, "abcd")}}, check.Warn,
			[]string{"digest of 4 hex digits"}},
		{"an unknown selector warns", DANEEvidence{Record: []TLSA{tlsa(3, 2, 1, daneSHA256)}}, check.Warn, []string{"selector 2"}},
		{"a usable record beside an unusable one passes with a note", DANEEvidence{Record: []TLSA{tlsa(3, 1, 1, daneSHA256), tlsa(1, 1, 1, daneSHA256)}},
			check.Pass, []string{"DANE-EE", "unusable beside them"}},
		{"the AD bit is reported, not trusted", DANEEvidence{AD: true, Record: []TLSA{tlsa(3, 1, 2, strings.Repeat("ab", 64))}}, check.Pass,
			[]string{"marked the answer DNSSEC-authenticated (AD)", "nor is DNSSEC validated here"}},
		{"a failed lookup is unknown", DANEEvidence{Error: "dns TLSA: servfail", Class: "dns"}, check.Unknown, []string{"failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.ev.Host, tc.ev.Name = "mx.trust.nhs.uk", "_25._tcp.mx.trust.nhs.uk"
			b, _ := json.Marshal(tc.ev)
			fs := DANECheck().Evaluate(check.Evidence{Data: b, Version: 1, Asset: check.Asset{Kind: check.KindMail, Name: tc.ev.Host}}, nil)
			if len(fs) != 1 || fs[0].CheckID != DANE || fs[0].Severity != check.Info {
				t.Fatalf("findings %+v", fs)
			}
			if fs[0].Outcome != tc.want {
				t.Errorf("%s %q, want %s", fs[0].Outcome, fs[0].Message, tc.want)
			}
			for _, w := range tc.says {
				if !strings.Contains(fs[0].Message, w) {
					t.Errorf("message %q does not say %q", fs[0].Message, w)
				}
			}
		})
	}
}

func TestCollectDANE(t *testing.T) {
	mx := "mx.trust.nhs.uk"
	env, _ := dkimServe(t, []string{"nhs.uk"}, []string{"_25._tcp.slow.trust.nhs.uk"},
		"_25._tcp."+mx+". 300 IN TLSA 3 1 1 "+daneSHA256,
		"_25._tcp."+mx+". 300 IN TLSA 1 0 1 "+daneSHA256)
	f, ev, _ := dkimRun[DANEEvidence](t, DANECheck(), env, check.Asset{Kind: check.KindMail, Name: mx})
	if f.Outcome != check.Pass || len(ev.Record) != 2 || ev.Record[0].Data != daneSHA256 {
		t.Errorf("%s %q, evidence %+v", f.Outcome, f.Message, ev)
	}
	f, _, _ = dkimRun[DANEEvidence](t, DANECheck(), env, check.Asset{Kind: check.KindMail, Name: "other.trust.nhs.uk"})
	if f.Outcome != check.Pass || !strings.Contains(f.Message, "no DANE") {
		t.Errorf("no TLSA: %s %q", f.Outcome, f.Message)
	}
	f, _, _ = dkimRun[DANEEvidence](t, DANECheck(), env, check.Asset{Kind: check.KindMail, Name: "slow.trust.nhs.uk"})
	if f.Outcome != check.Unknown || f.Reason != "timeout" {
		t.Errorf("timeout: %s %s %q", f.Outcome, f.Reason, f.Message)
	}
}
