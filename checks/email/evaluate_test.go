package email

import (
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
)

// Evaluate is pure: these tests build evidence by hand and judge it under
// different policies, as `posture reeval` would.

func worst(fs []check.Finding) map[string]check.Outcome {
	w := map[string]check.Outcome{}
	for _, f := range fs {
		w[f.CheckID] = check.Worst(w[f.CheckID], f.Outcome)
	}
	return w
}

var receiving = Lookup{Name: zone, Type: "MX", Rcode: "NOERROR", Answers: []string{"10 mx.example.nhs.uk."}}
var nullMX = Lookup{Name: zone, Type: "MX", Rcode: "NOERROR", Answers: []string{"0 ."}}
var mxTimeout = Lookup{Name: zone, Type: "MX", Error: "timeout", Class: "timeout"}

// spfEv builds SPF evidence for one record with the given expansion terms.
func spfEv(record string, mx Lookup, terms ...SPFTerm) SPFEvidence {
	return SPFEvidence{
		Domain: zone, TXT: Lookup{Name: zone, Type: "TXT", Rcode: "NOERROR", Answers: []string{record}, Size: 120},
		Records: []string{record}, MX: mx,
		Policy: &SPFNode{Domain: zone, Records: []string{record}, Terms: terms},
	}
}

func mech(q, name string) SPFTerm { return SPFTerm{Term: q + name, Name: name, Qualifier: q} }

// lookupTerms builds n a terms, the first void of them looking up a name
// that does not exist.
func lookupTerms(n int, void int) []SPFTerm {
	var out []SPFTerm
	for i := 0; i < n; i++ {
		out = append(out, aTerm("h.example.nhs.uk", i < void, i < void))
	}
	return out
}

// aTerm is an a term whose A and AAAA lookups are void or not.
func aTerm(host string, void4, void6 bool) SPFTerm {
	q := func(typ string, void bool) Lookup {
		l := Lookup{Name: host, Type: typ, Rcode: "NOERROR", Void: void}
		if !void {
			l.Answers = []string{map[string]string{"A": "192.0.2.1", "AAAA": "2001:db8::1"}[typ]}
		}
		return l
	}
	return SPFTerm{Term: "a:" + host, Name: "a", Qualifier: "+", Lookup: true, Target: host, Void: void4,
		Queries: []Lookup{q("A", void4), q("AAAA", void6)}}
}

func TestEvaluateSPF(t *testing.T) {
	s := Settings.Defaults()
	s.SPFSoftfailPass = false
	strictSoftfail := Settings.Set(check.DefaultPolicy(), s)
	s = Settings.Defaults()
	s.SPFMaxLookups, s.SPFMaxVoid, s.SPFMaxUDPBytes = 12, 3, 1000
	lenient := Settings.Set(check.DefaultPolicy(), s)

	redirectTo := func(child *SPFNode) SPFTerm {
		return SPFTerm{Term: "redirect=" + child.Domain, Name: "redirect", Modifier: true, Lookup: true, Target: child.Domain, Child: child}
	}
	tests := []struct {
		name string
		ev   SPFEvidence
		pol  *check.Policy
		want map[string]check.Outcome
	}{
		{"~all passes by default", spfEv("v=spf1 ip4:192.0.2.1 ~all", receiving, mech("+", "ip4"), mech("~", "all")), nil,
			map[string]check.Outcome{SPFAll: check.Pass}},
		{"~all warns when the policy wants -all", spfEv("v=spf1 ip4:192.0.2.1 ~all", receiving, mech("+", "ip4"), mech("~", "all")), strictSoftfail,
			map[string]check.Outcome{SPFAll: check.Warn}},
		{"?all fails", spfEv("v=spf1 ip4:192.0.2.1 ?all", receiving, mech("+", "ip4"), mech("?", "all")), nil,
			map[string]check.Outcome{SPFAll: check.Fail}},
		{"all before other mechanisms fails", spfEv("v=spf1 -all ip4:192.0.2.1", receiving, mech("-", "all"), mech("+", "ip4")), nil,
			map[string]check.Outcome{SPFAll: check.Fail, SPFSyntax: check.Warn}},
		{"parked and exactly -all passes", spfEv("v=spf1  -ALL", nullMX, mech("-", "all")), nil,
			map[string]check.Outcome{SPFAll: check.Pass}},
		{"parked with ~all fails", spfEv("v=spf1 ~all", nullMX, mech("~", "all")), nil,
			map[string]check.Outcome{SPFAll: check.Fail}},
		{"class unknown and the verdicts differ: unknown", spfEv("v=spf1 ~all", mxTimeout, mech("~", "all")), nil,
			map[string]check.Outcome{SPFAll: check.Unknown}},
		{"class unknown but a sender is named: sending", spfEv("v=spf1 ip4:192.0.2.1 ~all", mxTimeout, mech("+", "ip4"), mech("~", "all")), nil,
			map[string]check.Outcome{SPFAll: check.Pass}},
		{"10 lookups warn", spfEv("v=spf1 a -all", receiving, append(lookupTerms(10, 0), mech("-", "all"))...), nil,
			map[string]check.Outcome{SPFLookups: check.Warn}},
		{"11 lookups pass under a policy limit of 12", spfEv("v=spf1 a -all", receiving, append(lookupTerms(11, 0), mech("-", "all"))...), lenient,
			map[string]check.Outcome{SPFLookups: check.Pass}},
		{"2 void lookups pass", spfEv("v=spf1 a -all", receiving, append(lookupTerms(3, 2), mech("-", "all"))...), nil,
			map[string]check.Outcome{SPFVoid: check.Pass}},
		{"3 void lookups fail", spfEv("v=spf1 a -all", receiving, append(lookupTerms(3, 3), mech("-", "all"))...), nil,
			map[string]check.Outcome{SPFVoid: check.Fail}},
		{"3 void lookups pass under a policy limit of 3", spfEv("v=spf1 a -all", receiving, append(lookupTerms(3, 3), mech("-", "all"))...), lenient,
			map[string]check.Outcome{SPFVoid: check.Pass}},
		{"a capped walk over the limit fails", spfEv("v=spf1 a -all", receiving,
			append(lookupTerms(31, 0), SPFTerm{Term: "a:x", Name: "a", Lookup: true, Problem: probCap}, mech("-", "all"))...), nil,
			map[string]check.Outcome{SPFLookups: check.Fail}},
		{"a capped walk under the policy limit is unknown", spfEv("v=spf1 a -all", receiving,
			append(lookupTerms(2, 0), SPFTerm{Term: "include:x", Name: "include", Lookup: true, Problem: probCap}, mech("-", "all"))...), nil,
			map[string]check.Outcome{SPFLookups: check.Unknown, SPFVoid: check.Unknown}},
		{"a large TXT answer warns", func() SPFEvidence {
			e := spfEv("v=spf1 -all", receiving, mech("-", "all"))
			e.TXT.Size = 600
			return e
		}(), nil, map[string]check.Outcome{SPFSyntax: check.Warn}},
		{"a large TXT answer passes under a larger policy limit", func() SPFEvidence {
			e := spfEv("v=spf1 -all", receiving, mech("-", "all"))
			e.TXT.Size = 600
			return e
		}(), lenient, map[string]check.Outcome{SPFSyntax: check.Pass}},
		{"redirect chain to ~all", spfEv("v=spf1 redirect=b.example", receiving,
			redirectTo(&SPFNode{Domain: "b.example", Via: "redirect", Records: []string{"v=spf1 ~all"}, Terms: []SPFTerm{mech("~", "all")}})), nil,
			map[string]check.Outcome{SPFAll: check.Pass, SPFLookups: check.Pass}},
		{"redirect to a name without a record", spfEv("v=spf1 redirect=b.example", receiving,
			redirectTo(&SPFNode{Domain: "b.example", Via: "redirect", Problem: probNoRecord, Error: "no SPF record at b.example"})), nil,
			map[string]check.Outcome{SPFAll: check.NA, SPFRecord: check.Fail}},
		{"no SPF record", SPFEvidence{Domain: zone, TXT: Lookup{Answers: []string{"other"}}, MX: receiving}, nil,
			map[string]check.Outcome{SPFRecord: check.Fail, SPFAll: check.NA, SPFLookups: check.NA, SPFVoid: check.NA, SPFSyntax: check.NA}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pol
			if p == nil {
				p = check.DefaultPolicy()
			}
			fs := evaluateSPF(check.In[SPFEvidence]{Evidence: tc.ev, Policy: p})
			got := worst(fs)
			for id, w := range tc.want {
				if got[id] != w {
					t.Errorf("%s = %s, want %s: %s", id, got[id], w, message(fs, id))
				}
			}
			if len(got) != len(spfRules) {
				t.Errorf("findings for %d ids, want %d", len(got), len(spfRules))
			}
		})
	}
}

func dmarcEv(record string, mx Lookup) DMARCEvidence {
	return DMARCEvidence{
		Domain: zone, OrgDomain: zone, Applied: 0, MX: mx,
		Walk: []DMARCLevel{{Domain: zone, Lookup: Lookup{Answers: []string{record}}, Records: []string{record}}},
		TXT:  Lookup{Answers: []string{"v=spf1 ip4:192.0.2.1 -all"}},
	}
}

func TestEvaluateDMARC(t *testing.T) {
	s := Settings.Defaults()
	s.DMARCQuarantine = false
	noQuarantineWarn := Settings.Set(check.DefaultPolicy(), s)
	rua := "; rua=mailto:d@example.nhs.uk"
	parked := func(rec string) DMARCEvidence {
		e := dmarcEv(rec, nullMX)
		e.TXT = Lookup{Answers: []string{"v=spf1 -all"}}
		return e
	}
	withReports := func(rec string, ra ...ReportAuth) DMARCEvidence {
		e := dmarcEv(rec, receiving)
		e.Reports = ra
		return e
	}
	tests := []struct {
		name string
		ev   DMARCEvidence
		pol  *check.Policy
		want map[string]check.Outcome
	}{
		{"reject passes", dmarcEv("v=DMARC1; p=reject"+rua, receiving), nil,
			map[string]check.Outcome{DMARCRecord: check.Pass, DMARCPolicy: check.Pass, DMARCSPNP: check.Pass, DMARCScope: check.Pass, DMARCReporting: check.Pass}},
		{"quarantine warns", dmarcEv("v=DMARC1; p=quarantine"+rua, receiving), nil, map[string]check.Outcome{DMARCPolicy: check.Warn}},
		{"quarantine passes when the policy allows it", dmarcEv("v=DMARC1; p=quarantine"+rua, receiving), noQuarantineWarn, map[string]check.Outcome{DMARCPolicy: check.Pass}},
		{"none fails", dmarcEv("v=DMARC1; p=none"+rua, receiving), nil, map[string]check.Outcome{DMARCPolicy: check.Fail}},
		{"parked quarantine fails", parked("v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=s" + rua), nil, map[string]check.Outcome{DMARCPolicy: check.Fail}},
		{"parked reject with relaxed alignment warns", parked("v=DMARC1; p=reject" + rua), nil, map[string]check.Outcome{DMARCPolicy: check.Warn, DMARCSPNP: check.Pass}},
		{"parked GOV.UK record passes", parked("v=DMARC1;p=reject;sp=reject;adkim=s;aspf=s;fo=1" + rua), nil,
			map[string]check.Outcome{DMARCPolicy: check.Pass, DMARCSPNP: check.Pass}},
		{"parked sp=quarantine fails sp-np", parked("v=DMARC1;p=reject;sp=quarantine;adkim=s;aspf=s" + rua), nil, map[string]check.Outcome{DMARCSPNP: check.Fail}},
		{"np=none fails", dmarcEv("v=DMARC1; p=reject; np=none"+rua, receiving), nil, map[string]check.Outcome{DMARCSPNP: check.Fail}},
		{"pct=100 passes", dmarcEv("v=DMARC1; p=reject; pct=100"+rua, receiving), nil, map[string]check.Outcome{DMARCScope: check.Pass}},
		{"t=y warns", dmarcEv("v=DMARC1; p=reject; t=y"+rua, receiving), nil, map[string]check.Outcome{DMARCScope: check.Warn}},
		{"pct=0 warns", dmarcEv("v=DMARC1; p=reject; pct=0"+rua, receiving), nil, map[string]check.Outcome{DMARCScope: check.Warn}},
		{"too long fails the record", dmarcEv("v=DMARC1; p=reject"+rua+"; x="+strings.Repeat("a", 450), receiving), nil, map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Pass}},
		{"no rua fails", dmarcEv("v=DMARC1; p=reject", receiving), nil, map[string]check.Outcome{DMARCReporting: check.Fail}},
		{"https only fails", dmarcEv("v=DMARC1; p=reject; rua=https://r.example/x", receiving), nil, map[string]check.Outcome{DMARCReporting: check.Fail}},
		{"three URIs warn", dmarcEv("v=DMARC1; p=reject; rua=mailto:a@example.nhs.uk,mailto:b@example.nhs.uk,mailto:c@example.nhs.uk", receiving), nil,
			map[string]check.Outcome{DMARCReporting: check.Warn}},
		{"a duplicate URI warns", dmarcEv("v=DMARC1; p=reject; rua=mailto:a@example.nhs.uk,mailto:A@example.nhs.uk!10m", receiving), nil,
			map[string]check.Outcome{DMARCReporting: check.Warn}},
		{"NCSC address in ruf fails", dmarcEv("v=DMARC1; p=reject"+rua+"; ruf=mailto:dmarc-rua@dmarc.service.gov.uk", receiving), nil,
			map[string]check.Outcome{DMARCReporting: check.Fail}},
		{"NCSC legacy rua beside our own passes", dmarcEv("v=DMARC1; p=reject; rua=mailto:dmarc-rua@dmarc.service.gov.uk,mailto:d@example.nhs.uk", receiving), nil,
			map[string]check.Outcome{DMARCReporting: check.Pass}},
		{"authorised external destination passes", withReports("v=DMARC1; p=reject; rua=mailto:x@r.example", ReportAuth{Domain: "r.example", Authorised: true}), nil,
			map[string]check.Outcome{DMARCReporting: check.Pass}},
		{"unchecked external destination is unknown", withReports("v=DMARC1; p=reject; rua=mailto:x@r.example"), nil,
			map[string]check.Outcome{DMARCReporting: check.Unknown}},
		{"an invalid optional tag warns and the policy stands", dmarcEv("v=DMARC1; p=reject; pct=abc", receiving), nil,
			map[string]check.Outcome{DMARCRecord: check.Warn, DMARCPolicy: check.Pass, DMARCSPNP: check.Pass, DMARCScope: check.Pass, DMARCReporting: check.Fail}},
		{"an unusable policy with rua is p=none", dmarcEv("v=DMARC1; p=bogus"+rua, receiving), nil,
			map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Fail, DMARCSPNP: check.Pass, DMARCScope: check.Pass, DMARCReporting: check.Pass}},
		{"an unusable policy without rua applies nothing", dmarcEv("v=DMARC1; p=bogus", receiving), nil,
			map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.NA, DMARCSPNP: check.NA, DMARCScope: check.NA, DMARCReporting: check.NA}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pol
			if p == nil {
				p = check.DefaultPolicy()
			}
			fs := evaluateDMARC(check.In[DMARCEvidence]{Evidence: tc.ev, Policy: p})
			got := worst(fs)
			for id, w := range tc.want {
				if got[id] != w {
					t.Errorf("%s = %s, want %s: %s", id, got[id], w, message(fs, id))
				}
			}
			if len(got) != len(dmarcRules) {
				t.Errorf("findings for %d ids, want %d", len(got), len(dmarcRules))
			}
		})
	}
}

func TestParkedAlignmentIsALowSeverityPartOfPolicy(t *testing.T) {
	e := dmarcEv("v=DMARC1; p=reject; rua=mailto:d@example.nhs.uk", nullMX)
	e.TXT = Lookup{}
	fs := evaluateDMARC(check.In[DMARCEvidence]{Evidence: e, Policy: check.DefaultPolicy()})
	var found bool
	for _, f := range fs {
		if f.Rule == ruleDMARCAlignment {
			found = true
			if f.CheckID != DMARCPolicy || f.Outcome != check.Warn || f.Severity != check.Low {
				t.Errorf("alignment finding = %+v", f)
			}
		}
	}
	if !found {
		t.Fatal("no alignment finding on a parked domain")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name    string
		mx      Lookup
		spf     []string
		spfErr  string
		known   bool
		parked  bool
		receive bool
	}{
		{"mx receives", receiving, nil, "", true, false, true},
		{"null mx and -all is parked", nullMX, []string{"v=spf1 -all"}, "", true, true, false},
		{"no mx and a sender is sending", Lookup{Rcode: "NOERROR"}, []string{"v=spf1 include:x.example -all"}, "", true, false, false},
		{"no mx and no spf is parked", Lookup{Rcode: "NXDOMAIN"}, nil, "", true, true, false},
		{"mx timeout and -all is unknown", mxTimeout, []string{"v=spf1 -all"}, "", false, true, false},
		{"mx timeout and a sender is known sending", mxTimeout, []string{"v=spf1 a -all"}, "", true, false, false},
		{"txt timeout and null mx is unknown", nullMX, nil, "timeout", false, true, false},
		{"a broken record still shows intent to send", nullMX, []string{"v=spf1 bogus -all"}, "", true, false, false},
	}
	for _, tc := range tests {
		c := classify(tc.mx, tc.spf, tc.spfErr, "")
		if c.Known != tc.known || c.Parked() != tc.parked || c.Receiving != tc.receive {
			t.Errorf("%s: class = %+v", tc.name, c)
		}
	}
}
