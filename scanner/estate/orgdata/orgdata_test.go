package orgdata

import "testing"

func TestHierarchyEveryTrustRollsUpToNational(t *testing.T) {
	m, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(Trusts()); n != 211 {
		t.Errorf("%d trusts, want 211", n)
	}
	if n := len(ICBs()); n != 42 {
		t.Errorf("%d ICBs, want 42", n)
	}
	if n := len(Regions()); n != 7 {
		t.Errorf("%d regions, want 7", n)
	}
	for _, o := range Trusts() {
		chain := []string{o.Kind}
		for c := o.Parent; c != ""; c = m[c].Parent {
			p, ok := m[c]
			if !ok {
				t.Fatalf("%s %s: parent %s not in the hierarchy", o.Code, o.Name, c)
			}
			chain = append(chain, p.Kind)
		}
		if got := len(chain); got != 4 || chain[3] != "national" {
			t.Fatalf("%s: chain %v, want trust→icb→region→national", o.Code, chain)
		}
	}
	if got := m["R0A"].Name; got != "Manchester University NHS Foundation Trust" {
		t.Errorf("R0A name = %q", got)
	}
}
