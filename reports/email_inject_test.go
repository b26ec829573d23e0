package reports

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"slices"
	"strings"
	"testing"
)

// injectionPayloads try to add a mail header (a Bcc to evil@x.example)
// from text a scanned server or the estate file controls.
var injectionPayloads = []struct{ name, p string }{
	{"CRLF", "\r\nBcc: evil@x.example"},
	{"LF", "\nBcc: evil@x.example"},
	{"bare CR", "\rBcc: evil@x.example"},
	{"LFCR", "\n\rBcc: evil@x.example"},
	{"blank line: headers end", "\r\n\r\nBcc: evil@x.example"},
	{"folded with a space", "\r\n Bcc: evil@x.example"},
	{"folded with a tab", "\r\n\tBcc: evil@x.example"},
	{"Q encoded word", "=?UTF-8?Q?=0D=0ABcc:_evil@x.example?="},
	{"B encoded word", "=?UTF-8?B?DQpCY2M6IGV2aWxAeC5leGFtcGxl?="},
	{"NUL", "\x00Bcc: evil@x.example"},
	{"U+2028 line separator", "\u2028Bcc: evil@x.example"},
	{"U+2029 paragraph separator", "\u2029Bcc: evil@x.example"},
	{"U+0085 next line", "\u0085Bcc: evil@x.example"},
	{"VT and FF", "\x0b\x0cBcc: evil@x.example"},
	{"long line then CRLF", strings.Repeat("A", 1200) + "\r\nBcc: evil@x.example"},
	{"long line, no spaces", strings.Repeat("B", 5000) + "Bcc: evil@x.example"},
	{"address closed", ">\r\nBcc: evil@x.example"},
	{"address list", `", evil@x.example, "`},
	{"URL-encoded CRLF", "%0d%0aBcc: evil@x.example"},
	{"SMTP smuggling", "\r\n.\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<evil@x.example>\r\nDATA\r\nBcc: evil@x.example\r\n"},
	{"bare LF dot", "\n.\nBcc: evil@x.example"},
	{"plain Bcc text", "Bcc: evil@x.example"},
}

// hostileFixture puts p in everything of RJ7 that reaches an email: the
// organisation's name and code, its contacts, its domains and host names,
// the findings' messages and remediations.
func hostileFixture(p string) *memSource {
	src := fixture()
	// Codes are trimmed where the estate is read: the Z keeps the payload in.
	code := "RJ7" + p + "Z"
	for i := range src.orgs {
		if src.orgs[i].Code == "RJ7" {
			o := &src.orgs[i]
			o.Code, o.Name = code, o.Name+p
			o.Contacts = append(o.Contacts, "it@stgeorges.nhs.uk"+p, p+"@stgeorges.nhs.uk", "x"+p+"y@stgeorges.nhs.uk")
		}
	}
	for id, fs := range src.findings {
		for i := range fs {
			if f := &fs[i]; f.Asset.Org == "RJ7" {
				f.Asset.Org = code
				f.Asset.Name += p
				f.Message += p
				f.Remediation += p
			}
		}
		src.findings[id] = fs
	}
	for id, fs := range src.resolved {
		for i := range fs {
			if f := &fs[i]; f.Asset.Org == "RJ7" {
				f.Asset.Org, f.Asset.Name = code, f.Asset.Name+p
			}
		}
		src.resolved[id] = fs
	}
	return src
}

// headerShape is the header names of a message and of each MIME part, in
// order: what an injection would change.
func headerShape(t *testing.T, raw []byte) (top []string, parts [][]string, to []string) {
	t.Helper()
	// No header line longer than RFC 5322's 998 characters.
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	sc := bufio.NewScanner(bytes.NewReader(head))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 998 {
			t.Errorf("a header line of %d characters", len(sc.Bytes()))
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the message does not parse: %v", err)
	}
	for k, vs := range msg.Header {
		for range vs {
			top = append(top, k)
		}
	}
	slices.Sort(top)
	addrs, err := msg.Header.AddressList("To")
	if err != nil {
		t.Fatalf("To: %v", err)
	}
	for _, a := range addrs {
		to = append(to, a.Address)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", mt, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range p.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts = append(parts, keys)
	}
	return top, parts, to
}

func TestInjectionPayloadsAddNoMailHeader(t *testing.T) {
	clean := emailsByOrg(t, func() []Email { es, _ := BuildEmails(mustSummary(t, fixture()), "posture@nhs.net"); return es }())["RJ7"]
	cm, err := clean.Message()
	if err != nil {
		t.Fatal(err)
	}
	wantTop, wantParts, wantTo := headerShape(t, cm.Data)
	if slices.Contains(wantTop, "Bcc") || len(wantParts) != 2 {
		t.Fatalf("the clean email's shape: %v %v", wantTop, wantParts)
	}

	cert, pool := selfSigned(t)
	s := startSink(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	var sent []Message
	for _, tc := range injectionPayloads {
		t.Run(tc.name, func(t *testing.T) {
			es, _ := BuildEmails(mustSummary(t, hostileFixture(tc.p)), "posture@nhs.net")
			var e *Email
			for i := range es {
				if strings.HasPrefix(es[i].Org, "RJ7") {
					e = &es[i]
				}
			}
			if e == nil {
				t.Fatal("no email for the hostile organisation")
			}
			m, err := e.Message()
			if err != nil {
				t.Fatal(err)
			}
			top, parts, to := headerShape(t, m.Data)
			if !slices.Equal(top, wantTop) {
				t.Errorf("headers %v, want %v", top, wantTop)
			}
			if !slices.EqualFunc(parts, wantParts, slices.Equal) {
				t.Errorf("part headers %v, want %v", parts, wantParts)
			}
			// Only real addresses receive it: the hostile contacts are
			// refused, not cleaned up into something deliverable.
			if !slices.Equal(to, wantTo) || !slices.Equal(m.To, wantTo) {
				t.Errorf("To %v, envelope %v, want %v", to, m.To, wantTo)
			}
			msg, _ := mail.ReadMessage(bytes.NewReader(m.Data))
			for k, vs := range msg.Header {
				for _, v := range vs {
					if strings.ContainsAny(v, "\r\n\x00") {
						t.Errorf("%s: %q", k, v)
					}
				}
			}
			for _, r := range msg.Header.Get("Subject") {
				if r < 0x20 || r > 0x7e {
					t.Errorf("subject has %q", r)
				}
			}
			sent = append(sent, m)
		})
	}

	// Through a real SMTP server: one message per email, to its envelope
	// recipients only (no SMTP smuggling through the body).
	if err := (&Mailer{Addr: s.addr, TLSConfig: trusting(pool)}).Deliver(sendCtx(t), sent, func(m Message, err error) error {
		if err != nil {
			t.Errorf("%s: %v", m.ID, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got := s.messages()
	if len(got) != len(sent) {
		t.Fatalf("the relay received %d messages for %d emails", len(got), len(sent))
	}
	for i, r := range got {
		if r.from != "posture@nhs.net" || !slices.Equal(r.to, wantTo) {
			t.Errorf("message %d: envelope from %q to %v", i, r.from, r.to)
		}
		if !bytes.Equal(bytes.ReplaceAll(r.data, []byte("\r\n"), []byte("\n")), bytes.ReplaceAll(sent[i].Data, []byte("\r\n"), []byte("\n"))) {
			t.Errorf("message %d arrived changed", i)
		}
	}
}
