package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nhsx/posture/scanner"
)

func TestDiscoveryFlagsAreValidated(t *testing.T) {
	db := filepath.Join(t.TempDir(), "x.db")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a label with a dot", []string{"--discover-labels", "www,a.b"}, `--discover-labels "a.b"`},
		{"a label with a space", []string{"--discover-labels", "my host"}, `--discover-labels "my host"`},
		{"a negative refresh", []string{"--ct-refresh", "-1h"}, "--ct-refresh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, append([]string{"scan", "--db", db}, tt.args...)...)
			if code != 2 || !strings.Contains(out+errs, tt.want) {
				t.Fatalf("exit %d, output:\n%s%s\nwant exit 2 and %q", code, out, errs, tt.want)
			}
		})
	}
}

func TestSummaryNamesUnavailableSourcesAndUnownedNames(t *testing.T) {
	var b bytes.Buffer
	printStats(&b, &scanner.Stats{RunID: 3, Status: "complete", Unowned: 7,
		Unavailable: map[string]string{"ct": "i/o timeout", "rdap": "HTTP 503"}}, "p.db")
	out := b.String()
	for _, want := range []string{"discovery sources unavailable (skipped for the rest of the run): ct (i/o timeout); rdap (HTTP 503)",
		"unowned names (in scope, no estate domain owns them; listed, not scanned): 7"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
