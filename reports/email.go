package reports

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/nhsx/posture/checks/check"
	gomail "github.com/wneessen/go-mail"
)

// Email is one organisation's notification, ready to write or send.
type Email struct {
	Org       string // ODS code
	From      string
	To        []string
	Subject   string
	Date      time.Time
	MessageID string // without angle brackets
	Text      string
	HTML      string
}

// EmailOptions tune BuildEmails.
//
// Not spamming: an organisation is emailed only when something changed
// for its own assets since the previous run (a new or returning problem, or
// a fix). With Digest set (say, on the weekly run), organisations with no
// change but open problems get a short reminder as well. Organisations
// with no contacts, and implicit ones, are never emailed.
type EmailOptions struct {
	From   string
	Digest bool
	Limit  int // findings listed per section (default 25)
}

// BuildEmails builds the emails of a summary with the default options: one
// per organisation with contacts and a change to report.
func BuildEmails(s *Summary, from string) ([]Email, error) {
	return EmailOptions{From: from}.Build(s)
}

// Build builds one email per organisation that has contacts and something
// to say. Contacts that are not valid addresses are left out and reported
// in the error; the emails returned are usable even when err is not nil.
func (o EmailOptions) Build(s *Summary) ([]Email, error) {
	if s == nil || s.Estate == nil {
		return nil, errNoSummary
	}
	from, err := mail.ParseAddress(headerSafe(o.From))
	if err != nil {
		return nil, fmt.Errorf("reports: email from %q: %w", headerSafe(o.From), err)
	}
	if o.Limit <= 0 {
		o.Limit = 25
	}
	byOrg := map[string]*emailView{}
	view := func(code string) *emailView {
		v := byOrg[code]
		if v == nil {
			v = &emailView{Summary: s, Org: s.Org(code), Digest: o.Digest, Limit: o.Limit}
			byOrg[code] = v
		}
		return v
	}
	for _, f := range s.Findings {
		v := view(orgOf(f))
		switch {
		case f.Outcome.Counts() && f.Status == StatusAccepted:
			v.Accepted++
		case f.Outcome.Counts() && f.Change == ChangeReopened:
			v.Reopened = append(v.Reopened, f)
		case f.Outcome.Counts() && f.Change == "":
			// Pending: not yet failing for the runs the lifecycle holds a
			// change before it announces it (every other failure has a
			// Change once summarised).
		case f.Outcome.Counts() && (f.Change == ChangeNew || f.Change == ChangeRegressed):
			v.New = append(v.New, f)
		case f.Outcome.Counts():
			v.Open = append(v.Open, f)
		case f.Outcome == check.Unknown:
			v.Unknown = append(v.Unknown, f)
		}
	}
	for _, f := range s.Resolved {
		v := view(orgOf(f))
		v.Fixed = append(v.Fixed, f)
	}

	var out []Email
	var errs []error
	for _, org := range s.Orgs {
		v := byOrg[org.Code]
		if org.Implicit || v == nil || len(org.Contacts) == 0 {
			continue
		}
		changed := len(v.New)+len(v.Fixed)+len(v.Reopened) > 0
		if !changed && !(o.Digest && len(v.Open) > 0) {
			continue
		}
		v.Digest = !changed
		var to []string
		for _, c := range org.Contacts {
			a, err := mail.ParseAddress(headerSafe(c))
			if err != nil || strings.ContainsAny(c, "\r\n") || !plainAddress(a.Address) {
				errs = append(errs, fmt.Errorf("reports: %s: contact %q is not an email address", headerSafe(org.Code), headerSafe(c)))
				continue
			}
			to = append(to, a.Address)
		}
		if len(to) == 0 {
			continue
		}
		sortWorstFirst(v.New)
		sortWorstFirst(v.Reopened)
		sortWorstFirst(v.Open)
		sortWorstFirst(v.Fixed)
		e := Email{
			Org:       org.Code,
			From:      from.String(),
			To:        to,
			Subject:   v.subject(),
			Date:      s.Run.Started,
			MessageID: fmt.Sprintf("posture.%d.%s@%s", s.Run.ID, fileSafe(org.Code), domainOf(from.Address)),
		}
		var tb, hb bytes.Buffer
		if err := textTemplates.ExecuteTemplate(&tb, "email-text", v); err != nil {
			return nil, fmt.Errorf("reports: email text for %s: %w", headerSafe(org.Code), err)
		}
		if err := templates.ExecuteTemplate(&hb, "email-html", v); err != nil {
			return nil, fmt.Errorf("reports: email html for %s: %w", headerSafe(org.Code), err)
		}
		e.Text, e.HTML = tb.String(), hb.String()
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}

var textTemplates = texttemplate.Must(texttemplate.New("").Funcs(texttemplate.FuncMap(funcs)).ParseFS(templateFS, "templates/email.txt"))

// emailView is what the email templates see: one organisation's own
// findings, split by what the reader has to do about them.
type emailView struct {
	*Summary
	Org              *OrgSummary
	New, Fixed, Open []Finding
	Reopened         []Finding // a risk acceptance lapsed
	Unknown          []Finding
	Accepted         int
	Digest           bool // nothing changed: a reminder of what is open
	Limit            int
}

// Relevant names the standards by title, as the board does; sections and
// rule files stay in the catalogue and the evidence view.
func (v *emailView) Relevant(f Finding) string { return strings.Join(v.StandardsOf(f), "; ") }

// Subject prefixes; a digest is told apart by its prefix.
const (
	changePrefix = "Security posture: "
	digestPrefix = "Security posture reminder: "
)

// Regressed counts the findings back again after a fix (listed with New).
func (v *emailView) Regressed() int {
	n := 0
	for _, f := range v.New {
		if f.Change == ChangeRegressed {
			n++
		}
	}
	return n
}

// subject says what changed. It is ASCII only and carries no text from
// scanned servers.
func (v *emailView) subject() string {
	name := asciiSafe(v.Org.Name)
	if len(name) > 80 {
		name = strings.TrimSpace(name[:80])
	}
	code := asciiSafe(v.Org.Code)
	if v.Digest {
		return asciiSafe(fmt.Sprintf("%s%s (%s): %d still open", digestPrefix, name, code, len(v.Open)))
	}
	var parts []string
	back := v.Regressed()
	for _, p := range []struct {
		n    int
		what string
	}{
		{len(v.New) - back, "new"}, {back, "back again"}, {len(v.Fixed), "fixed"},
		{len(v.Reopened), "acceptance expired"},
	} {
		if p.n > 0 {
			what := p.what
			if p.n > 1 && what == "acceptance expired" {
				what = "acceptances expired"
			}
			parts = append(parts, fmt.Sprintf("%d %s", p.n, what))
		}
	}
	return asciiSafe(fmt.Sprintf("%s%s (%s): %s", changePrefix, name, code, strings.Join(parts, ", ")))
}

// DigestDue reports whether a run started at t falls on day, a weekday
// (Mon, Monday, mon …) in t's location: a nightly notify with --digest-day
// sends the weekly digest on that day only. An empty day is never due.
func DigestDue(day string, t time.Time) (bool, error) {
	if day == "" {
		return false, nil
	}
	d, err := ParseWeekday(day)
	if err != nil {
		return false, err
	}
	return t.Weekday() == d, nil
}

// ParseWeekday parses a weekday name or its first three letters, in any case.
func ParseWeekday(s string) (time.Weekday, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := strings.ToLower(d.String())
		if len(s) >= 3 && strings.HasPrefix(name, s) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("reports: %q is not a weekday (Mon, Tue … Sun)", s)
}

type emailItem struct {
	V    *emailView
	F    Finding
	Full bool // show what we saw as well as what to do
}

// plainAddress accepts the addresses organisations have: ASCII, a dot-atom
// local part and a host name. net/mail also accepts quoted local parts and
// odd domains ("a@b.nhs.uk=?UTF-8?B?…?=", `", evil@x, "@b.nhs.uk`), which
// estate data has no need of and which other software may misread.
func plainAddress(addr string) bool {
	local, domain, ok := strings.Cut(addr, "@")
	// An encoded word is not allowed in an address (RFC 2047 §5), and a
	// client that decoded one anyway would show what it hides.
	if !ok || len(addr) > 254 || len(local) == 0 || len(local) > 64 || strings.Contains(local, "=?") {
		return false
	}
	for _, atom := range strings.Split(local, ".") {
		if atom == "" {
			return false
		}
		for i := 0; i < len(atom); i++ {
			c := atom[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0) {
				return false
			}
		}
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "posture.invalid"
}

// message builds the RFC 5322 message. Every header value is stripped of
// CR/LF again here, since Email's fields are exported.
func (e Email) message() (*gomail.Msg, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := m.From(headerSafe(e.From)); err != nil {
		return nil, fmt.Errorf("reports: email %s: from: %w", headerSafe(e.Org), err)
	}
	to := make([]string, 0, len(e.To))
	for _, t := range e.To {
		to = append(to, headerSafe(t))
	}
	if err := m.To(to...); err != nil {
		return nil, fmt.Errorf("reports: email %s: to: %w", headerSafe(e.Org), err)
	}
	m.Subject(asciiSafe(e.Subject))
	if !e.Date.IsZero() {
		m.SetDateWithValue(e.Date)
	} else {
		m.SetDate()
	}
	if id := asciiSafe(strings.Trim(e.MessageID, "<>")); id != "" && !strings.ContainsAny(id, "<> ") {
		m.SetMessageIDWithValue(id)
	} else {
		m.SetMessageID()
	}
	m.SetUserAgent("posture")
	// RFC 3834: no auto-replies, no out-of-office storms.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetGenHeader("X-Auto-Response-Suppress", "All")
	m.SetGenHeader("X-Posture-Org", asciiSafe(e.Org))
	m.SetBodyString(gomail.TypeTextPlain, e.Text)
	if e.HTML != "" {
		m.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	}
	return m, nil
}

// WriteTo writes the email as an RFC 5322 message.
func (e Email) WriteTo(w io.Writer) (int64, error) {
	m, err := e.message()
	if err != nil {
		return 0, err
	}
	n, err := m.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("reports: email %s: %w", headerSafe(e.Org), err)
	}
	return n, nil
}
