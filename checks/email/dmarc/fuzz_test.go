package dmarc

import "testing"

// FuzzParse: no panic, and a parsed record always has a valid policy.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; fo=1; rua=mailto:dmarc-rua@dmarc.service.gov.uk",
		"v=DMARC1; p=quarantine; pct=50; t=y; rua=mailto:a@b.example!10m,https://r.example/x",
		"v=DMARC1; p=none; np=reject; ruf=mailto:f@x.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if !policies[r.P] || r.SP != "" && !policies[r.SP] || r.NP != "" && !policies[r.NP] {
			t.Fatalf("invalid policy kept: %+v", r)
		}
		if p := r.Pct(); p < 0 || p > 100 {
			t.Fatalf("pct %d", p)
		}
		if len(r.Tags) > MaxTags+1 || len(r.RUA) > MaxURIs || len(r.RUF) > MaxURIs {
			t.Fatalf("unbounded record: %d tags", len(r.Tags))
		}
		for _, u := range append(r.RUA, r.RUF...) {
			if u.Scheme == "mailto" && (u.Addr == "" || u.Domain == "") {
				t.Fatalf("mailto without address: %+v", u)
			}
		}
	})
}
