package lab

import (
	"crypto"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnscheck"
)

// dnssecFamily: dns.dnssec's lab. The lab is a DNSSEC island under its own
// trust anchor at nhs.uk (Lab.Policy carries it): nhs.uk's DNSKEY RRset
// is signed by its key-signing key, the signed cases have a DS in nhs.uk
// signed by nhs.uk's zone-signing key, and every other lab domain has no
// DS, so it is unsigned (warn). Keys are ECDSA P-256 (algorithm 13),
// generated once per process when a lab first needs them; signatures are
// valid from a day before that moment for 90 days, like the lab's
// certificates.
var dnssecFamily = Family{Name: "dnssec", Cases: dnssecCases, Complete: completeDNSSEC}

// dnssecAnchorZone is the lab's trust anchor.
const dnssecAnchorZone = "nhs.uk."

type dnssecLab struct {
	start    time.Time
	ksk, zsk dnssecKey // nhs.uk's
	child    dnssecKey // every signed case's key (a CSK), under its own owner
	other    dnssecKey // a key no zone serves: the DS of ds-mismatch
	// parent are nhs.uk's DNSKEY RRset and its RRSIG, signed once (ECDSA
	// signatures differ each time, and the lab serves one).
	parent []string
	anchor string // the DS of nhs.uk's KSK
}

type dnssecKey struct {
	key  *dns.DNSKEY
	priv crypto.Signer
}

func (k dnssecKey) at(owner string) *dns.DNSKEY {
	c := *k.key
	c.Hdr.Name = dns.CanonicalName(owner)
	return &c
}

var labDNSSEC = sync.OnceValue(func() *dnssecLab {
	l := &dnssecLab{start: time.Now().UTC()}
	gen := func(flags uint16) dnssecKey {
		k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: dnssecAnchorZone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
			Flags: flags, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
		priv, err := k.Generate(256)
		if err != nil {
			panic(fmt.Sprintf("lab: dnssec: generate a P-256 key: %v", err)) // crypto/rand failed
		}
		return dnssecKey{k, priv.(crypto.Signer)}
	}
	l.ksk, l.zsk, l.child, l.other = gen(257), gen(256), gen(257), gen(257)
	keys := []dns.RR{l.ksk.key, l.zsk.key}
	l.parent = append(rrStrings(keys...), l.sign(l.ksk, dnssecAnchorZone, keys, 0).String())
	l.anchor = l.ksk.key.ToDS(dns.SHA256).String()
	return l
})

// sign signs rrs for the zone signer with k. shift moves the validity
// window (a day before the start, for 90 days) by that much.
func (l *dnssecLab) sign(k dnssecKey, signer string, rrs []dns.RR, shift time.Duration) *dns.RRSIG {
	h := rrs[0].Header()
	inc, exp := l.start.Add(-24*time.Hour+shift), l.start.Add(90*24*time.Hour+shift)
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl},
		TypeCovered: h.Rrtype, Algorithm: k.key.Algorithm, Labels: uint8(dns.CountLabel(h.Name)), OrigTtl: h.Ttl,
		Inception: uint32(inc.Unix()), Expiration: uint32(exp.Unix()), KeyTag: k.key.KeyTag(), SignerName: signer}
	if err := sig.Sign(k.priv, rrs); err != nil {
		panic(fmt.Sprintf("lab: dnssec: sign: %v", err)) // only a key of another algorithm fails
	}
	return sig
}

func rrStrings(rrs ...dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, r := range rrs {
		out = append(out, r.String())
	}
	return out
}

// dnssecPolicy returns p with the lab's trust anchor (Lab.Policy).
func dnssecPolicy(p *check.Policy) *check.Policy {
	return dnscheck.WithTrustAnchors(p, []string{labDNSSEC().anchor})
}

// dnssecZone is how a signed case departs from a zone that validates.
type dnssecZone struct {
	expired      bool // the SOA's RRSIG expired before the lab started
	badSignature bool // the SOA's RRSIG was made over another SOA
	dsMismatch   bool // the DS is of a key the zone does not serve
	noDS         bool // keys and signatures, but no DS in nhs.uk (an island)
}

// build returns the zone's records: its SOA and NS, its DNSKEY and RRSIGs,
// the DS in nhs.uk, and nhs.uk's signed DNSKEY RRset (shared by every
// signed case; the lab serves it once).
func (z dnssecZone) build(d string) []string {
	l := labDNSSEC()
	apex := dns.CanonicalName(d)
	head := zoneHead(d)
	soa, err := dns.NewRR(head[0])
	if err != nil {
		panic(fmt.Sprintf("lab: dnssec: SOA %q: %v", head[0], err))
	}
	out := append(append([]string{}, head...), l.parent...)
	key := l.child.at(apex)
	out = append(out, key.String(), l.sign(l.child, apex, []dns.RR{key}, 0).String())
	signed := soa
	if z.badSignature {
		s := *soa.(*dns.SOA)
		s.Serial++
		signed = &s
	}
	shift := time.Duration(0)
	if z.expired {
		shift = -91 * 24 * time.Hour // inception 92 days before the start, expiry a day before
	}
	out = append(out, l.sign(l.child, apex, []dns.RR{signed}, shift).String())
	if z.noDS {
		return out
	}
	dsKey := key
	if z.dsMismatch {
		dsKey = l.other.at(apex)
	}
	ds := dsKey.ToDS(dns.SHA256)
	return append(out, ds.String(), l.sign(l.zsk, dnssecAnchorZone, []dns.RR{ds}, 0).String())
}

func dnssecCases() []Case {
	c := func(name string, o check.Outcome, build func(d string) []string) Case {
		return Case{Name: name, Build: func(d string) Domain {
			return Domain{Name: d, Records: build(d), Expect: []Expect{{Kind: check.KindDomain, Name: d, CheckID: dnscheck.DNSSEC, Outcome: o}}}
		}}
	}
	return []Case{
		// Signed, and the chain from nhs.uk validates.
		c("dnssec-signed", check.Pass, dnssecZone{}.build),
		// The SOA's signature expired: bogus.
		c("dnssec-expired", check.Fail, dnssecZone{expired: true}.build),
		// The SOA's signature does not verify: bogus.
		c("dnssec-bad-signature", check.Fail, dnssecZone{badSignature: true}.build),
		// The DS in nhs.uk names a key the zone does not serve: bogus.
		c("dnssec-ds-mismatch", check.Fail, dnssecZone{dsMismatch: true}.build),
		// Signed, but no DS in the parent: validators treat it as unsigned.
		c("dnssec-island", check.Warn, dnssecZone{noDS: true}.build),
		// Not signed at all (as every other lab domain).
		c("dnssec-unsigned", check.Warn, func(string) []string { return nil }),
	}
}

// completeDNSSEC states dns.dnssec on every lab domain of another family:
// unsigned (no DS in nhs.uk) warns; a domain that does not exist, or whose
// name (or an alias of it) the lab DNS never answers, is unknown.
func completeDNSSEC(d *Domain, c Case, _ Added, _ []Case) {
	if c.Family == "dnssec" {
		return
	}
	o := check.Warn
	if d.Absent || dnssecDropped(d) {
		o = check.Unknown
	}
	d.Expect = append(d.Expect, Expect{Kind: check.KindDomain, Name: d.Name, CheckID: dnscheck.DNSSEC, Outcome: o})
}

// dnssecDropped reports whether the collector's questions at the domain or
// its ancestors below nhs.uk go unanswered: a dropped name, or an alias to
// one (the lab DNS follows CNAMEs).
func dnssecDropped(d *Domain) bool {
	dropped := map[string]bool{}
	for _, n := range d.Drop {
		dropped[strings.ToLower(strings.TrimSuffix(n, "."))] = true
	}
	if len(dropped) == 0 {
		return false
	}
	for n := strings.ToLower(d.Name); n != "nhs.uk" && strings.Contains(n, "."); n = n[strings.Index(n, ".")+1:] {
		if dropped[n] {
			return true
		}
		for _, r := range d.Records {
			if o, t := ownerType(r); t == "CNAME" && o == n+"." {
				f := strings.Fields(r)
				if dropped[strings.ToLower(strings.TrimSuffix(f[len(f)-1], "."))] {
					return true
				}
			}
		}
	}
	return false
}
