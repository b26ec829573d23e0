package spf

import (
	"strings"
	"testing"
)

// FuzzParse: no panic, bounded output, and what parses is consistent.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=spf1 -all",
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.example.com ~all",
		"v=spf1 a mx/24//64 ptr exists:%{ir}.%{l1r+-}._spf.%{d} redirect=_spf.example.com",
		"v=spf1 exp=explain.%{d} -all foo=bar",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if r != nil {
				t.Fatal("record and error both returned")
			}
			return
		}
		if len(r.Terms) > MaxTerms {
			t.Fatalf("%d terms kept", len(r.Terms))
		}
		for _, tm := range r.Terms {
			if tm.Text == "" || strings.ContainsAny(tm.Text, " \t") {
				t.Fatalf("bad term text %q", tm.Text)
			}
			if tm.Prefix4 > 32 || tm.Prefix6 > 128 {
				t.Fatalf("prefix out of range in %q", tm.Text)
			}
			if tm.Lookup() && tm.Value != "" {
				if name, ok, err := Expand(tm.Value, "example.com"); err == nil && ok && !ValidDomain(name) {
					t.Fatalf("Expand(%q) gave invalid %q", tm.Value, name)
				}
			}
		}
		_ = Lint(r)
		_ = NamesSenders(r)
	})
}
