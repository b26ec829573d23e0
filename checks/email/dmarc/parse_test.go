package dmarc

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseReadsTags(t *testing.T) {
	r, err := Parse("v=DMARC1; p=Reject; sp=quarantine; np=reject; adkim=s; aspf=r; pct=50; t=y; fo=1:d; " +
		"rua=mailto:DMARC@Example.nhs.uk!10m, mailto:" + NCSCLegacyRUA + "; ruf=mailto:f@x.example; foo=bar;")
	if err != nil {
		t.Fatal(err)
	}
	if r.P != "reject" || r.SP != "quarantine" || r.NP != "reject" || r.ADKIM != "s" || r.ASPF != "r" ||
		r.PCT != 50 || r.T != "y" || r.FO != "1:d" {
		t.Fatalf("record = %+v", r)
	}
	if len(r.RUA) != 2 || r.RUA[0].Addr != "dmarc@example.nhs.uk" || r.RUA[0].Domain != "example.nhs.uk" ||
		r.RUA[1].Addr != NCSCLegacyRUA || len(r.RUF) != 1 || r.RUF[0].Domain != "x.example" {
		t.Fatalf("uris = %+v / %+v", r.RUA, r.RUF)
	}
	if !r.Has("foo") || r.Has("ri") {
		t.Fatal("Has does not reflect the published tags")
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

func TestParseRejectsMalformed(t *testing.T) {
	tests := []struct{ name, rec string }{
		{"no p", "v=DMARC1; rua=mailto:a@b.example"},
		{"bad p", "v=DMARC1; p=bogus"},
		{"bad sp", "v=DMARC1; p=reject; sp=strict"},
		{"v not first", "p=reject; v=DMARC1"},
		{"lower-case version", "v=dmarc1; p=reject"},
		{"duplicate p", "v=DMARC1; p=reject; p=none"},
		{"pct over 100", "v=DMARC1; p=reject; pct=150"},
		{"pct not a number", "v=DMARC1; p=reject; pct=abc"},
		{"bad alignment", "v=DMARC1; p=reject; adkim=x"},
		{"bad t", "v=DMARC1; p=reject; t=maybe"},
		{"bad fo", "v=DMARC1; p=reject; fo=2"},
		{"not tag=value", "v=DMARC1; p=reject; junk"},
		{"mailto without at", "v=DMARC1; p=reject; rua=mailto:nobody"},
		{"empty uri", "v=DMARC1; p=reject; rua=mailto:a@b.example,,"},
		{"bad size", "v=DMARC1; p=reject; rua=mailto:a@b.example!10x"},
		{"too long", "v=DMARC1; p=reject; x=" + strings.Repeat("a", MaxRecordLen)},
		{"too many tags", "v=DMARC1; p=reject" + strings.Repeat("; x=1", MaxTags+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.rec)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%.80q) = %+v, %v; want a SyntaxError", tc.rec, r, err)
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
	if !MentionsDMARC("p=reject; v=DMARC1") || MentionsDMARC("v=DMARC1; p=reject") {
		t.Error("MentionsDMARC does not single out a misplaced version")
	}
}

func TestParseHostileInputIsBounded(t *testing.T) {
	start := time.Now()
	many := "v=DMARC1; p=reject; rua=" + strings.Repeat("mailto:a@b.example,", 10000)
	if _, err := Parse(many); err == nil {
		t.Fatal("10000 URIs parsed without error")
	}
	if _, err := Parse("v=DMARC1;" + strings.Repeat(";", 100000)); err == nil {
		t.Fatal("100000 separators parsed without error")
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("hostile records took %v", el)
	}
}
