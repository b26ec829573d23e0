package dashboard

import (
	"bytes"
	"go/ast"
	"go/parser"
	goprinter "go/printer"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSourceMirrorsTheCLIs: the dashboard's store adapter (source) is a
// copy of cmd/posture's storeSource, which package main cannot export, so
// that the dashboard's summary is the one `posture report` writes. Every
// method, helper and type of storeSource must read the same here, but for
// the receiver's name.
func TestSourceMirrorsTheCLIs(t *testing.T) {
	cli := decls(t, filepath.Join("..", "..", "cmd", "posture"), "storeSource")
	mine := decls(t, ".", "source")
	if len(cli) < 5 {
		t.Fatalf("found %d declarations of storeSource in cmd/posture: the comparison proves nothing", len(cli))
	}
	for name, src := range cli {
		got, ok := mine[name]
		switch {
		case !ok:
			t.Errorf("cmd/posture's storeSource has %s; reports/dashboard/source.go lacks it", name)
		case got != src:
			t.Errorf("%s differs from cmd/posture's: copy it into reports/dashboard/source.go\n--- cmd/posture\n%s\n--- dashboard\n%s", name, src, got)
		}
	}
	for name := range mine {
		if _, ok := cli[name]; !ok {
			t.Errorf("reports/dashboard/source.go has %s, which cmd/posture's storeSource lacks", name)
		}
	}
}

// adapterHelpers are the declarations beside its methods that the adapter
// uses.
var adapterHelpers = []string{"type runLife", "acceptanceOf"}

// decls prints the non-test declarations of dir that belong to the adapter
// recv: its methods and adapterHelpers, printed without comments and with
// recv renamed to "adapter".
func decls(t *testing.T, dir, recv string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]ast.Decl{}
	var methods []string
	for _, p := range files {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, p, b, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				name := d.Name.Name
				if d.Recv != nil && len(d.Recv.List) == 1 {
					id, ok := d.Recv.List[0].Type.(*ast.Ident)
					if !ok || id.Name != recv {
						continue
					}
					name = "(" + recv + ")." + name
					methods = append(methods, name)
				}
				all[name] = d
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok {
						all["type "+ts.Name.Name] = &ast.GenDecl{Tok: token.TYPE, Specs: []ast.Spec{ts}}
					}
				}
			}
		}
	}
	// The methods, and the helpers they use.
	out := map[string]string{}
	for _, name := range append(methods, adapterHelpers...) {
		d, ok := all[name]
		if !ok {
			continue
		}
		ast.Inspect(d, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && id.Name == recv {
				id.Name = "adapter"
			}
			return true
		})
		var b bytes.Buffer
		if err := goprinter.Fprint(&b, fset, d); err != nil {
			t.Fatal(err)
		}
		out[strings.Replace(name, "("+recv+")", "(adapter)", 1)] = b.String()
	}
	return out
}
