package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoPackageOfOursInTheBinaryImportsTesting keeps the "testing" package (its
// flags, its helpers) out of the posture binary. The lab ships in it for
// `posture demo`, so what the lab uses from the test support packages
// (checks/tlsprobe/tlstest, checks/dnsq/dnstest…) must not import
// "testing"; testing.TB helpers belong in packages only _test.go files
// import (e.g. checks/tlsprobe/tlstest/tlsmust). Since nuclei came in, two
// of its dependencies (kitabisa/go-ci, x/tools' modindex) import testing
// themselves, which we cannot change: the rule is now that no package of
// ours imports it, so our helpers' flags and state never reach the binary.
func TestNoPackageOfOursInTheBinaryImportsTesting(t *testing.T) {
	const product = "github.com/nhsx/posture/cmd/posture"
	goBin, err := exec.LookPath("go") // go test puts GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("the go command is needed to list the binary's packages: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, product).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", product, err, stderr)
	}
	var pkgs, importers []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkgs = append(pkgs, f[0])
		if slices.Contains(f[1:], "testing") {
			importers = append(importers, f[0])
		}
	}
	if !slices.Contains(pkgs, product) || !slices.Contains(pkgs, "github.com/nhsx/posture/scanner/lab") {
		t.Fatalf("go list -deps listed %d packages without %s and the lab: the listing proves nothing", len(pkgs), product)
	}
	var ours []string
	for _, p := range importers {
		if strings.HasPrefix(p, "github.com/nhsx/posture/") {
			ours = append(ours, p)
		}
	}
	if len(ours) > 0 {
		t.Errorf("packages of ours in the posture binary import testing: %v", ours)
	}
}
