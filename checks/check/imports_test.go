package check

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestContractImportsNothingOfOurs: the contract names the small
// interfaces a check needs and the scanner provides them; it imports no
// package of this module (not the resolver, not the CRL fetcher), so no
// family can leak into it.
func TestContractImportsNothingOfOurs(t *testing.T) {
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), e.Name(), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/nhsx/posture/") {
				t.Errorf("%s imports %s", e.Name(), p)
			}
		}
	}
}
