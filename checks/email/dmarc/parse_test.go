package dmarc

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseReadsTags(t *testing.T) {
	r, err := Parse("v=DMARC1; p=Reject; sp=quarantine; np=reject; adkim=s; aspf=r; pct=50; t=y; psd=n; fo=1:d; rf=afrf; ri=3600; " +
		"rua=mailto:DMARC@Example.nhs.uk!10m, mailto:" + NCSCLegacyRUA + "; ruf=mailto:f@x.example; foo=bar;")
	if err != nil {
		t.Fatal(err)
	}
	if r.P != "reject" || r.SP != "quarantine" || r.NP != "reject" || r.ADKIM != "s" || r.ASPF != "r" ||
		r.PCT != 50 || r.T != "y" || r.PSD != "n" || r.FO != "1:d" {
		t.Fatalf("record = %+v", r)
	}
	if len(r.RUA) != 2 || r.RUA[0].Addr != "dmarc@example.nhs.uk" || r.RUA[0].Domain != "example.nhs.uk" ||
		r.RUA[1].Addr != NCSCLegacyRUA || len(r.RUF) != 1 || r.RUF[0].Domain != "x.example" {
		t.Fatalf("uris = %+v / %+v", r.RUA, r.RUF)
	}
	if !r.Has("foo") || r.Has("ruf ") || !r.Has("v") {
		t.Fatal("Has does not reflect the published tags")
	}
	if len(r.Ignored) != 0 || r.PolicyError != "" {
		t.Fatalf("a valid record has ignored parts: %q %q", r.Ignored, r.PolicyError)
	}
}

func TestDefaults(t *testing.T) {
	r, err := Parse("v=DMARC1; p=reject")
	if err != nil {
		t.Fatal(err)
	}
	if r.Pct() != 100 {
		t.Errorf("missing pct = %d, want 100", r.Pct())
	}
	if r.SubdomainPolicy() != "reject" {
		t.Errorf("subdomain policy without sp = %q, want p", r.SubdomainPolicy())
	}
	r, _ = Parse("v=DMARC1; p=reject; sp=none")
	if r.SubdomainPolicy() != "none" {
		t.Errorf("subdomain policy = %q, want sp", r.SubdomainPolicy())
	}
}

// RFC 7489 §6.6.3 step 2, RFC 9989 §4.7 (v): a record whose first tag is
// not exactly v=DMARC1 is discarded, and discovery goes on to the parent.
func TestParseDiscardsARecordWithAWrongOrMisplacedVersion(t *testing.T) {
	tests := []struct{ name, rec, why string }{
		{"no separator after the version", "v=DMARC1 p=reject", `not separated by ";"`},
		{"no separator, comma instead", "v=DMARC1, p=reject", `not separated by ";"`},
		{"version not first", "p=reject; v=DMARC1", "not the first tag"},
		{"record in quotes", `"v=DMARC1; p=reject"`, "not the first tag"},
		{"lower-case version", "v=dmarc1; p=reject", "exactly DMARC1"},
		{"another version", "v=DMARC2; p=reject", `"DMARC2", not DMARC1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.rec)
			var se *SyntaxError
			if !errors.As(err, &se) || !se.Version {
				t.Fatalf("Parse(%q) = %+v, %v; want a version SyntaxError", tc.rec, r, err)
			}
			if !MeantAsDMARC(tc.rec) {
				t.Errorf("MeantAsDMARC(%q) = false", tc.rec)
			}
			if !strings.Contains(se.Msg, tc.why) || !strings.Contains(WhyNotDMARC(tc.rec), tc.why) {
				t.Errorf("Parse(%q): %q, want it to say %q", tc.rec, se.Msg, tc.why)
			}
		})
	}
}

// RFC 7489 §6.6.3 step 6, RFC 9989 §4.10.1: a missing or invalid p=, or an
// invalid sp= or np=, makes receivers act as if p=none when rua= has a
// valid URI, and apply no DMARC processing otherwise.
func TestParseInvalidPolicyIsNoneWithReportsElseNothing(t *testing.T) {
	rua := "; rua=mailto:d@example.nhs.uk"
	tests := []struct {
		name, rec string
		none      bool // applied as p=none; else not applied at all
		why       string
	}{
		{"bad p, no rua", "v=DMARC1; p=bogus", false, "p=bogus is not none"},
		{"bad p, with rua", "v=DMARC1; p=bogus" + rua, true, "p=bogus is not none"},
		{"no p, no rua", "v=DMARC1; adkim=s", false, "no p= tag"},
		{"no p, with rua", "v=DMARC1" + rua, true, "no p= tag"},
		{"bad sp, with rua", "v=DMARC1; p=reject; sp=strict" + rua, true, "sp=strict"},
		{"bad np, no rua", "v=DMARC1; p=reject; np=bogus", false, "np=bogus"},
		{"empty p, with rua", "v=DMARC1; p=" + rua, true, "p= is not none"},
		{"conflicting duplicate p", "v=DMARC1; p=reject; p=none" + rua, true, "p appears twice"},
		{"rua with no valid URI", "v=DMARC1; p=bogus; rua=mailto:nobody", false, "p=bogus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.rec)
			if !tc.none {
				var se *SyntaxError
				if !errors.As(err, &se) || se.Version || !strings.Contains(se.Msg, tc.why) || !strings.Contains(se.Msg, "no DMARC processing") {
					t.Fatalf("Parse(%q) = %+v, %v; want a policy SyntaxError saying %q", tc.rec, r, err, tc.why)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.rec, err)
			}
			if r.P != "none" || r.SP != "" || r.NP != "" || !strings.Contains(r.PolicyError, tc.why) {
				t.Fatalf("Parse(%q) = p=%q sp=%q np=%q (%q); want p=none and the reason %q", tc.rec, r.P, r.SP, r.NP, r.PolicyError, tc.why)
			}
		})
	}
}

// RFC 7489 §6.3 ("Syntax errors in the remainder of the record SHOULD be
// discarded in favor of default values (if any) or ignored outright"), RFC
// 9989 §4.8 (MUST):
// syntax errors in optional tags are discarded in favour of the defaults
// and the rest of the record stands.
func TestParseIgnoresInvalidOptionalTagsAndKeepsThePolicy(t *testing.T) {
	tests := []struct {
		name, tags, ignored string
		check               func(r *Record) bool
	}{
		{"fo=2", "fo=2", "fo=2", func(r *Record) bool { return r.FO == "" }},
		{"fo with an unknown option", "fo=1:q", "fo=1:q", func(r *Record) bool { return r.FO == "" }},
		{"unknown rf", "rf=xml", "rf=xml", nil},
		{"ri not a number", "ri=daily", "ri=daily", nil},
		{"ri negative", "ri=-1", "ri=-1", nil},
		{"adkim=x", "adkim=x", "adkim=x", func(r *Record) bool { return r.ADKIM == "" }},
		{"aspf=strict", "aspf=strict", "aspf=strict", func(r *Record) bool { return r.ASPF == "" }},
		{"pct over 100", "pct=150", "pct=150", func(r *Record) bool { return r.Pct() == 100 }},
		{"pct not a number", "pct=abc", "pct=abc", func(r *Record) bool { return r.Pct() == 100 }},
		{"t=maybe", "t=maybe", "t=maybe", func(r *Record) bool { return r.T == "" }},
		{"psd=x", "psd=x", "psd=x", func(r *Record) bool { return r.PSD == "" }},
		{"not tag=value", "junk", `"junk" is not tag=value`, nil},
		{"bad tag name", "a b=c", "not a tag name", nil},
		{"duplicate rua", "rua=mailto:a@example.nhs.uk; rua=mailto:b@example.nhs.uk", "rua appears more than once",
			func(r *Record) bool { return len(r.RUA) == 1 && r.RUA[0].Addr == "a@example.nhs.uk" }},
		{"one bad URI among good", "rua=mailto:nobody,mailto:a@example.nhs.uk", `"mailto:nobody" (not a mail address)`,
			func(r *Record) bool { return len(r.RUA) == 1 && r.RUA[0].Addr == "a@example.nhs.uk" }},
		{"empty URI", "rua=mailto:a@example.nhs.uk,,", "an empty URI", func(r *Record) bool { return len(r.RUA) == 1 }},
		{"bad size", "rua=mailto:a@example.nhs.uk!10x", "bad size limit", func(r *Record) bool { return len(r.RUA) == 0 }},
		{"mailto without domain", "ruf=mailto:a@.", "no domain", func(r *Record) bool { return len(r.RUF) == 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := "v=DMARC1; p=reject; " + tc.tags
			r, err := Parse(rec)
			if err != nil {
				t.Fatalf("Parse(%q): %v", rec, err)
			}
			if r.P != "reject" || r.PolicyError != "" {
				t.Errorf("Parse(%q): p=%q (%q), want reject", rec, r.P, r.PolicyError)
			}
			if !strings.Contains(strings.Join(r.Ignored, " | "), tc.ignored) {
				t.Errorf("Parse(%q): ignored %q, want it to name %q", rec, r.Ignored, tc.ignored)
			}
			if tc.check != nil && !tc.check(r) {
				t.Errorf("Parse(%q) = %+v: the tag does not keep its default", rec, r)
			}
		})
	}
}

func TestIsDMARC(t *testing.T) {
	tests := map[string]bool{
		"v=DMARC1; p=reject": true,
		"v = DMARC1 ;p=none": true,
		"V=DMARC1; p=none":   true,
		"v=DMARC1":           true,
		"p=reject; v=DMARC1": false,
		"v=DMARC1 p=reject":  false,
		"v=spf1 -all":        false,
		"v=DMARC10; p=none":  false,
		"google-site=abc":    false,
		"":                   false,
	}
	for s, want := range tests {
		if got := IsDMARC(s); got != want {
			t.Errorf("IsDMARC(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestMeantAsDMARCSinglesOutBrokenRecordsNotOtherTXT(t *testing.T) {
	tests := map[string]bool{
		"p=reject; v=DMARC1":       true,
		"v=DMARC1 p=reject":        true,
		"V = dmarc1; p=reject":     true,
		"v=DMARC2; p=reject":       true,
		`"v=DMARC1;p=reject"`:      true,
		"v=DMARC1; p=reject":       false, // valid: not "broken"
		"v=spf1 -all":              false,
		"google-site=abc":          false,
		"some text about dmarc":    false,
		"v=DKIM1; p=MIGfMA0GCSqGS": false,
	}
	for s, want := range tests {
		if got := MeantAsDMARC(s); got != want {
			t.Errorf("MeantAsDMARC(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestParseHostileInputIsBounded(t *testing.T) {
	start := time.Now()
	many := "v=DMARC1; p=reject; rua=" + strings.Repeat("mailto:a@b.example,", 400)
	r, err := Parse(many)
	if err != nil || len(r.RUA) != MaxURIs {
		t.Fatalf("400 URIs: %v; want the first %d kept", err, MaxURIs)
	}
	if _, err := Parse("v=DMARC1;" + strings.Repeat(";", 100000)); err == nil {
		t.Fatal("100000 separators parsed without error")
	}
	if _, err := Parse("v=DMARC1; p=reject; x=" + strings.Repeat("a", MaxRecordLen)); err == nil {
		t.Fatal("a record over the length bound parsed without error")
	}
	if !MeantAsDMARC("p=reject; v=DMARC1; x=" + strings.Repeat("a ", MaxRecordLen)) {
		t.Fatal("MeantAsDMARC on a long record")
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("hostile records took %v", el)
	}
}
