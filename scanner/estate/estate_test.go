package estate

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultEstateParses(t *testing.T) {
	e := Default()
	if e.Org("X24") == nil || len(e.Org("X24").GitHub) == 0 {
		t.Fatal("default estate lacks NHS England and its GitHub organisations")
	}
	if !e.InScope("www.england.nhs.uk") || e.InScope("example.com") {
		t.Error("scope of the default estate is wrong")
	}
}

func TestParseRejectsBadInputWithLine(t *testing.T) {
	const head = "scope:\n  suffixes: [nhs.uk]\norganisations:\n"
	tests := []struct {
		name, body string
		line       int
		want       string
	}{
		{"unknown key", head + "  - code: RXX\n    name: A\n    domian: [a.nhs.uk]\n", 6, `unknown key "domian"`},
		{"unknown top-level key", "scop:\n  suffixes: [nhs.uk]\norganisations:\n  - {code: A, name: A}\n", 1, `unknown key "scop"`},
		{"duplicate code", head + "  - {code: RXX, name: A}\n  - {code: RXX, name: B}\n", 5, "duplicate organisation code RXX (first at line 4)"},
		{"domain claimed twice", head + "  - code: RXX\n    name: A\n    domains: [a.nhs.uk]\n  - code: RYY\n    name: B\n    domains: [A.nhs.uk]\n", 9, "a.nhs.uk is claimed by two organisations (also at line 6)"},
		{"bad dkim selector", head + "  - code: RXX\n    name: A\n    dkim_selectors: [selector1, bad_sel]\n", 6, `dkim selector "bad_sel"`},
		{"invalid domain", head + "  - code: RXX\n    name: A\n    domains: [bad_domain.nhs.uk]\n", 6, `domain "bad_domain.nhs.uk"`},
		{"single-label domain", head + "  - code: RXX\n    name: A\n    domains: [localhost]\n", 6, "fully qualified"},
		{"invalid email", head + "  - code: RXX\n    name: A\n    contacts: [not-an-email]\n", 6, `contact "not-an-email" is not an email address`},
		{"email with display name", head + "  - code: RXX\n    name: A\n    contacts: [\"IT <it@a.nhs.uk>\"]\n", 6, "is not an email address"},
		{"unknown parent", head + "  - {code: RXX, name: A, parent: ZZZ9}\n", 4, "parent ZZZ9 is neither"},
		{"parent cycle", head + "  - {code: RXX, name: A, parent: RYY}\n  - {code: RYY, name: B, parent: RXX}\n", 4, "cycle"},
		{"missing name", head + "  - {code: RXX}\n", 4, "has no name"},
		{"not yaml", "scope: [\n", 1, "not valid YAML"},
		{"empty", "", 1, "empty estate"},
		{"bad github login", head + "  - {code: RXX, name: A, github: [\"-bad-\"]}\n", 4, "github organisation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("estate.yaml", []byte(tt.body))
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("err = %v, want estate Errors", err)
			}
			found := false
			for _, e := range es {
				if e.Line == tt.line && strings.Contains(e.Msg, tt.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("errors:\n%v\nwant line %d containing %q", err, tt.line, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "estate.yaml:") {
				t.Errorf("error %q lacks the file:line prefix", err)
			}
		})
	}
}

func TestParseAcceptsParentFromHierarchyAndOwnerIsLongestDomain(t *testing.T) {
	e, err := Parse("e.yaml", []byte(`
scope: {suffixes: [nhs.uk]}
organisations:
  - {code: X24, name: NHS England, domains: [nhs.uk]}
  - {code: R0A, name: Manchester, parent: QOP, domains: [mft.nhs.uk], contacts: [domainmanagement@mft.nhs.uk], dkim_selectors: [selector1, s2.mail]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Org("R0A").DKIMSelectors; len(got) != 2 || got[1] != "s2.mail" {
		t.Fatalf("dkim selectors %v", got)
	}
	if o, d := e.Owner("www.mft.nhs.uk"); o == nil || o.Code != "R0A" || d != "mft.nhs.uk" {
		t.Fatalf("owner of www.mft.nhs.uk = %v %q", o, d)
	}
	if o, _ := e.Owner("other.nhs.uk"); o == nil || o.Code != "X24" {
		t.Fatalf("owner of other.nhs.uk = %v, want X24", o)
	}
}
