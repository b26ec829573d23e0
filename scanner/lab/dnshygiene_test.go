package lab

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnscheck"
)

// hygieneLab starts a lab of the family's cases only, each stamped twice.
func hygieneTestLab(t *testing.T) *Lab {
	cs := hygieneCases()
	for i := range cs {
		cs[i].Family = hygieneName
	}
	return startLab(t, Config{cases: cs, Domains: 2 * len(cs)})
}

// TestHygieneTruthHoldsOnEveryStamp: the family's collectors, on both
// stamps of every case and on the zones delegated below them, find the
// family's truth (the name servers with a behaviour serve every zone that
// names them, the RDAP service every registration).
func TestHygieneTruthHoldsOnEveryStamp(t *testing.T) {
	l := hygieneTestLab(t)
	env, pol := l.Env(), l.Policy()
	want := map[check.Asset]map[string]check.Outcome{}
	zones := 0
	for _, e := range l.Truth() {
		a := check.Asset{Kind: e.Kind, Name: e.Name}
		if want[a] == nil {
			want[a] = map[string]check.Outcome{}
		}
		want[a][e.CheckID] = e.Outcome
	}
	for _, d := range l.Domains() {
		zones += len(l.Zones(d.Name))
	}
	if n := len(l.Truth()); n != 2*len(hygieneCases())*len(HygieneCheckIDs)+zones*len(hygieneZoneIDs) || zones == 0 {
		t.Fatalf("%d expectations on %d zones, want %d", n, zones, 2*len(hygieneCases())*len(HygieneCheckIDs)+zones*len(hygieneZoneIDs))
	}
	for a, w := range want {
		for _, c := range checks.All() {
			// CAA and DNSSEC truth rests on other families' defaults.
			if !strings.HasPrefix(c.ID(), "dns.") || c.ID() == dnscheck.CAA || c.ID() == dnscheck.DNSSEC || !c.Applies(a) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			ev, _ := c.Collect(ctx, env, a)
			cancel()
			for _, f := range c.Evaluate(ev, pol) {
				if o := w[f.CheckID]; f.Outcome != o {
					t.Errorf("%s %s: %s (%s), truth %s", a.Key(), f.CheckID, f.Outcome, f.Message, o)
				}
			}
		}
	}
}

// TestHygieneNameServersBehave asks the family's name servers directly,
// through the lab's network, as a scan does.
func TestHygieneNameServersBehave(t *testing.T) {
	l := hygieneTestLab(t)
	ask := func(network, server, zone string, qtype uint16) *dns.Msg {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := l.Dial(ctx, network, server+":53")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(zone), qtype)
		co := &dns.Conn{Conn: conn}
		if err := co.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		in, err := co.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	for _, k := range []int{1, 2} {
		noaa, stale, xfr := domainName("dns-lame-noaa", k), domainName("dns-lame-serial", k), domainName("dns-axfr-open", k)
		if in := ask("udp", NSNoAA, noaa, dns.TypeSOA); in.Authoritative || len(in.Answer) != 1 {
			t.Errorf("%s at %s: AA %v, %d answers; want the SOA without AA", noaa, NSNoAA, in.Authoritative, len(in.Answer))
		}
		if in := ask("udp", NSStale, stale, dns.TypeSOA); len(in.Answer) != 1 || in.Answer[0].(*dns.SOA).Serial != 0 || !in.Authoritative {
			t.Errorf("%s at %s: %v; want serial 0, authoritative", stale, NSStale, in.Answer)
		}
		if in := ask("udp", NS1, stale, dns.TypeSOA); len(in.Answer) != 1 || in.Answer[0].(*dns.SOA).Serial != 1 {
			t.Errorf("%s at %s: %v; want serial 1", stale, NS1, in.Answer)
		}
		if in := ask("tcp", NSXfr, xfr, dns.TypeAXFR); in.Rcode != dns.RcodeSuccess || len(in.Answer) == 0 || in.Answer[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("AXFR %s at %s: %s, %v; want the zone's SOA first", xfr, NSXfr, dns.RcodeToString[in.Rcode], in.Answer)
		}
		if in := ask("tcp", NS1, xfr, dns.TypeAXFR); in.Rcode != dns.RcodeRefused {
			t.Errorf("AXFR %s at %s: %s; want REFUSED", xfr, NS1, dns.RcodeToString[in.Rcode])
		}
		if in := ask("udp", NSXfr, noaa, dns.TypeSOA); in.Rcode != dns.RcodeRefused {
			t.Errorf("%s at %s (a zone that does not name it): %s; want REFUSED", noaa, NSXfr, dns.RcodeToString[in.Rcode])
		}
	}
}

// TestLabRDAPServesEveryRegistration: the lab's RDAP service answers RFC
// 9083 domain objects for every lab domain's registrable domain, with the
// expiry its case gives, and 404 for anything else.
func TestLabRDAPServesEveryRegistration(t *testing.T) {
	l := startLab(t, Config{})
	c := l.services()[dnscheck.RDAPService].Client
	get := func(name string) (int, []byte) {
		resp, err := c.Get(l.RDAPURL + "domain/" + name)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != "application/rdap+json" {
			t.Errorf("%s: content type %q", name, ct)
		}
		return resp.StatusCode, b
	}
	for _, d := range l.Domains() {
		reg := dnscheck.Registrable(d.Name)
		code, b := get(reg)
		if d.Absent {
			if code != http.StatusNotFound {
				t.Errorf("%s (absent): HTTP %d", reg, code)
			}
			continue
		}
		rec, err := dnscheck.ParseRDAP(b)
		if code != http.StatusOK || err != nil {
			t.Fatalf("%s: HTTP %d, %v", reg, code, err)
		}
		exp, ok := rec.Expiry()
		want := rdapDefault.expires
		if strings.HasPrefix(reg, "lab-dns-expir") {
			want = rdapProfiles[strings.TrimSuffix(strings.TrimPrefix(reg, "lab-"), ".nhs.uk")].expires
		}
		if !ok || exp.Sub(l.pki.now).Round(time.Hour) != want.Round(time.Hour) {
			t.Errorf("%s: expires %v (%v after the lab's start), want %v after", reg, exp, exp.Sub(l.pki.now), want)
		}
	}
	code, b := get("example.com")
	var e struct {
		ErrorCode int `json:"errorCode"`
	}
	if code != http.StatusNotFound || json.Unmarshal(b, &e) != nil || e.ErrorCode != 404 {
		t.Errorf("unknown domain: HTTP %d %s; want 404 with an RDAP error object", code, b)
	}
}
