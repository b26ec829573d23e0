package mtasts

import (
	"strings"
	"testing"
)

func TestParseRecordFollowsRFC8461Section3_1(t *testing.T) {
	tests := []struct {
		name, rec string
		id        string
		problem   string // "" = valid
	}{
		{"minimal", "v=STSv1; id=20190429T010101", "20190429T010101", ""},
		{"no space, trailing semicolon", "v=STSv1;id=abc123;", "abc123", ""},
		{"space before the separator", "v=STSv1 ; id=1", "1", ""},
		{"32 characters", "v=STSv1; id=" + strings.Repeat("a", 32), strings.Repeat("a", 32), ""},
		{"an extension field", "v=STSv1; id=1; ext.x-y=some:value", "1", ""},
		{"no id", "v=STSv1;", "", "no id= field"},
		{"33 characters", "v=STSv1; id=" + strings.Repeat("a", 33), "", "not 1 to 32 letters and digits"},
		{"id with a dash", "v=STSv1; id=2024-01-01", "", "not 1 to 32 letters and digits"},
		{"empty id", "v=STSv1; id=", "", "not 1 to 32 letters and digits"},
		{"two ids", "v=STSv1; id=1; id=2", "1", "more than once"},
		{"ID in upper case", "v=STSv1; ID=1", "", "case-sensitive"},
		{"field without =", "v=STSv1; id=1; junk", "1", "not name=value"},
		{"extension value with a space", "v=STSv1; id=1; x=a b", "1", "empty or holds"},
		{"extension name with a bad character", "v=STSv1; id=1; _x=1", "1", "not a valid field name"},
		{"not an STS record", "v=spf1 -all", "", "does not begin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ParseRecord(tt.rec)
			got := strings.Join(r.Problems, "; ")
			if tt.problem == "" && got != "" || tt.problem != "" && !strings.Contains(got, tt.problem) {
				t.Fatalf("ParseRecord(%q) problems %q, want %q", tt.rec, got, tt.problem)
			}
			if tt.id != "" && r.ID != tt.id {
				t.Fatalf("id %q, want %q", r.ID, tt.id)
			}
		})
	}
}

func TestOnlyRecordsBeginningWithTheVersionAreKept(t *testing.T) {
	for s, want := range map[string]bool{
		"v=STSv1; id=1": true, "v=STSv1": true, "v=STSv1\t;id=1": true,
		"v=STSv10; id=1": false, "v=stsv1; id=1": false, " v=STSv1; id=1": false, "id=1; v=STSv1": false,
	} {
		if IsSTS(s) != want {
			t.Errorf("IsSTS(%q) = %v, want %v", s, !want, want)
		}
	}
	for s, want := range map[string]bool{"v=stsv1; id=1": true, " v=STSv1; id=1": true, "v=STSv1; id=1": false, "v=STSv10": false} {
		if MeantAsSTS(s) != want {
			t.Errorf("MeantAsSTS(%q) = %v, want %v", s, !want, want)
		}
	}
	if !IsTLSRPT("v=TLSRPTv1; rua=mailto:a@b.nhs.uk") || IsTLSRPT("v=TLSRPTv1rua=x") || !MeantAsTLSRPT("V=TLSRPTv1;rua=mailto:a@b.nhs.uk") {
		t.Error("TLS-RPT version detection")
	}
}

func TestParseTLSRPTFollowsRFC8460Section3(t *testing.T) {
	tests := []struct {
		name, rec string
		uris      int
		problem   string
	}{
		{"one mailto", "v=TLSRPTv1; rua=mailto:tls@a.nhs.uk", 1, ""},
		{"mailto and https", "v=TLSRPTv1;rua=mailto:tls@a.nhs.uk,https://reports.example.com/v1/tlsrpt", 2, ""},
		{"white space around commas", "v=TLSRPTv1; rua=mailto:a@a.nhs.uk , mailto:b@a.nhs.uk", 2, ""},
		{"scheme in upper case", "v=TLSRPTv1; rua=MAILTO:tls@a.nhs.uk", 1, ""},
		{"an extension", "v=TLSRPTv1; rua=mailto:tls@a.nhs.uk; ext=1", 1, ""},
		{"no rua", "v=TLSRPTv1;", 0, "no rua= field"},
		{"http scheme", "v=TLSRPTv1; rua=http://reports.example.com/", 1, "not a mailto: or https: URI"},
		{"bare address", "v=TLSRPTv1; rua=tls@a.nhs.uk", 1, "not a mailto: or https: URI"},
		{"mailto without an address", "v=TLSRPTv1; rua=mailto:nobody", 1, "with an address"},
		{"duplicate", "v=TLSRPTv1; rua=mailto:tls@a.nhs.uk,mailto:TLS@a.nhs.uk", 1, "listed twice"},
		{"empty URI", "v=TLSRPTv1; rua=mailto:tls@a.nhs.uk,", 1, "empty URI"},
		{"two rua fields", "v=TLSRPTv1; rua=mailto:a@a.nhs.uk; rua=mailto:b@a.nhs.uk", 1, "more than once"},
		{"RUA in upper case", "v=TLSRPTv1; RUA=mailto:a@a.nhs.uk", 0, "case-sensitive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ParseTLSRPT(tt.rec)
			got := strings.Join(r.Problems, "; ")
			if tt.problem == "" && got != "" || tt.problem != "" && !strings.Contains(got, tt.problem) {
				t.Fatalf("ParseTLSRPT(%q) problems %q, want %q", tt.rec, got, tt.problem)
			}
			if len(r.RUA) != tt.uris {
				t.Fatalf("%d URIs, want %d: %+v", len(r.RUA), tt.uris, r.RUA)
			}
		})
	}
	r := ParseTLSRPT("v=TLSRPTv1; rua=mailto:" + strings.ToUpper(NCSCLegacyTLSRPT))
	if len(r.RUA) != 1 || r.RUA[0].Addr != NCSCLegacyTLSRPT {
		t.Fatalf("the NCSC address is not recognised without case: %+v", r.RUA)
	}
}

const goodBody = "version: STSv1\r\nmode: enforce\r\nmx: mail.a.nhs.uk\r\nmx: *.mx.nhs.net\r\nmax_age: 1209600\r\n"

func TestParsePolicyFollowsRFC8461Section3_2(t *testing.T) {
	tests := []struct {
		name, body string
		problem    string
		lf         bool
	}{
		{"CRLF", goodBody, "", false},
		{"LF only is accepted and noted", strings.ReplaceAll(goodBody, "\r\n", "\n"), "", true},
		{"no final newline", strings.TrimSuffix(goodBody, "\r\n"), "", false},
		{"spaces around values, blank lines, unknown keys", "version:STSv1\r\n\r\nmode:   testing  \r\nmx: a.nhs.uk\r\nfoo: bar\r\nmax_age: 86400\r\n", "", false},
		{"mx with a trailing dot", "version: STSv1\r\nmode: none\r\nmx: a.nhs.uk.\r\nmax_age: 1\r\n", "", false},
		{"version wrong", strings.Replace(goodBody, "STSv1", "STSv2", 1), "not STSv1", false},
		{"version missing", strings.Replace(goodBody, "version: STSv1\r\n", "", 1), "no version", false},
		{"mode in upper case", strings.Replace(goodBody, "enforce", "Enforce", 1), "case-sensitive", false},
		{"mode missing", strings.Replace(goodBody, "mode: enforce\r\n", "", 1), "no mode", false},
		{"two modes", goodBody + "mode: testing\r\n", "more than once", false},
		{"max_age zero", strings.Replace(goodBody, "1209600", "0", 1), "outside 1..31557600", false},
		{"max_age over a year", strings.Replace(goodBody, "1209600", "31557601", 1), "outside 1..31557600", false},
		{"max_age a year", strings.Replace(goodBody, "1209600", "31557600", 1), "", false},
		{"max_age negative", strings.Replace(goodBody, "1209600", "-5", 1), "not a whole number", false},
		{"max_age with a unit", strings.Replace(goodBody, "1209600", "14d", 1), "not a whole number", false},
		{"max_age eleven digits", strings.Replace(goodBody, "1209600", "00001209600", 1), "not a whole number", false},
		{"max_age missing", strings.Replace(goodBody, "max_age: 1209600\r\n", "", 1), "no max_age", false},
		{"no mx", "version: STSv1\r\nmode: enforce\r\nmax_age: 1209600\r\n", "no valid mx", false},
		{"wildcard not leftmost", strings.Replace(goodBody, "*.mx.nhs.net", "mx.*.nhs.net", 1), "wildcard", false},
		{"partial wildcard", strings.Replace(goodBody, "*.mx.nhs.net", "*mx.nhs.net", 1), "wildcard", false},
		{"Mode key in upper case", strings.Replace(goodBody, "mode:", "Mode:", 1), "keys are case-sensitive", false},
		{"an HTML page", "<html><body>hello</body></html>\n", "no version", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ParsePolicy(tt.body)
			got := strings.Join(p.Problems, "; ")
			if tt.problem == "" && got != "" || tt.problem != "" && !strings.Contains(got, tt.problem) {
				t.Fatalf("problems %q, want %q", got, tt.problem)
			}
			if p.LF != tt.lf {
				t.Fatalf("LF %v, want %v", p.LF, tt.lf)
			}
		})
	}
	p := ParsePolicy(goodBody)
	if p.Mode != ModeEnforce || p.MaxAge != 1209600 || !p.MaxAgeOK || strings.Join(p.MX, ",") != "mail.a.nhs.uk,*.mx.nhs.net" {
		t.Fatalf("parsed %+v", p)
	}
}

func TestMXPatternsMatchAsRFC8461Section4_1Says(t *testing.T) {
	tests := []struct {
		pattern, host string
		want          bool
	}{
		{"mail.a.nhs.uk", "mail.a.nhs.uk", true},
		{"mail.a.nhs.uk", "MAIL.A.NHS.UK.", true},
		{"mail.a.nhs.uk.", "mail.a.nhs.uk", true},
		{"*.a.nhs.uk", "mail.a.nhs.uk", true},
		{"*.a.nhs.uk", "a.nhs.uk", false},
		{"*.a.nhs.uk", "x.mail.a.nhs.uk", false},
		{"*.a.nhs.uk", ".a.nhs.uk", false},
		{"mail.a.nhs.uk", "mail2.a.nhs.uk", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := MatchMX(tt.pattern, tt.host); got != tt.want {
			t.Errorf("MatchMX(%q, %q) = %v, want %v", tt.pattern, tt.host, got, tt.want)
		}
	}
	p := ParsePolicy(goodBody)
	if un := p.Uncovered([]string{"mail.a.nhs.uk", "x.mx.nhs.net", "other.nhs.uk"}); strings.Join(un, ",") != "other.nhs.uk" {
		t.Fatalf("uncovered %v", un)
	}
}
