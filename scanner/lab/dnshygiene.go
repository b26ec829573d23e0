package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnscheck"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
)

// hygieneFamily: the lab of the DNS hygiene checks (dns.wildcard,
// dns.dangling-cname, dns.dangling-ns, dns.lame-delegation, dns.axfr-open,
// dns.domain-expiry, dns.registrar-lock). Its cases are wildcards, aliases
// to names that do not exist (one at a hosting service where a name can
// be taken over), name servers that do not resolve or whose domain does
// not exist, delegations that are lame, single or open to zone transfer,
// and registrations (the lab's RDAP service, rdap.go) that are expiring,
// expired or unlocked.
//
// Every other lab domain passes them all: no wildcard, no alias that
// dangles at the domain, www or any name CT lists for it (ct.go: mail is
// an address or an alias of the lab MX; old.<d> does not exist and has no
// alias, so it does not dangle; the wildcard names the apex; OutsideName is
// not under the domain and is not followed), the lab's two name servers (ns1 and ns2,
// one server, AA set, one serial), no transfers, and a registration for a
// year with a transfer lock. A domain that does not exist is unknown.
//
// Two cases delegate a child zone, dept.<d>, listed in CT: discovery finds
// it (check.KindZone) and the zone checks judge it (hygieneZoneExpect).
// The family, completed last, also states dns.caa and dns.wildcard on
// every web host another family states truth for (hygieneHostsExpect).
var hygieneFamily = Family{Name: hygieneName, Cases: hygieneCases, Complete: completeHygiene}

const hygieneName = "dnshygiene"

// HygieneCheckIDs are the catalogue ids the family states on every domain.
var HygieneCheckIDs = []string{dnscheck.Wildcard, dnscheck.DanglingCNAME, dnscheck.DanglingNS, dnscheck.LameDelegation,
	dnscheck.AXFROpen, dnscheck.DomainExpiry, dnscheck.RegistrarLock}

// Name servers with a behaviour of their own, each its own loopback DNS
// server (Dial maps port 53 on their address to it), serving a copy of
// every lab zone whose NS records name it.
const (
	NSNoAA  = "ns-noaa." + NSZone  // answers without the AA bit: lame
	NSStale = "ns-stale." + NSZone // serves an older copy: the SOA serial one lower
	NSXfr   = "ns-xfr." + NSZone   // transfers its zones (AXFR) to anyone
	// NSLapsed is a name server under a domain that does not exist.
	NSLapsed = "ns1.lab-lapsed-dns.nhs.uk"
)

// hygieneServers are the behaviours, in address order (127.9.0.1, …: off
// the 127.1/16 of the lab's hosts, so no host moves).
var hygieneServers = []hygieneServer{{name: NSNoAA, noAA: true}, {name: NSStale, stale: true}, {name: NSXfr, open: true}}

type hygieneServer struct {
	name              string
	noAA, stale, open bool
}

// hygieneProviderZones are hosting providers' zones the lab DNS answers
// for, so that an alias into them resolves or is NXDOMAIN, not refused.
var hygieneProviderZones = []string{"azurewebsites.net", "amazonaws.com"}

// hygieneLab is the family's part of a running lab: its name servers and
// the registrations the RDAP service serves.
type hygieneLab struct {
	mu   sync.Mutex
	ns   map[netip.Addr]*dnstest.Server
	rdap map[string]rdapProfile // registrable domain → its registration
}

// server returns the address of the DNS server behind a hygiene name
// server's address ("" for any other address).
func (h *hygieneLab) server(ip netip.Addr) string {
	if h == nil {
		return ""
	}
	if s := h.ns[ip]; s != nil {
		return s.Addr
	}
	return ""
}

func (h *hygieneLab) close() {
	if h == nil {
		return
	}
	for _, s := range h.ns {
		s.Close()
	}
}

// startHygiene adds what the family's cases need to the running lab DNS
// (the providers' zones, the name servers' addresses), starts one DNS
// server per behaviour with a copy of the zones that name it, and starts
// the RDAP service.
func (l *Lab) startHygiene(records []string) error {
	h := &hygieneLab{ns: map[netip.Addr]*dnstest.Server{}}
	l.hygiene = h
	l.dns.AddZones(hygieneProviderZones...)
	// The zones whose NS records name one of the family's name servers,
	// and their records (every record at or below the apex).
	apexes := map[string][]string{} // name server → the apexes naming it
	byZone := map[string][]string{} // apex (canonical) → its records
	for _, r := range records {
		if o, t := ownerType(r); t == "NS" {
			f := strings.Fields(r)
			ns := strings.ToLower(strings.TrimSuffix(f[len(f)-1], "."))
			if slices.ContainsFunc(hygieneServers, func(s hygieneServer) bool { return s.name == ns }) && !slices.Contains(apexes[ns], o) {
				apexes[ns] = append(apexes[ns], o)
				byZone[o] = []string{}
			}
		}
	}
	for _, r := range records {
		o, _ := ownerType(r)
		for z := o; z != "." && z != ""; z = z[strings.IndexByte(z, '.')+1:] {
			if recs, ok := byZone[z]; ok {
				byZone[z] = append(recs, r)
				break
			}
		}
	}
	for i, s := range hygieneServers {
		ip := netip.AddrFrom4([4]byte{127, 9, 0, byte(i + 1)})
		if err := l.dns.Add(s.name + ". 300 IN A " + ip.String()); err != nil {
			return fmt.Errorf("lab: dns hygiene: %w", err)
		}
		zones := apexes[s.name]
		srv, err := dnstest.Start(zones)
		if err != nil {
			return fmt.Errorf("lab: dns hygiene: %s: %w", s.name, err)
		}
		h.ns[ip] = srv
		srv.NoAA = s.noAA // before Add: Add's lock orders it before any query
		srv.Latency = l.cfg.Latency
		var copies []string
		for _, z := range zones {
			for _, r := range byZone[z] {
				if s.stale {
					r = hygieneOlder(r)
				}
				copies = append(copies, r)
			}
		}
		if err := srv.Add(copies...); err != nil {
			return fmt.Errorf("lab: dns hygiene: %s: %w", s.name, err)
		}
		if s.open {
			srv.AllowTransfer(zones...)
		}
	}
	return l.startRDAP()
}

// hygieneOlder returns an SOA record with its serial one lower (any other
// record as it is).
func hygieneOlder(r string) string {
	rr, err := dns.NewRR(r)
	if err != nil {
		return r
	}
	if soa, ok := rr.(*dns.SOA); ok {
		soa.Serial--
		return soa.String()
	}
	return r
}

// hygieneWant is the family's truth on one domain: pass unless listed.
type hygieneWant map[string]check.Outcome

func (w hygieneWant) expect(name string) []Expect {
	out := make([]Expect, 0, len(HygieneCheckIDs))
	for _, id := range HygieneCheckIDs {
		o, ok := w[id]
		if !ok {
			o = check.Pass
		}
		out = append(out, Expect{Kind: check.KindDomain, Name: name, CheckID: id, Outcome: o})
	}
	return out
}

// completeHygiene states the family's truth on every domain of another
// family: all pass (the lab's defaults are good), unknown where the
// domain does not exist.
func completeHygiene(d *Domain, c Case, _ Added, _ []Case) {
	d.Expect = append(d.Expect, hygieneHostsExpect(d)...)
	if c.Family == hygieneName {
		return
	}
	w := hygieneWant{}
	if d.Absent {
		for _, id := range HygieneCheckIDs {
			w[id] = check.Unknown
		}
	}
	d.Expect = append(d.Expect, w.expect(d.Name)...)
}

// hygieneChildZone are the records of a zone delegated below a lab domain:
// its SOA (serial 1, as every lab zone's) and NS records naming hosts.
// The lab DNS serves them as it serves every zone; a family name server
// named serves a copy.
func hygieneChildZone(z string, hosts ...string) []string {
	return append([]string{zoneHead(z)[0]}, hygieneNS(z, hosts...)...)
}

// hygieneZoneIDs are the ids whose collectors judge delegated zones
// (check.KindZone) as well as domains.
var hygieneZoneIDs = []string{dnscheck.Wildcard, dnscheck.DanglingNS, dnscheck.LameDelegation, dnscheck.AXFROpen, dnscheck.CAA, dnscheck.DNSSEC}

// hygieneZoneExpect is the truth on a zone delegated below a lab domain:
// pass unless listed, but dns.dnssec warns (no lab child zone is signed)
// and dns.caa passes (no CAA at the zone: the domain's, which every lab
// domain outside the dns family publishes, governs it; RFC 8659 §3).
func hygieneZoneExpect(z string, w hygieneWant) []Expect {
	out := make([]Expect, 0, len(hygieneZoneIDs))
	for _, id := range hygieneZoneIDs {
		o, ok := w[id]
		switch {
		case ok:
		case id == dnscheck.DNSSEC:
			o = check.Warn
		default:
			o = check.Pass
		}
		out = append(out, Expect{Kind: check.KindZone, Name: z, CheckID: id, Outcome: o})
	}
	return out
}

// Zones are the zones delegated below a lab domain that discovery finds:
// the names it records for the domain (www and the CT names, less the
// apex and excluded names) that own NS records.
func (l *Lab) Zones(domain string) []string {
	i, ok := l.byDomain[strings.ToLower(strings.TrimSuffix(domain, "."))]
	if !ok {
		return nil
	}
	d := l.domains[i]
	names := map[string]bool{"www." + d.Name: true}
	for _, n := range d.CT {
		names[strings.TrimPrefix(strings.ToLower(strings.TrimSuffix(n, ".")), "*.")] = true
	}
	var out []string
	for _, r := range d.Records {
		o, t := ownerType(r)
		o = strings.TrimSuffix(o, ".")
		if t == "NS" && names[o] && under(o, d.Name) && o != d.Name && !slices.Contains(d.Exclude, o) && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// hygieneHostsExpect states dns.caa and dns.wildcard on the web hosts of
// a domain: the hosts every family (this one is completed last) states
// truth for. dns.caa: no lab host has CAA records of its own, and none is
// an alias of a name that has (mail.<d> is an alias of the lab MX), so the
// climb from the host's parent reaches the domain's records: the domain's
// verdict (RFC 8659 §3). dns.wildcard: a random name under the host does
// not exist, since no lab host has a wildcard below it and a wildcard of
// the domain does not cover names under an existing host (RFC 4592 §2.2.1:
// the host is the closest encloser). A host whose name the lab DNS drops
// is unknown.
func hygieneHostsExpect(d *Domain) []Expect {
	caa := check.Outcome("")
	var hosts []string
	for _, e := range d.Expect {
		switch {
		case e.Kind == check.KindDomain && e.Name == d.Name && e.CheckID == dnscheck.CAA:
			caa = e.Outcome
		case e.Kind == check.KindHost && !slices.Contains(hosts, e.Name):
			hosts = append(hosts, e.Name)
		}
	}
	var out []Expect
	for _, h := range hosts {
		wc, hc := check.Pass, caa
		if slices.ContainsFunc(d.Drop, func(n string) bool { return strings.EqualFold(strings.TrimSuffix(n, "."), h) }) {
			wc, hc = check.Unknown, check.Unknown
		}
		out = append(out, Expect{Kind: check.KindHost, Name: h, CheckID: dnscheck.Wildcard, Outcome: wc})
		if hc != "" {
			out = append(out, Expect{Kind: check.KindHost, Name: h, CheckID: dnscheck.CAA, Outcome: hc})
		}
	}
	return out
}

// hygieneNS are the zone's NS records naming hosts.
func hygieneNS(d string, hosts ...string) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, rr(d, "NS", h+"."))
	}
	return out
}

// hygieneLabel is the first label of a stamped zone (lab-<case>[-n]): a
// name unique to the stamp at a hosting provider.
func hygieneLabel(d string) string { l, _, _ := strings.Cut(d, "."); return l }

// hygieneCases are the DNS hygiene behaviours (checks.md §1.5; §3.3
// decisions 16 and 17). Registrations are in rdapProfiles (rdap.go).
func hygieneCases() []Case {
	c := func(name string, w hygieneWant, records func(d string) []string) Case {
		return Case{Name: name, Build: func(d string) Domain {
			return Domain{Name: d, Records: records(d), Expect: w.expect(d)}
		}}
	}
	none := func(string) []string { return nil }
	return []Case{
		// A wildcard A record (a sinkhole address, so discovery keeps no
		// made-up host): banned under nhs.uk, fail.
		c("dns-wildcard-a", hygieneWant{dnscheck.Wildcard: check.Fail}, func(d string) []string {
			return []string{rr("*."+d, "A", "0.0.0.0")}
		}),
		// A wildcard TXT that only protects (v=spf1 -all): exempt. An
		// explicit _domainkey name keeps DKIM selectors out of it.
		c("dns-wildcard-txt", hygieneWant{}, func(d string) []string {
			return []string{txt("*."+d, "v=spf1 -all"), txt("_domainkey."+d, "o=~")}
		}),
		// www is an alias of a name that does not exist.
		c("dns-cname-dangling", hygieneWant{dnscheck.DanglingCNAME: check.Fail}, func(d string) []string {
			return []string{rr("www."+d, "CNAME", "retired-site."+d+".")}
		}),
		// www is an alias of an Azure web app name nobody holds: whoever
		// creates it serves www (critical).
		c("dns-cname-takeover", hygieneWant{dnscheck.DanglingCNAME: check.Fail}, func(d string) []string {
			return []string{rr("www."+d, "CNAME", hygieneLabel(d)+".azurewebsites.net.")}
		}),
		// A subdomain only CT lists (discovery drops it as a host: it does
		// not resolve) is an alias of an Azure web app name nobody holds:
		// the domain's dns.dangling-cname follows every discovered name.
		{Name: "dns-cname-ct-takeover", Build: func(d string) Domain {
			n := "legacy-app." + d
			return Domain{Name: d, CT: []string{n}, Records: []string{rr(n, "CNAME", hygieneLabel(d)+"-legacy.azurewebsites.net.")},
				Expect: hygieneWant{dnscheck.DanglingCNAME: check.Fail}.expect(d)}
		}},
		// A CT-only subdomain that is an alias of a lab name that does not
		// exist (high).
		{Name: "dns-cname-ct-dangling", Build: func(d string) Domain {
			n := "intranet." + d
			return Domain{Name: d, CT: []string{n}, Records: []string{rr(n, "CNAME", "retired-intranet."+d+".")},
				Expect: hygieneWant{dnscheck.DanglingCNAME: check.Fail}.expect(d)}
		}},
		// www is an alias of an S3 bucket that exists (outside the scope):
		// the page is not fetched, the verdict rests on DNS: pass.
		c("dns-cname-provider", hygieneWant{}, func(d string) []string {
			b := hygieneLabel(d) + ".s3.amazonaws.com"
			return []string{rr("www."+d, "CNAME", b+"."), rr(b, "A", OutsideIP)}
		}),
		// A name server whose name does not resolve (no address in the
		// zone): dangling, and lame beside ns1, which answers.
		c("dns-ns-unresolved", hygieneWant{dnscheck.DanglingNS: check.Fail, dnscheck.LameDelegation: check.Fail}, func(d string) []string {
			return hygieneNS(d, NS1, "ns-gone."+d)
		}),
		// A name server under a domain that does not exist: whoever
		// registers lab-lapsed-dns.nhs.uk answers for the zone (critical).
		c("dns-ns-unregistered", hygieneWant{dnscheck.DanglingNS: check.Fail, dnscheck.LameDelegation: check.Fail}, func(d string) []string {
			return hygieneNS(d, NS1, NSLapsed)
		}),
		// A name server that answers without the AA bit.
		c("dns-lame-noaa", hygieneWant{dnscheck.LameDelegation: check.Fail}, func(d string) []string {
			return hygieneNS(d, NS1, NSNoAA)
		}),
		// A name server with an older copy of the zone.
		c("dns-lame-serial", hygieneWant{dnscheck.LameDelegation: check.Fail}, func(d string) []string {
			return hygieneNS(d, NS1, NSStale)
		}),
		// One name server only.
		c("dns-single-ns", hygieneWant{dnscheck.LameDelegation: check.Fail}, func(d string) []string {
			return hygieneNS(d, NS1)
		}),
		// A name server that transfers the zone to anyone.
		c("dns-axfr-open", hygieneWant{dnscheck.AXFROpen: check.Fail}, func(d string) []string {
			return hygieneNS(d, NS1, NSXfr)
		}),
		// A child zone, dept.<d>, delegated to ns1 and to a name server that
		// transfers it to anyone, and listed in CT: discovery finds the
		// zone cut (a KindZone asset), whose dns.axfr-open fails; the
		// domain passes.
		{Name: "dns-zone-axfr-open", Build: func(d string) Domain {
			z := "dept." + d
			return Domain{Name: d, CT: []string{z}, Records: hygieneChildZone(z, NS1, NSXfr),
				Expect: append(hygieneWant{}.expect(d), hygieneZoneExpect(z, hygieneWant{dnscheck.AXFROpen: check.Fail})...)}
		}},
		// A healthy child zone on the lab's own name servers: every check
		// passes on it (unsigned: dns.dnssec warns, as on every unsigned
		// lab zone).
		{Name: "dns-zone-delegated", Build: func(d string) Domain {
			z := "dept." + d
			return Domain{Name: d, CT: []string{z}, Records: hygieneChildZone(z, NS1, NS2),
				Expect: append(hygieneWant{}.expect(d), hygieneZoneExpect(z, hygieneWant{})...)}
		}},
		// Registrations (rdap.go): 20 days left, expired, not locked.
		c("dns-expiring", hygieneWant{dnscheck.DomainExpiry: check.Warn}, none),
		c("dns-expired", hygieneWant{dnscheck.DomainExpiry: check.Fail}, none),
		c("dns-unlocked", hygieneWant{dnscheck.RegistrarLock: check.Fail}, none),
	}
}
