package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// DNSSEC is the catalogue id.
const DNSSEC = "dns.dnssec"

const ruleDNSSEC = "dnssec-chain-validates"

// DNSSECLookup is one question asked with the DNSSEC OK bit, as answered.
type DNSSECLookup struct {
	Name  string `json:"name"` // absolute, lower case: "nhs.uk.", "." for the root
	Type  string `json:"type"` // DS, DNSKEY or SOA
	Rcode string `json:"rcode,omitempty"`
	// Records are the answer's RRset of Type at Name and the RRSIGs that
	// cover it, in presentation format, as served.
	Records []string `json:"records,omitempty"`
	// Denial holds, for an empty answer, the authority section's SOA,
	// NSEC and NSEC3 records and their RRSIGs (the proof that nothing
	// exists). Kept as evidence; this version does not judge it.
	Denial []string `json:"denial,omitempty"`
	Error  string   `json:"error,omitempty"`
	Class  string   `json:"class,omitempty"`
}

// DNSSECEvidence is what DNS said, from the root down to the domain: at
// every name on the way, its DS (asked of the parent), its SOA (whether
// the name is a zone apex) and its DNSKEY RRset, each with its RRSIGs.
// Evaluate validates the chain from the trust anchors of the policy at the
// collection time, so a re-evaluation with another anchor needs no network.
type DNSSECEvidence struct {
	Domain  string         `json:"domain"`
	Lookups []DNSSECLookup `json:"lookups"`
}

// Bounds against hostile answers and deep names.
const (
	dnssecMaxNames  = 16 // names on the path from the root (the root included)
	dnssecMaxRRset  = 32 // records of one RRset
	dnssecMaxSigs   = 8  // RRSIGs over one RRset
	dnssecMaxDenial = 8  // authority records kept for an empty answer
	// dnssecMaxVerify bounds the signature verifications of one
	// evaluation: colliding key tags (KeyTrap, CVE-2023-50387) cannot
	// make it expensive.
	dnssecMaxVerify = 64
	// dnssecKeysPerSig bounds the keys one RRSIG is tried against (keys
	// sharing its key tag and algorithm).
	dnssecKeysPerSig = 4
)

// ErrNoDNSSECResolver is the class of evidence collected with a resolver
// that cannot ask with the DNSSEC OK bit.
const ErrNoDNSSECResolver check.ErrClass = "no-dnssec-resolver"

// reasonTrustAnchor is the reason of an unknown verdict that the trust
// anchors cause (stale, or none above the domain): not the domain's fault.
const reasonTrustAnchor = "trust-anchor"

// DNSSECCheck returns the dns.dnssec collector.
func DNSSECCheck() check.Check {
	return check.New(check.Spec[DNSSECEvidence]{
		ID: DNSSEC, Family: "dns", Targets: []check.Kind{check.KindDomain, check.KindZone},
		Rules: []check.Meta{{
			ID: DNSSEC, Rule: ruleDNSSEC, Title: "DNSSEC signs the domain and the chain of trust validates", Severity: check.Medium,
			Description: "The chain of trust from the trust anchor (the root's key-signing keys) down to the domain's zone validates at the time of the scan: " +
				"each DS in the parent is signed and matches a DNSKEY of the child that signs the child's keys, and the zone's SOA carries a valid signature. " +
				"Signed and valid passes; unsigned (no DS in the parent: an insecure delegation) warns; a broken chain (a DS with no matching key, a missing, " +
				"invalid, expired or not yet valid signature) fails as critical, since validating resolvers then refuse every name in the zone.",
			Remediation: "Unsigned: turn on DNSSEC signing at your DNS provider and publish the DS record it gives you at your registrar (for .nhs.uk, through NHS England's DNS team). " +
				"Broken: validating resolvers cannot resolve the zone at all. Re-sign the zone (signatures expire when signing stops), or, if the keys changed, " +
				"publish the DS of the current key-signing key at the registrar; if you cannot fix it quickly, remove the DS at the registrar so the zone is treated as unsigned.",
			Standards: []check.Ref{
				{Standard: "GOV.UK: Use your .gov.uk domain name", Section: "The registry supports DNSSEC and GDS recommends that you consider this", URL: "https://www.gov.uk/guidance/apply-for-a-uk-government-domain-name"},
				{Standard: "GDS Way: Security overview for websites", Section: "§2 Domain Name Registrar, Must Do: Enable DNSSEC if available", URL: "https://gds-way.digital.cabinet-office.gov.uk/manuals/security-overview-for-websites.html"},
				{Standard: "RFC 4035 (DNSSEC protocol modifications)", Section: "§5 Authenticating DNS responses: §5.2 DS to DNSKEY, §5.3 RRSIG checks, §4.3 secure, insecure, bogus", URL: "https://www.rfc-editor.org/rfc/rfc4035", Status: "unverified"},
				{Standard: "RFC 8624 (DNSSEC algorithm implementation requirements)", Section: "§3.1 DNSKEY algorithms, §3.3 DS digest types", URL: "https://www.rfc-editor.org/rfc/rfc8624", Status: "unverified"},
				{Standard: "NCSC CAF v3.2", Section: "B4.c Secure management (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"},
			},
		}},
		Collect:  collectDNSSEC,
		Evaluate: evaluateDNSSEC,
		Policy:   Settings,
	})
}

// dnssecPath is the names from the root down to name (absolute).
func dnssecPath(name string) []string {
	labels := dns.SplitDomainName(name)
	out := []string{"."}
	for i := len(labels) - 1; i >= 0; i-- {
		out = append(out, strings.Join(labels[i:], ".")+".")
	}
	return out
}

func collectDNSSEC(ctx context.Context, env *check.Env, a check.Asset) (DNSSECEvidence, error) {
	ev := DNSSECEvidence{Domain: a.Name}
	if env == nil || env.DNS == nil {
		return ev, check.ErrNoResolver
	}
	x, ok := env.DNS.(dnsq.DNSSECExchanger)
	if !ok {
		return ev, check.WithClass(ErrNoDNSSECResolver, errors.New("dnssec: the resolver cannot ask with the DNSSEC OK bit (it is not a dnsq.Resolver), so the signatures cannot be collected"))
	}
	name := dns.CanonicalName(a.Name)
	if _, ok := dns.IsDomainName(name); !ok {
		return ev, check.WithClass(check.ErrMalformed, fmt.Errorf("dnssec: %q is not a domain name", a.Name))
	}
	path := dnssecPath(name)
	if len(path) > dnssecMaxNames {
		return ev, check.WithClass(check.ErrTooLarge, fmt.Errorf("dnssec: %s has %d labels: at most %d are followed", a.Name, len(path)-1, dnssecMaxNames-1))
	}
	asked := map[[2]string]bool{}
	ask := func(n string, t uint16) (*dns.Msg, error) {
		l := DNSSECLookup{Name: n, Type: dns.TypeToString[t]}
		k := [2]string{n, l.Type}
		m, err := x.ExchangeDNSSEC(ctx, n, t)
		if err != nil {
			l.Error, l.Class = err.Error(), string(check.Classify(err))
		} else {
			l.Rcode = dns.RcodeToString[m.Rcode]
			l.Records, l.Denial, err = dnssecRecords(m, n, t)
			if err != nil {
				l.Error, l.Class = err.Error(), string(check.ErrTooLarge)
			}
		}
		if !asked[k] {
			asked[k] = true
			ev.Lookups = append(ev.Lookups, l)
		}
		return m, err
	}
	// The domain's own SOA first: a domain that does not exist, or whose
	// name server does not answer, ends the collection.
	m, err := ask(name, dns.TypeSOA)
	if err != nil {
		return ev, fmt.Errorf("dnssec: %w", err)
	}
	if m.Rcode == dns.RcodeNameError {
		return ev, check.WithClass(check.ErrNoDomain, fmt.Errorf("dns: %s does not exist in DNS (NXDOMAIN): check the estate file and the domain's registration", a.Name))
	}
	// Then every name from the root down: which names are zone cuts, and
	// each zone's keys. A refusal above the trust anchor (a lab that serves
	// no root) is recorded and does not matter; a timeout ends the walk.
	for _, n := range dnssecPath(name) {
		for _, t := range []uint16{dns.TypeDS, dns.TypeSOA, dns.TypeDNSKEY} {
			if t == dns.TypeDS && n == "." {
				continue // the root has no parent
			}
			if _, err := ask(n, t); err != nil {
				if c := check.Classify(err); c == check.ErrTimeout || c == check.ErrCanceled {
					return ev, nil
				}
			}
		}
	}
	return ev, nil
}

// dnssecRecords keeps, from an answer, the RRset of type t at name and the
// RRSIGs covering it; for an empty answer, the authority section's denial
// records (SOA, NSEC, NSEC3 and their RRSIGs).
func dnssecRecords(m *dns.Msg, name string, t uint16) (records, denial []string, err error) {
	var set, sigs int
	for _, rr := range m.Answer {
		h := rr.Header()
		if !strings.EqualFold(dns.CanonicalName(h.Name), name) {
			continue
		}
		sig, isSig := rr.(*dns.RRSIG)
		switch {
		case h.Rrtype == t:
			set++
		case isSig && sig.TypeCovered == t:
			sigs++
		default:
			continue
		}
		if set > dnssecMaxRRset || sigs > dnssecMaxSigs {
			return nil, nil, fmt.Errorf("dnssec %s %s: more than %d records or %d signatures", dns.TypeToString[t], name, dnssecMaxRRset, dnssecMaxSigs)
		}
		records = append(records, rr.String())
	}
	if len(records) > 0 {
		return records, nil, nil
	}
	for _, rr := range m.Ns {
		switch rr.Header().Rrtype {
		case dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeRRSIG:
			if len(denial) < dnssecMaxDenial {
				denial = append(denial, rr.String())
			}
		}
	}
	return nil, denial, nil
}
