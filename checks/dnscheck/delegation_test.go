package dnscheck

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
)

func goodServer(host string, serial uint32, ns ...string) DelegationServer {
	return DelegationServer{Host: host, InParent: true, InZone: true,
		Addrs: []DelegationLookup{{Name: host, Type: "A", Rcode: "NOERROR", Records: []string{"192.0.2.1"}}, {Name: host, Type: "AAAA", Rcode: "NOERROR"}},
		SOA:   &DelegationReply{Rcode: "NOERROR", AA: true, HasSOA: true, Serial: serial},
		NS:    &DelegationReply{Rcode: "NOERROR", AA: true, NS: ns}}
}

func TestEvaluateDelegationJudgesNameServers(t *testing.T) {
	pair := []string{"ns1.dns.test", "ns2.dns.test"}
	base := func(servers ...DelegationServer) DelegationEvidence {
		return DelegationEvidence{Domain: "a.test", DelegationZone: DelegationZone{Zone: "a.test", NS: pair},
			ParentSource: ParentFromResolver, ParentNS: pair, Servers: servers}
	}
	good1, good2 := goodServer("ns1.dns.test", 5, pair...), goodServer("ns2.dns.test", 5, pair...)
	noAddr := func(host, rcode string) DelegationServer {
		return DelegationServer{Host: host, InZone: true, Registrable: "x.test",
			Addrs:         []DelegationLookup{{Name: host, Type: "A", Rcode: "NXDOMAIN"}, {Name: host, Type: "AAAA", Rcode: "NXDOMAIN"}},
			RegistrableNS: &DelegationLookup{Name: "x.test", Type: "NS", Rcode: rcode}}
	}
	with := func(s DelegationServer, f func(*DelegationServer)) DelegationServer {
		soa, ns := *s.SOA, *s.NS // the replies are shared: change copies
		s.SOA, s.NS = &soa, &ns
		f(&s)
		return s
	}
	tests := []struct {
		name           string
		ev             DelegationEvidence
		dangling, lame check.Outcome
		sev            check.Severity // of the dangling fail
		msg            string         // in the lame message
	}{
		{"two good servers", base(good1, good2), check.Pass, check.Pass, "", "answer authoritatively with SOA serial 5"},
		{"one name server", func() DelegationEvidence {
			e := base(goodServer("ns1.dns.test", 5, "ns1.dns.test"))
			e.NS, e.ParentNS = pair[:1], pair[:1]
			return e
		}(), check.Pass, check.Fail, "", "at least two"},
		{"no AA", base(good1, with(good2, func(s *DelegationServer) { s.SOA.AA = false })), check.Pass, check.Fail, "", "without the authoritative (AA) flag"},
		{"refused", base(good1, with(good2, func(s *DelegationServer) { s.SOA.Rcode = "REFUSED" })), check.Pass, check.Fail, "", "answers REFUSED"},
		{"serials differ", base(good1, goodServer("ns2.dns.test", 4, pair...)), check.Pass, check.Fail, "", "different versions"},
		{"child lists other servers", base(good1, goodServer("ns2.dns.test", 5, "ns2.dns.test", "ns9.dns.test")), check.Pass, check.Fail, "", "ns2.dns.test list the zone's name servers as {ns2.dns.test, ns9.dns.test}"},
		{"silent server while another answers", base(good1, with(good2, func(s *DelegationServer) {
			s.SOA, s.NS = &DelegationReply{Error: "timeout", Class: "timeout"}, nil
		})), check.Pass, check.Fail, "", "do not answer while others do"},
		{"no server answers", base(with(good1, func(s *DelegationServer) { s.SOA, s.NS = &DelegationReply{Error: "timeout", Class: "timeout"}, nil }),
			with(good2, func(s *DelegationServer) { s.SOA, s.NS = &DelegationReply{Error: "timeout", Class: "timeout"}, nil })),
			check.Pass, check.Unknown, "", "no name server could be asked"},
		{"scope refusal is not lameness", base(good1, with(good2, func(s *DelegationServer) {
			s.SOA, s.NS = &DelegationReply{Error: "scope: excluded", Class: "scope"}, nil
		})), check.Pass, check.Pass, "", "not asked (outside the scope)"},
		{"host without address", base(good1, noAddr("ns2.dns.test", "NOERROR")), check.Fail, check.Fail, check.High, "no address"},
		{"host whose domain lapsed", base(good1, noAddr("ns2.dns.test", "NXDOMAIN")), check.Fail, check.Fail, check.Critical, "no address"},
		{"address lookup failed", base(good1, with(good2, func(s *DelegationServer) {
			s.Addrs = []DelegationLookup{{Name: s.Host, Type: "A", Error: "servfail", Class: "dns"}}
			s.SOA, s.NS = nil, nil
		})), check.Unknown, check.Fail, "", "no address"},
		{"parent and zone disagree", func() DelegationEvidence {
			e := base(good1, good2)
			e.ParentSource, e.ParentServer, e.ParentNS = ParentFromParent, "p.test", []string{"ns1.dns.test", "ns3.dns.test"}
			return e
		}(), check.Pass, check.Fail, "", "the parent delegates to {ns1.dns.test, ns3.dns.test}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := byID(evaluateDelegation(check.In[DelegationEvidence]{Evidence: tt.ev}))
			d, l := fs[DanglingNS], fs[LameDelegation]
			if d.Outcome != tt.dangling || (tt.sev != "" && d.Severity != tt.sev) {
				t.Errorf("dangling-ns %s %s (%s), want %s %s", d.Outcome, d.Severity, d.Message, tt.dangling, tt.sev)
			}
			if l.Outcome != tt.lame || !strings.Contains(l.Message, tt.msg) {
				t.Errorf("lame-delegation %s: %s; want %s with %q", l.Outcome, l.Message, tt.lame, tt.msg)
			}
			if !strings.Contains(l.Message, "name servers run by dns.test") {
				t.Errorf("lame-delegation message does not name the operator: %s", l.Message)
			}
		})
	}
}

// TestCollectDelegationAsksEachNameServer runs the collector against
// loopback name servers with their own behaviours: a lame one (no AA), a
// stale copy (another serial), one that does not answer, one whose name
// does not resolve, one under a domain that does not exist, a child whose
// NS set differs from the parent's.
func TestCollectDelegationAsksEachNameServer(t *testing.T) {
	shortTimeouts(t)
	copyOf := func(zone string, serial int, ns ...string) []string {
		return append([]string{soa(zone, serial)}, nsRR(zone, ns...)...)
	}
	world := []string{
		soa("dns.test", 1),
		"ns1.dns.test. 300 IN A 192.0.2.1", "ns2.dns.test. 300 IN A 192.0.2.2", "ns3.dns.test. 300 IN A 192.0.2.3",
		"lame.dns.test. 300 IN A 192.0.2.4", "stale.dns.test. 300 IN A 192.0.2.5", "dead.dns.test. 300 IN A 192.0.2.6",
		"dead2.dns.test. 300 IN A 192.0.2.7", "pns.dns.test. 300 IN A 192.0.2.8",
		"www.sub.good.test. 300 IN A 192.0.2.9",
	}
	world = append(world, copyOf("good.test", 5, "ns1.dns.test", "ns2.dns.test")...)
	world = append(world, copyOf("single.test", 5, "ns1.dns.test")...)
	world = append(world, copyOf("noaa.test", 5, "ns1.dns.test", "lame.dns.test")...)
	world = append(world, copyOf("stale.test", 5, "ns1.dns.test", "stale.dns.test")...)
	world = append(world, copyOf("gone.test", 5, "ns1.dns.test", "ns.gone.test")...)
	world = append(world, copyOf("lapsed.test", 5, "ns1.dns.test", "ns1.lapsed-dns.test")...)
	world = append(world, copyOf("dead.test", 5, "ns1.dns.test", "dead.dns.test")...)
	world = append(world, copyOf("alldead.test", 5, "dead.dns.test", "dead2.dns.test")...)
	world = append(world, copyOf("par.test", 1, "pns.dns.test")...)
	world = append(world, copyOf("child.par.test", 5, "ns1.dns.test", "ns2.dns.test", "ns3.dns.test")...)
	w := startDNS(t, []string{"test."}, world...)
	lame := startDNS(t, []string{"noaa.test."})
	lame.NoAA = true
	if err := lame.Add(copyOf("noaa.test", 5, "ns1.dns.test", "lame.dns.test")...); err != nil {
		t.Fatal(err)
	}
	stale := startDNS(t, []string{"stale.test."}, copyOf("stale.test", 4, "ns1.dns.test", "stale.dns.test")...)
	dead := startDNS(t, []string{"test."})
	dead.Drop("dead.test.", "alldead.test.")
	// The parent zone's server delegates child.par.test to two servers;
	// the child's own NS set has three.
	parent := startDNS(t, []string{"par.test."}, append(copyOf("par.test", 1, "pns.dns.test"), nsRR("child.par.test", "ns1.dns.test", "ns2.dns.test")...)...)
	n := &hygieneNet{world: w, servers: map[string]string{
		"ns1.dns.test": w.Addr, "ns2.dns.test": w.Addr, "ns3.dns.test": w.Addr,
		"lame.dns.test": lame.Addr, "stale.dns.test": stale.Addr,
		"dead.dns.test": dead.Addr, "dead2.dns.test": dead.Addr, "pns.dns.test": parent.Addr,
	}}
	env := n.env()
	tests := []struct {
		domain         string
		dangling, lame check.Outcome
		reason         string
		msg            string
	}{
		{"good.test", check.Pass, check.Pass, "", "2 name servers"},
		{"sub.good.test", check.Pass, check.Pass, "", "sub.good.test (in zone good.test)"},
		{"single.test", check.Pass, check.Fail, "", "at least two"},
		{"noaa.test", check.Pass, check.Fail, "", "lame.dns.test answers without the authoritative (AA) flag"},
		{"stale.test", check.Pass, check.Fail, "", "SOA serial 4 at stale.dns.test; 5 at ns1.dns.test"},
		{"gone.test", check.Fail, check.Fail, "", "ns.gone.test (no address)"},
		{"lapsed.test", check.Fail, check.Fail, "", "ns1.lapsed-dns.test (no address)"},
		{"dead.test", check.Pass, check.Fail, "", "dead.dns.test"},
		{"alldead.test", check.Pass, check.Unknown, "timeout", "no name server could be asked"},
		{"child.par.test", check.Pass, check.Fail, "", "the parent delegates to {ns1.dns.test, ns2.dns.test} but the zone's NS records list {ns1.dns.test, ns2.dns.test, ns3.dns.test}"},
		{"nope.test", check.Unknown, check.Unknown, string(check.ErrNoDomain), ""},
	}
	c := Delegation()
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			ev, fs := collectOne(t, c, env, tt.domain)
			m := byID(fs)
			if m[DanglingNS].Outcome != tt.dangling || m[LameDelegation].Outcome != tt.lame {
				t.Fatalf("dangling %s (%s), lame %s (%s); want %s, %s\nevidence %s", m[DanglingNS].Outcome, m[DanglingNS].Message,
					m[LameDelegation].Outcome, m[LameDelegation].Message, tt.dangling, tt.lame, ev.Data)
			}
			if tt.reason != "" && m[LameDelegation].Reason != tt.reason {
				t.Errorf("reason %q, want %q", m[LameDelegation].Reason, tt.reason)
			}
			if !strings.Contains(m[LameDelegation].Message, tt.msg) {
				t.Errorf("message %q lacks %q", m[LameDelegation].Message, tt.msg)
			}
		})
	}
	t.Run("a lapsed name server's domain is critical", func(t *testing.T) {
		_, fs := collectOne(t, c, env, "lapsed.test")
		if f := byID(fs)[DanglingNS]; f.Severity != check.Critical || !strings.Contains(f.Message, "lapsed-dns.test does not exist") {
			t.Fatalf("%+v", f)
		}
	})
}

func FuzzDelegationRead(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("a.test.", dns.TypeSOA)
	m.Authoritative = true
	rr, _ := dns.NewRR(soa("a.test", 3))
	ns, _ := dns.NewRR("a.test. 300 IN NS ns1.dns.test.")
	m.Answer = []dns.RR{rr}
	m.Ns = []dns.RR{ns}
	b, _ := m.Pack()
	f.Add(b, "a.test")
	f.Add([]byte{0, 1, 2}, "a.test")
	f.Fuzz(func(t *testing.T, b []byte, zone string) {
		in := new(dns.Msg)
		if in.Unpack(b) != nil {
			return
		}
		rep := delegationRead(in, zone)
		if len(rep.NS) > len(in.Answer)+len(in.Ns) {
			t.Fatalf("%d NS from %d records", len(rep.NS), len(in.Answer)+len(in.Ns))
		}
		if rep.HasSOA != (rep.Serial != 0) && rep.Serial != 0 {
			t.Fatal("a serial without an SOA")
		}
	})
}
