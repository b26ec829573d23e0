package dnsq

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// serve runs a miekg/dns server on loopback UDP and TCP (one port) with
// the given handler.
func serve(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	// A free UDP port may be taken on TCP by another test: try again.
	for try := 0; ln == nil; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if try == 20 {
				t.Fatal(err)
			}
		}
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		up := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(up) }
		go srv.ActivateAndServe()
		<-up
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// reply answers with rrs, truncated to the client's UDP size over UDP.
func reply(w dns.ResponseWriter, r *dns.Msg, rcode int, rrs ...string) {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	for _, s := range rrs {
		rr, _ := dns.NewRR(s)
		m.Answer = append(m.Answer, rr)
	}
	if w.LocalAddr().Network() == "udp" {
		size := 512
		if o := r.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

func TestResolverRetriesAfterALostPacket(t *testing.T) {
	var n atomic.Int64
	addr := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if n.Add(1) == 1 {
			return // the first packet is lost
		}
		reply(w, r, dns.RcodeSuccess, `a.test. 60 IN TXT "ok"`)
	})
	res := &Resolver{Servers: []string{addr}, Timeout: 100 * time.Millisecond, Retries: 1}
	txt, _, err := res.TXT(context.Background(), "a.test")
	if err != nil || len(txt) != 1 || txt[0] != "ok" {
		t.Fatalf("TXT = %q, %v; want the answer of the second attempt", txt, err)
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("%d queries, want 2", got)
	}
}

func TestResolverErrorsAreClassified(t *testing.T) {
	tests := []struct {
		name      string
		handler   dns.HandlerFunc
		kind      string
		class     string
		mustCache bool
	}{
		{"servfail is dns", func(w dns.ResponseWriter, r *dns.Msg) { reply(w, r, dns.RcodeServerFailure) }, "servfail", "dns", false},
		{"refused is dns", func(w dns.ResponseWriter, r *dns.Msg) { reply(w, r, dns.RcodeRefused) }, "refused", "dns", false},
		{"silence is timeout", func(w dns.ResponseWriter, r *dns.Msg) {}, "timeout", "timeout", false},
		{"a flood of records (over TCP after truncation) is malformed", func(w dns.ResponseWriter, r *dns.Msg) {
			rrs := make([]string, maxAnswer+1)
			for i := range rrs {
				rrs[i] = `a.test. 60 IN A 192.0.2.1`
			}
			reply(w, r, dns.RcodeSuccess, rrs...)
		}, "malformed", "dns", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &Resolver{Servers: []string{serve(t, tt.handler)}, Timeout: 100 * time.Millisecond, Retries: -1}
			_, err := res.Query(context.Background(), "a.test", dns.TypeA)
			var de *Error
			if !errors.As(err, &de) || de.Kind != tt.kind || de.Class() != tt.class {
				t.Fatalf("err = %v, want kind %s class %s", err, tt.kind, tt.class)
			}
		})
	}
}

func TestResolverDoesNotCacheErrors(t *testing.T) {
	var n atomic.Int64
	addr := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if n.Add(1) == 1 {
			reply(w, r, dns.RcodeServerFailure)
			return
		}
		reply(w, r, dns.RcodeSuccess, `a.test. 60 IN A 192.0.2.1`)
	})
	res := &Resolver{Servers: []string{addr}, Timeout: 100 * time.Millisecond, Retries: -1}
	if _, err := res.Query(context.Background(), "a.test", dns.TypeA); err == nil {
		t.Fatal("first query: want SERVFAIL")
	}
	resp, err := res.Query(context.Background(), "a.test", dns.TypeA)
	if err != nil || len(resp.Of(dns.TypeA)) != 1 {
		t.Fatalf("second query: %v, %v; want the fresh answer (errors are not cached)", resp, err)
	}
}

func TestResolverRejectsNamesThatAreNotDomainNames(t *testing.T) {
	res := &Resolver{Servers: []string{"127.0.0.1:1"}}
	for _, name := range []string{"a..b", string(make([]byte, 300))} {
		_, err := res.Query(context.Background(), name, dns.TypeA)
		var de *Error
		if !errors.As(err, &de) || de.Kind != "malformed" {
			t.Errorf("Query(%q): %v, want malformed without a query", name, err)
		}
	}
}

func TestResolverSharesConcurrentIdenticalQueries(t *testing.T) {
	var n atomic.Int64
	addr := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		n.Add(1)
		time.Sleep(50 * time.Millisecond)
		reply(w, r, dns.RcodeSuccess, `a.test. 60 IN A 192.0.2.1`)
	})
	res := &Resolver{Servers: []string{addr}, Timeout: time.Second}
	done := make(chan error)
	for i := 0; i < 10; i++ {
		go func() { _, err := res.Query(context.Background(), "a.test", dns.TypeA); done <- err }()
	}
	for i := 0; i < 10; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("%d queries reached the server for 10 identical concurrent lookups, want 1", got)
	}
}

func TestFreshResolverForgetsTheLastRun(t *testing.T) {
	var answer atomic.Value
	answer.Store(`a.test. 60 IN TXT "v=spf1 +all"`)
	addr := serve(t, func(w dns.ResponseWriter, r *dns.Msg) { reply(w, r, dns.RcodeSuccess, answer.Load().(string)) })
	night1 := &Resolver{Servers: []string{addr}, Timeout: time.Second}
	if txt, _, _ := night1.TXT(context.Background(), "a.test"); len(txt) != 1 || txt[0] != "v=spf1 +all" {
		t.Fatalf("night 1: %q", txt)
	}
	answer.Store(`a.test. 60 IN TXT "v=spf1 -all"`)
	if txt, _, _ := night1.Fresh().TXT(context.Background(), "a.test"); len(txt) != 1 || txt[0] != "v=spf1 -all" {
		t.Fatalf("night 2 through Fresh: %q, want the new record", txt)
	}
}
