package estate

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: any bytes give a valid estate or file:line errors, never a
// panic; a parsed estate keeps the invariants the scanner relies on.
func FuzzParse(f *testing.F) {
	f.Add(string(DefaultYAML()))
	f.Add("scope: {suffixes: [nhs.uk]}\norganisations:\n  - {code: RXX, name: A, domains: [a.nhs.uk], parent: QOP}\n")
	f.Add("organisations: [{code: A, name: B, parent: A}]")
	f.Add("scope: [\n")
	f.Add("&a [*a, *a]")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse("fuzz.yaml", []byte(s))
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %v is not estate Errors", err)
			}
			for _, x := range es {
				if x.Line < 1 || !strings.HasPrefix(x.Error(), "fuzz.yaml:") {
					t.Fatalf("error without a position: %q", x.Error())
				}
			}
			return
		}
		codes, domains := map[string]bool{}, map[string]bool{}
		for _, o := range e.Organisations {
			if o.Code == "" || o.Name == "" || codes[o.Code] {
				t.Fatalf("organisation %+v: empty or duplicate code", o)
			}
			codes[o.Code] = true
			for _, d := range o.Domains {
				if domains[d] || ValidDomain(d, false) != nil {
					t.Fatalf("domain %q duplicate or invalid", d)
				}
				domains[d] = true
			}
		}
	})
}
