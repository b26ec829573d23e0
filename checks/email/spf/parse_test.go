package spf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseAcceptsValidRecords(t *testing.T) {
	tests := []struct {
		name, rec string
		terms     int
		lookups   int
	}{
		{"null policy", "v=spf1 -all", 1, 0},
		{"bare version", "v=spf1", 0, 0},
		{"upper-case version and names", "V=SPF1 IP4:192.0.2.1 INCLUDE:_spf.example.com -ALL", 3, 1},
		{"every lookup term", "v=spf1 a mx ptr include:a.example exists:%{i}.x.example redirect=b.example", 6, 6},
		{"dual cidr", "v=spf1 a/24 mx:mail.example/24//64 a//64 -all", 4, 3},
		{"ip6 with prefix", "v=spf1 ip6:2001:db8::/32 ip4:192.0.2.0/24 ~all", 3, 0},
		{"macros in exists and exp", "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} exp=explain._spf.%{d} -all", 3, 1},
		{"unknown modifier ignored", "v=spf1 foo=bar -all", 2, 0},
		{"extra whitespace", "v=spf1   ip4:192.0.2.1\t-all ", 2, 0},
		{"escapes", "v=spf1 exists:%%%_%-.example -all", 2, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.rec)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.rec, err)
			}
			if len(r.Terms) != tc.terms {
				t.Fatalf("terms = %d, want %d", len(r.Terms), tc.terms)
			}
			n := 0
			for _, tm := range r.Terms {
				if tm.Lookup() {
					n++
				}
			}
			if n != tc.lookups {
				t.Fatalf("lookup terms = %d, want %d", n, tc.lookups)
			}
		})
	}
}

func TestParseRejectsPermerrors(t *testing.T) {
	tests := []struct{ name, rec string }{
		{"not spf", "v=spf10 -all"},
		{"unknown mechanism", "v=spf1 ip:192.0.2.1 -all"},
		{"include without domain", "v=spf1 include -all"},
		{"include with empty domain", "v=spf1 include: -all"},
		{"bad ip4", "v=spf1 ip4:192.0.2.300 -all"},
		{"ip6 in ip4", "v=spf1 ip4:2001:db8::1 -all"},
		{"ip4 in ip6", "v=spf1 ip6:192.0.2.1 -all"},
		{"prefix too long", "v=spf1 ip4:192.0.2.0/33 -all"},
		{"leading zero prefix", "v=spf1 a/024 -all"},
		{"all with argument", "v=spf1 all:example.com"},
		{"two redirects", "v=spf1 redirect=a.example redirect=b.example"},
		{"two exps", "v=spf1 exp=a.example exp=b.example -all"},
		{"bad macro letter", "v=spf1 include:%{z}.example -all"},
		{"unterminated macro", "v=spf1 include:%{d.example -all"},
		{"lone percent", "v=spf1 exists:foo% -all"},
		{"zero parts kept", "v=spf1 exists:%{d0}.example -all"},
		{"numeric top label", "v=spf1 include:example.123 -all"},
		{"exp letter outside exp", "v=spf1 include:%{c}.example -all"},
		{"too many terms", "v=spf1" + strings.Repeat(" ip4:192.0.2.1", MaxTerms+1)},
		{"too long", "v=spf1 exists:" + strings.Repeat("a", MaxRecordLen) + ".example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.rec)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%.80q) = %v, %v; want a SyntaxError", tc.rec, r, err)
			}
		})
	}
}

func TestLintFlagsHygieneProblems(t *testing.T) {
	tests := []struct {
		name, rec string
		want      []string // substrings, in order
	}{
		{"clean", "v=spf1 ip4:192.0.2.1 include:a.example -all exp=x.example", nil},
		{"ptr", "v=spf1 ptr -all", []string{"ptr"}},
		{"modifier before mechanism", "v=spf1 exp=x.example ip4:192.0.2.1 -all", []string{"after a modifier"}},
		{"mechanism after all", "v=spf1 -all ip4:192.0.2.1", []string{"after all"}},
		{"redirect with all", "v=spf1 -all redirect=x.example", []string{"redirect is ignored"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			got := Lint(r)
			if len(got) != len(tc.want) {
				t.Fatalf("Lint = %q, want %d problems", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to mention %q", i, got[i], w)
				}
			}
		})
	}
}

func TestExpandOnlyFollowsDomainMacros(t *testing.T) {
	tests := []struct {
		spec, domain, want string
		ok                 bool
	}{
		{"_spf.example.com", "example.com", "_spf.example.com", true},
		{"_spf.%{d}", "Example.COM", "_spf.example.com", true},
		{"%{d2}", "a.b.example.com", "example.com", true},
		{"%{dr}.x.example", "a.b.c", "c.b.a.x.example", true},
		{"%{d1r}.x.example", "a.b.c", "a.x.example", true},
		{"%{ir}.%{d}", "example.com", "", false},
		{"%{l}._spf.example.com", "example.com", "", false},
	}
	for _, tc := range tests {
		got, ok, err := Expand(tc.spec, tc.domain)
		if err != nil || ok != tc.ok || got != tc.want {
			t.Errorf("Expand(%q, %q) = %q, %v, %v; want %q, %v", tc.spec, tc.domain, got, ok, err, tc.want, tc.ok)
		}
	}
	if _, _, err := Expand("bad..name", "example.com"); err == nil {
		t.Error("Expand of an empty label gave no error")
	}
}

func TestNamesSenders(t *testing.T) {
	tests := map[string]bool{
		"v=spf1 -all":                  false,
		"v=spf1 ~all":                  false,
		"v=spf1 -all exp=x.example":    false,
		"v=spf1 ip4:192.0.2.1 -all":    true,
		"v=spf1 redirect=_spf.example": true,
		"v=spf1 +all":                  false,
	}
	for rec, want := range tests {
		r, err := Parse(rec)
		if err != nil {
			t.Fatal(err)
		}
		if got := NamesSenders(r); got != want {
			t.Errorf("NamesSenders(%q) = %v, want %v", rec, got, want)
		}
	}
}

func TestParseHostileInputIsBounded(t *testing.T) {
	start := time.Now()
	huge := "v=spf1" + strings.Repeat(" a:x.example", 10000)
	if _, err := Parse(huge); err == nil {
		t.Fatal("10000 terms parsed without error")
	}
	macro := "v=spf1 exists:" + strings.Repeat("%{d}", 2000) + ".example"
	if _, err := Parse(macro); err != nil {
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("hostile records took %v", el)
	}
}
