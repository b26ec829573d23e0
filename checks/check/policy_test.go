package check

import (
	"strings"
	"testing"
)

type testSettings struct {
	MaxLookups int  `yaml:"max_lookups"`
	WarnDays   int  `yaml:"warn_days"`
	Strict     bool `yaml:"strict"`
}

var testSection = NewSection("fam", testSettings{MaxLookups: 10, WarnDays: 14}, func(s testSettings) []*FieldError {
	return []*FieldError{InRange("max_lookups", s.MaxLookups, 1, 100), AtLeast("warn_days", s.WarnDays, 0)}
})

// TestParsePolicyRejectsBadValuesWithTheirLine: a value out of range, an
// unknown key at either level, a duplicate and an unknown severity are
// errors that name the file and the line, never a silent default.
func TestParsePolicyRejectsBadValuesWithTheirLine(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"zero lookup limit", "fam:\n  max_lookups: 0\n", "p.yaml:2: fam.max_lookups: 0 is outside 1..100"},
		{"negative days", "severity: {}\nfam:\n  strict: true\n  warn_days: -3\n", "p.yaml:4: fam.warn_days: -3 is below the minimum of 0"},
		{"unknown setting in a section", "fam:\n  max_lookup: 5\n", `p.yaml:2: fam: unknown setting "max_lookup"`},
		{"unknown section", "\ndns:\n  x: 1\n", `p.yaml:2: unknown setting "dns" (known: severity, disabled, fam)`},
		{"set twice", "fam:\n  warn_days: 3\n  warn_days: 4\n", "p.yaml:3: fam.warn_days is set twice"},
		{"unknown severity", "severity:\n  fam.x: urgent\n", `p.yaml:2: severity of fam.x: unknown severity "urgent"`},
		{"wrong type", "fam:\n  warn_days: soon\n", "p.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy("p.yaml", []byte(tt.yaml), []Sectioner{testSection})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestSectionGetReturnsTheFileValuesOverDefaults: a section the file sets
// is read typed; one it does not set, and a nil policy, give the defaults.
func TestSectionGetReturnsTheFileValuesOverDefaults(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte("fam: {warn_days: 30}\ndisabled: [fam.x]\n"), []Sectioner{testSection})
	if err != nil {
		t.Fatal(err)
	}
	if got := testSection.Get(p); got != (testSettings{MaxLookups: 10, WarnDays: 30}) {
		t.Errorf("Get = %+v, want max_lookups 10 (default) and warn_days 30", got)
	}
	if got := testSection.Get(nil); got != testSection.Defaults() {
		t.Errorf("Get(nil) = %+v, want the defaults", got)
	}
	if p.Enabled("fam.x") || !p.Enabled("fam.y") {
		t.Errorf("disabled list not applied")
	}
	for _, empty := range []string{"", "# nothing\n", "~\n"} {
		if p, err := ParsePolicy("p.yaml", []byte(empty), []Sectioner{testSection}); err != nil || testSection.Get(p) != testSection.Defaults() {
			t.Errorf("%q: %v, want the defaults", empty, err)
		}
	}
}
