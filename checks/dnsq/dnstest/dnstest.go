// Package dnstest is a small authoritative DNS server on loopback, built on
// miekg/dns, for tests and the lab: it serves records given in zone-file form
// over UDP and TCP, answers NXDOMAIN below its zones and NODATA for names
// that exist, can drop queries for chosen names (so resolvers time out),
// chases CNAMEs within its own data like a recursive resolver would,
// synthesises answers from wildcards (RFC 4592), serves zone transfers of
// the zones AllowTransfer opens (refusing the others), and counts the
// queries it receives.
package dnstest

import (
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Server serves a set of records. Records may be added while it runs.
type Server struct {
	Addr string // "127.0.0.1:port", the same port for UDP and TCP
	// Latency delays every answer (to model slow upstreams).
	Latency time.Duration
	// NoAA clears the AA bit of every answer: a lame server, answering
	// for zones it is not authoritative for. Set it before queries come.
	NoAA bool

	mu      sync.RWMutex
	rrs     map[string][]dns.RR // owner (canonical) → records
	names   map[string]bool     // owners and their ancestors that exist (empty non-terminals)
	zones   []string            // apexes (canonical) we are authoritative for
	drop    map[string]bool     // owners whose queries get no answer
	xfr     map[string]bool     // zones whose transfer (AXFR) is open
	queries atomic.Int64
	byName  sync.Map // canonical qname → *atomic.Int64
	udp     *dns.Server
	tcp     *dns.Server
}

// Start listens on 127.0.0.1 (a random port) and serves zones. Records are
// RFC 1035 presentation lines with absolute owner names.
func Start(zones []string, records ...string) (*Server, error) {
	s := &Server{rrs: map[string][]dns.RR{}, names: map[string]bool{}, drop: map[string]bool{}}
	for _, z := range zones {
		s.zones = append(s.zones, dns.CanonicalName(z))
	}
	if err := s.Add(records...); err != nil {
		return nil, err
	}
	pc, l, err := listenPair()
	if err != nil {
		return nil, err
	}
	s.Addr = pc.LocalAddr().String()
	s.udp = &dns.Server{PacketConn: pc, Handler: s, UDPSize: 65535}
	s.tcp = &dns.Server{Listener: l, Handler: s}
	up := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { up <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { up <- struct{}{} }
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	<-up
	<-up
	return s, nil
}

// listenPair binds UDP and TCP on one loopback port. A random UDP port may
// be taken for TCP (by another listener or a connection's local end), so a
// few ports are tried.
func listenPair() (net.PacketConn, net.Listener, error) {
	var last error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("dnstest: listen udp: %w", err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		last = err
	}
	return nil, nil, fmt.Errorf("dnstest: listen tcp: %w", last)
}

// Add parses and adds records.
func (s *Server) Add(records ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range records {
		rr, err := dns.NewRR(line)
		if err != nil {
			return fmt.Errorf("dnstest: record %q: %w", line, err)
		}
		if rr == nil {
			continue
		}
		owner := dns.CanonicalName(rr.Header().Name)
		rr.Header().Name = owner
		s.rrs[owner] = append(s.rrs[owner], rr)
		for n := owner; ; {
			s.names[n] = true
			i, end := dns.NextLabel(n, 0)
			if end {
				break
			}
			n = n[i:]
		}
	}
	return nil
}

// AddZones makes the server authoritative for more zones (a lab that
// serves a hosting provider's names too).
func (s *Server) AddZones(zones ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, z := range zones {
		s.zones = append(s.zones, dns.CanonicalName(z))
	}
}

// Drop makes queries for name go unanswered.
func (s *Server) Drop(names ...string) {
	s.mu.Lock()
	for _, n := range names {
		s.drop[dns.CanonicalName(n)] = true
	}
	s.mu.Unlock()
}

// Queries returns how many queries the server has received.
func (s *Server) Queries() int64 { return s.queries.Load() }

// QueriesFor returns how many queries for name (any type) it has received.
func (s *Server) QueriesFor(name string) int64 {
	if n, ok := s.byName.Load(dns.CanonicalName(name)); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// Close stops the server.
func (s *Server) Close() {
	if s.udp != nil {
		s.udp.Shutdown()
	}
	if s.tcp != nil {
		s.tcp.Shutdown()
	}
}

func (s *Server) authoritative(name string) bool {
	for _, z := range s.zones {
		if dns.IsSubDomain(z, name) {
			return true
		}
	}
	return false
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	n, _ := s.byName.LoadOrStore(name, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	s.mu.RLock()
	dropped := s.drop[name]
	s.mu.RUnlock()
	if dropped {
		return // no answer: the client times out
	}
	if s.Latency > 0 {
		time.Sleep(s.Latency)
	}
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		s.transfer(w, req, name)
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = !s.NoAA
	m.RecursionAvailable = true
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.authoritative(name) {
		m.SetRcode(req, dns.RcodeRefused)
		w.WriteMsg(m)
		return
	}
	cur := name
	for hops := 0; hops < 10; hops++ {
		var cname *dns.CNAME
		for _, rr := range s.owned(cur) {
			if rr.Header().Rrtype == q.Qtype || q.Qtype == dns.TypeANY {
				m.Answer = append(m.Answer, rr)
			} else if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if len(m.Answer) > 0 && m.Answer[len(m.Answer)-1].Header().Name == cur || cname == nil {
			break
		}
		m.Answer = append(m.Answer, cname)
		cur = dns.CanonicalName(cname.Target)
		if !s.authoritative(cur) {
			break
		}
		if s.drop[cur] {
			return
		}
	}
	if len(m.Answer) == 0 && !s.exists(name) {
		m.Rcode = dns.RcodeNameError
	}
	if o := req.IsEdns0(); o != nil && o.Do() {
		m.Answer = s.withSigs(m.Answer)
	}
	if w.LocalAddr().Network() == "udp" {
		size := 512
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
			m.SetEdns0(o.UDPSize(), o.Do())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// Replace swaps the records of one type at one owner for new ones (zone-file
// lines with that owner and type); with none, the RRset is removed. It models
// an operator changing their zone between two scans.
func (s *Server) Replace(owner string, rrtype uint16, records ...string) error {
	owner = dns.CanonicalName(owner)
	var add []dns.RR
	for _, line := range records {
		rr, err := dns.NewRR(line)
		if err != nil {
			return fmt.Errorf("dnstest: record %q: %w", line, err)
		}
		if dns.CanonicalName(rr.Header().Name) != owner || rr.Header().Rrtype != rrtype {
			return fmt.Errorf("dnstest: replace %s %s: record %q has another owner or type", owner, dns.TypeToString[rrtype], line)
		}
		rr.Header().Name = owner
		add = append(add, rr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.rrs[owner][:0:0]
	for _, rr := range s.rrs[owner] {
		if rr.Header().Rrtype != rrtype {
			kept = append(kept, rr)
		}
	}
	s.rrs[owner] = append(kept, add...)
	s.names[owner] = true
	return nil
}

// withSigs adds to an answer the RRSIG records served at each of its
// owners that cover its types (RFC 4035 §3.1.1), for a query with the
// DNSSEC OK bit. The server signs nothing itself: RRSIGs are records it
// was given. Called with s.mu held.
func (s *Server) withSigs(answer []dns.RR) []dns.RR {
	type set struct {
		owner string
		t     uint16
	}
	seen := map[set]bool{}
	out := answer
	for _, rr := range answer {
		k := set{dns.CanonicalName(rr.Header().Name), rr.Header().Rrtype}
		if k.t == dns.TypeRRSIG || seen[k] {
			continue
		}
		seen[k] = true
		for _, sig := range s.rrs[k.owner] {
			if r, ok := sig.(*dns.RRSIG); ok && r.TypeCovered == k.t {
				out = append(out, sig)
			}
		}
	}
	return out
}

// owned returns the records at name: its own or, when name does not
// exist, those of the wildcard that covers it with their owner rewritten
// to name (RFC 4592 §3.3: synthesis from *.<closest encloser>).
func (s *Server) owned(name string) []dns.RR {
	if s.names[name] {
		return s.rrs[name]
	}
	w := s.wildcard(name)
	if w == "" {
		return nil
	}
	out := make([]dns.RR, 0, len(s.rrs[w]))
	for _, rr := range s.rrs[w] {
		c := dns.Copy(rr)
		c.Header().Name = name
		out = append(out, c)
	}
	return out
}

// wildcard returns the owner of the wildcard that synthesises answers for
// name, "" if none does: name does not exist, and its closest encloser
// (the longest ancestor that exists, empty non-terminals included) has a
// "*" child (RFC 4592 §3.3.1).
func (s *Server) wildcard(name string) string {
	if s.names[name] {
		return ""
	}
	for n := name; ; {
		i, end := dns.NextLabel(n, 0)
		if end || n[i:] == "." {
			return ""
		}
		n = n[i:]
		if s.names[n] {
			if s.names["*."+n] {
				return "*." + n
			}
			return ""
		}
	}
}

// exists reports whether name exists: it owns records, is an empty
// non-terminal, or a wildcard covers it (NODATA, not NXDOMAIN, for the
// types the wildcard lacks).
func (s *Server) exists(name string) bool { return s.names[name] || s.wildcard(name) != "" }

// AllowTransfer opens zone transfers (AXFR) of the zones named, each an
// owner of an SOA record here. Every other transfer is refused, as an
// authoritative server should refuse them to strangers (RFC 5936 §6).
func (s *Server) AllowTransfer(zones ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.xfr == nil {
		s.xfr = map[string]bool{}
	}
	for _, z := range zones {
		s.xfr[dns.CanonicalName(z)] = true
	}
}

// transfer answers AXFR (and IXFR, with a full transfer: RFC 1995 §4) over
// TCP for an open zone: its SOA, every record at or below the apex, the
// SOA again (RFC 5936 §2.2), 100 records a message. Anything else is
// REFUSED.
func (s *Server) transfer(w dns.ResponseWriter, req *dns.Msg, zone string) {
	s.mu.RLock()
	var soa dns.RR
	var body []dns.RR
	if s.xfr[zone] && w.LocalAddr().Network() == "tcp" {
		for _, rr := range s.rrs[zone] {
			if rr.Header().Rrtype == dns.TypeSOA {
				soa = rr
			}
		}
		var owners []string
		for o := range s.rrs {
			if dns.IsSubDomain(zone, o) {
				owners = append(owners, o)
			}
		}
		sort.Strings(owners)
		for _, o := range owners {
			for _, rr := range s.rrs[o] {
				if rr != soa {
					body = append(body, rr)
				}
			}
		}
	}
	s.mu.RUnlock()
	if soa == nil {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeRefused)
		w.WriteMsg(m)
		return
	}
	ch := make(chan *dns.Envelope, len(body)/100+3)
	ch <- &dns.Envelope{RR: []dns.RR{soa}}
	for len(body) > 0 {
		n := min(100, len(body))
		ch <- &dns.Envelope{RR: body[:n]}
		body = body[n:]
	}
	ch <- &dns.Envelope{RR: []dns.RR{soa}}
	close(ch)
	_ = new(dns.Transfer).Out(w, req, ch) // a client that hangs up early ends it
}
