package email

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// MXPTR is the catalogue id of the PTR collector.
const MXPTR = "email.mx.ptr"

const rulePTR = "mx-ptr-forward-confirmed"

// Bounds of the PTR collector.
const (
	ptrMaxAddrs = 8 // addresses of one MX host checked
	ptrMaxNames = 4 // PTR names per address followed back
)

// PTREvidence is the MX host's addresses and, for each, its PTR records and
// their forward lookups.
type PTREvidence struct {
	Host string `json:"host"`
	A    Lookup `json:"a"`
	AAAA Lookup `json:"aaaa"`
	// Addrs are the addresses checked (at most ptrMaxAddrs, sorted);
	// Skipped counts the others.
	Addrs   []PTRAddr `json:"addrs,omitempty"`
	Skipped int       `json:"skipped,omitempty"`
}

// PTRAddr is one address of the MX host.
type PTRAddr struct {
	Addr string `json:"addr"`
	// PTR is the lookup at the reverse name; its answers are PTR targets.
	PTR Lookup `json:"ptr"`
	// Names are the PTR targets followed back: A (IPv4) or AAAA (IPv6).
	Names []PTRName `json:"names,omitempty"`
}

// PTRName is one PTR target and its forward lookup.
type PTRName struct {
	Name    string `json:"name"`
	Forward Lookup `json:"forward"`
}

// PTR returns the email.mx.ptr collector.
func PTR() check.Check {
	return check.New(check.Spec[PTREvidence]{
		ID:      "email.mx.ptr",
		Family:  "email",
		Targets: []check.Kind{check.KindMail},
		Policy:  Settings,
		Rules: []check.Meta{{
			ID: MXPTR, Rule: rulePTR, Title: "MX addresses have forward-confirmed PTR records", Severity: check.Low,
			Description: "Every address of the MX host has a PTR record whose name resolves back (A or AAAA) to the same address (forward-confirmed reverse DNS), as receivers expect of servers that send mail. A missing or unconfirmed PTR fails; a lookup that fails is unknown.",
			Remediation: "Ask whoever runs the address (your hosting or mail provider) for a PTR record naming the mail server, and make sure that name's A or AAAA record gives the same address.",
			Standards: []check.Ref{
				{Standard: refGovSGE.Standard, Section: "ensure all email sending services have valid pointer (PTR) records", URL: refGovSGE.URL},
			},
		}},
		Collect:  collectPTR,
		Evaluate: evaluatePTR,
	})
}

func collectPTR(ctx context.Context, env *check.Env, a check.Asset) (PTREvidence, error) {
	r := dnsq.Over(env.DNS)
	host := strings.TrimSuffix(strings.ToLower(a.Name), ".")
	ev := PTREvidence{Host: host}
	ev.A = query(ctx, r, host, dns.TypeA)
	ev.AAAA = query(ctx, r, host, dns.TypeAAAA)
	var addrs []netip.Addr
	for _, l := range []Lookup{ev.A, ev.AAAA} {
		for _, s := range l.Answers {
			if ip, err := netip.ParseAddr(s); err == nil && !slices.Contains(addrs, ip.Unmap()) {
				addrs = append(addrs, ip.Unmap())
			}
		}
	}
	slices.SortFunc(addrs, func(x, y netip.Addr) int { return x.Compare(y) })
	if len(addrs) > ptrMaxAddrs {
		ev.Skipped, addrs = len(addrs)-ptrMaxAddrs, addrs[:ptrMaxAddrs]
	}
	for _, ip := range addrs {
		ev.Addrs = append(ev.Addrs, ptrFollow(ctx, r, ip))
	}
	return ev, nil
}

// ptrFollow looks up the PTR records of ip and each name's address records
// of ip's family.
func ptrFollow(ctx context.Context, r *dnsq.Client, ip netip.Addr) PTRAddr {
	pa := PTRAddr{Addr: ip.String()}
	rev, err := dns.ReverseAddr(ip.String())
	if err != nil {
		pa.PTR = Lookup{Type: "PTR", Error: err.Error(), Class: string(check.ErrInternal)}
		return pa
	}
	pa.PTR = Lookup{Name: strings.TrimSuffix(rev, "."), Type: "PTR"}
	resp, err := r.Query(ctx, rev, dns.TypePTR)
	if err != nil {
		pa.PTR.Error, pa.PTR.Class = err.Error(), string(check.Classify(err))
		return pa
	}
	pa.PTR.Rcode, pa.PTR.Size, pa.PTR.Void = resp.Rcode, resp.Size, resp.Void()
	for _, rr := range resp.Of(dns.TypePTR) {
		name := strings.TrimSuffix(strings.ToLower(rr.(*dns.PTR).Ptr), ".")
		if !slices.Contains(pa.PTR.Answers, name) {
			pa.PTR.Answers = append(pa.PTR.Answers, name)
		}
	}
	t := uint16(dns.TypeA)
	if ip.Is6() {
		t = dns.TypeAAAA
	}
	for _, name := range pa.PTR.Answers[:min(len(pa.PTR.Answers), ptrMaxNames)] {
		n := PTRName{Name: name}
		if _, ok := dns.IsDomainName(name); ok && name != "" {
			n.Forward = query(ctx, r, name, t)
		} else {
			n.Forward = Lookup{Name: name, Type: dns.TypeToString[t], Error: "not a domain name", Class: string(check.ErrMalformed)}
		}
		pa.Names = append(pa.Names, n)
	}
	return pa
}

func evaluatePTR(in check.In[PTREvidence]) []check.Finding {
	ev := in.Evidence
	id, rule := MXPTR, rulePTR
	for _, l := range []Lookup{ev.A, ev.AAAA} {
		// An address of one family is enough to judge it; a failure
		// leaves the other family's addresses unknown.
		if l.failed() {
			return []check.Finding{unknown(id, rule, fmt.Sprintf("the %s lookup of %s failed (%s): its addresses are not all known", l.Type, ev.Host, l.Error), l.Class)}
		}
	}
	if len(ev.Addrs) == 0 {
		return []check.Finding{finding(id, rule, check.NA, ev.Host+" has no address: no PTR to check", "")}
	}
	worst, reason := check.Outcome(""), ""
	var parts []string
	for _, pa := range ev.Addrs {
		o, msg, class := ptrJudge(pa)
		if o == check.Unknown && reason == "" {
			reason = class
		}
		worst = check.Worst(worst, o)
		parts = append(parts, msg)
	}
	msg := strings.Join(parts, "; ")
	if ev.Skipped > 0 {
		msg += fmt.Sprintf("; %d more addresses not checked", ev.Skipped)
	}
	f := finding(id, rule, worst, msg, "")
	if worst == check.Unknown {
		f.Reason, f.Remediation = reason, remedyUnknown
	}
	return []check.Finding{f}
}

// ptrJudge judges one address: its PTR names, and whether one resolves
// back to it.
func ptrJudge(pa PTRAddr) (check.Outcome, string, string) {
	if pa.PTR.failed() {
		return check.Unknown, fmt.Sprintf("%s: the PTR lookup failed (%s)", pa.Addr, pa.PTR.Error), pa.PTR.Class
	}
	if len(pa.PTR.Answers) == 0 {
		return check.Fail, fmt.Sprintf("%s has no PTR record (%s %s)", pa.Addr, pa.PTR.Name, orNoData(pa.PTR.Rcode)), ""
	}
	ip, _ := netip.ParseAddr(pa.Addr)
	var bad []string
	failed := ""
	for _, n := range pa.Names {
		if n.Forward.failed() {
			if failed == "" {
				failed = n.Forward.Class
			}
			bad = append(bad, fmt.Sprintf("%s (lookup failed: %s)", n.Name, n.Forward.Error))
			continue
		}
		for _, s := range n.Forward.Answers {
			if got, err := netip.ParseAddr(s); err == nil && got.Unmap() == ip {
				return check.Pass, fmt.Sprintf("%s has PTR %s, which resolves back to it", pa.Addr, n.Name), ""
			}
		}
		if len(n.Forward.Answers) == 0 {
			bad = append(bad, n.Name+" (no "+n.Forward.Type+" record)")
		} else {
			bad = append(bad, n.Name+" (resolves to "+strings.Join(n.Forward.Answers, ", ")+")")
		}
	}
	if failed != "" {
		return check.Unknown, fmt.Sprintf("%s has PTR %s: not confirmed", pa.Addr, strings.Join(bad, ", ")), failed
	}
	return check.Fail, fmt.Sprintf("%s has PTR %s, which does not resolve back to it (no forward-confirmed reverse DNS)", pa.Addr, strings.Join(bad, ", ")), ""
}

func orNoData(rcode string) string {
	if rcode == "NXDOMAIN" {
		return "does not exist"
	}
	return "has no PTR"
}
