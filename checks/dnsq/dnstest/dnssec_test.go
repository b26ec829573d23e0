package dnstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
)

// TestRRSIGsAnswerOnlyQueriesWithDO: the RRSIGs at an owner that cover the
// asked type come with the answer when the query sets DO, and only then.
func TestRRSIGsAnswerOnlyQueriesWithDO(t *testing.T) {
	srv, err := dnstest.Start([]string{"lab.test"},
		"lab.test. 300 IN SOA ns.lab.test. h.lab.test. 1 2 3 4 5",
		"lab.test. 300 IN RRSIG SOA 13 2 300 20300101000000 20200101000000 1 lab.test. AAAA",
		"lab.test. 300 IN TXT \"x\"",
		"lab.test. 300 IN RRSIG TXT 13 2 300 20300101000000 20200101000000 1 lab.test. AAAA",
	)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: time.Second, Retries: -1}
	ctx := context.Background()
	plain, err := r.Exchange(ctx, "lab.test", dns.TypeSOA)
	if err != nil || len(plain.Answer) != 1 {
		t.Fatalf("plain SOA: %v, %v; want the SOA alone", plain, err)
	}
	signed, err := r.ExchangeDNSSEC(ctx, "lab.test", dns.TypeSOA)
	if err != nil || len(signed.Answer) != 2 {
		t.Fatalf("DO SOA: %v, %v; want the SOA and its RRSIG", signed, err)
	}
	sig, ok := signed.Answer[1].(*dns.RRSIG)
	if !ok || sig.TypeCovered != dns.TypeSOA {
		t.Fatalf("second record %v, want the RRSIG covering SOA (not the one over TXT)", signed.Answer[1])
	}
	if o := signed.IsEdns0(); o == nil || !o.Do() {
		t.Errorf("the reply does not echo the DO bit")
	}
}
