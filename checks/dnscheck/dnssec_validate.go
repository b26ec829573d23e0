package dnscheck

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
)

// dnssecAlgorithms are the DNSKEY algorithms validated here: those RFC
// 8624 §3.1 says validators MUST (or, for RSASHA1-NSEC3-SHA1 and
// ECDSAP384SHA384, RECOMMENDED) implement, and which miekg/dns verifies.
var dnssecAlgorithms = map[uint8]bool{
	dns.RSASHA1: true, dns.RSASHA1NSEC3SHA1: true, dns.RSASHA256: true, dns.RSASHA512: true,
	dns.ECDSAP256SHA256: true, dns.ECDSAP384SHA384: true, dns.ED25519: true,
}

// dnssecUnverifiable are algorithms validators implement (RFC 8624 §3.1:
// ED448 RECOMMENDED) that this build cannot verify: a zone signed only
// with them is unknown here, not insecure.
var dnssecUnverifiable = map[uint8]bool{dns.ED448: true}

// dnssecDigests are the DS digest types used (RFC 8624 §3.3: SHA-1 and
// SHA-256 MUST, SHA-384 RECOMMENDED; GOST is MAY and not used).
var dnssecDigests = map[uint8]bool{dns.SHA1: true, dns.SHA256: true, dns.SHA384: true}

// dnssecState is the RFC 4035 §4.3 state of the domain's data.
type dnssecState int

const (
	dnssecSecure dnssecState = iota
	dnssecInsecure
	dnssecBogus
	dnssecIndeterminate // could not tell: a failed lookup, the anchors
)

type dnssecVerdict struct {
	state  dnssecState
	msg    string
	reason string // for indeterminate: the error class
}

// dnssecValidator validates recorded answers at one instant.
type dnssecValidator struct {
	at      time.Time
	lookups map[[2]string]*DNSSECLookup
	budget  int
}

func evaluateDNSSEC(in check.In[DNSSECEvidence]) []check.Finding {
	v := dnssecJudge(in.Evidence, Settings.Get(in.Policy).TrustAnchors, in.CollectedAt)
	f := check.Finding{CheckID: DNSSEC, Rule: ruleDNSSEC, Message: v.msg}
	switch v.state {
	case dnssecSecure:
		f.Outcome = check.Pass
	case dnssecInsecure:
		f.Outcome = check.Warn
	case dnssecBogus:
		f.Outcome, f.Severity = check.Fail, check.Critical
	default:
		f.Outcome, f.Reason = check.Unknown, v.reason
	}
	return []check.Finding{f}
}

// dnssecJudge validates the evidence from the closest enclosing anchor.
func dnssecJudge(ev DNSSECEvidence, anchorLines []string, at time.Time) dnssecVerdict {
	unknown := func(reason, format string, a ...any) dnssecVerdict {
		return dnssecVerdict{state: dnssecIndeterminate, reason: reason, msg: fmt.Sprintf(format, a...)}
	}
	if at.IsZero() {
		return unknown(string(check.ErrInternal), "the evidence has no collection time: signatures cannot be judged")
	}
	domain := dns.CanonicalName(ev.Domain)
	anchors := map[string][]dns.RR{}
	for _, s := range anchorLines {
		rr, err := parseAnchor(s)
		if err != nil {
			return unknown(reasonTrustAnchor, "the policy's trust anchor %q does not parse: %v", s, err)
		}
		anchors[rr.Header().Name] = append(anchors[rr.Header().Name], rr)
	}
	anchor := ""
	for owner := range anchors {
		if dns.IsSubDomain(owner, domain) && (anchor == "" || dns.CountLabel(owner) > dns.CountLabel(anchor)) {
			anchor = owner
		}
	}
	if anchor == "" {
		return unknown(reasonTrustAnchor, "no trust anchor of the policy is at or above %s", ev.Domain)
	}
	v := &dnssecValidator{at: at, lookups: map[[2]string]*DNSSECLookup{}, budget: dnssecMaxVerify}
	for i := range ev.Lookups {
		l := &ev.Lookups[i]
		v.lookups[[2]string{dns.CanonicalName(l.Name), strings.ToUpper(l.Type)}] = l
	}
	return v.walk(domain, anchor, anchors[anchor])
}

// get returns the recorded lookup of name/type, or a verdict saying why
// it cannot be used.
func (v *dnssecValidator) get(name string, t uint16) (*DNSSECLookup, *dnssecVerdict) {
	l := v.lookups[[2]string{name, dns.TypeToString[t]}]
	if l == nil {
		return nil, &dnssecVerdict{state: dnssecIndeterminate, reason: string(check.ErrTimeout),
			msg: fmt.Sprintf("%s %s was not asked (an earlier lookup timed out): the chain cannot be followed", nm(name), dns.TypeToString[t])}
	}
	if l.Error != "" {
		reason := l.Class
		if reason == "" {
			reason = string(check.ErrOther)
		}
		return nil, &dnssecVerdict{state: dnssecIndeterminate, reason: reason,
			msg: fmt.Sprintf("the %s lookup at %s failed (%s): the chain cannot be followed", l.Type, nm(name), l.Error)}
	}
	return l, nil
}

// rrset parses a lookup's records: the RRset of type t at name, and the
// RRSIGs over it. Records that do not parse or belong elsewhere are
// skipped (the collector kept only those); the bounds hold again.
func rrset(l *DNSSECLookup, name string, t uint16) (set []dns.RR, sigs []*dns.RRSIG) {
	for _, s := range l.Records {
		rr, err := dns.NewRR(s)
		if err != nil || rr == nil || rr.Header().Class != dns.ClassINET || dns.CanonicalName(rr.Header().Name) != name {
			continue
		}
		rr.Header().Name = name
		switch r := rr.(type) {
		case *dns.RRSIG:
			if r.TypeCovered == t && len(sigs) < dnssecMaxSigs {
				sigs = append(sigs, r)
			}
		default:
			// A record served twice counts once (RFC 4034 §6.3).
			dup := slices.ContainsFunc(set, func(o dns.RR) bool { return dns.IsDuplicate(o, rr) })
			if rr.Header().Rrtype == t && !dup && len(set) < dnssecMaxRRset {
				set = append(set, rr)
			}
		}
	}
	return set, sigs
}

func bogus(format string, a ...any) dnssecVerdict {
	return dnssecVerdict{state: dnssecBogus, msg: fmt.Sprintf(format, a...)}
}

// walk follows the chain from the anchor's zone down to the zone that
// holds domain (RFC 4035 §5): at each name below, a DS in the current
// zone makes a secure cut, an SOA with no DS an insecure one, and a name
// with neither is inside the current zone.
func (v *dnssecValidator) walk(domain, anchor string, anchorRRs []dns.RR) dnssecVerdict {
	keys, verdict := v.anchorKeys(anchor, anchorRRs)
	if verdict != nil {
		return *verdict
	}
	zone := anchor
	chain := []string{fmt.Sprintf("the trust anchor for %s", nm(anchor))}
	labels := dns.CountLabel(anchor)
	path := dnssecPath(domain)
	for _, n := range path[labels+1:] {
		dsl, bad := v.get(n, dns.TypeDS)
		if bad != nil {
			return *bad
		}
		dsSet, dsSigs := rrset(dsl, n, dns.TypeDS)
		if len(dsSet) == 0 {
			soal, bad := v.get(n, dns.TypeSOA)
			if bad != nil {
				return *bad
			}
			if soa, _ := rrset(soal, n, dns.TypeSOA); len(soa) == 0 {
				continue // inside zone
			}
			return v.insecure(n, zone, domain)
		}
		if p := v.verify(dsSet, dsSigs, zone, keys); p != nil {
			if p.state == dnssecIndeterminate {
				return *p
			}
			return bogus("the DS records of %s in %s do not validate: %s. Validating resolvers refuse every name in %s", nm(n), nm(zone), p.msg, nm(n))
		}
		var usable []*dns.DS
		var algs []string
		unverifiable := false
		for _, rr := range dsSet {
			ds := rr.(*dns.DS)
			algs = append(algs, fmt.Sprintf("%s/digest %d", algName(ds.Algorithm), ds.DigestType))
			unverifiable = unverifiable || dnssecUnverifiable[ds.Algorithm]
			if dnssecAlgorithms[ds.Algorithm] && dnssecDigests[ds.DigestType] {
				usable = append(usable, ds)
			}
		}
		if len(usable) == 0 {
			if unverifiable {
				return dnssecVerdict{state: dnssecIndeterminate, reason: "unsupported-algorithm",
					msg: fmt.Sprintf("the DS records of %s use %s, which this validator does not implement", nm(n), strings.Join(algs, ", "))}
			}
			return dnssecVerdict{state: dnssecInsecure, msg: fmt.Sprintf(
				"the DS records of %s use only algorithms or digests validators do not use (%s; RFC 8624): validators treat the zone as unsigned (RFC 4035 §5.2). Re-sign with ECDSAP256SHA256 (13) and publish a SHA-256 DS",
				nm(n), strings.Join(algs, ", "))}
		}
		kl, bad := v.get(n, dns.TypeDNSKEY)
		if bad != nil {
			return *bad
		}
		keySet, keySigs := rrset(kl, n, dns.TypeDNSKEY)
		if len(keySet) == 0 {
			return bogus("%s has a DS record in %s (key tag %s) but serves no DNSKEY records: validating resolvers refuse every name in %s", nm(n), nm(zone), dsTags(usable), nm(n))
		}
		sep := matchDS(usable, keySet)
		if len(sep) == 0 {
			return bogus("no DNSKEY of %s matches its DS records in %s (DS key tags %s; DNSKEY key tags %s): the DS is for another key or its digest is wrong. Validating resolvers refuse every name in %s",
				nm(n), nm(zone), dsTags(usable), keyTags(keySet), nm(n))
		}
		if p := v.verify(keySet, keySigs, n, sep); p != nil {
			if p.state == dnssecIndeterminate {
				return *p
			}
			return bogus("the DNSKEY records of %s are not validly signed by the key its DS names (key tag %s): %s. Validating resolvers refuse every name in %s", nm(n), keyTags(sep), p.msg, nm(n))
		}
		zone, keys = n, zoneKeys(keySet)
		chain = append(chain, fmt.Sprintf("the DS of %s (key tag %s)", nm(n), keyTags(sep)))
	}
	soal, bad := v.get(zone, dns.TypeSOA)
	if bad != nil {
		return *bad
	}
	soa, soaSigs := rrset(soal, zone, dns.TypeSOA)
	if len(soa) == 0 {
		return dnssecVerdict{state: dnssecIndeterminate, reason: string(check.ErrDNS), msg: fmt.Sprintf("the zone %s that holds %s served no SOA record", nm(zone), nm(domain))}
	}
	if p := v.verify(soa, soaSigs, zone, keys); p != nil {
		if p.state == dnssecIndeterminate {
			return *p
		}
		return bogus("the SOA record of %s is not validly signed: %s. Validating resolvers refuse every name in %s", nm(zone), p.msg, nm(zone))
	}
	return dnssecVerdict{state: dnssecSecure, msg: fmt.Sprintf("DNSSEC validates for %s: from %s to the signed SOA of %s (signed with %s)",
		nm(domain), strings.Join(chain, " through "), nm(zone), algNames(keys))}
}

// insecure explains an insecure delegation at cut.
func (v *dnssecValidator) insecure(cut, parent, domain string) dnssecVerdict {
	where := nm(cut)
	if cut != domain {
		where = fmt.Sprintf("%s (the zone that holds %s)", nm(cut), nm(domain))
	}
	msg := fmt.Sprintf("%s is not signed: its parent zone %s has no DS record for it (an insecure delegation), so validating resolvers cannot authenticate its answers", where, nm(parent))
	if kl := v.lookups[[2]string{cut, "DNSKEY"}]; kl != nil && kl.Error == "" {
		if keys, _ := rrset(kl, cut, dns.TypeDNSKEY); len(keys) > 0 {
			msg = fmt.Sprintf("%s publishes DNSKEY records (key tags %s) but its parent zone %s has no DS record for them: the chain of trust is broken at the registrar, so validators treat it as unsigned. Publish the DS of the key-signing key at the registrar",
				where, keyTags(keys), nm(parent))
		}
	}
	return dnssecVerdict{state: dnssecInsecure, msg: msg}
}

// anchorKeys validates the anchor zone's DNSKEY RRset from the anchors
// (DS records matching a served key, or the DNSKEYs themselves) and
// returns its zone keys. An anchor that validates nothing is a problem of
// the configuration, not of the domain: unknown, reason trust-anchor.
func (v *dnssecValidator) anchorKeys(zone string, anchors []dns.RR) ([]*dns.DNSKEY, *dnssecVerdict) {
	kl, bad := v.get(zone, dns.TypeDNSKEY)
	if bad != nil {
		return nil, bad
	}
	keySet, keySigs := rrset(kl, zone, dns.TypeDNSKEY)
	var ds []*dns.DS
	var trusted []*dns.DNSKEY
	for _, a := range anchors {
		switch r := a.(type) {
		case *dns.DS:
			if dnssecAlgorithms[r.Algorithm] && dnssecDigests[r.DigestType] {
				ds = append(ds, r)
			}
		case *dns.DNSKEY:
			if dnssecAlgorithms[r.Algorithm] && r.Flags&dns.REVOKE == 0 {
				k := *r
				k.Hdr.Name = zone
				trusted = append(trusted, &k)
			}
		}
	}
	trusted = append(trusted, matchDS(ds, keySet)...)
	fail := func(format string, a ...any) *dnssecVerdict {
		return &dnssecVerdict{state: dnssecIndeterminate, reason: reasonTrustAnchor,
			msg: fmt.Sprintf(format, a...) + ": check the trust anchors (--trust-anchor, dns.trust_anchors)"}
	}
	if len(keySet) == 0 {
		return nil, fail("the trust anchor's zone %s served no DNSKEY records", nm(zone))
	}
	if len(keySigs) == 0 {
		// The anchor zone's keys are always signed: an answer without
		// RRSIGs comes from a resolver that drops DNSSEC data, and then no
		// zone below can be judged (never bogus for it).
		return nil, &dnssecVerdict{state: dnssecIndeterminate, reason: string(ErrNoDNSSECResolver),
			msg: fmt.Sprintf("the resolver returned the DNSKEY records of %s without their signatures: it does not pass DNSSEC data (DO), so no signature can be checked; use a resolver that does (--resolver)", nm(zone))}
	}
	if len(trusted) == 0 {
		return nil, fail("no DNSKEY of %s (key tags %s) matches the trust anchors for it", nm(zone), keyTags(keySet))
	}
	if p := v.verify(keySet, keySigs, zone, trusted); p != nil {
		if p.reason == string(check.ErrTooLarge) {
			return nil, p
		}
		return nil, fail("the DNSKEY records of %s do not validate from its trust anchors: %s", nm(zone), p.msg)
	}
	return zoneKeys(keySet), nil
}

// zoneKeys are the keys of a DNSKEY RRset that may sign the zone's data:
// zone keys of protocol 3, not revoked (RFC 4034 §2.1.1, RFC 5011 §2.1).
func zoneKeys(set []dns.RR) []*dns.DNSKEY {
	var out []*dns.DNSKEY
	for _, rr := range set {
		k := rr.(*dns.DNSKEY)
		if k.Flags&dns.ZONE != 0 && k.Flags&dns.REVOKE == 0 && k.Protocol == 3 {
			out = append(out, k)
		}
	}
	return out
}

// matchDS returns the zone keys of set that a DS names: same key tag and
// algorithm, and the DS digest of the key equals the DS's (RFC 4035 §5.2).
func matchDS(dss []*dns.DS, set []dns.RR) []*dns.DNSKEY {
	var out []*dns.DNSKEY
	for _, k := range zoneKeys(set) {
		tag := k.KeyTag()
		for _, ds := range dss {
			if ds.KeyTag != tag || ds.Algorithm != k.Algorithm {
				continue
			}
			if d := k.ToDS(ds.DigestType); d != nil && strings.EqualFold(d.Digest, ds.Digest) {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// verify checks that one of sigs is a valid signature over set by one of
// keys, made by signer, current at v.at (RFC 4035 §5.3). nil: it is. The
// problem returned explains the most telling failure: a signature that
// verifies but is out of its validity window, then one that does not
// verify, then one by a key not in the set.
func (v *dnssecValidator) verify(set []dns.RR, sigs []*dns.RRSIG, signer string, keys []*dns.DNSKEY) *dnssecVerdict {
	if len(sigs) == 0 {
		return &dnssecVerdict{state: dnssecBogus, msg: "they carry no RRSIG"}
	}
	var window, invalid, otherKey, otherSigner []string
	var algorithm []uint8
	for _, sig := range sigs {
		if dns.CanonicalName(sig.SignerName) != signer {
			otherSigner = append(otherSigner, fmt.Sprintf("signed by %s, not by the zone %s", sig.SignerName, nm(signer)))
			continue
		}
		if !dnssecAlgorithms[sig.Algorithm] {
			algorithm = append(algorithm, sig.Algorithm)
			continue
		}
		tried := 0
		for _, k := range keys {
			if k.Algorithm != sig.Algorithm || k.KeyTag() != sig.KeyTag || tried == dnssecKeysPerSig {
				continue
			}
			tried++
			if v.budget == 0 {
				return &dnssecVerdict{state: dnssecIndeterminate, reason: string(check.ErrTooLarge),
					msg: fmt.Sprintf("more than %d signature verifications were needed: the answers are built to exhaust validators (colliding key tags)", dnssecMaxVerify)}
			}
			v.budget--
			if err := sig.Verify(k, set); err != nil {
				invalid = append(invalid, fmt.Sprintf("the RRSIG by key tag %d does not verify", sig.KeyTag))
				continue
			}
			if !sig.ValidityPeriod(v.at) {
				window = append(window, sigWindow(sig, v.at))
				continue
			}
			return nil
		}
		if tried == 0 {
			otherKey = append(otherKey, fmt.Sprintf("the RRSIG is by key tag %d (%s), which is not among the keys that may sign them (key tags %s)",
				sig.KeyTag, algName(sig.Algorithm), keyTags(keys)))
		}
	}
	for _, reasons := range [][]string{window, invalid, otherKey, otherSigner} {
		if len(reasons) > 0 {
			return &dnssecVerdict{state: dnssecBogus, msg: strings.Join(dedupe(reasons), "; ")}
		}
	}
	// Only signatures of algorithms not validated here.
	var names []string
	for _, a := range algorithm {
		if dnssecUnverifiable[a] {
			return &dnssecVerdict{state: dnssecIndeterminate, reason: "unsupported-algorithm", msg: fmt.Sprintf("they are signed only with %s, which this validator does not implement", algName(a))}
		}
		names = append(names, algName(a))
	}
	return &dnssecVerdict{state: dnssecBogus, msg: fmt.Sprintf("they are signed only with %s, an algorithm validators do not accept", strings.Join(dedupe(names), ", "))}
}

func sigWindow(sig *dns.RRSIG, at time.Time) string {
	inc, exp := sigTime(sig.Inception, at), sigTime(sig.Expiration, at)
	if at.Before(inc) {
		return fmt.Sprintf("the RRSIG by key tag %d is not valid until %s (scanned %s)", sig.KeyTag, inc.Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("the RRSIG by key tag %d expired on %s (scanned %s)", sig.KeyTag, exp.Format(time.RFC3339), at.UTC().Format(time.RFC3339))
}

// sigTime reads an RRSIG time (seconds mod 2^32, RFC 4034 §3.1.5) as the
// instant closest to at.
func sigTime(t uint32, at time.Time) time.Time {
	const span = int64(1) << 32
	now := at.Unix()
	s := int64(t) + ((now-int64(t))/span)*span
	if d := s - now; d > span/2 {
		s -= span
	} else if d < -span/2 {
		s += span
	}
	return time.Unix(s, 0).UTC()
}

func algName(a uint8) string {
	if s, ok := dns.AlgorithmToString[a]; ok {
		return fmt.Sprintf("%s (%d)", s, a)
	}
	return fmt.Sprintf("algorithm %d", a)
}

func algNames(keys []*dns.DNSKEY) string {
	var out []string
	for _, k := range keys {
		out = append(out, algName(k.Algorithm))
	}
	return strings.Join(dedupe(out), ", ")
}

func dsTags(dss []*dns.DS) string {
	var out []int
	for _, d := range dss {
		out = append(out, int(d.KeyTag))
	}
	return joinTags(out)
}

func keyTags(set any) string {
	var out []int
	switch s := set.(type) {
	case []dns.RR:
		for _, rr := range s {
			if k, ok := rr.(*dns.DNSKEY); ok {
				out = append(out, int(k.KeyTag()))
			}
		}
	case []*dns.DNSKEY:
		for _, k := range s {
			out = append(out, int(k.KeyTag()))
		}
	}
	return joinTags(out)
}

func joinTags(tags []int) string {
	sort.Ints(tags)
	tags = slices.Compact(tags)
	var s []string
	for _, t := range tags {
		s = append(s, fmt.Sprint(t))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// nm is a name as messages show it: without the trailing dot.
func nm(name string) string {
	if name == "." {
		return "the root"
	}
	return strings.TrimSuffix(name, ".")
}
