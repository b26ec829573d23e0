package reports

import (
	"bytes"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var unescapedPipe = regexp.MustCompile(`(^|[^\\])(\\\\)*\|`)

// FuzzTextSanitisers: whatever a scanned server sends, the sanitisers keep
// their promises.
func FuzzTextSanitisers(f *testing.F) {
	for _, s := range []string{"", "a\r\nBcc: x@y", "=1+1", "＝1", "a | b", "\\|", "<script>", "\u2028x\u0085y", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if h := headerSafe(s); strings.ContainsAny(h, "\r\n\x00") || utf8.RuneCountInString(h) > maxHeader {
			t.Errorf("headerSafe(%q) = %q", s, h)
		}
		for _, c := range []byte(asciiSafe(s)) {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("asciiSafe(%q) has %q", s, c)
			}
		}
		if c := csvCell(s); c != "" && strings.ContainsRune("=+-@\t\r\n", rune(c[0])) {
			t.Errorf("csvCell(%q) = %q starts a formula", s, c)
		}
		md := mdEscape(s)
		if strings.ContainsAny(md, "<>\r\n") || unescapedPipe.MatchString(md) {
			t.Errorf("mdEscape(%q) = %q", s, md)
		}
	})
}

// FuzzEmailHeaders: hostile organisation names, codes and subjects never
// add a header or break the message.
func FuzzEmailHeaders(f *testing.F) {
	f.Add("RJ7", "Security posture", "x@nhs.uk")
	f.Add("RJ7\r\nBcc: a@evil.example", "s\r\n\r\nbody", "x@nhs.uk\r\nBcc: a@evil.example")
	f.Add("\n", "\x00", "a@b")
	f.Fuzz(func(t *testing.T, org, subject, to string) {
		e := Email{Org: org, From: "posture@nhs.net", To: []string{to}, Subject: subject, Text: "hi", HTML: "<p>hi</p>"}
		var b bytes.Buffer
		if _, err := e.WriteTo(&b); err != nil {
			return // refused (a bad recipient): nothing written is fine
		}
		msg, err := mail.ReadMessage(&b)
		if err != nil {
			t.Fatalf("written message does not parse: %v", err)
		}
		for k := range msg.Header {
			switch k {
			case "Auto-Submitted", "Date", "Mime-Version", "Message-Id", "Subject", "User-Agent",
				"X-Auto-Response-Suppress", "X-Mailer", "X-Posture-Org", "From", "To", "Content-Type":
			default:
				t.Errorf("unexpected header %q", k)
			}
		}
		if got := msg.Header.Get("Subject"); got != asciiSafe(subject) {
			t.Errorf("subject %q, want %q", got, asciiSafe(subject))
		}
	})
}
