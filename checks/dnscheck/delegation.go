package dnscheck

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// Catalogue ids of the delegation collector.
const (
	DanglingNS     = "dns.dangling-ns"
	LameDelegation = "dns.lame-delegation"
)

const (
	ruleDanglingNS     = "name-servers-resolve"
	ruleLameDelegation = "delegation-consistent"
)

// Where the parent's NS set came from.
const (
	ParentFromParent   = "parent"   // a server of the parent zone answered the delegation
	ParentFromResolver = "resolver" // no parent server could be asked: the resolver's NS set
)

// DelegationEvidence is what the delegation collector saw for the zone a
// domain is in: the zone's NS set from the resolver, the delegation from
// the parent zone's servers when one could be asked, and each name server:
// its addresses, the registrable domain of a name server without one, and
// what it answers when asked directly for the zone's SOA and NS.
type DelegationEvidence struct {
	Domain string `json:"domain"`
	DelegationZone
	ParentZone string `json:"parent_zone,omitempty"`
	// ParentSource says where ParentNS came from (ParentFromParent or
	// ParentFromResolver) and ParentServer which server gave it.
	ParentSource string   `json:"parent_source,omitempty"`
	ParentServer string   `json:"parent_server,omitempty"`
	ParentNS     []string `json:"parent_ns,omitempty"`
	// ParentAsked are the parent zone's servers asked, in order, with
	// what each said (Error: why it could not be asked or did not answer).
	ParentAsked []DelegationAsked  `json:"parent_asked,omitempty"`
	Servers     []DelegationServer `json:"servers,omitempty"`
}

// DelegationAsked is one parent server asked for the delegation.
type DelegationAsked struct {
	Host  string          `json:"host"`
	Reply DelegationReply `json:"reply"`
}

// DelegationServer is one name server of the zone.
type DelegationServer struct {
	Host string `json:"host"`
	// InParent and InZone say which NS sets name it (the parent's, the
	// resolver's); neither: only a server's own NS answer does.
	InParent bool `json:"in_parent,omitempty"`
	InZone   bool `json:"in_zone,omitempty"`
	// Addrs are the A and AAAA lookups of the host.
	Addrs []DelegationLookup `json:"addrs"`
	// Registrable is the host's registrable domain, and RegistrableNS the
	// NS lookup there, made when the host has no address: NXDOMAIN there
	// means anyone may register the domain and answer for the zone.
	Registrable   string            `json:"registrable,omitempty"`
	RegistrableNS *DelegationLookup `json:"registrable_ns,omitempty"`
	// SOA and NS are the server's answers to the zone's SOA and NS,
	// asked directly (nil: not asked, the host has no address).
	SOA *DelegationReply `json:"soa,omitempty"`
	NS  *DelegationReply `json:"ns,omitempty"`
}

// HasAddress reports whether a lookup of the host returned an address.
func (s DelegationServer) HasAddress() bool {
	for _, l := range s.Addrs {
		if len(l.Records) > 0 {
			return true
		}
	}
	return false
}

func (s DelegationServer) addrFailed() *DelegationLookup {
	for i := range s.Addrs {
		if s.Addrs[i].failed() {
			return &s.Addrs[i]
		}
	}
	return nil
}

var refHSCNDelegation = check.Ref{Standard: "NHS England HSCN DNS standards", Section: "Off-infrastructure delegation of sub-domains",
	URL: hscnDNS + "/off-infrastructure-delegation-of-sub-domains"}

const hscnDNS = "https://digital.nhs.uk/services/health-and-social-care-network/hscn-technical-guidance/domain-name-service-dns-guidance/domain-standards-and-guidance"

// Delegation returns the dns.delegation collector (dns.dangling-ns and
// dns.lame-delegation).
func Delegation() check.Check {
	return check.New(check.Spec[DelegationEvidence]{
		ID: "dns.delegation", Family: "dns", Targets: []check.Kind{check.KindDomain, check.KindZone},
		Rules: []check.Meta{{
			ID: DanglingNS, Rule: ruleDanglingNS, Title: "Every name server of the zone resolves", Severity: check.Critical,
			Description: "Every NS host of the zone the domain is in, or of a zone delegated below it (in the parent's delegation or the zone's own NS set) has an address, and the registrable domain of each exists: a name server whose domain has lapsed can be registered by anyone, who then answers for the whole zone (critical); one that merely has no address is high.",
			Remediation: "Remove NS records naming hosts that no longer exist, at the parent (the delegation) and in the zone, or restore the hosts; renew the registration of any name server's domain that has lapsed. For names under nhs.uk, ask NHS England's DNS team to change the delegation.",
			Standards: []check.Ref{
				withSection(refHSCNDelegation, `Off-infrastructure delegation of sub-domains: delegations "can be hi-jacked by malign entities"`),
				{Standard: "security.gov.uk: Protecting public sector domains", Section: "expiring and suspended domains"},
			},
		}, {
			ID: LameDelegation, Rule: ruleLameDelegation, Title: "The delegation is authoritative and consistent", Severity: check.High,
			Description: "Every name server in the parent's and the zone's NS sets answers the zone's SOA with AA=1 and the same serial, the parent's NS set matches what the servers list, and there are at least two. A server that does not answer fails only when another did (otherwise unknown).",
			Remediation: "Make the NS records at the parent and in the zone list the same servers (at least two), each serving the zone authoritatively from the same version; remove servers that no longer answer for it. For names under nhs.uk, the delegation is NHS England's DNS team's to change.",
			Standards: []check.Ref{
				withSection(refHSCNDelegation, `remove delegations "when the third-party provider stops responding to queries"`),
				{Standard: "NHS England HSCN DNS standards", Section: `schedule of activities: "confirm that records … are RFC compliant"`, URL: hscnDNS},
				{Standard: "RFC 1034 (Domain names: concepts and facilities)", Section: "§4.1 at least two name servers", URL: "https://www.rfc-editor.org/rfc/rfc1034", Status: "unverified"},
				{Standard: "RFC 1912 (Common DNS operational and configuration errors)", Section: "lame delegation", URL: "https://www.rfc-editor.org/rfc/rfc1912", Status: "unverified"},
			},
		}},
		Collect:  collectDelegation,
		Evaluate: evaluateDelegation,
		// A dead name server costs two timed-out questions.
		Timeout: 30 * time.Second,
	})
}

func withSection(r check.Ref, section string) check.Ref {
	r.Section = section
	return r
}

func collectDelegation(ctx context.Context, env *check.Env, a check.Asset) (DelegationEvidence, error) {
	ev := DelegationEvidence{Domain: a.Name}
	r := dnsq.Over(env.DNS)
	z, err := delegationFindZone(ctx, r, "dns.delegation", a.Name)
	ev.DelegationZone = z
	if err != nil || z.Zone == "" {
		return ev, err
	}
	delegationParent(ctx, env, r, &ev)

	var hosts []string
	for _, h := range append(slices.Clone(ev.ParentNS), ev.NS...) {
		if !slices.Contains(hosts, h) && len(hosts) < delegationMaxServers {
			hosts = append(hosts, h)
		}
	}
	ev.Servers = delegationProbe(ctx, env, r, ev.Zone, hosts)
	// Servers named only by a server's own NS answer are in the child's
	// set too: probe them as well (within the bound).
	var extra []string
	for _, s := range ev.Servers {
		if s.NS == nil {
			continue
		}
		for _, h := range s.NS.NS {
			if !slices.Contains(hosts, h) && !slices.Contains(extra, h) && len(hosts)+len(extra) < delegationMaxServers {
				extra = append(extra, h)
			}
		}
	}
	ev.Servers = append(ev.Servers, delegationProbe(ctx, env, r, ev.Zone, extra)...)
	for i := range ev.Servers {
		ev.Servers[i].InParent = slices.Contains(ev.ParentNS, ev.Servers[i].Host)
		ev.Servers[i].InZone = slices.Contains(ev.NS, ev.Servers[i].Host)
	}
	return ev, nil
}

// delegationParent finds the delegation as the parent zone's servers give
// it (a referral, or an answer when they serve the child too). The scope
// guard lets DNS checks reach the estate's name servers only, so the
// parent's servers (a registry's, for a zone just below a public suffix)
// are often out of reach: the resolver's NS set then stands for the
// parent's, and the evidence says so.
func delegationParent(ctx context.Context, env *check.Env, r *dnsq.Client, ev *DelegationEvidence) {
	ev.ParentSource, ev.ParentNS = ParentFromResolver, ev.NS
	_, parent, ok := strings.Cut(ev.Zone, ".")
	if !ok || !strings.Contains(parent, ".") {
		return
	}
	pz, err := delegationFindZone(ctx, r, "dns.delegation", parent)
	if err != nil || pz.Zone == "" {
		return
	}
	ev.ParentZone = pz.Zone
	// Two parent servers at most: a parent that drops the questions costs
	// two timed-out questions each.
	for _, h := range pz.NS[:min(len(pz.NS), 2)] {
		rep := delegationAsk(ctx, env, h, ev.Zone, dns.TypeNS)
		ev.ParentAsked = append(ev.ParentAsked, DelegationAsked{Host: h, Reply: rep})
		if rep.Answered() && rep.Rcode == "NOERROR" && len(rep.NS) > 0 {
			ev.ParentSource, ev.ParentServer, ev.ParentNS = ParentFromParent, h, rep.NS
			return
		}
	}
}

// delegationProbe looks up each host's addresses and, when it has one,
// asks it the zone's SOA and NS directly; hosts are probed concurrently.
func delegationProbe(ctx context.Context, env *check.Env, r *dnsq.Client, zone string, hosts []string) []DelegationServer {
	out := make([]DelegationServer, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := DelegationServer{Host: h}
			for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
				l, _ := hygieneLookup(ctx, r, h, t)
				s.Addrs = append(s.Addrs, l)
			}
			if !s.HasAddress() {
				if s.addrFailed() == nil {
					if s.Registrable = Registrable(h); s.Registrable != "" {
						l, _ := hygieneLookup(ctx, r, s.Registrable, dns.TypeNS)
						s.RegistrableNS = &l
					}
				}
				out[i] = s
				return
			}
			soa := delegationAsk(ctx, env, h, zone, dns.TypeSOA)
			s.SOA = &soa
			if soa.Answered() {
				ns := delegationAsk(ctx, env, h, zone, dns.TypeNS)
				s.NS = &ns
			}
			out[i] = s
		}()
	}
	wg.Wait()
	return out
}

func evaluateDelegation(in check.In[DelegationEvidence]) []check.Finding {
	ev := in.Evidence
	if ev.Zone == "" {
		var asked []string
		for _, l := range ev.Lookups {
			asked = append(asked, l.Name)
		}
		msg := fmt.Sprintf("no NS records at %s or the names above it (asked %s): the zone and its name servers cannot be told", ev.Domain, strings.Join(asked, ", "))
		return []check.Finding{
			{CheckID: DanglingNS, Rule: ruleDanglingNS, Outcome: check.Unknown, Message: msg, Reason: string(check.ErrDNS)},
			{CheckID: LameDelegation, Rule: ruleLameDelegation, Outcome: check.Unknown, Message: msg, Reason: string(check.ErrDNS)},
		}
	}
	return []check.Finding{evaluateDanglingNS(ev), evaluateLame(ev)}
}

// hygieneZoneOf says which zone a finding is about, and who runs its DNS.
func hygieneZoneOf(domain, zone string, hosts []string) string {
	s := "zone " + zone
	if zone != domain {
		s = domain + " (in zone " + zone + ")"
	}
	if ops := hygieneOperators(hosts); len(ops) > 0 {
		s += ", name servers run by " + strings.Join(ops, ", ")
	}
	return s
}

func (ev DelegationEvidence) hosts() []string {
	var hs []string
	for _, s := range ev.Servers {
		hs = append(hs, s.Host)
	}
	return hs
}

func evaluateDanglingNS(ev DelegationEvidence) check.Finding {
	f := check.Finding{CheckID: DanglingNS, Rule: ruleDanglingNS}
	where := hygieneZoneOf(ev.Domain, ev.Zone, ev.hosts())
	var lapsed, noAddr, unknown []string
	reason := ""
	for _, s := range ev.Servers {
		switch l := s.addrFailed(); {
		case s.HasAddress():
		case l != nil:
			unknown = append(unknown, fmt.Sprintf("%s (%s)", s.Host, l.Error))
			if reason == "" {
				reason = l.Class
			}
		case s.RegistrableNS != nil && !s.RegistrableNS.failed() && s.RegistrableNS.Rcode == "NXDOMAIN":
			lapsed = append(lapsed, fmt.Sprintf("%s (its domain %s does not exist)", s.Host, s.Registrable))
		default:
			noAddr = append(noAddr, s.Host)
		}
	}
	switch {
	case len(lapsed) > 0:
		f.Outcome, f.Severity = check.Fail, check.Critical
		f.Message = fmt.Sprintf("%s: name servers whose domain is not registered: %s. Whoever registers it answers for the zone", where, strings.Join(lapsed, "; "))
		if len(noAddr) > 0 {
			f.Message += "; name servers with no address: " + strings.Join(noAddr, ", ")
		}
	case len(noAddr) > 0:
		f.Outcome, f.Severity = check.Fail, check.High
		f.Message = fmt.Sprintf("%s: name servers with no address (no A or AAAA): %s", where, strings.Join(noAddr, ", "))
	case len(unknown) > 0:
		f.Outcome, f.Reason = check.Unknown, reason
		f.Message = fmt.Sprintf("%s: the addresses of some name servers could not be looked up: %s", where, strings.Join(unknown, "; "))
	default:
		f.Outcome = check.Pass
		f.Message = fmt.Sprintf("%s: every name server resolves (%s)", where, strings.Join(ev.hosts(), ", "))
	}
	return f
}

func evaluateLame(ev DelegationEvidence) check.Finding {
	f := check.Finding{CheckID: LameDelegation, Rule: ruleLameDelegation}
	where := hygieneZoneOf(ev.Domain, ev.Zone, ev.hosts())
	var problems, silent, notAsked []string
	serials := map[uint32][]string{}
	answered := 0
	reason := ""
	parentName := "the parent zone's servers (" + ev.ParentServer + ")"
	zoneSource := "the resolver"
	if ev.ParentSource != ParentFromParent {
		parentName = "the resolver"
		zoneSource = "the resolver (standing for the parent: no parent server could be asked)"
	}
	otherSets := map[string][]string{}
	var setOrder []string
	if len(ev.ParentNS) < 2 {
		problems = append(problems, fmt.Sprintf("the delegation names %d name server (%s); at least two are needed", len(ev.ParentNS), strings.Join(ev.ParentNS, ", ")))
	}
	if ev.ParentSource == ParentFromParent && !slices.Equal(ev.ParentNS, ev.NS) {
		problems = append(problems, fmt.Sprintf("the parent delegates to %s but the zone's NS records list %s", hygieneSet(ev.ParentNS), hygieneSet(ev.NS)))
	}
	for _, s := range ev.Servers {
		switch {
		case s.SOA == nil:
			silent = append(silent, s.Host+" (no address)")
			continue
		case !s.SOA.Answered() && s.SOA.Class == string(check.ErrScope):
			notAsked = append(notAsked, s.Host)
			continue
		case !s.SOA.Answered():
			silent = append(silent, fmt.Sprintf("%s (%s)", s.Host, s.SOA.Error))
			if reason == "" {
				reason = s.SOA.Class
			}
			continue
		}
		answered++
		switch {
		case s.SOA.Rcode != "NOERROR":
			problems = append(problems, fmt.Sprintf("%s answers %s for the zone", s.Host, s.SOA.Rcode))
			continue
		case !s.SOA.AA:
			problems = append(problems, fmt.Sprintf("%s answers without the authoritative (AA) flag: it does not serve the zone", s.Host))
			continue
		case !s.SOA.HasSOA:
			problems = append(problems, fmt.Sprintf("%s gives no SOA record for the zone", s.Host))
			continue
		}
		serials[s.SOA.Serial] = append(serials[s.SOA.Serial], s.Host)
		if s.NS != nil && s.NS.Answered() && s.NS.Rcode == "NOERROR" && !slices.Equal(s.NS.NS, ev.NS) {
			set := hygieneSet(s.NS.NS)
			if _, ok := otherSets[set]; !ok {
				setOrder = append(setOrder, set)
			}
			otherSets[set] = append(otherSets[set], s.Host)
		}
	}
	// A server whose own NS set differs from the zone's as the resolver
	// gives it (which stands for the parent's when no parent server
	// answered).
	for _, set := range setOrder {
		problems = append(problems, fmt.Sprintf("%s list the zone's name servers as %s, %s as %s", strings.Join(otherSets[set], ", "), set, zoneSource, hygieneSet(ev.NS)))
	}
	if len(serials) > 1 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(serials)) {
			parts = append(parts, fmt.Sprintf("%d at %s", k, strings.Join(serials[k], ", ")))
		}
		problems = append(problems, "the servers serve different versions of the zone (SOA serial "+strings.Join(parts, "; ")+")")
	}
	if answered == 0 {
		f.Outcome, f.Reason = check.Unknown, reason
		if f.Reason == "" && len(notAsked) > 0 {
			f.Reason = string(check.ErrScope)
		}
		f.Message = fmt.Sprintf("%s: no name server could be asked or answered (%s)", where, strings.Join(append(silent, notAsked...), "; "))
		if len(problems) > 0 {
			f.Message += "; " + strings.Join(problems, "; ")
		}
		return f
	}
	if len(silent) > 0 {
		problems = append(problems, "name servers that do not answer while others do (lame): "+strings.Join(silent, "; "))
	}
	if len(problems) > 0 {
		f.Outcome = check.Fail
		f.Message = where + ": " + strings.Join(problems, "; ")
		return f
	}
	var serial uint32
	for k := range serials {
		serial = k
	}
	f.Outcome = check.Pass
	f.Message = fmt.Sprintf("%s: %d name servers (%s) answer authoritatively with SOA serial %d and list the NS set %s gives", where, answered, strings.Join(ev.hosts(), ", "), serial, parentName)
	if len(notAsked) > 0 {
		f.Message += fmt.Sprintf("; not asked (outside the scope): %s", strings.Join(notAsked, ", "))
	}
	return f
}

func hygieneSet(ss []string) string {
	if len(ss) == 0 {
		return "{}"
	}
	return "{" + strings.Join(ss, ", ") + "}"
}
