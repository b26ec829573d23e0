package dmarc

import "testing"

// FuzzParse: no panic; a parsed record always has a valid policy (p=none
// standing in for an unusable one only when rua= has a valid URI); a
// version error is exactly a record that is not DMARC.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; fo=1; rua=mailto:dmarc-rua@dmarc.service.gov.uk",
		"v=DMARC1; p=quarantine; pct=50; t=y; rua=mailto:a@b.example!10m,https://r.example/x",
		"v=DMARC1; p=none; np=reject; psd=y; ruf=mailto:f@x.example",
		"v=DMARC1 p=reject",
		"v=DMARC1; p=bogus; rua=mailto:a@b.example",
		"v=DMARC1; p=reject; fo=2; rf=xml; ri=daily; adkim=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		meant := MeantAsDMARC(s)
		if meant && IsDMARC(s) {
			t.Fatalf("both meant-as and valid DMARC: %q", s)
		}
		if meant {
			_ = WhyNotDMARC(s)
		}
		r, err := Parse(s)
		if err != nil {
			if se, ok := err.(*SyntaxError); !ok || se.Version == IsDMARC(s) && len(s) <= MaxRecordLen {
				t.Fatalf("Parse(%q): %v (version error %v, IsDMARC %v)", s, err, ok && se.Version, IsDMARC(s))
			}
			return
		}
		if !policies[r.P] || r.SP != "" && !policies[r.SP] || r.NP != "" && !policies[r.NP] {
			t.Fatalf("invalid policy kept: %+v", r)
		}
		if r.PolicyError != "" && (r.P != "none" || len(r.RUA) == 0) {
			t.Fatalf("unusable policy applied as %q with %d rua URIs", r.P, len(r.RUA))
		}
		if p := r.Pct(); p < 0 || p > 100 {
			t.Fatalf("pct %d", p)
		}
		if len(r.Tags) > MaxTags+1 || len(r.RUA) > MaxURIs || len(r.RUF) > MaxURIs || len(r.Ignored) > MaxTags*(MaxURIs+1) {
			t.Fatalf("unbounded record: %d tags", len(r.Tags))
		}
		for _, u := range append(r.RUA, r.RUF...) {
			if u.Scheme == "mailto" && (u.Addr == "" || u.Domain == "") {
				t.Fatalf("mailto without address: %+v", u)
			}
		}
	})
}
