package reports

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func emailsByOrg(t *testing.T, es []Email) map[string]Email {
	t.Helper()
	m := map[string]Email{}
	for _, e := range es {
		if _, dup := m[e.Org]; dup {
			t.Fatalf("two emails for %s", e.Org)
		}
		m[e.Org] = e
	}
	return m
}

func TestBuildEmailsOnlyToOrganisationsWithChanges(t *testing.T) {
	s := mustSummary(t, fixture())
	es, err := BuildEmails(s, "NHS posture <posture@nhs.net>")
	if err == nil || !strings.Contains(err.Error(), "RYJ") {
		t.Errorf("err %v, want the invalid RYJ contact reported", err)
	}
	got := emailsByOrg(t, es)
	// RJ7: new and fixed. RVR: regressed and fixed. RYJ: new.
	// RAX: only a still-open warning, no change: no email.
	// QWE has contacts but no assets of its own; unassigned has no contacts.
	var orgs []string
	for o := range got {
		orgs = append(orgs, o)
	}
	slices.Sort(orgs)
	if want := []string{"RJ7", "RVR", "RYJ"}; !slices.Equal(orgs, want) {
		t.Fatalf("emails to %v, want %v", orgs, want)
	}
	rj7 := got["RJ7"]
	// The subject says what changed, and nothing else.
	if rj7.Subject != "Security posture: St George's University Hospitals (RJ7): 2 new, 1 fixed" {
		t.Errorf("subject %q", rj7.Subject)
	}
	if s := got["RVR"].Subject; s != "Security posture: Epsom and St Helier University Hospitals (RVR): 1 back again, 1 fixed" {
		t.Errorf("RVR subject %q", s)
	}
	for _, want := range []string{
		"NEW SINCE THE LAST RUN (2)", "intermediate expired 3 days ago", "FIXED SINCE THE LAST RUN (1)",
		"STILL OPEN (1)", "open for 14 days", "What to do:  Set p=reject.", "Finding relevant to GOV.UK Service Manual: HTTPS; NCSC Cyber Assessment Framework (evidence)",
		"could not check 1 item",
	} {
		if !strings.Contains(rj7.Text, want) {
			t.Errorf("RJ7 text lacks %q:\n%s", want, rj7.Text)
		}
	}
	if strings.Contains(rj7.HTML, "<script") || !strings.Contains(rj7.HTML, "&lt;script&gt;") {
		t.Error("the hostile message is not escaped in the HTML part")
	}
	if !slices.Equal(got["RVR"].To, []string{"it@epsom-sthelier.nhs.uk", "security@epsom-sthelier.nhs.uk"}) {
		t.Errorf("RVR to %v", got["RVR"].To)
	}
	// The accepted risk is counted, not listed.
	if rvr := got["RVR"].Text; strings.Contains(rvr, "TLS 1.1 accepted") || !strings.Contains(rvr, "1 finding is under an accepted risk") {
		t.Errorf("RVR text mishandles the accepted risk:\n%s", rvr)
	}
}

func TestBuildEmailsDigestRemindsOrganisationsWithoutChanges(t *testing.T) {
	s := mustSummary(t, fixture())
	es, _ := EmailOptions{From: "posture@nhs.net", Digest: true}.Build(s)
	got := emailsByOrg(t, es)
	rax, ok := got["RAX"]
	if !ok {
		t.Fatal("no digest for RAX, which has a still-open warning")
	}
	if !strings.HasPrefix(rax.Subject, "Security posture reminder: Kingston Hospital (RAX): 1 still open") {
		t.Errorf("subject %q", rax.Subject)
	}
	if !strings.Contains(rax.Text, "Nothing has changed since the last run") || !strings.Contains(rax.Text, "max-age=86400") {
		t.Errorf("digest text:\n%s", rax.Text)
	}
	if strings.HasPrefix(got["RJ7"].Subject, "Security posture reminder") {
		t.Error("an organisation with changes got a reminder instead of its changes")
	}
}

func TestBuildEmailsRejectsABadSender(t *testing.T) {
	s := mustSummary(t, fixture())
	for _, from := range []string{"", "not an address", "posture@nhs.net\r\nBcc: attacker@evil.example"} {
		if _, err := BuildEmails(s, from); err == nil {
			t.Errorf("from %q: no error", from)
		}
	}
}

func TestEmailHeadersStripCRLFInjection(t *testing.T) {
	e := Email{
		Org:       "RYJ\r\nBcc: attacker@evil.example",
		From:      "posture@nhs.net",
		To:        []string{"security@imperial.nhs.uk"},
		Subject:   "Hello\r\nBcc: attacker@evil.example\r\n\r\n<html>body",
		MessageID: "x@y>\r\nBcc: attacker@evil.example",
		Text:      "hi",
	}
	var b bytes.Buffer
	if _, err := e.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(&b)
	if err != nil {
		t.Fatal(err)
	}
	if bcc := msg.Header.Get("Bcc"); bcc != "" {
		t.Errorf("Bcc header injected: %q", bcc)
	}
	if got := msg.Header.Get("Subject"); got != "Hello Bcc: attacker@evil.example <html>body" {
		t.Errorf("subject %q", got)
	}
	if got := msg.Header.Get("X-Posture-Org"); got != "RYJ Bcc: attacker@evil.example" {
		t.Errorf("X-Posture-Org %q", got)
	}
	// A recipient with CR/LF is not an address: refused, not cleaned up.
	e.To = []string{"security@imperial.nhs.uk\r\nBcc: attacker@evil.example"}
	if _, err := e.WriteTo(io.Discard); err == nil {
		t.Error("a recipient with CR/LF was accepted")
	}
}

func TestSubjectsAreASCII(t *testing.T) {
	src := fixture()
	src.orgs[3].Name = "Ysbyty\u00a0Gwynedd – Betsi Cadwaladr \u202eevil"
	es, _ := BuildEmails(mustSummary(t, src), "posture@nhs.net")
	e := emailsByOrg(t, es)["RJ7"]
	for _, r := range e.Subject {
		if r < 0x20 || r > 0x7e {
			t.Fatalf("subject %q has %q", e.Subject, r)
		}
	}
	if !strings.Contains(e.Subject, "Ysbyty Gwynedd Betsi Cadwaladr evil (RJ7)") {
		t.Errorf("subject %q", e.Subject)
	}
}

func TestWriteEMLFilesParseBack(t *testing.T) {
	s := mustSummary(t, fixture())
	es, _ := BuildEmails(s, "NHS posture <posture@nhs.net>")
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteEML(dir, es); err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		path := filepath.Join(dir, e.Org+".eml")
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		to, err := msg.Header.AddressList("To")
		if err != nil {
			t.Fatalf("%s: To: %v", path, err)
		}
		var addrs []string
		for _, a := range to {
			addrs = append(addrs, a.Address)
		}
		if !slices.Equal(addrs, e.To) {
			t.Errorf("%s: To %v, want %v", path, addrs, e.To)
		}
		if from, err := msg.Header.AddressList("From"); err != nil || from[0].Address != "posture@nhs.net" {
			t.Errorf("%s: From %v %v", path, from, err)
		}
		if msg.Header.Get("Subject") != e.Subject || msg.Header.Get("Auto-Submitted") != "auto-generated" {
			t.Errorf("%s: headers %v", path, msg.Header)
		}
		if d, err := msg.Header.Date(); err != nil || !d.Equal(s.Run.Started) {
			t.Errorf("%s: date %v %v", path, d, err)
		}
		if msg.Header.Get("Bcc") != "" {
			t.Errorf("%s: has a Bcc header", path)
		}
		// multipart/alternative: text then HTML, no images.
		mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/alternative" {
			t.Fatalf("%s: content type %q %v", path, mt, err)
		}
		mr := multipart.NewReader(msg.Body, params["boundary"])
		var types []string
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			types = append(types, ct)
			body, _ := io.ReadAll(p) // quoted-printable is decoded by the reader
			if ct == "text/plain" && !strings.Contains(string(body), "Security posture of") {
				t.Errorf("%s: text part %q", path, body)
			}
		}
		if !slices.Equal(types, []string{"text/plain", "text/html"}) {
			t.Errorf("%s: parts %v", path, types)
		}
		if len(raw) > 64<<10 {
			t.Errorf("%s: %d bytes, want a small email", path, len(raw))
		}
	}
}

func TestEmailSubjectCountsAnExpiredAcceptance(t *testing.T) {
	src := fixture()
	// RAX had only a still-open warning (no email); its acceptance of a
	// failure lapsed at this run.
	lapsed := fd("RAX", "host", "mail.kingstonhospital.nhs.uk", "tls.min-version", "fail", "reopened", day1, "TLS 1.0 accepted")
	src.findings[3] = append(src.findings[3], lapsed)
	es, _ := BuildEmails(mustSummary(t, src), "posture@nhs.net")
	rax, ok := emailsByOrg(t, es)["RAX"]
	if !ok {
		t.Fatal("no email for an organisation whose risk acceptance expired")
	}
	if rax.Subject != "Security posture: Kingston Hospital (RAX): 1 acceptance expired" {
		t.Errorf("subject %q", rax.Subject)
	}
	for _, want := range []string{"RISK ACCEPTANCE EXPIRED (1)", "mail.kingstonhospital.nhs.uk", "TLS 1.0 accepted"} {
		if !strings.Contains(rax.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, rax.Text)
		}
	}
	if !strings.Contains(rax.HTML, "Risk acceptance expired (1)") {
		t.Error("HTML lacks the expired acceptance")
	}
}

func TestEmailLeavesPendingFailuresOut(t *testing.T) {
	src := fixture()
	// Failing, but not yet for long enough: Change and Status empty.
	pending := fd("RAX", "host", "new.kingstonhospital.nhs.uk", "tls.min-version", "fail", "", time.Time{}, "TLS 1.0 accepted")
	pending.Status = ""
	src.findings[3] = append(src.findings[3], pending)
	es, _ := EmailOptions{From: "posture@nhs.net", Digest: true}.Build(mustSummary(t, src))
	rax := emailsByOrg(t, es)["RAX"]
	if strings.Contains(rax.Text, "new.kingstonhospital.nhs.uk") || !strings.Contains(rax.Subject, ": 1 still open") {
		t.Errorf("a pending failure is reported: %q\n%s", rax.Subject, rax.Text)
	}
}

func TestEmailShowsTheBoardScore(t *testing.T) {
	s := mustSummary(t, fixture())
	es, _ := BuildEmails(s, "posture@nhs.net")
	rj7 := emailsByOrg(t, es)["RJ7"]
	o := s.Org("RJ7")
	if !o.Score.Valid {
		t.Fatal("RJ7 has no score")
	}
	want := "Your score on the board: " + o.Score.String()
	if o.Previous.Valid {
		want += " (previous run: " + o.Previous.String() + ")"
	}
	if !strings.Contains(rj7.Text, want+"\n") {
		t.Errorf("text lacks %q:\n%s", want, rj7.Text)
	}
	if !strings.Contains(rj7.HTML, "<b>"+o.Score.String()+"</b>") {
		t.Error("HTML lacks the score")
	}
}

func TestDigestDueOnItsWeekdayOnly(t *testing.T) {
	mon := time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC) // a Monday
	for _, tc := range []struct {
		day  string
		at   time.Time
		want bool
		bad  bool
	}{
		{"Mon", mon, true, false},
		{"monday", mon, true, false},
		{"MON", mon.AddDate(0, 0, 7), true, false},
		{"Mon", mon.AddDate(0, 0, 1), false, false},
		{"Tue", mon.AddDate(0, 0, 1), true, false},
		{"Sun", mon.AddDate(0, 0, -1), true, false},
		{"", mon, false, false},
		{"Mo", mon, false, true},
		{"Funday", mon, false, true},
	} {
		got, err := DigestDue(tc.day, tc.at)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("DigestDue(%q, %s) = %v, %v; want %v (error %v)", tc.day, tc.at.Weekday(), got, err, tc.want, tc.bad)
		}
	}
}
