package email

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
)

const zone = "example.nhs.uk"

// serve starts a loopback DNS server for zones (zone by default) and
// returns an Env whose resolver asks it, and the server.
func serve(t *testing.T, zones []string, drop []string, records ...string) (*check.Env, *dnstest.Server) {
	t.Helper()
	if zones == nil {
		// nhs.uk too: the DMARC walk ends at the public suffix above the
		// organisational domain (_dmarc.nhs.uk), which must answer.
		zones = []string{zone, "nhs.uk"}
	}
	srv, err := dnstest.Start(zones, records...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.Drop(drop...)
	r := &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: 150 * time.Millisecond, Retries: -1}
	return &check.Env{DNS: r}, srv
}

func txt(owner, s string) string { return fmt.Sprintf(`%s. 300 IN TXT "%s"`, owner, s) }
func a(owner string) string      { return owner + ". 300 IN A 192.0.2.1" }

// dual gives owner an A and an AAAA record, so that it is void for no
// sender.
func dual(owner string) []string {
	return []string{a(owner), owner + ". 300 IN AAAA 2001:db8::1"}
}

func join(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// run collects and evaluates one check on the domain asset name, and
// returns the worst outcome per catalogue id, the findings and the typed
// evidence decoded from what would be stored.
func run[E any](t *testing.T, c check.Check, env *check.Env, name string, p *check.Policy) (map[string]check.Outcome, []check.Finding, E) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, _ := c.Collect(ctx, env, check.Asset{Kind: check.KindDomain, Name: name})
	var e E
	if len(ev.Data) > 0 {
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			t.Fatal(err)
		}
	}
	fs := c.Evaluate(ev, p)
	worst := map[string]check.Outcome{}
	for _, f := range fs {
		worst[f.CheckID] = check.Worst(worst[f.CheckID], f.Outcome)
	}
	return worst, fs, e
}

func message(fs []check.Finding, id string) string {
	var m []string
	for _, f := range fs {
		if f.CheckID == id {
			m = append(m, f.Message)
		}
	}
	return strings.Join(m, " | ")
}

func TestSPFWalk(t *testing.T) {
	d := zone
	tests := []struct {
		name    string
		records []string
		drop    []string
		want    map[string]check.Outcome
		lookups int // -1: do not check
		void    int
	}{
		{
			name: "eleven lookups through nested includes fail",
			records: join([]string{
				txt(d, "v=spf1 include:a._spf."+d+" include:b._spf."+d+" -all"),
				txt("a._spf."+d, "v=spf1 include:c._spf."+d+" a:h1."+d+" a:h2."+d+" a:h3."+d+" -all"),
				txt("c._spf."+d, "v=spf1 a:h4."+d+" a:h5."+d+" -all"),
				txt("b._spf."+d, "v=spf1 a:h6."+d+" a:h7."+d+" exists:h1."+d+" -all"),
			}, dual("h1."+d), dual("h2."+d), dual("h3."+d), dual("h4."+d), dual("h5."+d), dual("h6."+d), dual("h7."+d)),
			want:    map[string]check.Outcome{SPFLookups: check.Fail, SPFRecord: check.Pass, SPFVoid: check.Pass, SPFAll: check.Pass},
			lookups: 11,
		},
		{
			name: "an include loop is a permerror",
			records: []string{
				txt(d, "v=spf1 include:x._spf."+d+" -all"),
				txt("x._spf."+d, "v=spf1 include:"+d+" -all"),
			},
			want:    map[string]check.Outcome{SPFLookups: check.Fail, SPFRecord: check.Pass},
			lookups: 2,
		},
		{
			name:    "three void lookups fail",
			records: []string{txt(d, "v=spf1 a:gone1."+d+" mx:gone2."+d+" exists:gone3."+d+" -all")},
			want:    map[string]check.Outcome{SPFVoid: check.Fail, SPFLookups: check.Pass},
			lookups: 3, void: 3,
		},
		{
			name:    "a name that exists without the record type is a void lookup too",
			records: []string{txt(d, "v=spf1 a:txtonly."+d+" a:gone."+d+" -all"), txt("txtonly."+d, "x")},
			want:    map[string]check.Outcome{SPFVoid: check.Pass},
			lookups: 2, void: 2,
		},
		{
			name:    "redirect is followed for the terminal all and counted",
			records: []string{txt(d, "v=spf1 redirect=_spf."+d), txt("_spf."+d, "v=spf1 ip4:192.0.2.0/24 ~all")},
			want:    map[string]check.Outcome{SPFAll: check.Pass, SPFLookups: check.Pass, SPFRecord: check.Pass, SPFSyntax: check.Pass},
			lookups: 1,
		},
		{
			name:    "redirect to a record ending in +all fails the all rule",
			records: []string{txt(d, "v=spf1 redirect=_spf."+d), txt("_spf."+d, "v=spf1 +all")},
			want:    map[string]check.Outcome{SPFAll: check.Fail},
			lookups: 1,
		},
		{
			name:    "redirect next to all is ignored and not counted",
			records: []string{txt(d, "v=spf1 -all redirect=_spf."+d)},
			want:    map[string]check.Outcome{SPFAll: check.Pass, SPFLookups: check.Pass, SPFSyntax: check.Warn},
			lookups: 0,
		},
		{
			name:    "a timeout inside the walk makes the counts unknown, never fail",
			records: []string{txt(d, "v=spf1 include:slow."+d+" a:gone1."+d+" -all")},
			drop:    []string{"slow." + d},
			want:    map[string]check.Outcome{SPFLookups: check.Unknown, SPFVoid: check.Unknown, SPFRecord: check.Unknown, SPFAll: check.Pass, SPFSyntax: check.Pass},
			lookups: 2, void: 1,
		},
		{
			name:    "a timeout on the redirect makes the all rule unknown",
			records: []string{txt(d, "v=spf1 redirect=slow."+d)},
			drop:    []string{"slow." + d},
			want:    map[string]check.Outcome{SPFAll: check.Unknown, SPFLookups: check.Unknown},
			lookups: 1,
		},
		{
			name:    "a timeout after the limit is passed does not hide the fail",
			records: []string{txt(d, "v=spf1 a a a a a a a a a a a include:slow."+d+" -all"), a(d)},
			drop:    []string{"slow." + d},
			want:    map[string]check.Outcome{SPFLookups: check.Fail, SPFVoid: check.Unknown},
			lookups: 12,
		},
		{
			name:    "include of a name without SPF is a permerror on the record",
			records: []string{txt(d, "v=spf1 include:_spf."+d+" -all"), txt("_spf."+d, "not spf")},
			want:    map[string]check.Outcome{SPFRecord: check.Fail, SPFVoid: check.Pass},
			lookups: 1,
		},
		{
			name:    "include of a broken record is a permerror on the record",
			records: []string{txt(d, "v=spf1 include:_spf."+d+" -all"), txt("_spf."+d, "v=spf1 ipv4:192.0.2.1 -all")},
			want:    map[string]check.Outcome{SPFRecord: check.Fail},
			lookups: 1,
		},
		{
			name:    "an mx term with eleven hosts fails the lookup rule",
			records: append([]string{txt(d, "v=spf1 mx:big."+d+" -all")}, mxHosts("big."+d, 11)...),
			want:    map[string]check.Outcome{SPFLookups: check.Fail},
			lookups: 1,
		},
		{
			name:    "sender macros are counted but not followed",
			records: []string{txt(d, "v=spf1 exists:%{i}._spf.%{d} include:%{l}.x."+d+" include:_spf.%{d} -all"), txt("_spf."+d, "v=spf1 ip4:192.0.2.1 -all")},
			want:    map[string]check.Outcome{SPFLookups: check.Pass, SPFRecord: check.Pass, SPFVoid: check.Pass},
			lookups: 3,
		},
		{
			name:    "two SPF records fail and stop the walk",
			records: []string{txt(d, "v=spf1 -all"), txt(d, "v=spf1 ip4:192.0.2.1 -all")},
			want:    map[string]check.Outcome{SPFRecord: check.Fail, SPFAll: check.NA, SPFLookups: check.NA, SPFVoid: check.NA, SPFSyntax: check.NA},
			lookups: -1,
		},
		{
			name:    "a record that does not parse fails record and syntax",
			records: []string{txt(d, "v=spf1 ip4:300.1.1.1 -all")},
			want:    map[string]check.Outcome{SPFRecord: check.Fail, SPFSyntax: check.Fail, SPFAll: check.NA},
			lookups: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := serve(t, nil, tc.drop, append(tc.records, d+". 300 IN MX 10 mx."+d+".")...)
			got, fs, ev := run[SPFEvidence](t, SPF(), env, d, check.DefaultPolicy())
			for id, w := range tc.want {
				if got[id] != w {
					t.Errorf("%s = %s, want %s: %s", id, got[id], w, message(fs, id))
				}
			}
			if tc.lookups >= 0 {
				var tl spfTally
				if ev.Policy == nil {
					t.Fatal("no expansion stored")
				}
				tl.add(ev.Policy)
				if tl.lookups != tc.lookups || tl.void4 != tc.void {
					t.Errorf("tally = %d lookups, %d void; want %d, %d", tl.lookups, tl.void4, tc.lookups, tc.void)
				}
			}
		})
	}
}

func mxHosts(owner string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("%s. 300 IN MX %d mx%d.%s.", owner, i, i, zone))
	}
	return out
}

// A hostile record of 300 lookup terms and a long include chain cost a
// bounded number of queries and still fail.
func TestSPFWalkIsBounded(t *testing.T) {
	d := zone
	var many []string
	for i := 0; i < 300; i++ {
		many = append(many, fmt.Sprintf("a:h%d.%s", i, d))
	}
	recs := []string{txt(d, "v=spf1 include:c0."+d+" -all")}
	for i := 0; i < 100; i++ {
		recs = append(recs, txt(fmt.Sprintf("c%d.%s", i, d), fmt.Sprintf("v=spf1 include:c%d.%s -all", i+1, d)))
	}
	// One TXT RR of 300 terms, split into 255-byte strings.
	rec := "v=spf1 " + strings.Join(many, " ") + " -all"
	var parts []string
	for len(rec) > 255 {
		parts = append(parts, `"`+rec[:255]+`"`)
		rec = rec[255:]
	}
	parts = append(parts, `"`+rec+`"`)
	recs = append(recs, "wide."+d+". 300 IN TXT "+strings.Join(parts, " "))

	for _, name := range []string{d, "wide." + d} {
		t.Run(name, func(t *testing.T) {
			env, srv := serve(t, nil, nil, recs...)
			got, fs, ev := run[SPFEvidence](t, SPF(), env, name, check.DefaultPolicy())
			if got[SPFLookups] != check.Fail || !strings.Contains(message(fs, SPFLookups), "at least") {
				t.Errorf("lookups = %s: %s", got[SPFLookups], message(fs, SPFLookups))
			}
			if q := srv.Queries(); q > walkMaxQueries+4 {
				t.Errorf("%d queries, want at most %d", q, walkMaxQueries+4)
			}
			b, _ := json.Marshal(ev)
			if len(b) > 200_000 {
				t.Errorf("evidence is %d bytes", len(b))
			}
		})
	}
}

func TestSPFParkedDomain(t *testing.T) {
	d := zone
	tests := []struct {
		name    string
		records []string
		drop    []string
		want    check.Outcome
	}{
		{"exactly v=spf1 -all passes", []string{txt(d, "v=spf1 -all"), d + ". 300 IN MX 0 ."}, nil, check.Pass},
		{"~all fails on a parked domain", []string{txt(d, "v=spf1 ~all"), d + ". 300 IN MX 0 ."}, nil, check.Fail},
		{"-all with exp fails on a parked domain", []string{txt(d, "v=spf1 -all exp=x."+d)}, nil, check.Fail},
		{"~all passes on a receiving domain", []string{txt(d, "v=spf1 ~all"), d + ". 300 IN MX 10 mx." + d + "."}, nil, check.Pass},
		{"~all with the MX unknown is unknown", []string{txt(d, "v=spf1 ~all")}, nil, check.Unknown},
		{"-all with the MX unknown still passes", []string{txt(d, "v=spf1 -all")}, nil, check.Pass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var drop []string
			if strings.Contains(tc.name, "MX unknown") {
				drop = []string{d} // MX and TXT share the owner: serve TXT from a twin
			}
			env, srv := serve(t, nil, nil, tc.records...)
			if drop != nil {
				// Answer TXT, then drop the name so the MX lookup times out.
				if _, _, err := dnsq.Over(env.DNS).TXT(context.Background(), d); err != nil {
					t.Fatal(err)
				}
				srv.Drop(drop...)
			}
			got, fs, _ := run[SPFEvidence](t, SPF(), env, d, check.DefaultPolicy())
			if got[SPFAll] != tc.want {
				t.Errorf("%s = %s, want %s: %s", SPFAll, got[SPFAll], tc.want, message(fs, SPFAll))
			}
		})
	}
}

func TestDMARCDiscovery(t *testing.T) {
	d := zone
	rua := "; rua=mailto:dmarc@" + d
	tests := []struct {
		name    string
		asset   string
		records []string
		drop    []string
		want    map[string]check.Outcome
		applied string // domain whose record applies; "" none
	}{
		{
			name: "record at the domain", asset: d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=reject"+rua)},
			want:    map[string]check.Outcome{DMARCRecord: check.Pass, DMARCPolicy: check.Pass, DMARCReporting: check.Pass},
			applied: d,
		},
		{
			name: "tree walk finds the organisational domain's record", asset: "a.b.mail." + d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=reject"+rua), a("a.b.mail." + d)},
			want:    map[string]check.Outcome{DMARCRecord: check.Pass, DMARCPolicy: check.Pass},
			applied: d,
		},
		{
			name: "a nearer parent wins", asset: "a.mail." + d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=none"+rua), txt("_dmarc.mail."+d, "v=DMARC1; p=reject"+rua)},
			want:    map[string]check.Outcome{DMARCPolicy: check.Pass},
			applied: "mail." + d,
		},
		{
			name: "inherited sp=none is the policy in force", asset: "mail." + d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=reject; sp=none"+rua)},
			want:    map[string]check.Outcome{DMARCPolicy: check.Fail, DMARCSPNP: check.Fail},
			applied: d,
		},
		{
			name: "inherited sp=quarantine warns", asset: "mail." + d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=reject; sp=quarantine"+rua)},
			want:    map[string]check.Outcome{DMARCPolicy: check.Warn, DMARCSPNP: check.Pass},
			applied: d,
		},
		{
			name: "sp does not apply to the domain that publishes it", asset: d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=reject; sp=none"+rua)},
			want:    map[string]check.Outcome{DMARCPolicy: check.Pass, DMARCSPNP: check.Fail},
			applied: d,
		},
		{
			name: "the walk stops at the organisational domain", asset: d,
			records: []string{},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.NA},
		},
		{
			name: "two records at the domain are discarded and the parent applies", asset: "mail." + d,
			records: []string{txt("_dmarc.mail."+d, "v=DMARC1; p=none"), txt("_dmarc.mail."+d, "v=DMARC1; p=reject"), txt("_dmarc."+d, "v=DMARC1; p=quarantine"+rua)},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Warn},
			applied: d,
		},
		{
			name: "a version tag out of place is no record", asset: d,
			records: []string{txt("_dmarc."+d, "p=reject; v=DMARC1")},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.NA},
		},
		{
			name: "a timeout on the domain's _dmarc is unknown", asset: d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=reject"+rua)},
			drop:    []string{"_dmarc." + d},
			want:    map[string]check.Outcome{DMARCRecord: check.Unknown, DMARCPolicy: check.Unknown, DMARCSPNP: check.Unknown, DMARCScope: check.Unknown, DMARCReporting: check.Unknown},
		},
		{
			name: "a timeout on the parent's _dmarc is unknown", asset: "mail." + d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=reject"+rua)},
			drop:    []string{"_dmarc." + d},
			want:    map[string]check.Outcome{DMARCRecord: check.Unknown, DMARCPolicy: check.Unknown},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			recs := append(tc.records, txt(tc.asset, "v=spf1 ip4:192.0.2.1 -all"))
			env, _ := serve(t, nil, tc.drop, recs...)
			got, fs, ev := run[DMARCEvidence](t, DMARC(), env, tc.asset, check.DefaultPolicy())
			for id, w := range tc.want {
				if got[id] != w {
					t.Errorf("%s = %s, want %s: %s", id, got[id], w, message(fs, id))
				}
			}
			applied := ""
			if ev.Applied >= 0 && ev.Applied < len(ev.Walk) {
				applied = ev.Walk[ev.Applied].Domain
			}
			if tc.drop == nil && applied != tc.applied {
				t.Errorf("applied record from %q, want %q", applied, tc.applied)
			}
			for _, w := range ev.Walk {
				if w.Domain != d && !strings.HasSuffix(w.Domain, "."+d) && w.Domain != "nhs.uk" {
					t.Errorf("walk went above the organisational domain and its public suffix: %s", w.Domain)
				}
			}
		})
	}
}

func TestWalkNames(t *testing.T) {
	tests := []struct {
		domain, org, ps string
		want            []string
	}{
		{"example.nhs.uk", "example.nhs.uk", "nhs.uk", []string{"example.nhs.uk", "nhs.uk"}},
		{"a.b.example.nhs.uk", "example.nhs.uk", "nhs.uk", []string{"a.b.example.nhs.uk", "b.example.nhs.uk", "example.nhs.uk", "nhs.uk"}},
		{"nhs.uk", "nhs.uk", "", []string{"nhs.uk"}},
		{"other.org", "example.nhs.uk", "nhs.uk", []string{"other.org"}},
		{"1.2.3.4.5.6.7.8.9.10.x.org", "x.org", "org", []string{"1.2.3.4.5.6.7.8.9.10.x.org", "6.7.8.9.10.x.org", "7.8.9.10.x.org", "8.9.10.x.org", "9.10.x.org", "10.x.org", "x.org", "org"}},
	}
	for _, tc := range tests {
		if ps := publicSuffixAbove(tc.domain, OrgDomain(tc.domain)); tc.org == OrgDomain(tc.domain) && ps != tc.ps {
			t.Errorf("publicSuffixAbove(%s) = %q, want %q", tc.domain, ps, tc.ps)
		}
		got := walkNames(tc.domain, tc.org, tc.ps)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("walkNames(%s, %s, %s) = %q, want %q", tc.domain, tc.org, tc.ps, got, tc.want)
		}
		if len(got) > maxWalkNames {
			t.Errorf("walkNames(%s) asks %d names, limit %d", tc.domain, len(got), maxWalkNames)
		}
	}
	if OrgDomain("mail.example.nhs.uk") != "example.nhs.uk" || OrgDomain("nhs.uk") != "nhs.uk" {
		t.Error("nhs.uk is a public suffix: example.nhs.uk is an organisational domain")
	}
}

func TestDMARCExternalReportAuthorisation(t *testing.T) {
	d := zone
	rep := "reports.example"
	tests := []struct {
		name    string
		rua     string
		records []string
		drop    []string
		want    check.Outcome
	}{
		{"authorised external destination", "mailto:agg@" + rep, []string{txt(d+"._report._dmarc."+rep, "v=DMARC1")}, nil, check.Pass},
		{"unauthorised external destination only", "mailto:agg@" + rep, nil, nil, check.Fail},
		{"unauthorised external beside our own", "mailto:dmarc@" + d + ",mailto:agg@" + rep, nil, nil, check.Warn},
		{"authorisation lookup times out", "mailto:agg@" + rep, nil, []string{d + "._report._dmarc." + rep}, check.Unknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			recs := append(tc.records, txt("_dmarc."+d, "v=DMARC1; p=reject; rua="+tc.rua), txt(d, "v=spf1 -all"))
			env, _ := serve(t, []string{d, rep}, tc.drop, recs...)
			got, fs, _ := run[DMARCEvidence](t, DMARC(), env, d, check.DefaultPolicy())
			if got[DMARCReporting] != tc.want {
				t.Errorf("reporting = %s, want %s: %s", got[DMARCReporting], tc.want, message(fs, DMARCReporting))
			}
		})
	}
}

func TestFindingsCarryWhatTheReportNeeds(t *testing.T) {
	d := zone
	env, _ := serve(t, nil, nil, txt(d, "v=spf1 +all"), txt("_dmarc."+d, "v=DMARC1; p=none"))
	for _, c := range []check.Check{SPF(), DMARC()} {
		_, fs, _ := run[json.RawMessage](t, c, env, d, check.DefaultPolicy())
		if len(fs) == 0 {
			t.Fatalf("%s: no findings", c.ID())
		}
		for _, f := range fs {
			if !strings.HasPrefix(f.CheckID, c.ID()+".") || f.Rule == "" || f.Message == "" || len(f.Standards) == 0 || f.Severity == "" {
				t.Errorf("incomplete finding %+v", f)
			}
			if f.Outcome.Counts() && f.Remediation == "" {
				t.Errorf("%s %s has no remediation", f.CheckID, f.Outcome)
			}
			if strings.Contains(f.Rule, ".") {
				t.Errorf("rule %q is not a rule name", f.Rule)
			}
		}
	}
}

func TestUnknownFindingsKeepTheRuleName(t *testing.T) {
	env, _ := serve(t, nil, []string{zone})
	_, fs, _ := run[json.RawMessage](t, SPF(), env, zone, check.DefaultPolicy())
	for _, f := range fs {
		if f.Outcome != check.Unknown || f.Rule != ruleFor(f.CheckID) {
			t.Errorf("%s: outcome %s rule %q", f.CheckID, f.Outcome, f.Rule)
		}
	}
}

func ruleFor(id string) string {
	for _, m := range append(spfRules, dmarcRules...) {
		if m.ID == id {
			return m.Rule
		}
	}
	return ""
}
