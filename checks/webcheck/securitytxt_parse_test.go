package webcheck

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var secTxtAt = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const secTxtURL = "https://www.example.nhs.uk/.well-known/security.txt"

// secTxtGood is a valid file at secTxtAt.
const secTxtGood = `# Our security address
Contact: mailto:security@example.nhs.uk
Contact: https://example.nhs.uk/contact
Contact: tel:+44-20-7946-0000
Expires: 2026-12-31T23:59:59Z
Policy: https://example.nhs.uk/vdp
Canonical: https://www.example.nhs.uk/.well-known/security.txt
Preferred-Languages: en, cy
Encryption: openpgp4fpr:5f2de5521c63a801ab59ccb603d49de44b29100f
X-Unknown-Field: ignored
`

func secTxtCodes(ps []SecTxtProblem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Code)
	}
	return out
}

// TestSecurityTxtProblemsAreFoundWithTheirLines runs the parser and the
// whole-file checks over files that each break one rule, and asserts
// the problem codes found and their lines.
func TestSecurityTxtProblemsAreFoundWithTheirLines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  string
		want  []string // codes, in order
		lines []int    // their lines (nil: not checked)
	}{
		{"good", secTxtGood, nil, nil},
		{"good with CRLF", strings.ReplaceAll(secTxtGood, "\n", "\r\n"), nil, nil},
		{"field names are case-insensitive", strings.NewReplacer("Contact:", "CONTACT:", "Expires:", "expires:", "Policy:", "pOLICY:").Replace(secTxtGood), nil, nil},
		{"no final newline", strings.TrimSuffix(secTxtGood, "\n"), nil, nil},
		{"no contact", "Expires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n", []string{"no-contact"}, []int{0}},
		{"http contact", "Contact: http://x.nhs.uk/c\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n", []string{"bad-uri"}, []int{1}},
		{"bare email contact", "Contact: security@x.nhs.uk\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n", []string{"bad-uri"}, []int{1}},
		{"no expires", "Contact: mailto:a@x.nhs.uk\nPolicy: https://x.nhs.uk/vdp\n", []string{"no-expires"}, nil},
		{"two expires", "Contact: mailto:a@x.nhs.uk\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\nExpires: 2026-11-30T23:59:59Z\n", []string{"expires-twice"}, []int{4}},
		{"expired", "Contact: mailto:a@x.nhs.uk\nExpires: 2026-05-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n", []string{"expired"}, []int{2}},
		{"expires over a year ahead", "Contact: mailto:a@x.nhs.uk\nExpires: 2027-06-02T00:00:00Z\nPolicy: https://x.nhs.uk/vdp\n", []string{"expires-far"}, []int{2}},
		{"expires not RFC 3339", "Contact: mailto:a@x.nhs.uk\nExpires: 31 Dec 2026\nPolicy: https://x.nhs.uk/vdp\n", []string{"bad-expires"}, []int{2}},
		{"expires with a space", "Contact: mailto:a@x.nhs.uk\nExpires: 2026-12-31 23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n", []string{"bad-expires"}, []int{2}},
		{"lower-case t and z", "Contact: mailto:a@x.nhs.uk\nExpires: 2026-12-31t23:59:59z\nPolicy: https://x.nhs.uk/vdp\n", nil, nil},
		{"no policy", "Contact: mailto:a@x.nhs.uk\nExpires: 2026-12-31T23:59:59+01:00\n", []string{"no-policy"}, []int{0}},
		{"canonical elsewhere", "Contact: mailto:a@x.nhs.uk\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\nCanonical: https://other.nhs.uk/.well-known/security.txt\n", []string{"canonical-mismatch"}, []int{4}},
		{"canonical differs in case and port only", "Contact: mailto:a@x.nhs.uk\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\nCanonical: HTTPS://WWW.Example.NHS.UK:443/.well-known/security.txt\n", nil, nil},
		{"languages twice", "Contact: mailto:a@x.nhs.uk\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\nPreferred-Languages: en\nPreferred-Languages: cy\n", []string{"languages-twice"}, []int{5}},
		{"not a field", "Contact: mailto:a@x.nhs.uk\nhello world\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n", []string{"not-a-field"}, []int{2}},
		{"empty value", "Contact: mailto:a@x.nhs.uk\nHiring:\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n", []string{"empty-value"}, []int{2}},
		{"bare CR line ends", "Contact: mailto:a@x.nhs.uk\rExpires: 2026-12-31T23:59:59Z\rPolicy: https://x.nhs.uk/vdp\r", []string{"bare-cr", "bad-uri", "no-expires", "no-policy"}, []int{1, 1, 0, 0}},
		{"byte-order mark", "\ufeffContact: mailto:a@x.nhs.uk\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n", []string{"bom"}, []int{0}},
		{"invalid UTF-8 comment", "# caf\xe9\nContact: mailto:a@x.nhs.uk\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n", []string{"not-utf8"}, []int{1}},
		{"every problem, not only the first", "Contact: http://x.nhs.uk/\nExpires: 2020-01-01T00:00:00Z\nExpires: 2021-01-01T00:00:00Z\n",
			[]string{"bad-uri", "expires-twice", "expired", "expired", "no-policy"}, []int{1, 3, 2, 3, 0}},
		{"signed", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nContact: mailto:a@x.nhs.uk\n- Expires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n- -----not a field\n-----BEGIN PGP SIGNATURE-----\n\niQEzBAEBCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n",
			[]string{"not-a-field"}, []int{7}},
		{"signed, data after the signature", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nContact: mailto:a@x.nhs.uk\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n-----BEGIN PGP SIGNATURE-----\nAAAA\n-----END PGP SIGNATURE-----\nContact: mailto:evil@example.com\n",
			[]string{"after-signature"}, []int{10}},
		{"signed, never closed", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nContact: mailto:a@x.nhs.uk\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n",
			[]string{"pgp-unclosed"}, []int{0}},
		{"a line over 2048 bytes", "Contact: mailto:a@x.nhs.uk\nHiring: https://x.nhs.uk/" + strings.Repeat("a", 2100) + "\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n",
			[]string{"line-too-long"}, []int{2}},
		{"over 1000 lines", "Contact: mailto:a@x.nhs.uk\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\n" + strings.Repeat("# c\n", 1000),
			[]string{"too-many-lines"}, []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ParseSecurityTxt([]byte(tc.file))
			got := s.Check([]string{secTxtURL}, secTxtAt)
			if !slices.Equal(secTxtCodes(got), tc.want) {
				t.Fatalf("problems %q, want %q\n%v", secTxtCodes(got), tc.want, got)
			}
			if tc.lines != nil {
				for i, p := range got {
					if p.Line != tc.lines[i] {
						t.Errorf("%s on line %d, want %d", p.Code, p.Line, tc.lines[i])
					}
				}
			}
		})
	}
}

func TestSecurityTxtSignedFramingIsStrippedAndUnescaped(t *testing.T) {
	s := ParseSecurityTxt([]byte("-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA512\r\n\r\n- Contact: mailto:a@x.nhs.uk\r\nExpires: 2026-12-31T23:59:59Z\r\n-----BEGIN PGP SIGNATURE-----\r\nxyz\r\n-----END PGP SIGNATURE-----\r\n"))
	if !s.Signed {
		t.Error("not seen as signed")
	}
	if c := s.Values("Contact"); len(c) != 1 || c[0].Value != "mailto:a@x.nhs.uk" || c[0].Line != 4 {
		t.Errorf("Contact = %+v, want the dash-escaped line 4 unescaped", c)
	}
	if len(s.Problems) != 0 {
		t.Errorf("problems: %v", s.Problems)
	}
	// A BEGIN line that is not the first is not a signed message.
	s = ParseSecurityTxt([]byte("Contact: mailto:a@x.nhs.uk\n-----BEGIN PGP SIGNED MESSAGE-----\n"))
	if s.Signed || !slices.Contains(secTxtCodes(s.Problems), "not-a-field") {
		t.Errorf("a late BEGIN line: signed %v, problems %v", s.Signed, s.Problems)
	}
}

func TestSecurityTxtCanonicalIsSkippedWithoutARetrievedURL(t *testing.T) {
	s := ParseSecurityTxt([]byte("Contact: mailto:a@x.nhs.uk\nExpires: 2026-12-31T23:59:59Z\nPolicy: https://x.nhs.uk/vdp\nCanonical: https://other.nhs.uk/.well-known/security.txt\n"))
	if ps := s.Check(nil, secTxtAt); len(ps) != 0 {
		t.Errorf("problems %v", ps)
	}
	// A redirect: the first URL or the final one may be listed.
	if ps := s.Check([]string{secTxtURL, "https://other.nhs.uk/.well-known/security.txt"}, secTxtAt); len(ps) != 0 {
		t.Errorf("final URL listed: problems %v", ps)
	}
}

func TestSecurityTxtProblemsAreBounded(t *testing.T) {
	s := ParseSecurityTxt([]byte(strings.Repeat("garbage\n", 900)))
	if len(s.Problems) != secTxtMaxProblems || s.Dropped() != 900-secTxtMaxProblems {
		t.Errorf("%d problems kept, %d dropped", len(s.Problems), s.Dropped())
	}
	big := []byte(strings.Repeat("# x\n", SecurityTxtMaxBytes))
	if s := ParseSecurityTxt(big); !slices.Contains(secTxtCodes(s.Problems), "too-large") || s.Lines > SecurityTxtMaxLines {
		t.Errorf("a huge file: %d lines read, problems %v", s.Lines, secTxtCodes(s.Problems))
	}
}

func TestParseRFC3339(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2021-12-31T18:37:07z", time.Date(2021, 12, 31, 18, 37, 7, 0, time.UTC), true},
		{"2021-12-31T18:37:07Z", time.Date(2021, 12, 31, 18, 37, 7, 0, time.UTC), true},
		{"2021-12-31T18:37:07.250+01:00", time.Date(2021, 12, 31, 17, 37, 7, 250e6, time.UTC), true},
		{"2016-12-31T23:59:60Z", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"2021-02-29T00:00:00Z", time.Time{}, false},
		{"2021-12-31T18:37:07", time.Time{}, false},
		{"2021-12-31 18:37:07Z", time.Time{}, false},
		{"2021-12-31T24:00:00Z", time.Time{}, false},
		{"2021-12-31T18:37:07.Z", time.Time{}, false},
		{"2021-12-31T18:37:07+0100", time.Time{}, false},
		{"Fri, 31 Dec 2021 18:37:07 GMT", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, err := ParseRFC3339(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(tc.want)) {
			t.Errorf("ParseRFC3339(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzSecurityTxt: the parser never panics, stays within its bounds and
// gives every problem a line within the file.
func FuzzSecurityTxt(f *testing.F) {
	for _, s := range []string{secTxtGood, strings.ReplaceAll(secTxtGood, "\n", "\r\n"),
		"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n- Contact: mailto:a@b\n-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n",
		"\ufeffContact:x\r\rExpires: 2026-02-30T00:00:60-23:59\n", "Preferred-Languages: en, i-klingon, x-a-b, 123\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := ParseSecurityTxt(b)
		if s.Lines > SecurityTxtMaxLines || len(s.Problems) > secTxtMaxProblems {
			t.Fatalf("%d lines, %d problems", s.Lines, len(s.Problems))
		}
		for _, p := range s.Check([]string{secTxtURL}, secTxtAt) {
			if p.Line < 0 || p.Line > s.Lines || p.Msg == "" {
				t.Fatalf("problem %+v of a file of %d lines", p, s.Lines)
			}
		}
		for _, fd := range s.Fields {
			if len(fd.Value) > SecurityTxtMaxLine {
				t.Fatalf("a field of %d bytes", len(fd.Value))
			}
		}
	})
}
