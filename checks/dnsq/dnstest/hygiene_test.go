package dnstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
)

// TestWildcardsSynthesiseAnswersForNamesThatDoNotExist: RFC 4592 — a name
// that does not exist under a wildcard's parent gets the wildcard's records
// with its own name as owner (NODATA for the types the wildcard lacks);
// names that exist, and names below an existing name without a wildcard of
// its own, do not.
func TestWildcardsSynthesiseAnswersForNamesThatDoNotExist(t *testing.T) {
	srv, err := dnstest.Start([]string{"lab.test"},
		`lab.test. 300 IN SOA ns.lab.test. h.lab.test. 1 2 3 4 5`,
		`*.lab.test. 300 IN A 192.0.2.1`,
		`*.lab.test. 300 IN TXT "v=spf1 -all"`,
		`www.lab.test. 300 IN AAAA 2001:db8::1`,
		`*.alias.test.lab.test. 300 IN CNAME www.lab.test.`,
		`x.alias.test.lab.test. 300 IN A 192.0.2.9`,
	)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: time.Second, Retries: -1, NoCache: true}
	ctx := context.Background()
	tests := []struct {
		name    string
		qtype   uint16
		rcode   string
		records int
	}{
		{"random.lab.test", dns.TypeA, "NOERROR", 1},
		{"a.b.lab.test", dns.TypeTXT, "NOERROR", 1},
		{"random.lab.test", dns.TypeMX, "NOERROR", 0}, // NODATA: the wildcard has no MX
		{"www.lab.test", dns.TypeA, "NOERROR", 0},     // exists: no synthesis
		{"x.www.lab.test", dns.TypeA, "NXDOMAIN", 0},  // closest encloser www has no wildcard
		{"y.alias.test.lab.test", dns.TypeAAAA, "NOERROR", 2},
		{"x.alias.test.lab.test", dns.TypeA, "NOERROR", 1},
	}
	for _, tt := range tests {
		resp, err := r.Query(ctx, tt.name, tt.qtype)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.name, dns.TypeToString[tt.qtype], err)
		}
		if resp.Rcode != tt.rcode || len(resp.Answer) != tt.records {
			t.Errorf("%s %s: %s with %v, want %s with %d records", tt.name, dns.TypeToString[tt.qtype], resp.Rcode, resp.Records, tt.rcode, tt.records)
		}
		if len(resp.Answer) > 0 && resp.Answer[0].Header().Name != dns.CanonicalName(tt.name) {
			t.Errorf("%s: owner %s, want the name asked", tt.name, resp.Answer[0].Header().Name)
		}
	}
}

// TestTransferIsRefusedUnlessTheZoneIsOpen: AXFR over TCP returns the
// whole zone between two SOAs for a zone AllowTransfer opened, and REFUSED
// for any other zone and over UDP.
func TestTransferIsRefusedUnlessTheZoneIsOpen(t *testing.T) {
	recs := []string{
		`open.test. 300 IN SOA ns.open.test. h.open.test. 7 2 3 4 5`,
		`open.test. 300 IN NS ns.open.test.`,
		`closed.test. 300 IN SOA ns.open.test. h.open.test. 7 2 3 4 5`,
	}
	for i := range 250 {
		recs = append(recs, "h"+string(rune('a'+i%26))+string(rune('a'+i/26))+".open.test. 300 IN A 192.0.2.1")
	}
	srv, err := dnstest.Start([]string{"open.test", "closed.test"}, recs...)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AllowTransfer("open.test")

	tr := &dns.Transfer{DialTimeout: time.Second, ReadTimeout: time.Second}
	m := new(dns.Msg)
	m.SetAxfr("open.test.")
	ch, err := tr.In(m, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	n, soas := 0, 0
	for env := range ch {
		if env.Error != nil {
			t.Fatal(env.Error)
		}
		for _, rr := range env.RR {
			n++
			if rr.Header().Rrtype == dns.TypeSOA {
				soas++
			}
		}
	}
	if n != 253 || soas != 2 {
		t.Fatalf("open zone: %d records with %d SOA, want 253 with 2", n, soas)
	}

	for _, c := range []struct{ zone, network string }{{"closed.test.", "tcp"}, {"open.test.", "udp"}} {
		q := new(dns.Msg)
		q.SetAxfr(c.zone)
		cl := &dns.Client{Net: c.network, Timeout: time.Second}
		in, _, err := cl.Exchange(q, srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if in.Rcode != dns.RcodeRefused || len(in.Answer) != 0 {
			t.Errorf("%s over %s: %s with %d records, want REFUSED", c.zone, c.network, dns.RcodeToString[in.Rcode], len(in.Answer))
		}
	}
}

// TestNoAAClearsTheAuthoritativeBit: a server marked NoAA answers like a
// lame delegation's server.
func TestNoAAClearsTheAuthoritativeBit(t *testing.T) {
	srv, err := dnstest.Start([]string{"lab.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.NoAA = true // before Add: Add's lock orders the write before any query's read
	if err := srv.Add(`lab.test. 300 IN SOA ns.lab.test. h.lab.test. 1 2 3 4 5`); err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("lab.test.", dns.TypeSOA)
	in, _, err := (&dns.Client{Timeout: time.Second}).Exchange(q, srv.Addr)
	if err != nil || in.Authoritative || len(in.Answer) != 1 {
		t.Fatalf("answer %v, %v: want the SOA without AA", in, err)
	}
}

// TestAddZonesMakesTheServerAnswerForMore: names of a zone added after the
// start are answered (NXDOMAIN included) instead of refused.
func TestAddZonesMakesTheServerAnswerForMore(t *testing.T) {
	srv, err := dnstest.Start([]string{"lab.test"}, `x.provider.test. 300 IN A 192.0.2.1`)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: time.Second, Retries: -1, NoCache: true}
	if _, err := r.Query(context.Background(), "x.provider.test", dns.TypeA); err == nil {
		t.Fatal("a name outside the zones was answered")
	}
	srv.AddZones("provider.test")
	for name, want := range map[string]string{"x.provider.test": "NOERROR", "y.provider.test": "NXDOMAIN"} {
		resp, err := r.Query(context.Background(), name, dns.TypeA)
		if err != nil || resp.Rcode != want {
			t.Errorf("%s: %v, %v; want %s", name, resp, err, want)
		}
	}
}
