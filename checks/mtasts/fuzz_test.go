package mtasts

import (
	"strings"
	"testing"
)

// FuzzParseRecord: no panic; a record without problems is an MTA-STS
// record with a valid id; problems stay bounded.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=STSv1; id=20190429T010101", "v=STSv1;id=1;", "v=STSv1 ; id=1; ext=x", "v=STSv1; id=1; id=2",
		"v=STSv1; ID=1", "v=STSv1; id=a-b", "v=STSv1;;;id=1;x=;=y", "v=stsv1; id=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := ParseRecord(s)
		if len(r.Problems) > maxProblems {
			t.Fatalf("%d problems", len(r.Problems))
		}
		if len(r.Problems) == 0 && (!IsSTS(s) || !validID(r.ID)) {
			t.Fatalf("ParseRecord(%q) = %+v without problems", s, r)
		}
		if IsSTS(s) && MeantAsSTS(s) {
			t.Fatalf("%q is both an STS record and one meant as such", s)
		}
	})
}

// FuzzParseTLSRPT: no panic; a record without problems has at least one
// report URI, each mailto: with an address or https:, none twice.
func FuzzParseTLSRPT(f *testing.F) {
	for _, s := range []string{
		"v=TLSRPTv1; rua=mailto:tls@a.nhs.uk", "v=TLSRPTv1;rua=mailto:a@b.nhs.uk,https://r.example.com/x",
		"v=TLSRPTv1; rua=mailto:" + NCSCLegacyTLSRPT, "v=TLSRPTv1; rua=http://x", "v=TLSRPTv1; rua=,,;rua=mailto:@",
		"v=TLSRPTv1; rua=mailto:a%40b@c.nhs.uk?subject=x", "v=TLSRPTv1; rua=https://[::1]:99999/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := ParseTLSRPT(s)
		if len(r.Problems) > maxProblems || len(r.RUA) > maxURIs {
			t.Fatalf("unbounded: %d problems, %d URIs", len(r.Problems), len(r.RUA))
		}
		if len(r.Problems) > 0 {
			return
		}
		if !IsTLSRPT(s) || len(r.RUA) == 0 {
			t.Fatalf("ParseTLSRPT(%q) = %+v without problems", s, r)
		}
		seen := map[string]bool{}
		for _, u := range r.RUA {
			if u.Scheme != "https" && (u.Scheme != "mailto" || u.Addr == "") || seen[strings.ToLower(u.Raw)] {
				t.Fatalf("ParseTLSRPT(%q) kept %+v", s, u)
			}
			seen[strings.ToLower(u.Raw)] = true
		}
	})
}

// FuzzParsePolicy: no panic; a policy without problems has version STSv1,
// a known mode, max_age in range and valid mx patterns, which match a
// host made from them.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		goodBody, strings.ReplaceAll(goodBody, "\r\n", "\n"),
		"version: STSv1\nmode: testing\nmx: *.a.nhs.uk\nmax_age: 86400",
		"version: STSv1\r\nmode: Enforce\r\nmx: a.*.uk\r\nmax_age: 0\r\nmode: none\r\n",
		"version:\r\n:\r\nmx:\r\nmax_age: 99999999999\r\n", "\r\r\n\n\x00: \xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := ParsePolicy(s)
		if len(p.Problems) > maxProblems {
			t.Fatalf("%d problems", len(p.Problems))
		}
		if len(p.Problems) > 0 {
			return
		}
		if p.Version != "STSv1" || (p.Mode != ModeEnforce && p.Mode != ModeTesting && p.Mode != ModeNone) ||
			!p.MaxAgeOK || p.MaxAge <= 0 || p.MaxAge > MaxMaxAge || len(p.MX) == 0 {
			t.Fatalf("ParsePolicy(%q) = %+v without problems", s, p)
		}
		for _, m := range p.MX {
			host := strings.Replace(m, "*", "x", 1)
			if !validPattern(m) || !MatchMX(m, host) || len(p.Uncovered([]string{host})) != 0 {
				t.Fatalf("pattern %q does not match %q", m, host)
			}
		}
	})
}
