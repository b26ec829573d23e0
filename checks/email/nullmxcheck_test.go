package email

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
)

func TestEvaluateNullMX(t *testing.T) {
	mx := func(answers ...string) Lookup {
		return Lookup{Name: dkimZone, Type: "MX", Rcode: "NOERROR", Answers: answers, Void: len(answers) == 0}
	}
	txt := func(answers ...string) Lookup {
		return Lookup{Name: dkimZone, Type: "TXT", Rcode: "NOERROR", Answers: answers}
	}
	timeout := func(typ string) Lookup {
		return Lookup{Name: dkimZone, Type: typ, Error: "dns " + typ + ": timeout", Class: "timeout"}
	}
	parked := txt("v=spf1 -all")
	for _, tc := range []struct {
		name    string
		mx, txt Lookup
		want    check.Outcome
		says    string
	}{
		{"a parked domain with the null MX passes", mx("0 ."), parked, check.Pass, "null MX (0 .)"},
		{"a parked domain without MX fails", mx(), parked, check.Fail, "without an MX record"},
		{"a parked domain without SPF or MX fails", mx(), txt("some-verification=1"), check.Fail, "without an MX record"},
		{"a null exchange with another preference fails", mx("10 ."), parked, check.Fail, `"10 ." is not the null MX`},
		{"two null-looking MX records fail", mx("0 .", "10 ."), parked, check.Fail, "2 MX records (0 ., 10 .)"},
		{"a receiving domain is n/a", mx("10 mx.trust.nhs.uk."), parked, check.NA, "receives or sends mail"},
		{"a sending domain with a null MX is n/a", mx("0 ."), txt("v=spf1 include:spf.protection.outlook.com -all"), check.NA, "receives or sends"},
		{"a failed MX lookup is unknown", timeout("MX"), parked, check.Unknown, "MX lookup failed"},
		{"a null MX with the SPF lookup failed is unknown", mx("0 ."), timeout("TXT"), check.Unknown, "could not tell whether the domain sends"},
		{"no MX with the SPF lookup failed is unknown", mx(), timeout("TXT"), check.Unknown, "could not tell"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := json.Marshal(NullMXEvidence{Domain: dkimZone, MX: tc.mx, TXT: tc.txt})
			fs := NullMX().Evaluate(check.Evidence{Data: b, Version: 1, Asset: check.Asset{Kind: check.KindDomain, Name: dkimZone}}, nil)
			if len(fs) != 1 || fs[0].CheckID != ParkedNullMX {
				t.Fatalf("findings %+v", fs)
			}
			f := fs[0]
			if f.Outcome != tc.want || !strings.Contains(f.Message, tc.says) {
				t.Errorf("%s %q; want %s saying %q", f.Outcome, f.Message, tc.want, tc.says)
			}
			if tc.want == check.Unknown && f.Reason != "timeout" {
				t.Errorf("reason %q", f.Reason)
			}
		})
	}
}

func TestCollectNullMX(t *testing.T) {
	d := dkimZone
	a := check.Asset{Kind: check.KindDomain, Name: d}
	for _, tc := range []struct {
		name    string
		records []string
		want    check.Outcome
	}{
		{"null MX", []string{d + ". 300 IN MX 0 .", dkimTXT(d, "v=spf1 -all")}, check.Pass},
		{"parked without MX", []string{dkimTXT(d, "v=spf1 -all")}, check.Fail},
		{"receiving", []string{d + ". 300 IN MX 10 mx." + d + ".", dkimTXT(d, "v=spf1 -all")}, check.NA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _ := dkimServe(t, []string{d}, nil, tc.records...)
			f, ev, _ := dkimRun[NullMXEvidence](t, NullMX(), env, a)
			if f.Outcome != tc.want {
				t.Errorf("%s %q, want %s (evidence %+v)", f.Outcome, f.Message, tc.want, ev)
			}
		})
	}
	t.Run("a domain that does not exist is unknown (nxdomain)", func(t *testing.T) {
		env, _ := dkimServe(t, []string{"nhs.uk"}, nil)
		f, _, _ := dkimRun[NullMXEvidence](t, NullMX(), env, a)
		if f.Outcome != check.Unknown || f.Reason != string(check.ErrNoDomain) {
			t.Errorf("%s %s %q", f.Outcome, f.Reason, f.Message)
		}
	})
}
