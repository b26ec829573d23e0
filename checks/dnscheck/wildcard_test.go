package dnscheck

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
)

func TestEvaluateWildcardJudgesTheRandomName(t *testing.T) {
	nx := func(typ string) WildcardQuery { return WildcardQuery{Type: typ, Rcode: "NXDOMAIN"} }
	nodata := func(typ string) WildcardQuery { return WildcardQuery{Type: typ, Rcode: "NOERROR"} }
	with := func(typ, rtype, data string) WildcardQuery {
		return WildcardQuery{Type: typ, Rcode: "NOERROR", Records: []WildcardRecord{{Owner: "r.a.nhs.uk", Type: rtype, Data: data}}}
	}
	all := func(qs ...WildcardQuery) []WildcardQuery { return qs }
	tests := []struct {
		name   string
		domain string
		qs     []WildcardQuery
		want   check.Outcome
		sev    check.Severity
		msg    string
	}{
		{"nxdomain everywhere", "a.nhs.uk", all(nx("A"), nx("AAAA"), nx("CNAME"), nx("MX"), nx("TXT")), check.Pass, "", "no wildcard"},
		{"wildcard A under nhs.uk fails high", "a.nhs.uk", all(with("A", "A", "192.0.2.1"), nodata("AAAA"), nodata("CNAME"), nodata("MX"), nodata("TXT")), check.Fail, check.High, "HSCN DNS standards"},
		{"wildcard A elsewhere warns medium", "a.example.org", all(with("A", "A", "192.0.2.1"), nodata("AAAA")), check.Warn, check.Medium, "a wildcard answers"},
		{"wildcard CNAME", "a.nhs.uk", all(with("A", "CNAME", "lb.example.net"), with("CNAME", "CNAME", "lb.example.net")), check.Fail, check.High, "lb.example.net"},
		{"protective SPF TXT only is exempt", "a.nhs.uk", all(nodata("A"), nodata("MX"), with("TXT", "TXT", "v=spf1 -all")), check.Pass, "", "protective"},
		{"protective DKIM TXT only is exempt", "a.nhs.uk", all(nodata("A"), with("TXT", "TXT", "v=DKIM1; p=")), check.Pass, "", "protective"},
		{"protective TXT beside an MX is not", "a.nhs.uk", all(with("MX", "MX", "10 mx.a.nhs.uk."), with("TXT", "TXT", "v=spf1 -all")), check.Fail, check.High, "MX"},
		{"other TXT is a wildcard", "a.nhs.uk", all(with("TXT", "TXT", "v=spf1 include:x -all")), check.Fail, check.High, "include"},
		{"exists with none of the types", "a.nhs.uk", all(nodata("A"), nodata("AAAA"), nodata("CNAME"), nodata("MX"), nodata("TXT")), check.Warn, check.Medium, "none of the types asked"},
		{"a failed lookup with nothing else is unknown", "a.nhs.uk", all(nx("A"), WildcardQuery{Type: "AAAA", Error: "timeout", Class: "timeout"}), check.Unknown, "", "cannot be told"},
		{"a failed lookup beside a wildcard still fails", "a.nhs.uk", all(with("A", "A", "192.0.2.1"), WildcardQuery{Type: "AAAA", Error: "timeout", Class: "timeout"}), check.Fail, check.High, "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := WildcardEvidence{Domain: tt.domain, Label: "r", Name: "r." + tt.domain, Queries: tt.qs}
			fs := evaluateWildcard(check.In[WildcardEvidence]{Evidence: ev})
			if len(fs) != 1 || fs[0].Outcome != tt.want || (tt.sev != "" && fs[0].Severity != tt.sev) || !strings.Contains(fs[0].Message, tt.msg) {
				t.Fatalf("got %+v, want %s %s with %q", fs, tt.want, tt.sev, tt.msg)
			}
		})
	}
}

func TestProtectiveTXT(t *testing.T) {
	for s, want := range map[string]bool{
		"v=spf1 -all": true, "V=SPF1  -ALL": true, "v=DKIM1; p=": true, "v=DKIM1;p=": true, "v=DKIM1; k=rsa; p=": true, "p=": true,
		"v=spf1 ~all": false, "v=spf1 mx -all": false, "v=DKIM1; p=MIGf": false, "k=rsa; v=DKIM1; p=": false,
		"v=DKIM1; p=; p=": false, "hello": false, "": false, "v=DMARC1; p=reject": false,
	} {
		if got := ProtectiveTXT(s); got != want {
			t.Errorf("ProtectiveTXT(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestCollectWildcardAsksARandomName runs the collector against a
// loopback server with wildcards (RFC 4592 synthesis): the random label is
// recorded in the evidence, fresh each time, and every type is asked.
func TestCollectWildcardAsksARandomName(t *testing.T) {
	w := startDNS(t, []string{"uk."},
		soa("none.nhs.uk", 1),
		soa("wild.nhs.uk", 1), "*.wild.nhs.uk. 300 IN A 0.0.0.0", "www.wild.nhs.uk. 300 IN A 192.0.2.1",
		soa("spf.nhs.uk", 1), `*.spf.nhs.uk. 300 IN TXT "v=spf1 -all"`,
		soa("slow.nhs.uk", 1),
	)
	n := &hygieneNet{world: w}
	env := n.env()
	c := WildcardCheck()
	tests := []struct {
		domain string
		want   check.Outcome
		reason string
	}{
		{"none.nhs.uk", check.Pass, ""},
		{"wild.nhs.uk", check.Fail, ""},
		// A host that exists under the wildcard is the closest encloser of
		// names below it: *.wild.nhs.uk does not cover them (RFC 4592 §2.2.1).
		{"www.wild.nhs.uk", check.Pass, ""},
		{"spf.nhs.uk", check.Pass, ""},
		{"gone.nhs.uk", check.Unknown, string(check.ErrNoDomain)},
	}
	labels := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			ev, fs := collectOne(t, c, env, tt.domain)
			if len(fs) != 1 || fs[0].Outcome != tt.want || fs[0].Reason != tt.reason {
				t.Fatalf("got %+v (evidence %s)", fs, ev.Data)
			}
			if tt.reason != "" {
				return
			}
			var e WildcardEvidence
			if err := json.Unmarshal(ev.Data, &e); err != nil {
				t.Fatal(err)
			}
			if len(e.Label) != 32 || e.Name != e.Label+"."+tt.domain || labels[e.Label] || len(e.Queries) != 5 {
				t.Fatalf("evidence %+v: want a fresh 32-character label and 5 questions", e)
			}
			labels[e.Label] = true
		})
	}
	t.Run("a wildcard is judged even when other lookups time out", func(t *testing.T) {
		// The random name is not known in advance: a wildcard CNAME to a
		// dropped name makes the A, AAAA, MX and TXT lookups time out.
		if err := w.Add("*.slow.nhs.uk. 300 IN CNAME dropped.slow.nhs.uk."); err != nil {
			t.Fatal(err)
		}
		w.Drop("dropped.slow.nhs.uk.")
		_, fs := collectOne(t, c, env, "slow.nhs.uk")
		// The CNAME answers the CNAME question: a wildcard, whatever the rest.
		if fs[0].Outcome != check.Fail {
			t.Fatalf("got %+v", fs)
		}
	})
}
