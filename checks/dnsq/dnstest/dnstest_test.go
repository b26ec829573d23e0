package dnstest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
)

func TestResolverAgainstServer(t *testing.T) {
	big := make([]string, 0, 40)
	for i := 0; i < 40; i++ {
		big = append(big, `big.lab.test. 300 IN TXT "`+strings.Repeat("x", 60)+`"`)
	}
	srv, err := dnstest.Start([]string{"lab.test"}, append(big,
		`lab.test. 300 IN TXT "v=spf1 -all"`,
		`www.lab.test. 300 IN CNAME web.lab.test.`,
		`web.lab.test. 300 IN A 127.0.0.9`,
		`a.b.lab.test. 300 IN A 127.0.0.10`,
	)...)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Drop("slow.lab.test")
	r := &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: 200 * time.Millisecond, Retries: 1}
	ctx := context.Background()

	t.Run("txt answer", func(t *testing.T) {
		txt, _, err := r.TXT(ctx, "lab.test")
		if err != nil || len(txt) != 1 || txt[0] != "v=spf1 -all" {
			t.Fatalf("TXT = %q, %v", txt, err)
		}
	})
	t.Run("nxdomain is a result not an error", func(t *testing.T) {
		resp, err := r.Query(ctx, "nope.lab.test", dns.TypeTXT)
		if err != nil || !resp.NXDomain() || !resp.Void() {
			t.Fatalf("resp=%+v err=%v", resp, err)
		}
	})
	t.Run("empty non-terminal is nodata not nxdomain", func(t *testing.T) {
		resp, err := r.Query(ctx, "b.lab.test", dns.TypeA)
		if err != nil || resp.NXDomain() || !resp.Void() {
			t.Fatalf("resp=%+v err=%v", resp, err)
		}
	})
	t.Run("truncated udp answer retried over tcp", func(t *testing.T) {
		txt, resp, err := r.TXT(ctx, "big.lab.test")
		if err != nil || len(txt) != 40 || resp.Size < 2000 {
			t.Fatalf("got %d strings, %v", len(txt), err)
		}
	})
	t.Run("cname chain followed to addresses", func(t *testing.T) {
		addrs, chain, err := r.Addrs(ctx, "www.lab.test")
		if err != nil || len(addrs) != 1 || addrs[0].String() != "127.0.0.9" || len(chain) != 1 || chain[0] != "web.lab.test" {
			t.Fatalf("addrs=%v chain=%v err=%v", addrs, chain, err)
		}
	})
	t.Run("dropped query times out with class timeout", func(t *testing.T) {
		_, err := r.Query(ctx, "slow.lab.test", dns.TypeTXT)
		de, ok := err.(*dnsq.Error)
		if !ok || de.Class() != "timeout" {
			t.Fatalf("err = %v, want a timeout", err)
		}
	})
	t.Run("outside the zones is refused and classed dns", func(t *testing.T) {
		_, err := r.Query(ctx, "example.com", dns.TypeA)
		de, ok := err.(*dnsq.Error)
		if !ok || de.Kind != "refused" || de.Class() != "dns" {
			t.Fatalf("err = %v, want refused", err)
		}
	})
	t.Run("answers are cached for the run", func(t *testing.T) {
		before := srv.Queries()
		for i := 0; i < 5; i++ {
			if _, _, err := r.TXT(ctx, "lab.test"); err != nil {
				t.Fatal(err)
			}
		}
		if got := srv.Queries() - before; got != 0 {
			t.Fatalf("%d queries reached the server, want 0 (cached)", got)
		}
	})
}

// Each server needs one port free for both UDP and TCP; many starting at
// once must all find one.
func TestManyServersStartTogether(t *testing.T) {
	const n = 64
	errs := make(chan error, n)
	srvs := make(chan *dnstest.Server, n)
	for i := 0; i < n; i++ {
		go func() {
			s, err := dnstest.Start([]string{"lab.test"}, `lab.test. 300 IN TXT "x"`)
			errs <- err
			srvs <- s
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		if s := <-srvs; s != nil {
			defer s.Close()
		}
	}
}

func TestReplaceSwapsOneRRsetOnly(t *testing.T) {
	srv, err := dnstest.Start([]string{"lab.test"},
		`lab.test. 60 IN TXT "v=spf1 +all"`, `lab.test. 60 IN TXT "other"`, `lab.test. 60 IN MX 10 mx.lab.test.`)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Replace("lab.test", dns.TypeTXT, `lab.test. 60 IN TXT "v=spf1 -all"`); err != nil {
		t.Fatal(err)
	}
	if err := srv.Replace("lab.test", dns.TypeTXT, `other.lab.test. 60 IN TXT "x"`); err == nil {
		t.Fatal("a record of another owner was accepted")
	}
	r := &dnsq.Resolver{Servers: []string{srv.Addr}, NoCache: true}
	txt, _, err := r.TXT(context.Background(), "lab.test")
	if err != nil || len(txt) != 1 || txt[0] != "v=spf1 -all" {
		t.Fatalf("TXT after Replace = %q, %v", txt, err)
	}
	mx, _, err := r.MX(context.Background(), "lab.test")
	if err != nil || len(mx) != 1 {
		t.Fatalf("MX after a TXT Replace = %v, %v; want it untouched", mx, err)
	}
}
