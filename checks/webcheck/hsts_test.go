package webcheck

import (
	"strings"
	"testing"
)

func TestParseHSTS(t *testing.T) {
	for _, tc := range []struct {
		in      string
		ok      bool
		age     int64
		subs    bool
		preload bool
	}{
		{"max-age=31536000", true, 31536000, false, false},
		{"max-age=63072000; includeSubDomains; preload", true, 63072000, true, true},
		{"MAX-AGE=10;INCLUDESUBDOMAINS", true, 10, true, false},
		{`max-age="31536000"`, true, 31536000, false, false},
		{"  max-age = 5 ;; includeSubDomains ; ", true, 5, true, false},
		{"max-age=1; report-uri=\"https://x/\"; foo", true, 1, false, false},
		{"max-age=0", true, 0, false, false},
		{"max-age=99999999999999999999999999999999", true, MaxAgeCap, false, false},
		{"includeSubDomains", false, 0, false, false},
		{"", false, 0, false, false},
		{"max-age=1; max-age=2", false, 0, false, false},
		{"max-age=1; includeSubDomains; includesubdomains", false, 0, false, false},
		{"max-age=-1", false, 0, false, false},
		{"max-age=1.5", false, 0, false, false},
		{"max-age=", false, 0, false, false},
		{"max-age", false, 0, false, false},
		{"max-age=1, includeSubDomains", false, 0, false, false},
		{"max-age=1; includeSubDomains=yes", false, 0, false, false},
		{`max-age="1`, false, 0, false, false},
		{"max-age=1 2", false, 0, false, false},
		{"=1; max-age=1", false, 0, false, false},
	} {
		h, err := ParseHSTS(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseHSTS(%q): err %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && (h.MaxAge != tc.age || h.IncludeSubDomains != tc.subs || h.Preload != tc.preload) {
			t.Errorf("ParseHSTS(%q) = %+v", tc.in, h)
		}
	}
}

func TestParseHSTSBoundsDirectives(t *testing.T) {
	if _, err := ParseHSTS("max-age=1" + strings.Repeat(";x", 10000)); err == nil {
		t.Fatal("10,000 directives parsed")
	}
}

func FuzzParseHSTS(f *testing.F) {
	for _, s := range []string{"max-age=31536000; includeSubDomains; preload", `max-age="0"`, "max-age=1;;", `a="\"\\";max-age=2`, "max-age=1; max-age=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHSTS(s)
		if err != nil {
			return
		}
		if h.MaxAge < 0 || h.MaxAge > MaxAgeCap || len(h.Unknown) > maxDirectives {
			t.Fatalf("ParseHSTS(%q) = %+v", s, h)
		}
		if !strings.Contains(strings.ToLower(s), "max-age") {
			t.Fatalf("ParseHSTS(%q) passed without max-age", s)
		}
	})
}
