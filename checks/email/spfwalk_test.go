package email

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// spfCase is one SPF scenario served by the loopback DNS server.
type spfCase struct {
	name    string
	records []string
	drop    []string
	// servfail names whose AAAA lookups answer SERVFAIL.
	servfail []string
	want     map[string]check.Outcome
	says     map[string]string // catalogue id → text its message must hold
	lookups  int
	void     int // for a sender over IPv4
	void6    int
}

// failAAAA answers SERVFAIL to AAAA queries for some names and passes the
// rest to the loopback server.
type failAAAA struct {
	x     check.Resolver
	names []string
}

func (f failAAAA) Exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	for _, n := range f.names {
		if qtype == dns.TypeAAAA && dns.CanonicalName(name) == dns.CanonicalName(n) {
			return nil, &dnsq.Error{Name: name, Type: "AAAA", Kind: "servfail"}
		}
	}
	return f.x.Exchange(ctx, name, qtype)
}

func runSPFCases(t *testing.T, tests []spfCase) {
	t.Helper()
	d := zone
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := serve(t, nil, tc.drop, append(tc.records, d+". 300 IN MX 10 mx."+d+".")...)
			if len(tc.servfail) > 0 {
				env.DNS = failAAAA{x: env.DNS, names: tc.servfail}
			}
			got, fs, ev := run[SPFEvidence](t, SPF(), env, d, check.DefaultPolicy())
			for _, f := range fs {
				t.Logf("%s %s: %s", f.Outcome, f.CheckID, f.Message)
			}
			for id, w := range tc.want {
				if got[id] != w {
					t.Errorf("%s = %s, want %s: %s", id, got[id], w, message(fs, id))
				}
			}
			for id, text := range tc.says {
				if m := message(fs, id); !strings.Contains(m, text) {
					t.Errorf("%s says %q, want it to say %q", id, m, text)
				}
			}
			if ev.Policy == nil {
				t.Fatal("no expansion stored")
			}
			var tl spfTally
			tl.add(ev.Policy)
			if tl.lookups != tc.lookups || tl.void4 != tc.void || tl.void6 != tc.void6 {
				t.Errorf("tally = %d lookups, %d void (IPv4), %d void (IPv6); want %d, %d, %d", tl.lookups, tl.void4, tl.void6, tc.lookups, tc.void, tc.void6)
			}
		})
	}
}

// includes returns n include targets under d, each with two more lookups.
func includes(d string, n int) (terms string, records []string) {
	var ts []string
	for i := 1; i <= n; i++ {
		inc := fmt.Sprintf("i%d._spf.%s", i, d)
		ts = append(ts, "include:"+inc)
		records = append(records, txt(inc, fmt.Sprintf("v=spf1 a:x%d.%s mx:x%d.%s -all", i, d, i, d)))
	}
	return strings.Join(ts, " "), records
}

// RFC 7208 §5.1: mechanisms after all are never tested, so their lookups
// never happen and count toward neither the 10-lookup nor the void limit.
// That all is not last stays a finding of its own (email.spf.all fails,
// email.spf.syntax warns). RFC 7208 §6.1: redirect is ignored when the
// record has an all anywhere.
func TestSPFTermsAfterAllAreNotEvaluated(t *testing.T) {
	d := zone
	six, sixRecords := includes(d, 6)
	runSPFCases(t, []spfCase{
		{
			name:    "six includes after -all are not counted",
			records: append([]string{txt(d, "v=spf1 ip4:192.0.2.1 -all "+six)}, sixRecords...),
			want:    map[string]check.Outcome{SPFLookups: check.Pass, SPFVoid: check.Pass, SPFRecord: check.Pass, SPFAll: check.Fail, SPFSyntax: check.Warn},
			says:    map[string]string{SPFLookups: "6 mechanisms after all are never evaluated and not counted", SPFAll: "not the last mechanism"},
		},
		{
			name:    "void lookups after all are not counted",
			records: []string{txt(d, "v=spf1 ip4:192.0.2.1 ~all a:gone1."+d+" a:gone2."+d+" mx:gone3."+d+" exists:gone4."+d)},
			want:    map[string]check.Outcome{SPFVoid: check.Pass, SPFLookups: check.Pass, SPFAll: check.Fail},
		},
		{
			name: "an include's own mechanisms after all are not counted",
			records: append([]string{
				txt(d, "v=spf1 include:inc."+d+" -all"),
				txt("inc."+d, "v=spf1 ip4:192.0.2.2 -all "+six),
			}, sixRecords...),
			want:    map[string]check.Outcome{SPFLookups: check.Pass, SPFAll: check.Pass},
			lookups: 1,
		},
		{
			name:    "mechanisms before all still count",
			records: append(append([]string{txt(d, "v=spf1 "+six+" -all include:late."+d)}, sixRecords...), dual("x1."+d)...),
			want:    map[string]check.Outcome{SPFLookups: check.Fail},
			says:    map[string]string{SPFLookups: "18 DNS lookups"},
			lookups: 18, void: 11, void6: 11,
		},
		{
			name:    "redirect before all in the text is ignored too",
			records: []string{txt(d, "v=spf1 redirect=_spf."+d+" ip4:192.0.2.1 -all"), txt("_spf."+d, "v=spf1 +all")},
			want:    map[string]check.Outcome{SPFLookups: check.Pass, SPFAll: check.Pass, SPFSyntax: check.Warn},
		},
	})
}

// RFC 7208 §4.6.4 and §5.3–§5.4: a receiver looks up A for a sender over
// IPv4 and AAAA for one over IPv6, and a void lookup is an empty or
// NXDOMAIN answer for the type asked. An AAAA that fails does not make an
// a term temperror when its A answers: the lookup count never depends on
// it, and neither does the IPv4 void count. The loopback server drops the
// AAAA of h1 only (h1 has an A record and, against the DNS rules but as
// dnstest allows, a CNAME to a dropped name that it follows only for the
// other types).
func TestSPFAddressLookupsAreJudgedPerFamily(t *testing.T) {
	d := zone
	aaaaTimesOut := func(host string) []string {
		return []string{a(host), host + ". 300 IN CNAME slow." + d + "."}
	}
	aTimesOut := func(host string) []string {
		return []string{host + ". 300 IN AAAA 2001:db8::1", host + ". 300 IN CNAME slow." + d + "."}
	}
	v6only := func(host string) string { return host + ". 300 IN AAAA 2001:db8::2" }
	runSPFCases(t, []spfCase{
		{
			name:    "an a term whose AAAA times out is settled by its A",
			records: append([]string{txt(d, "v=spf1 a:h1."+d+" -all")}, aaaaTimesOut("h1."+d)...),
			drop:    []string{"slow." + d},
			want:    map[string]check.Outcome{SPFRecord: check.Pass, SPFLookups: check.Pass, SPFVoid: check.Pass, SPFAll: check.Pass},
			says:    map[string]string{SPFVoid: "for a sender connecting over IPv6 some lookups could not tell"},
			lookups: 1,
		},
		{
			name:     "an a term whose AAAA answers SERVFAIL is settled by its A",
			records:  []string{txt(d, "v=spf1 a:h1."+d+" -all"), a("h1." + d)},
			servfail: []string{"h1." + d},
			want:     map[string]check.Outcome{SPFRecord: check.Pass, SPFLookups: check.Pass, SPFVoid: check.Pass},
			lookups:  1,
		},
		{
			name:    "an a term whose A times out leaves the void count unknown, not the lookup count",
			records: append([]string{txt(d, "v=spf1 a:h1."+d+" -all")}, aTimesOut("h1."+d)...),
			drop:    []string{"slow." + d},
			want:    map[string]check.Outcome{SPFRecord: check.Pass, SPFLookups: check.Pass, SPFVoid: check.Unknown},
			says:    map[string]string{SPFVoid: "A h1." + d},
			lookups: 1,
		},
		{
			name: "a void answer settles an mx term even when another host's lookup fails",
			records: []string{txt(d, "v=spf1 mx:m."+d+" a:gone1."+d+" a:gone2."+d+" -all"),
				"m." + d + ". 300 IN MX 10 mx1.m." + d + ".", "m." + d + ". 300 IN MX 20 mx2.m." + d + ".",
				txt("mx1.m."+d, "no address"), "mx2.m." + d + ". 300 IN CNAME slow." + d + "."},
			drop:    []string{"slow." + d},
			want:    map[string]check.Outcome{SPFVoid: check.Fail, SPFLookups: check.Pass},
			lookups: 3, void: 3, void6: 3,
		},
		{
			name: "names with only AAAA records are void lookups for IPv4 senders",
			records: []string{txt(d, "v=spf1 a:v1."+d+" a:v2."+d+" a:v3."+d+" ip4:192.0.2.1 -all"),
				v6only("v1." + d), v6only("v2." + d), v6only("v3." + d)},
			want:    map[string]check.Outcome{SPFVoid: check.Fail},
			says:    map[string]string{SPFVoid: "for a sender connecting over IPv4, 3 SPF terms look up names that do not exist or have no records of the type asked (0 for one connecting over IPv6)"},
			lookups: 3, void: 3,
		},
		{
			name:    "names with only A records are void lookups for IPv6 senders",
			records: []string{txt(d, "v=spf1 a:h1."+d+" a:h2."+d+" a:h3."+d+" -all"), a("h1." + d), a("h2." + d), a("h3." + d)},
			want:    map[string]check.Outcome{SPFVoid: check.Warn, SPFLookups: check.Pass},
			says:    map[string]string{SPFVoid: "3 for one connecting over IPv6"},
			lookups: 3, void6: 3,
		},
		{
			name: "an mx term looks up its hosts' addresses",
			records: join([]string{txt(d, "v=spf1 mx:m."+d+" a:gone1."+d+" a:gone2."+d+" -all"),
				"m." + d + ". 300 IN MX 10 mx1.m." + d + ".", "m." + d + ". 300 IN MX 20 mx2.m." + d + "."},
				[]string{txt("mx1.m."+d, "no address"), txt("mx2.m."+d, "no address")}),
			want:    map[string]check.Outcome{SPFVoid: check.Fail},
			lookups: 3, void: 3, void6: 3,
		},
		{
			name: "an mx host whose AAAA times out is settled by its A",
			records: join([]string{txt(d, "v=spf1 mx:m."+d+" -all"), "m." + d + ". 300 IN MX 10 mx1.m." + d + "."},
				aaaaTimesOut("mx1.m."+d)),
			drop:    []string{"slow." + d},
			want:    map[string]check.Outcome{SPFRecord: check.Pass, SPFLookups: check.Pass, SPFVoid: check.Pass},
			lookups: 1,
		},
		{
			name:    "an mx term whose MX lookup times out leaves the lookup count unknown",
			records: []string{txt(d, "v=spf1 mx:m."+d+" -all"), "m." + d + ". 300 IN CNAME slow." + d + "."},
			drop:    []string{"slow." + d},
			want:    map[string]check.Outcome{SPFRecord: check.Pass, SPFLookups: check.Unknown, SPFVoid: check.Unknown},
			lookups: 1,
		},
		{
			name:    "null MX hosts are not looked up",
			records: []string{txt(d, "v=spf1 mx:parked."+d+" -all"), "parked." + d + ". 300 IN MX 0 ."},
			want:    map[string]check.Outcome{SPFVoid: check.Pass},
			lookups: 1,
		},
	})
}

// Version 1 evidence is upgraded: an a term it marked temperror because
// its AAAA failed is judged on its A; an mx term whose hosts it did not
// look up leaves the void count unknown; mechanisms after all that it
// followed are not counted.
func TestSPFVersion1EvidenceIsUpgraded(t *testing.T) {
	aaaaFailed := aTerm("h1.example.nhs.uk", false, false)
	aaaaFailed.Queries[1] = Lookup{Name: "h1.example.nhs.uk", Type: "AAAA", Error: "dns AAAA h1: servfail", Class: "dns"}
	aaaaFailed.Problem, aaaaFailed.Error = probTemp, "dns AAAA h1: servfail"
	mx := SPFTerm{Term: "mx", Name: "mx", Qualifier: "+", Lookup: true, MXHosts: 2,
		Queries: []Lookup{{Name: zone, Type: "MX", Rcode: "NOERROR", Answers: []string{"10 a.example.nhs.uk.", "20 b.example.nhs.uk."}}}}
	afterAll := lookupTerms(12, 3)
	tests := []struct {
		name  string
		terms []SPFTerm
		want  map[string]check.Outcome
	}{
		{"an a term marked temperror for its AAAA", []SPFTerm{aaaaFailed, mech("-", "all")},
			map[string]check.Outcome{SPFRecord: check.Pass, SPFLookups: check.Pass, SPFVoid: check.Pass}},
		{"an mx term without host lookups", []SPFTerm{mx, mech("-", "all")},
			map[string]check.Outcome{SPFLookups: check.Pass, SPFVoid: check.Unknown}},
		{"lookups after all", append([]SPFTerm{mech("-", "all")}, afterAll...),
			map[string]check.Outcome{SPFLookups: check.Pass, SPFVoid: check.Pass, SPFAll: check.Fail}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := spfEv("v=spf1 a mx -all", receiving, tc.terms...)
			fs := SPF().Evaluate(encode(t, "email.spf", 1, ev), check.DefaultPolicy())
			got := worst(fs)
			for id, w := range tc.want {
				if got[id] != w {
					t.Errorf("%s = %s, want %s: %s", id, got[id], w, message(fs, id))
				}
			}
		})
	}
}

func encode(t *testing.T, id string, version int, ev any) check.Evidence {
	t.Helper()
	b, err := jsonMarshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return check.Evidence{CheckID: id, Asset: check.Asset{Kind: check.KindDomain, Name: zone}, Version: version, CollectedAt: time.Now(), Data: b}
}

var jsonMarshal = json.Marshal
