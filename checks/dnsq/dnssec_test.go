package dnsq

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestExchangeDNSSECAsksWithDOAndCDThroughItsOwnCache: DNSSEC questions
// carry DO=1 and CD=1, plain ones neither, and each kind is cached apart,
// so a plain answer (whose size the SPF rules judge) is never one fetched
// with signatures, nor the other way round.
func TestExchangeDNSSECAsksWithDOAndCDThroughItsOwnCache(t *testing.T) {
	type seen struct{ do, cd bool }
	var mu sync.Mutex
	var got []seen
	addr := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		s := seen{cd: r.CheckingDisabled}
		if o := r.IsEdns0(); o != nil {
			s.do = o.Do()
		}
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
		if s.do {
			reply(w, r, dns.RcodeSuccess, "a.test. 300 IN SOA ns.a.test. h.a.test. 1 2 3 4 5",
				"a.test. 300 IN RRSIG SOA 13 2 300 20300101000000 20200101000000 1 a.test. AAAA")
			return
		}
		reply(w, r, dns.RcodeSuccess, "a.test. 300 IN SOA ns.a.test. h.a.test. 1 2 3 4 5")
	})
	r := &Resolver{Servers: []string{addr}, Timeout: time.Second, Retries: -1}
	var x DNSSECExchanger = r // *Resolver implements the optional interface
	ctx := context.Background()
	for range 2 {
		plain, err := r.Exchange(ctx, "a.test", dns.TypeSOA)
		if err != nil || len(plain.Answer) != 1 {
			t.Fatalf("plain: %v %v", plain, err)
		}
		signed, err := x.ExchangeDNSSEC(ctx, "a.test", dns.TypeSOA)
		if err != nil || len(signed.Answer) != 2 {
			t.Fatalf("dnssec: %v %v", signed, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != (seen{}) || got[1] != (seen{do: true, cd: true}) {
		t.Fatalf("queries on the wire: %+v, want one plain (DO=0, CD=0) and one DNSSEC (DO=1, CD=1)", got)
	}
}
