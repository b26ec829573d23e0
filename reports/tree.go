package reports

import (
	"cmp"
	"slices"
	"strings"
)

type tree struct {
	order  []*OrgSummary          // pre-order: parents before children
	by     map[string]*OrgSummary // by code
	parent map[string]string      // effective parent: declared, existing, no cycles
}

// buildTree arranges the organisations by their Parent codes. Codes that
// own findings or are named as a parent without being declared become
// implicit nodes, so nothing is dropped from the counts. A parent cycle (a
// mistake in the estate file) is cut where it closes.
func buildTree(orgs []Org, owners []string) *tree {
	t := &tree{by: map[string]*OrgSummary{}, parent: map[string]string{}}
	for _, o := range orgs {
		o.Code, o.Parent = strings.TrimSpace(o.Code), strings.TrimSpace(o.Parent)
		if o.Code == "" || t.by[o.Code] != nil {
			continue
		}
		if o.Name == "" {
			o.Name = o.Code
		}
		t.by[o.Code] = &OrgSummary{Org: o}
	}
	implicit := func(code string) {
		if t.by[code] != nil {
			return
		}
		name := code
		if code == UnassignedCode {
			name = "Assets with no owning organisation"
		}
		t.by[code] = &OrgSummary{Org: Org{Code: code, Name: name}, Implicit: true}
	}
	for _, c := range owners {
		implicit(c)
	}
	var declared []*OrgSummary
	for _, n := range t.by {
		declared = append(declared, n)
	}
	for _, n := range declared {
		if p := n.Parent; p != "" && p != n.Code {
			implicit(p)
			t.parent[n.Code] = p
		}
	}

	codes := make([]string, 0, len(t.by))
	for c := range t.by {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string)
	visit = func(c string) {
		state[c] = 1
		if p, ok := t.parent[c]; ok {
			switch state[p] {
			case 1:
				delete(t.parent, c) // closes a cycle
			case 0:
				visit(p)
			}
		}
		state[c] = 2
	}
	for _, c := range codes {
		if state[c] == 0 {
			visit(c)
		}
	}

	children := map[string][]*OrgSummary{}
	var roots []*OrgSummary
	for _, c := range codes {
		n := t.by[c]
		if p, ok := t.parent[c]; ok {
			children[p] = append(children[p], n)
		} else {
			roots = append(roots, n)
		}
	}
	byName := func(a, b *OrgSummary) int {
		// Unassigned assets last; then by name, then code.
		return cmp.Or(cmp.Compare(b2i(a.Code == UnassignedCode), b2i(b.Code == UnassignedCode)),
			cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.Code, b.Code))
	}
	slices.SortFunc(roots, byName)
	var walk func(n *OrgSummary, depth int)
	walk = func(n *OrgSummary, depth int) {
		n.Depth = depth
		t.order = append(t.order, n)
		kids := children[n.Code]
		slices.SortFunc(kids, byName)
		for _, k := range kids {
			n.Children = append(n.Children, k.Code)
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return t
}
