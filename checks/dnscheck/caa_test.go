package dnscheck

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
)

func lookup(name string, recs ...CAARecord) CAALookup {
	return CAALookup{Name: name, Rcode: "NOERROR", Records: recs}
}

func issueOf(v string) CAARecord { return CAARecord{Tag: "issue", Value: v} }

func TestEvaluateCAAJudgesTheRelevantRecordSet(t *testing.T) {
	tests := []struct {
		name    string
		lookups []CAALookup
		want    check.Outcome
		msg     string
	}{
		{"one CA named", []CAALookup{lookup("a.nhs.uk", issueOf("letsencrypt.org"))}, check.Pass, "allow issuance by letsencrypt.org"},
		{"issue with parameters", []CAALookup{lookup("a.nhs.uk", issueOf("digicert.com; cansignhttpexchanges=yes"))}, check.Pass, "digicert.com"},
		{"no CA at all is a deliberate restriction", []CAALookup{lookup("a.nhs.uk", issueOf(";"))}, check.Pass, "no CA"},
		{"inherited from the parent", []CAALookup{lookup("www.a.nhs.uk"), lookup("a.nhs.uk", issueOf("sectigo.com"))}, check.Pass, "inherited by www.a.nhs.uk"},
		{"wildcard issuers listed", []CAALookup{lookup("a.nhs.uk", issueOf("sectigo.com"), CAARecord{Tag: "issuewild", Value: ";"})}, check.Pass, "wildcard certificates by no CA"},
		{"none anywhere warns", []CAALookup{lookup("a.nhs.uk"), lookup("nhs.uk"), lookup("uk")}, check.Warn, "any CA may issue"},
		{"only iodef warns", []CAALookup{lookup("a.nhs.uk", CAARecord{Tag: "iodef", Value: "mailto:x@a.nhs.uk"})}, check.Warn, "no issue property"},
		{"only issuewild warns", []CAALookup{lookup("a.nhs.uk", CAARecord{Tag: "issuewild", Value: "sectigo.com"})}, check.Warn, "no issue property"},
		{"unknown critical tag fails", []CAALookup{lookup("a.nhs.uk", issueOf("sectigo.com"), CAARecord{Flag: 128, Tag: "tbs", Value: "x"})}, check.Fail, "no CA may issue"},
		{"unknown non-critical tag is ignored", []CAALookup{lookup("a.nhs.uk", issueOf("sectigo.com"), CAARecord{Tag: "future", Value: "x"})}, check.Pass, "sectigo.com"},
		{"known tag with the critical flag passes", []CAALookup{lookup("a.nhs.uk", CAARecord{Flag: 128, Tag: "issue", Value: "sectigo.com"})}, check.Pass, "sectigo.com"},
		{"tags match case-insensitively", []CAALookup{lookup("a.nhs.uk", CAARecord{Tag: "ISSUE", Value: "sectigo.com"})}, check.Pass, "sectigo.com"},
		{"unparsable issuer warns", []CAALookup{lookup("a.nhs.uk", issueOf("not a domain!"))}, check.Warn, "do not parse"},
		{"failed lookup is unknown", []CAALookup{lookup("a.nhs.uk"), {Name: "nhs.uk", Error: "dns CAA nhs.uk: servfail", Class: "dns"}}, check.Unknown, "cannot be told"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := evaluateCAA(check.In[CAAEvidence]{Evidence: CAAEvidence{Domain: tt.lookups[0].Name, Lookups: tt.lookups}})
			if len(fs) != 1 || fs[0].Outcome != tt.want || !strings.Contains(fs[0].Message, tt.msg) {
				t.Fatalf("got %+v, want %s with %q", fs, tt.want, tt.msg)
			}
		})
	}
}

// TestCollectCAAClimbsToTheFirstRecordSet runs the collector against a
// loopback authoritative server: it climbs from the name to its ancestors,
// stops at the first CAA record set, follows an alias, and says unknown for
// a domain that does not exist or a lookup that times out.
func TestCollectCAAClimbsToTheFirstRecordSet(t *testing.T) {
	srv, err := dnstest.Start([]string{"uk."},
		`a.nhs.uk. 300 IN CAA 0 issue "letsencrypt.org"`,
		`www.a.nhs.uk. 300 IN A 192.0.2.1`,
		`b.nhs.uk. 300 IN TXT "x"`,
		`alias.b.nhs.uk. 300 IN CNAME a.nhs.uk.`,
		`c.nhs.uk. 300 IN TXT "x"`,
	)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Drop("c.nhs.uk.")
	env := &check.Env{DNS: &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: 200 * time.Millisecond, Retries: -1}}
	c := CAACheck()
	tests := []struct {
		domain string
		want   check.Outcome
		asked  int
		reason string
	}{
		{"a.nhs.uk", check.Pass, 1, ""},
		{"www.a.nhs.uk", check.Pass, 2, ""},
		{"alias.b.nhs.uk", check.Pass, 1, ""},
		{"b.nhs.uk", check.Warn, 3, ""},
		{"nope.nhs.uk", check.Unknown, 1, string(check.ErrNoDomain)},
		{"c.nhs.uk", check.Unknown, 1, string(check.ErrTimeout)},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			ev, _ := c.Collect(context.Background(), env, check.Asset{Kind: check.KindDomain, Name: tt.domain})
			fs := c.Evaluate(ev, nil)
			if len(fs) != 1 || fs[0].Outcome != tt.want || fs[0].Reason != tt.reason {
				t.Fatalf("got %+v (evidence %s %s), want %s reason %q", fs, ev.Data, ev.Error, tt.want, tt.reason)
			}
			if tt.reason != string(check.ErrNoDomain) && strings.Count(string(ev.Data), `"name"`) != tt.asked {
				t.Errorf("evidence %s: want %d names asked", ev.Data, tt.asked)
			}
		})
	}
}

func FuzzParseProperty(f *testing.F) {
	for _, s := range []string{"letsencrypt.org", ";", "ca.example; account=123", "bad value", "a..b", "x;=;", "\x00"} {
		f.Add(uint8(0), "issue", s)
	}
	f.Add(uint8(128), "tbs", "x")
	f.Add(uint8(0), "iodef", "mailto:a@b")
	f.Fuzz(func(t *testing.T, flag uint8, tag, value string) {
		p := ParseProperty(CAARecord{Flag: flag, Tag: tag, Value: value})
		if p.Err == "" && (p.Tag == "issue" || p.Tag == "issuewild") && strings.ContainsAny(p.Issuer, " ;\t") {
			t.Fatalf("issuer %q accepted", p.Issuer)
		}
		if p.Critical != (flag&128 != 0) {
			t.Fatal("critical flag misread")
		}
	})
}
