package lab

import (
	"slices"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/email"
	"github.com/nhsx/posture/checks/email/dkim"
)

// dkimFamily: the lab of the email checks that read DNS beside SPF and
// DMARC: email.dkim.keys and email.parked.nullmx on domains, email.mx.ptr
// and email.dane on MX hosts.
//
// Every lab host has a PTR record naming it (the reverse zone of 127.1.x.y
// is served by the lab DNS), so mx1 and mx2 and every case's MX host pass
// email.mx.ptr, except hosts whose first label says otherwise: ptrNone
// gets no PTR, ptrStray a PTR to a generic name that does not resolve
// back. No host publishes TLSA records unless its case does, so email.dane
// is a note ("no DANE", pass). Every other lab domain has no DKIM key
// (unknown: not determined) unless its records say otherwise, and a null
// MX only if it is parked.
var dkimFamily = Family{Name: "dkim", Cases: dkimCases, Complete: completeDKIM, Infra: dkimInfra}

// Host labels that shape a lab host's reverse DNS (ptrRecords).
const (
	ptrNone  = "mx-noptr"  // no PTR record
	ptrStray = "mx-badptr" // a PTR to a name that does not resolve back
)

// labCustomSelector is a selector only the estate file names.
const labCustomSelector = "nhs2026a"

func dkimCases() []Case {
	s := dkim.Samples
	key := func(sel, rec string) func(d string) []string {
		return func(d string) []string { return []string{txt(sel+"._domainkey."+d, rec)} }
	}
	wildNull := func(d string) []string { return []string{txt("*._domainkey."+d, "v=DKIM1; p=")} }
	return []Case{
		// Keys on a mail domain (the email family's baseline SPF and
		// DMARC, the lab's MX hosts).
		dkimCase("dkim-rsa-2048", key("selector1", "v=DKIM1; k=rsa; p="+s.RSA2048), check.Pass),
		dkimCase("dkim-rsa-1024", key("google", "v=DKIM1; k=rsa; p="+s.RSA1024), check.Warn),
		dkimCase("dkim-rsa-512", key("s1", "v=DKIM1; k=rsa; p="+s.RSA512), check.Fail),
		dkimCase("dkim-ed25519", key("default", "v=DKIM1; k=ed25519; p="+s.Ed25519), check.Pass),
		// A key record verifiers cannot read.
		dkimCase("dkim-unparsable", key("dkim", "v=DKIM1; k=rsa; p=MIIBIj!!not-base64"), check.Fail),
		// A selector none of the common ones: only the estate file's
		// dkim_selectors finds it (the lab lists it for the domain's
		// organisation).
		dkimCase("dkim-estate-selector", key(labCustomSelector, "v=DKIM1; p="+s.RSA2048), check.Pass),
		// No DKIM at all: not determined, never fail.
		dkimCase("dkim-none", func(string) []string { return nil }, check.Unknown),
		// A protective wildcard beside a real key: the key is judged,
		// the wildcard named, the twenty selectors it answers not listed.
		dkimCase("dkim-wildcard-with-key", func(d string) []string {
			return append(wildNull(d), key("selector2", "v=DKIM1; p="+s.RSA2048)(d)...)
		}, check.Pass),

		// Parked domains (GOV.UK: Protect domains that don't send email).
		// A revoked key at a selector of its own: null DKIM.
		parkedCase("dkim-revoked-parked", []string{"0 ."}, key("selector1", "v=DKIM1; p="), check.Pass, check.Pass),
		// The GOV.UK protective wildcard *._domainkey: null DKIM for every
		// selector, told by a random one.
		parkedCase("dkim-wildcard-null", []string{"0 ."}, wildNull, check.Pass, check.Pass),
		// A null MX and no DKIM: null MX passes, DKIM not determined.
		parkedCase("nullmx-parked", []string{"0 ."}, nil, check.Unknown, check.Pass),
		// "10 ." is not the null MX (RFC 7505: preference 0): senders may
		// queue instead of bouncing.
		parkedCase("nullmx-parked-wrong", []string{"10 ."}, nil, check.Unknown, check.Fail),

		// MX hosts of their own: reverse DNS and DANE.
		mxDNSCase("mx-ptr-good", "mx", nil, check.Pass, check.Pass),
		mxDNSCase("mx-ptr-missing", ptrNone, nil, check.Fail, check.Pass),
		mxDNSCase("mx-ptr-mismatch", ptrStray, nil, check.Fail, check.Pass),
		mxDNSCase("dane-ee", "mx", []string{"3 1 1 " + labTLSADigest}, check.Pass, check.Pass),
		mxDNSCase("dane-pkix-ee", "mx", []string{"1 1 1 " + labTLSADigest}, check.Pass, check.Warn),
	}
}

// labTLSADigest is a SHA-256 that matches no lab certificate: the checks
// do not match TLSA records against certificates yet.
const labTLSADigest = "8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1"

func dkimExpect(d string, dkimO, nullO check.Outcome) []Expect {
	return []Expect{
		{Kind: check.KindDomain, Name: d, CheckID: email.DKIMKeys, Outcome: dkimO},
		{Kind: check.KindDomain, Name: d, CheckID: email.ParkedNullMX, Outcome: nullO},
	}
}

func mxDNSExpect(host string, ptr, dane check.Outcome) []Expect {
	return []Expect{
		{Kind: check.KindMail, Name: host, CheckID: email.MXPTR, Outcome: ptr},
		{Kind: check.KindMail, Name: host, CheckID: email.DANE, Outcome: dane},
	}
}

// dkimCase is a mail domain (it borrows the email family's all-pass SPF
// and DMARC, and the lab's MX hosts) with DKIM records.
func dkimCase(name string, records func(d string) []string, o check.Outcome) Case {
	return Case{Name: name, Build: func(d string) Domain {
		return Domain{Name: d, Records: records(d), Expect: dkimExpect(d, o, check.NA)}
	}}
}

// parkedCase is a parked domain with the GOV.UK SPF and DMARC records
// (every email.spf and email.dmarc id passes), the MX records given and
// the DKIM records of dkimRecords.
func parkedCase(name string, mx []string, dkimRecords func(d string) []string, dkimO, nullO check.Outcome) Case {
	return Case{Name: name, Build: func(d string) Domain {
		m := baseline(d)
		m.mx = mx
		m.spf = []string{"v=spf1 -all"}
		m.dmarc = []string{"v=DMARC1;p=reject;sp=reject;adkim=s;aspf=s;fo=1;rua=mailto:dmarc@" + d}
		if dkimRecords != nil {
			m.extra = dkimRecords(d)
		}
		return Domain{Name: d, Records: m.records(d), Expect: append(want{}.expect(d), dkimExpect(d, dkimO, nullO)...)}
	}}
}

// mxDNSCase is a mail domain whose only MX is a good mail host of its own,
// <label>.<domain>, with the TLSA records given at _25._tcp.<host>.
func mxDNSCase(name, label string, tlsa []string, ptr, dane check.Outcome) Case {
	return Case{Name: name, Build: func(d string) Domain {
		mx := label + "." + d
		recs := []string{rr(d, "MX", "10 "+mx+".")}
		for _, t := range tlsa {
			recs = append(recs, rr("_25._tcp."+mx, "TLSA", t))
		}
		return Domain{Name: d, Records: recs, Hosts: []Host{{Name: mx, SMTP: &SMTPSpec{}}},
			Expect: append(dkimExpect(d, check.Unknown, check.NA), mxDNSExpect(mx, ptr, dane)...)}
	}}
}

// dkimInfra: the lab's MX hosts have PTR records that resolve back, and no
// TLSA records.
func dkimInfra(host string, kind check.Kind) []Expect {
	if kind != check.KindMail {
		return nil
	}
	return mxDNSExpect(host, check.Pass, check.Pass)
}

// ptrRecords are the reverse DNS of the lab's hosts (the lab DNS serves
// in-addr.arpa): each address names its host, unless the host's first
// label is ptrNone (nothing) or ptrStray (a generic name with no address,
// as an ISP's default reverse DNS).
func (l *Lab) ptrRecords() []string {
	out := make([]string, 0, len(l.hosts))
	for ip, h := range l.hosts {
		rev := reverseName(ip.String())
		switch label, _, _ := strings.Cut(h.Name, "."); label {
		case ptrNone:
		case ptrStray:
			out = append(out, rev+" 300 IN PTR host-"+strings.ReplaceAll(ip.String(), ".", "-")+".lab-isp.nhs.uk.")
		default:
			out = append(out, rev+" 300 IN PTR "+h.Name+".")
		}
	}
	slices.Sort(out)
	return out
}

// reverseName is the in-addr.arpa name of an IPv4 address, with the dot.
func reverseName(ip string) string {
	p := strings.Split(ip, ".")
	slices.Reverse(p)
	return strings.Join(p, ".") + ".in-addr.arpa."
}

// completeDKIM states the truth of the family's ids on a domain of another
// family, from its records: DKIM keys at the selectors the scanner asks
// (the common ones and the estate's, which the lab derives from the same
// records), a protective wildcard, or nothing (unknown); a null MX on a
// parked domain; PTR and DANE for each MX host of its own.
func completeDKIM(d *Domain, c Case, _ Added, _ []Case) {
	if c.Family == "dkim" {
		return // the family's own cases state their truth
	}
	if d.Absent {
		d.Expect = append(d.Expect, dkimExpect(d.Name, check.Unknown, check.Unknown)...)
		return
	}
	parked := dkimLabParked(d)
	nullO := check.NA
	if parked {
		nullO = check.Fail
		if mx := dkimRData(d, d.Name, "MX"); len(mx) == 1 && dkimFields(mx[0]) == "0 ." {
			nullO = check.Pass
		}
	}
	d.Expect = append(d.Expect, dkimExpect(d.Name, dkimLabKeys(d, parked), nullO)...)
	for _, mx := range dkimRData(d, d.Name, "MX") {
		f := strings.Fields(mx)
		host := strings.ToLower(strings.TrimSuffix(f[len(f)-1], "."))
		if host == "" || host == MX1 || host == MX2 || slices.ContainsFunc(d.Exclude, func(e string) bool {
			return host == e || strings.HasSuffix(host, "."+e)
		}) {
			continue
		}
		d.Expect = append(d.Expect, mxDNSExpect(host, dkimLabPTR(d, host), dkimLabDANE(d, host))...)
	}
}

// dkimRData returns the data of the records of type typ at owner.
func dkimRData(d *Domain, owner, typ string) []string {
	owner = strings.ToLower(strings.TrimSuffix(owner, ".")) + "."
	var out []string
	for _, r := range d.Records {
		if o, t := ownerType(r); o == owner && t == typ {
			f := strings.Fields(r)
			i := slices.IndexFunc(f, func(s string) bool { return strings.EqualFold(s, typ) })
			out = append(out, strings.Join(f[i+1:], " "))
		}
	}
	return out
}

func dkimFields(s string) string { return strings.Join(strings.Fields(s), " ") }

// dkimTXTData unquotes a TXT record's data (the lab's txt() form).
func dkimTXTData(data string) string {
	var b strings.Builder
	in, esc := false, false
	for _, c := range data {
		switch {
		case esc:
			b.WriteRune(c)
			esc = false
		case c == '\\' && in:
			esc = true
		case c == '"':
			in = !in
		case in:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// dkimLabParked: no MX host (every MX is ".") and no SPF record that names
// a sender (a term other than all and exp=). The lab's complete() has put
// the lab's MX hosts on every domain that publishes no MX.
func dkimLabParked(d *Domain) bool {
	for _, mx := range dkimRData(d, d.Name, "MX") {
		f := strings.Fields(mx)
		if f[len(f)-1] != "." {
			return false
		}
	}
	for _, t := range dkimRData(d, d.Name, "TXT") {
		rec := dkimTXTData(t)
		f := strings.Fields(rec)
		if len(f) == 0 || !strings.EqualFold(f[0], "v=spf1") {
			continue
		}
		for _, term := range f[1:] {
			term = strings.ToLower(strings.TrimLeft(term, "+-~?"))
			if term != "all" && !strings.HasPrefix(term, "exp=") {
				return false
			}
		}
	}
	return true
}

// dkimLabSelectors are the selectors a domain publishes keys at that the
// scanner does not ask unless the estate names them: the lab's estate
// lists them for the domain's organisation.
func dkimLabSelectors(d *Domain) []string {
	suffix := "._domainkey." + d.Name + "."
	var out []string
	for _, r := range d.Records {
		o, t := ownerType(r)
		sel, ok := strings.CutSuffix(o, suffix)
		if !ok || t != "TXT" || sel == "*" || slices.Contains(email.DKIMCommonSelectors, sel) || slices.Contains(out, sel) {
			continue
		}
		out = append(out, sel)
	}
	return out
}

// dkimLabKeys is the truth of email.dkim.keys on a domain of another
// family: its keys at asked selectors judged (RSA < 1024 fail, < 2048
// warn), else a protective wildcard (pass when parked), else unknown.
func dkimLabKeys(d *Domain, parked bool) check.Outcome {
	worst, revoked := check.Outcome(""), false
	for _, sel := range append(slices.Clone(email.DKIMCommonSelectors), dkimLabSelectors(d)...) {
		for _, t := range dkimRData(d, sel+"._domainkey."+d.Name, "TXT") {
			k, err := dkim.Parse(dkimTXTData(t))
			switch {
			case err != nil || k.Unusable != "":
				worst = check.Worst(worst, check.Fail)
			case k.Revoked:
				revoked = true
			case k.Type == dkim.KeyRSA && k.Bits < 1024:
				worst = check.Worst(worst, check.Fail)
			case k.Type == dkim.KeyRSA && k.Bits < 2048:
				worst = check.Worst(worst, check.Warn)
			default:
				worst = check.Worst(worst, check.Pass)
			}
		}
	}
	wildNull := false
	for _, t := range dkimRData(d, "*._domainkey."+d.Name, "TXT") {
		if k, err := dkim.Parse(dkimTXTData(t)); err == nil && k.Revoked {
			wildNull = true
		}
	}
	switch {
	case worst != "":
		return worst
	case revoked, wildNull && parked:
		return check.Pass
	}
	return check.Unknown
}

// dkimLabPTR is the truth of email.mx.ptr on host, an MX of d: a lab host
// of d (or a name with the addresses of d's hosts, or an alias of one)
// has the PTR ptrRecords gives it; an address outside the lab's hosts has
// none; no address at all is n/a.
func dkimLabPTR(d *Domain, host string) check.Outcome {
	label := func(h string) check.Outcome {
		switch first, _, _ := strings.Cut(h, "."); first {
		case ptrNone, ptrStray:
			return check.Fail
		}
		return check.Pass
	}
	for range 8 {
		if slices.ContainsFunc(d.Hosts, func(h Host) bool { return strings.EqualFold(strings.TrimSuffix(h.Name, "."), host) }) {
			return label(host)
		}
		if hs := d.Addrs[host]; len(hs) > 0 {
			o := check.Outcome("")
			for _, h := range hs {
				o = check.Worst(o, label(strings.ToLower(h)))
			}
			return o
		}
		if len(dkimRData(d, host, "A")) > 0 || len(dkimRData(d, host, "AAAA")) > 0 {
			return check.Fail
		}
		cn := dkimRData(d, host, "CNAME")
		if len(cn) == 0 {
			return check.NA
		}
		host = strings.ToLower(strings.TrimSuffix(cn[0], "."))
		if host == MX1 || host == MX2 || host == NS1 || host == NS2 {
			return check.Pass
		}
	}
	return check.NA // an alias loop: no address
}

// dkimLabDANE is the truth of email.dane on host: its TLSA records' usage
// (2 or 3 pass, else warn), or none (a note: pass).
func dkimLabDANE(d *Domain, host string) check.Outcome {
	o := check.Outcome("")
	for _, t := range dkimRData(d, "_25._tcp."+host, "TLSA") {
		if u := strings.Fields(t)[0]; u == "2" || u == "3" {
			return check.Pass
		}
		o = check.Warn
	}
	if o == "" {
		return check.Pass
	}
	return o
}

// dkimHints are the estate facts of the lab for a check Env: the
// dkim_selectors of the organisation that owns the asset's domain.
func (l *Lab) dkimHints() func(a check.Asset, key string) []string {
	byDomain := map[string][]string{}
	for _, o := range l.orgs {
		sels := l.orgSelectors(o)
		for _, d := range o.Domains {
			byDomain[d] = sels
		}
	}
	return func(a check.Asset, key string) []string {
		if key != "dkim_selectors" {
			return nil
		}
		name := a.Domain
		if name == "" {
			name = a.Name
		}
		return slices.Clone(byDomain[name])
	}
}

// orgSelectors are the selectors the estate file lists for an organisation
// (dkim_selectors): those its domains publish that are not common ones.
func (l *Lab) orgSelectors(o labOrg) []string {
	var out []string
	for _, name := range o.Domains {
		i, ok := l.byDomain[name]
		if !ok {
			continue
		}
		for _, s := range dkimLabSelectors(&l.domains[i]) {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
