package dnscheck

import (
	"context"
	"crypto"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
)

// now is the collection time of the recorded evidence.
var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type tkey struct {
	key  *dns.DNSKEY
	priv crypto.Signer
}

// keyFor returns a key for owner, with the given flags (257: KSK/CSK, 256:
// ZSK). Key material is generated once per (flags, n) and reused under any
// owner, so the tests stay fast.
var keyCache sync.Map

func keyFor(t testing.TB, owner string, flags uint16, n int) tkey {
	t.Helper()
	type ck struct {
		flags uint16
		n     int
	}
	v, ok := keyCache.Load(ck{flags, n})
	if !ok {
		k := &dns.DNSKEY{Hdr: dns.RR_Header{Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
			Flags: flags, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
		priv, err := k.Generate(256)
		if err != nil {
			t.Fatal(err)
		}
		v, _ = keyCache.LoadOrStore(ck{flags, n}, tkey{k, priv.(crypto.Signer)})
	}
	tk := v.(tkey)
	k := *tk.key
	k.Hdr.Name = owner
	return tkey{&k, tk.priv}
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// sign signs rrs with k for the zone signer, valid from inc to exp.
func sign(t testing.TB, k tkey, signer string, rrs []dns.RR, inc, exp time.Time) *dns.RRSIG {
	t.Helper()
	h := rrs[0].Header()
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl},
		TypeCovered: h.Rrtype, Algorithm: k.key.Algorithm, Labels: uint8(dns.CountLabel(h.Name)), OrigTtl: h.Ttl,
		Expiration: uint32(exp.Unix()), Inception: uint32(inc.Unix()), KeyTag: k.key.KeyTag(), SignerName: signer}
	if err := sig.Sign(k.priv, rrs); err != nil {
		t.Fatal(err)
	}
	return sig
}

// world is a signed tree: the anchor zone nhs.uk (a KSK and a ZSK) and a
// child zone a.nhs.uk (a CSK), recorded as the collector records it. Each
// test case changes one thing.
type world struct {
	t                   testing.TB
	parentKSK, parentZS tkey
	child               tkey
	inc, exp            time.Time // the child's SOA signature window
	dsKey               *dns.DNSKEY
	noDS, noDSSig       bool
	noChildKeys         bool
	childKeysSigner     *tkey // signs the child's DNSKEY RRset (default: child)
	extraChildKey       *tkey
	soaSigner           *tkey // signs the child's SOA (default: child)
	tamperSOA           bool
	unsigned            bool // no DS, no DNSKEY, no RRSIG at the child
	dupSOA              bool // the SOA served twice
	dsAlg               uint8
	lookupErr           map[[2]string]string
	drop                map[[2]string]bool
}

func newWorld(t testing.TB) *world {
	w := &world{t: t, parentKSK: keyFor(t, "nhs.uk.", 257, 0), parentZS: keyFor(t, "nhs.uk.", 256, 0),
		child: keyFor(t, "a.nhs.uk.", 257, 1), inc: now.Add(-24 * time.Hour), exp: now.Add(30 * 24 * time.Hour)}
	return w
}

func (w *world) set(rrs ...dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

func (w *world) lookup(name, typ string, rrs ...dns.RR) DNSSECLookup {
	k := [2]string{name, typ}
	if msg, ok := w.lookupErr[k]; ok {
		return DNSSECLookup{Name: name, Type: typ, Error: msg, Class: "dns"}
	}
	return DNSSECLookup{Name: name, Type: typ, Rcode: "NOERROR", Records: w.set(rrs...)}
}

// anchor is the DS of nhs.uk's KSK.
func (w *world) anchor() []string { return []string{w.parentKSK.key.ToDS(dns.SHA256).String()} }

func (w *world) evidence(domain string) DNSSECEvidence {
	t := w.t
	good := func() (time.Time, time.Time) { return now.Add(-24 * time.Hour), now.Add(30 * 24 * time.Hour) }
	in, ex := good()
	pKeys := []dns.RR{w.parentKSK.key, w.parentZS.key}
	pSOA := mustRR(t, "nhs.uk. 3600 IN SOA ns1.nhs.uk. h.nhs.uk. 1 7200 3600 1209600 300")
	cSOA := mustRR(t, "a.nhs.uk. 3600 IN SOA ns1.nhs.uk. h.a.nhs.uk. 7 7200 3600 1209600 300")
	ev := DNSSECEvidence{Domain: strings.TrimSuffix(domain, ".")}
	add := func(l DNSSECLookup) {
		if !w.drop[[2]string{l.Name, l.Type}] {
			ev.Lookups = append(ev.Lookups, l)
		}
	}
	add(DNSSECLookup{Name: ".", Type: "SOA", Error: "dns SOA .: refused", Class: "dns"})
	add(DNSSECLookup{Name: ".", Type: "DNSKEY", Error: "dns DNSKEY .: refused", Class: "dns"})
	add(w.lookup("uk.", "DS"))
	add(w.lookup("uk.", "SOA"))
	add(w.lookup("uk.", "DNSKEY"))
	add(w.lookup("nhs.uk.", "DS"))
	add(w.lookup("nhs.uk.", "SOA", pSOA, sign(t, w.parentZS, "nhs.uk.", []dns.RR{pSOA}, in, ex)))
	add(w.lookup("nhs.uk.", "DNSKEY", append(pKeys, sign(t, w.parentKSK, "nhs.uk.", pKeys, in, ex))...))

	// The child.
	var ds []dns.RR
	if !w.noDS && !w.unsigned {
		k := w.child.key
		if w.dsKey != nil {
			k = w.dsKey
		}
		d := k.ToDS(dns.SHA256)
		d.Hdr.Name = "a.nhs.uk."
		if w.dsAlg != 0 {
			d.Algorithm = w.dsAlg
		}
		ds = []dns.RR{d}
		if !w.noDSSig {
			ds = append(ds, sign(t, w.parentZS, "nhs.uk.", ds, in, ex))
		}
	}
	add(w.lookup("a.nhs.uk.", "DS", ds...))
	var keys []dns.RR
	if !w.noChildKeys && !w.unsigned {
		set := []dns.RR{w.child.key}
		if w.extraChildKey != nil {
			set = append(set, w.extraChildKey.key)
		}
		signer := w.child
		if w.childKeysSigner != nil {
			signer = *w.childKeysSigner
		}
		keys = append(set, sign(t, signer, "a.nhs.uk.", set, in, ex))
	}
	add(w.lookup("a.nhs.uk.", "DNSKEY", keys...))
	soa := []dns.RR{cSOA}
	if !w.unsigned {
		signer := w.child
		if w.soaSigner != nil {
			signer = *w.soaSigner
		}
		sig := sign(t, signer, "a.nhs.uk.", soa, w.inc, w.exp)
		if w.tamperSOA {
			cSOA.(*dns.SOA).Serial++ // the record served differs from what was signed
		}
		soa = append(soa, sig)
		if w.dupSOA {
			soa = append(soa, cSOA)
		}
	}
	add(w.lookup("a.nhs.uk.", "SOA", soa...))
	if domain == "www.a.nhs.uk." {
		add(w.lookup("www.a.nhs.uk.", "SOA"))
		add(w.lookup("www.a.nhs.uk.", "DS"))
		add(w.lookup("www.a.nhs.uk.", "DNSKEY"))
	}
	return ev
}

func TestEvaluateDNSSECJudgesTheChainOfTrust(t *testing.T) {
	other := keyFor(t, "a.nhs.uk.", 257, 2)
	otherZSK := keyFor(t, "a.nhs.uk.", 256, 3)
	tests := []struct {
		name    string
		domain  string
		mod     func(w *world)
		anchors func(w *world) []string
		want    check.Outcome
		sev     check.Severity
		msg     string
		reason  string
	}{
		{name: "signed and valid", mod: func(*world) {}, want: check.Pass, msg: "DNSSEC validates for a.nhs.uk"},
		{name: "a name inside a signed zone", domain: "www.a.nhs.uk.", mod: func(*world) {}, want: check.Pass, msg: "signed SOA of a.nhs.uk"},
		{name: "a record served twice counts once", mod: func(w *world) { w.dupSOA = true }, want: check.Pass},
		{name: "a DNSKEY trust anchor", mod: func(*world) {}, anchors: func(w *world) []string { return []string{w.parentKSK.key.String()} }, want: check.Pass},
		{name: "unsigned: no DS at the parent", mod: func(w *world) { w.unsigned = true }, want: check.Warn, msg: "has no DS record"},
		{name: "an island: keys but no DS", mod: func(w *world) { w.noDS = true }, want: check.Warn, msg: "publishes DNSKEY records"},
		{name: "only a DS algorithm validators must not use", mod: func(w *world) { w.dsAlg = dns.DSA }, want: check.Warn, msg: "treat the zone as unsigned"},
		{name: "only ED448, which this build cannot verify", mod: func(w *world) { w.dsAlg = dns.ED448 }, want: check.Unknown, reason: "unsupported-algorithm"},
		{name: "expired RRSIG over the SOA", mod: func(w *world) { w.inc, w.exp = now.Add(-60*24*time.Hour), now.Add(-24*time.Hour) },
			want: check.Fail, sev: check.Critical, msg: "expired on 2026-11-30"},
		{name: "RRSIG over the SOA not yet valid", mod: func(w *world) { w.inc, w.exp = now.Add(24*time.Hour), now.Add(60*24*time.Hour) },
			want: check.Fail, sev: check.Critical, msg: "not valid until 2026-12-02"},
		{name: "the SOA signed by a key tag not in the DNSKEY set", mod: func(w *world) { w.soaSigner = &other },
			want: check.Fail, sev: check.Critical, msg: "not among the keys"},
		{name: "the SOA's signature does not verify", mod: func(w *world) { w.tamperSOA = true },
			want: check.Fail, sev: check.Critical, msg: "does not verify"},
		{name: "DS digest matches no key", mod: func(w *world) { w.dsKey = other.key },
			want: check.Fail, sev: check.Critical, msg: "no DNSKEY of a.nhs.uk matches its DS"},
		{name: "DS present, DNSKEY missing", mod: func(w *world) { w.noChildKeys = true },
			want: check.Fail, sev: check.Critical, msg: "serves no DNSKEY records"},
		{name: "DNSKEYs signed by a key not in the DS set", mod: func(w *world) { w.extraChildKey, w.childKeysSigner = &otherZSK, &otherZSK },
			want: check.Fail, sev: check.Critical, msg: "not validly signed by the key its DS names"},
		{name: "the DS RRset unsigned in a signed parent", mod: func(w *world) { w.noDSSig = true },
			want: check.Fail, sev: check.Critical, msg: "carry no RRSIG"},
		{name: "a failed DS lookup is unknown", mod: func(w *world) {
			w.lookupErr = map[[2]string]string{{"a.nhs.uk.", "DS"}: "dns DS a.nhs.uk.: servfail"}
		}, want: check.Unknown, reason: "dns", msg: "DS lookup at a.nhs.uk failed"},
		{name: "a lookup never made (the walk timed out) is unknown", mod: func(w *world) {
			w.drop = map[[2]string]bool{{"a.nhs.uk.", "DNSKEY"}: true}
		}, want: check.Unknown, reason: "timeout"},
		{name: "an anchor that matches no served key is unknown, not the domain's fault", mod: func(*world) {},
			anchors: func(w *world) []string { return []string{keyFor(t, "nhs.uk.", 257, 2).key.ToDS(dns.SHA256).String()} },
			want:    check.Unknown, reason: reasonTrustAnchor, msg: "matches the trust anchors"},
		{name: "the root anchors against a lab that serves no root", mod: func(*world) {},
			anchors: func(*world) []string { return RootAnchors }, want: check.Unknown, reason: "dns", msg: "DNSKEY lookup at the root failed"},
		{name: "no anchor above the domain", mod: func(*world) {},
			anchors: func(w *world) []string { return []string{strings.Replace(w.anchor()[0], "nhs.uk.", "nhs.net.", 1)} },
			want:    check.Unknown, reason: reasonTrustAnchor, msg: "no trust anchor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			tt.mod(w)
			domain := tt.domain
			if domain == "" {
				domain = "a.nhs.uk."
			}
			anchors := w.anchor()
			if tt.anchors != nil {
				anchors = tt.anchors(w)
			}
			pol := WithTrustAnchors(check.DefaultPolicy(), anchors)
			fs := evaluateDNSSEC(check.In[DNSSECEvidence]{Evidence: w.evidence(domain), CollectedAt: now, Policy: pol})
			if len(fs) != 1 {
				t.Fatalf("%d findings", len(fs))
			}
			f := fs[0]
			if f.Outcome != tt.want || !strings.Contains(f.Message, tt.msg) || f.Reason != tt.reason || (tt.sev != "" && f.Severity != tt.sev) {
				t.Fatalf("got %s (severity %q, reason %q): %s\nwant %s (severity %q, reason %q) with %q", f.Outcome, f.Severity, f.Reason, f.Message, tt.want, tt.sev, tt.reason, tt.msg)
			}
		})
	}
}

// TestReevaluationWithAnotherAnchorNeedsNoNetwork: stored evidence judged
// again through the check with another policy's anchors changes verdict,
// and judged later than its collection (signatures since expired) does
// not: the time is the collection's.
func TestReevaluationWithAnotherAnchorNeedsNoNetwork(t *testing.T) {
	w := newWorld(t)
	b, err := json.Marshal(w.evidence("a.nhs.uk."))
	if err != nil {
		t.Fatal(err)
	}
	ev := check.Evidence{CheckID: DNSSEC, Asset: check.Asset{Kind: check.KindDomain, Name: "a.nhs.uk"}, CollectedAt: now, Version: 1, Data: b}
	c := DNSSECCheck()
	judge := func(p *check.Policy) check.Finding { return c.Evaluate(ev, p)[0] }
	if f := judge(WithTrustAnchors(check.DefaultPolicy(), w.anchor())); f.Outcome != check.Pass {
		t.Fatalf("lab anchor: %s %s", f.Outcome, f.Message)
	}
	if f := judge(check.DefaultPolicy()); f.Outcome != check.Unknown {
		t.Fatalf("root anchors on lab evidence: %s %s, want unknown", f.Outcome, f.Message)
	}
}

func TestEmbeddedRootAnchorsAreTheRootKSKs(t *testing.T) {
	b, err := os.ReadFile("testdata/root.key")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseTrustAnchors("testdata/root.key", b)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || len(RootAnchors) != 2 {
		t.Fatalf("%d keys, %d anchors", len(keys), len(RootAnchors))
	}
	for i, s := range keys {
		k := mustRR(t, s).(*dns.DNSKEY)
		ds := mustRR(t, RootAnchors[i]).(*dns.DS)
		got := k.ToDS(dns.SHA256)
		if ds.KeyTag != k.KeyTag() || !strings.EqualFold(got.Digest, ds.Digest) || ds.Algorithm != dns.RSASHA256 {
			t.Errorf("anchor %s does not match the root KSK %d (its SHA-256 DS digest is %s)", RootAnchors[i], k.KeyTag(), got.Digest)
		}
	}
	if tags := []uint16{mustRR(t, RootAnchors[0]).(*dns.DS).KeyTag, mustRR(t, RootAnchors[1]).(*dns.DS).KeyTag}; tags[0] != 20326 || tags[1] != 38696 {
		t.Errorf("key tags %v, want KSK-2017 (20326) and KSK-2024 (38696)", tags)
	}
}

func TestParseTrustAnchorsNamesTheLine(t *testing.T) {
	good := "; comment\n$ORIGIN nhs.uk.\n$TTL 300\n@ IN DNSKEY 257 3 13 ( mdsswUyr3DPW132mOi8V9xESWE8jTo0d\n xCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ== ) ; ksk\n" +
		"a IN DS 1 13 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"
	got, err := ParseTrustAnchors("f", []byte(good))
	if err != nil || len(got) != 2 || !strings.HasPrefix(got[0], "nhs.uk.\t300\tIN\tDNSKEY\t257 3 13 mdss") || !strings.HasPrefix(got[1], "a.nhs.uk.\t300\tIN\tDS\t1 13 2") {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "f:1: no DS or DNSKEY record"},
		{"; only a comment\n", "f:1: no DS or DNSKEY record"},
		{". IN DS 20326 8 2 E06D\n\nx. IN A 192.0.2.1\n", "f:1: DS 20326: the digest has 4 hex digits"},
		{"\n\nx. IN A 192.0.2.1\n", "f:3: a A record"},
		{". IN DS 1 8 2 " + strings.Repeat("ZZ", 32) + "\n", "f:1: DS 1: the digest is not hexadecimal"},
		{"\n. IN DS 1 8 two XX\n", "f:2: "},
		{". IN DNSKEY 256 4 13 AAAA\n", "f:1: DNSKEY"},
		{"$INCLUDE /etc/passwd\n", "f:1: "},
		{". CH DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n", "class CH"},
	} {
		_, err := ParseTrustAnchors("f", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func TestPolicyRejectsTrustAnchorsThatAreNotDSOrDNSKEY(t *testing.T) {
	_, err := check.ParsePolicy("p.yaml", []byte("dns:\n  trust_anchors:\n    - \". IN A 192.0.2.1\"\n"), []check.Sectioner{Settings})
	if err == nil || !strings.Contains(err.Error(), "p.yaml:2: dns.trust_anchors: item 1") {
		t.Fatalf("got %v", err)
	}
	_, err = check.ParsePolicy("p.yaml", []byte("dns:\n  trust_anchors: []\n"), []check.Sectioner{Settings})
	if err == nil || !strings.Contains(err.Error(), "at least one") {
		t.Fatalf("empty: %v", err)
	}
	p, err := check.ParsePolicy("p.yaml", []byte("dns:\n  trust_anchors: [\""+RootAnchors[1]+"\"]\n"), []check.Sectioner{Settings})
	if err != nil || len(Settings.Get(p).TrustAnchors) != 1 {
		t.Fatalf("one anchor: %v", err)
	}
	if got := Settings.Get(check.DefaultPolicy()).TrustAnchors; len(got) != 2 {
		t.Fatalf("defaults: %v", got)
	}
}

// plainResolver hides the DNSSEC method of a resolver.
type plainResolver struct{ r *dnsq.Resolver }

func (p plainResolver) Exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	return p.r.Exchange(ctx, name, qtype)
}

// TestCollectDNSSECAgainstAnAuthoritativeServer serves the world's records
// from dnstest and runs the whole check: the collector asks with DO and
// records what the server said, and the verdicts are those of the recorded
// evidence; a domain that does not exist, a name server that does not
// answer and a resolver without DO support are unknown.
func TestCollectDNSSECAgainstAnAuthoritativeServer(t *testing.T) {
	valid, unsigned, expired, mismatch := newWorld(t), newWorld(t), newWorld(t), newWorld(t)
	unsigned.unsigned = true
	expired.inc, expired.exp = now.Add(-60*24*time.Hour), now.Add(-24*time.Hour)
	other := keyFor(t, "a.nhs.uk.", 257, 2)
	mismatch.dsKey = other.key
	var records []string
	seen := map[string]bool{}
	for _, z := range []struct {
		w    *world
		zone string
	}{{valid, "a"}, {unsigned, "b"}, {expired, "c"}, {mismatch, "d"}} {
		for _, r := range z.w.zoneRecords(z.zone + ".nhs.uk.") {
			if !seen[r] {
				seen[r] = true
				records = append(records, r)
			}
		}
	}
	records = append(records, "slow.nhs.uk. 300 IN SOA ns1.nhs.uk. h.nhs.uk. 1 7200 3600 1209600 300")
	srv, err := dnstest.Start([]string{"uk."}, records...)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Drop("slow.nhs.uk.")
	res := &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: 300 * time.Millisecond, Retries: -1}
	c := DNSSECCheck()
	pol := WithTrustAnchors(check.DefaultPolicy(), valid.anchor())
	env := &check.Env{DNS: res, Now: func() time.Time { return now }}
	for _, tc := range []struct {
		domain string
		env    *check.Env
		want   check.Outcome
		reason string
	}{
		{"a.nhs.uk", env, check.Pass, ""},
		{"b.nhs.uk", env, check.Warn, ""},
		{"c.nhs.uk", env, check.Fail, ""},
		{"d.nhs.uk", env, check.Fail, ""},
		{"nope.nhs.uk", env, check.Unknown, "nxdomain"},
		{"slow.nhs.uk", env, check.Unknown, "timeout"},
		{"a.nhs.uk", &check.Env{DNS: plainResolver{res}, Now: env.Now}, check.Unknown, string(ErrNoDNSSECResolver)},
	} {
		t.Run(tc.domain+"/"+string(tc.want), func(t *testing.T) {
			ev, _ := c.Collect(context.Background(), tc.env, check.Asset{Kind: check.KindDomain, Name: tc.domain})
			fs := c.Evaluate(ev, pol)
			if len(fs) != 1 || fs[0].Outcome != tc.want || fs[0].Reason != tc.reason {
				t.Fatalf("got %+v\nevidence %s", fs, ev.Data)
			}
		})
	}
}

// zoneRecords are the records a server publishes for the world with the
// child zone named child (the parent's keys and signatures as they are).
func (w *world) zoneRecords(child string) []string {
	t := w.t
	in, ex := now.Add(-24*time.Hour), now.Add(30*24*time.Hour)
	var out []string
	put := func(rrs ...dns.RR) {
		for _, rr := range rrs {
			out = append(out, rr.String())
		}
	}
	pKeys := []dns.RR{w.parentKSK.key, w.parentZS.key}
	put(pKeys...)
	put(parentSig(t, w, pKeys))
	ck := keyFor(t, child, 257, 1)
	soa := mustRR(t, child+" 3600 IN SOA ns1.nhs.uk. h."+child+" 7 7200 3600 1209600 300")
	put(soa)
	if w.unsigned {
		return out
	}
	dsk := ck.key
	if w.dsKey != nil {
		dsk = w.dsKey
	}
	ds := dsk.ToDS(dns.SHA256)
	ds.Hdr.Name = child
	put(ds, sign(t, w.parentZS, "nhs.uk.", []dns.RR{ds}, in, ex))
	put(ck.key, sign(t, ck, child, []dns.RR{ck.key}, in, ex))
	put(sign(t, ck, child, []dns.RR{soa}, w.inc, w.exp))
	return out
}

// parentSig signs the parent's DNSKEY RRset once per test binary (ECDSA
// signatures differ each time: a server must serve one).
var parentSigs sync.Map

func parentSig(t testing.TB, w *world, keys []dns.RR) dns.RR {
	if v, ok := parentSigs.Load("k"); ok {
		return v.(dns.RR)
	}
	v, _ := parentSigs.LoadOrStore("k", sign(t, w.parentKSK, "nhs.uk.", keys, now.Add(-24*time.Hour), now.Add(30*24*time.Hour)))
	return v.(dns.RR)
}

func FuzzParseTrustAnchors(f *testing.F) {
	f.Add(rootAnchorsFile)
	f.Add([]byte("$ORIGIN nhs.uk.\n$TTL 300\n@ IN DNSKEY 257 3 13 ( mdsswUyr3DPW132mOi8V9xESWE8jTo0d\n xCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ== ) ; ksk\n"))
	f.Add([]byte(". IN DS 1 8 2 ZZ\n"))
	f.Add([]byte("x. IN A 192.0.2.1\n"))
	f.Add([]byte("$INCLUDE x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := ParseTrustAnchors("fuzz", b)
		if err != nil {
			return
		}
		if len(out) == 0 || len(out) > maxAnchors {
			t.Fatalf("%d anchors without an error", len(out))
		}
		for _, s := range out {
			// What the parser accepts, the policy accepts.
			if _, err := parseAnchor(s); err != nil {
				t.Fatalf("anchor %q parsed from the file is rejected by the policy: %v", s, err)
			}
		}
		if errs := validatePolicy(Policy{TrustAnchors: out}); len(errs) > 0 {
			t.Fatalf("policy rejects %q: %v", out, errs[0].Msg)
		}
	})
}

// TestVerificationsAreBounded: signatures that name a key of the set but
// do not verify cost one verification each, and past the budget the
// verdict is unknown (too-large), so colliding key tags (KeyTrap) cannot
// make an evaluation expensive.
func TestVerificationsAreBounded(t *testing.T) {
	k := keyFor(t, "a.nhs.uk.", 257, 1)
	soa := []dns.RR{mustRR(t, "a.nhs.uk. 3600 IN SOA ns1.nhs.uk. h.a.nhs.uk. 7 7200 3600 1209600 300")}
	var sigs []*dns.RRSIG
	for i := range dnssecMaxSigs {
		s := sign(t, k, "a.nhs.uk.", soa, now.Add(-time.Hour), now.Add(time.Hour))
		s.OrigTtl = uint32(i) // no longer what was signed
		sigs = append(sigs, s)
	}
	keys := []*dns.DNSKEY{k.key, k.key, k.key, k.key, k.key, k.key}
	v := &dnssecValidator{at: now, budget: 10}
	p := v.verify(soa, sigs, "a.nhs.uk.", keys)
	if p == nil || p.state != dnssecIndeterminate || p.reason != string(check.ErrTooLarge) || v.budget != 0 {
		t.Fatalf("got %+v, budget left %d", p, v.budget)
	}
	v = &dnssecValidator{at: now, budget: 100}
	if p := v.verify(soa, sigs, "a.nhs.uk.", keys); p == nil || p.state != dnssecBogus || 100-v.budget != dnssecMaxSigs*dnssecKeysPerSig {
		t.Fatalf("got %+v after %d verifications, want bogus after %d", p, 100-v.budget, dnssecMaxSigs*dnssecKeysPerSig)
	}
}

// TestResolverThatDropsSignaturesIsUnknownNeverBogus: a resolver that
// answers DO queries without RRSIGs (a DNSSEC-unaware forwarder) would make
// every signed zone look bogus; the anchor zone's unsigned keys give it
// away, and the verdict is unknown with reason no-dnssec-resolver.
func TestResolverThatDropsSignaturesIsUnknownNeverBogus(t *testing.T) {
	w := newWorld(t)
	ev := w.evidence("a.nhs.uk.")
	for i := range ev.Lookups {
		var kept []string
		for _, r := range ev.Lookups[i].Records {
			if !strings.Contains(r, "\tRRSIG\t") {
				kept = append(kept, r)
			}
		}
		ev.Lookups[i].Records = kept
	}
	fs := evaluateDNSSEC(check.In[DNSSECEvidence]{Evidence: ev, CollectedAt: now, Policy: WithTrustAnchors(check.DefaultPolicy(), w.anchor())})
	if len(fs) != 1 || fs[0].Outcome != check.Unknown || fs[0].Reason != string(ErrNoDNSSECResolver) {
		t.Fatalf("got %+v, want unknown with reason %s", fs, ErrNoDNSSECResolver)
	}
}
