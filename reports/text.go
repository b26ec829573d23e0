package reports

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on hostile text in rendered output.
const (
	maxLine    = 600   // one finding message or remediation in a report
	maxHeader  = 200   // a mail header value
	maxCSVCell = 32000 // Excel truncates cells at 32,767 characters
)

// oneLine folds every control character and line separator (CR, LF, TAB,
// U+2028, …) into a single space, so hostile text cannot start a new line
// in a Markdown table, a text email or a header.
func oneLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) ||
			unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// clip cuts s to at most n runes, marking the cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n-1 {
			return s[:j] + "…"
		}
		i++
	}
	return s
}

// line is hostile text made fit for one line of a report.
func line(s string) string { return clip(oneLine(s), maxLine) }

// headerSafe strips CR, LF and every other control character from a value
// bound for a mail header, so that it cannot inject header lines.
func headerSafe(s string) string { return clip(oneLine(s), maxHeader) }

// asciiSafe keeps printable ASCII only: subjects stay readable in every mail
// client without encoded words.
func asciiSafe(s string) string {
	s = headerSafe(s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// mdEscape makes hostile text inert in Markdown: no emphasis, links
// (GitHub's autolinks of bare URLs, www. names and e-mail addresses
// included: their ':', '@' and "www." are escaped), code, table cells, raw
// HTML or entities, and no line breaks.
func mdEscape(s string) string {
	s = line(s)
	var b strings.Builder
	for i, r := range s {
		if r == '.' && i >= 3 && strings.EqualFold(s[i-3:i], "www") {
			b.WriteString("\\.")
			continue
		}
		switch r {
		case '\\', '`', '*', '_', '[', ']', '|', '~', ':', '@':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// csvCell defuses spreadsheet formulas (OWASP CSV injection): a cell that
// begins with = + - @ TAB, CR or LF is prefixed with a single quote, which
// spreadsheets show as text. The cell is bounded to what Excel can hold.
func csvCell(s string) string {
	s = clip(strings.ToValidUTF8(s, "\uFFFD"), maxCSVCell)
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r', '\n':
		return "'" + s
	}
	// Full-width forms are read as formulas by some spreadsheets.
	if r, _ := utf8.DecodeRuneInString(s); r == '＝' || r == '＋' || r == '－' || r == '＠' {
		return "'" + s
	}
	return s
}

// fileSafe keeps letters, digits, '-' and '_' for a file name.
func fileSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_') {
			b.WriteRune(r)
		}
		if b.Len() >= 64 {
			break
		}
	}
	if b.Len() == 0 {
		return "org"
	}
	return b.String()
}
