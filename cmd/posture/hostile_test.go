package main

import (
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nhsx/posture/scanner/lab"
)

// The raw payloads the lab's xss host sends, and how HTML shows them.
var (
	rawPayloads     = []string{lab.HostileScript, "<script", `<img src=x onerror`}
	escapedPayloads = []string{"&lt;script&gt;alert(1)&lt;/script&gt;"}
)

// TestServerTextReachesReportsOnlyEscaped runs the lab's hostile hosts
// through the pipeline (the demo: scan, store, board, emails) and the
// report commands: text a server sent (script in header values, quoted
// in findings) appears in HTML outputs and Markdown only escaped, and
// never in a mail header.
func TestServerTextReachesReportsOnlyEscaped(t *testing.T) {
	t.Parallel() // waits for the one shared demo run
	dir, db := demoCopy(t)
	// The pipeline stored the script as the server sent it (evidence is
	// data; escaping is the reports' job), in a finding of the xss host.
	org := xssHostOrg(t, db)
	board := filepath.Join(dir, "board.html")
	orgHTML := filepath.Join(dir, "org.html")
	md := filepath.Join(dir, "board.md")
	for _, args := range [][]string{
		{"report", "board", "--db", db, "-o", board},
		{"report", "org", org, "--db", db, "-o", orgHTML},
		{"report", "board", "--markdown", "--db", db, "-o", md},
		{"notify", "--db", db, "--dry-run", filepath.Join(dir, "mail")},
	} {
		if code, out, errs := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
		}
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	noRaw := func(what, s string) {
		for _, p := range rawPayloads {
			if strings.Contains(s, p) {
				i := strings.Index(s, p)
				t.Errorf("%s holds the server's %q raw: …%s…", what, p, s[max(0, i-80):min(len(s), i+80)])
			}
		}
	}
	for _, p := range []string{board, md, orgHTML, filepath.Join(demoOnce.dir, "board-night-1.html"), filepath.Join(demoOnce.dir, "board-night-2.html")} {
		noRaw(filepath.Base(p), read(p))
	}
	// The organisation's report lists the finding: escaped, not dropped.
	if s := read(orgHTML); !strings.Contains(s, escapedPayloads[0]) {
		t.Errorf("the report of %s does not show the xss host's finding escaped (%q)", org, escapedPayloads[0])
	}
	// Emails: the demo's and notify's. No header carries server text;
	// HTML parts hold it escaped only.
	mails, _ := filepath.Glob(filepath.Join(demoOnce.dir, "mail", "night-*", "*.eml"))
	dry, _ := filepath.Glob(filepath.Join(dir, "mail", "*.eml"))
	mails = append(mails, dry...)
	if len(mails) == 0 {
		t.Fatal("no emails to check")
	}
	escapedSeen := false
	for _, p := range mails {
		m, err := mail.ReadMessage(strings.NewReader(read(p)))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for k, vs := range m.Header {
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n") || strings.Contains(v, "alert(") || strings.Contains(v, "<script") {
					t.Errorf("%s: header %s carries server text: %q", p, k, v)
				}
			}
			if !strings.HasPrefix(k, "X-") && !knownMailHeader[k] {
				t.Errorf("%s: unexpected header %q (injected?)", p, k)
			}
		}
		for _, part := range mailParts(t, m) {
			if part.html {
				noRaw(filepath.Base(p)+" (HTML part)", part.body)
				escapedSeen = escapedSeen || strings.Contains(part.body, escapedPayloads[0])
			}
		}
	}
	if !escapedSeen {
		t.Error("no HTML email shows the xss host's finding escaped: the email check proved nothing")
	}
}

var knownMailHeader = map[string]bool{"From": true, "To": true, "Subject": true, "Date": true, "Message-Id": true,
	"Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true, "User-Agent": true, "Auto-Submitted": true}

type mailPart struct {
	html bool
	body string
}

// mailParts decodes a message's text parts (multipart/alternative or
// mixed, quoted-printable or base64).
func mailParts(t *testing.T, m *mail.Message) []mailPart {
	t.Helper()
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		b, _ := io.ReadAll(decoder(m.Header.Get("Content-Transfer-Encoding"), m.Body))
		return []mailPart{{html: mt == "text/html", body: string(b)}}
	}
	var out []mailPart
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err != nil {
			break
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if strings.HasPrefix(pt, "multipart/") {
			out = append(out, mailParts(t, &mail.Message{Header: mail.Header(p.Header), Body: p})...)
			continue
		}
		b, _ := io.ReadAll(decoder(p.Header.Get("Content-Transfer-Encoding"), p))
		out = append(out, mailPart{html: pt == "text/html", body: string(b)})
	}
	return out
}

func decoder(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(cte) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r)
	}
	return r
}

// xssHostOrg is the owner of the lab's xss host in the demo's database db,
// once a finding there quotes what the server sent (else the tests that
// look for it escaped would prove nothing).
func xssHostOrg(t *testing.T, db string) string {
	t.Helper()
	for _, f := range exportFindings(t, db) {
		if strings.HasPrefix(f.Asset.Name, "xss.lab-web-hostile") && strings.Contains(f.Message, lab.HostileScript) {
			return f.Asset.Org
		}
	}
	t.Fatal("no finding of the lab's xss host quotes what the server sent: the test would prove nothing")
	return ""
}
