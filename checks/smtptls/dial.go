// Package smtptls checks mail servers' TLS (checks.md §1.6 email.mx.* and
// the tls.* probes that apply to mail): an SMTP dialer that reads the
// greeting, sends EHLO and STARTTLS and hands back the connection ready for
// a ClientHello, and a collector that runs the raw TLS prober and the
// certificate handshake over such connections (a fresh SMTP session for
// every probe) and judges them with the SMTP thresholds of checks.md §3.
package smtptls

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// Bounds on what an SMTP server may send before TLS.
const (
	maxLine       = 2048 // RFC 5321 §4.5.3.1.5 says 512 for replies; be lenient
	maxReplyLines = 64
)

// ErrNoStartTLS means the server's EHLO reply does not offer STARTTLS.
var ErrNoStartTLS = errors.New("smtp: STARTTLS is not offered")

// Session is what the server said before TLS, kept as evidence.
type Session struct {
	Banner   string   `json:"banner"`            // the greeting's first line
	EHLO     []string `json:"ehlo,omitempty"`    // EHLO keywords, first line excluded
	StartTLS bool     `json:"starttls"`          // STARTTLS advertised
	Reply    string   `json:"reply,omitempty"`   // reply to STARTTLS
	Code     int      `json:"code,omitempty"`    // its code
	Failure  string   `json:"failure,omitempty"` // where and why the session stopped
	Class    string   `json:"class,omitempty"`   // the failure's error class
	// NoStartTLS: EHLO was answered without STARTTLS (ErrNoStartTLS).
	NoStartTLS bool `json:"no_starttls,omitempty"`
	// Refused: the connection was refused (nothing listens on port 25).
	Refused bool   `json:"refused,omitempty"`
	Step    string `json:"step,omitempty"`    // connect, greeting, ehlo, starttls
	Elapsed string `json:"elapsed,omitempty"` // time to the STARTTLS go-ahead
}

// ReplyError is a negative SMTP reply.
type ReplyError struct {
	Step string
	Code int
	Text string
}

func (e *ReplyError) Error() string { return fmt.Sprintf("smtp: %s: %d %s", e.Step, e.Code, e.Text) }

// Class: a refusal before TLS is the server (or a filter in front of it)
// turning the probe away.
func (e *ReplyError) Class() string { return string(check.ErrBlocked) }

// Dialer opens SMTP sessions and upgrades them with STARTTLS.
type Dialer struct {
	Dial check.DialFunc
	// EHLOName is the name we greet with; "": "posture.invalid". Set it to
	// the scanner's own host name on a real scan.
	EHLOName string
}

func (d *Dialer) ehloName() string {
	if d.EHLOName != "" {
		return d.EHLOName
	}
	return "posture.invalid"
}

// StartTLS connects to addr, waits for the whole greeting (servers such as
// Postfix's postscreen drop clients that talk first), sends EHLO and, if
// STARTTLS is offered, STARTTLS. On a 220 go-ahead it returns the raw
// connection, ready for a ClientHello. The session is returned in every
// case for evidence. Silence or a hang-up before the go-ahead is class
// "blocked" ("probe blocked"); the context's deadline bounds it all.
func (d *Dialer) StartTLS(ctx context.Context, addr string) (net.Conn, *Session, error) {
	start := time.Now()
	s := &Session{Step: "connect"}
	if d.Dial == nil {
		return nil, s, check.ErrNoNetwork
	}
	conn, err := d.Dial(ctx, "tcp", addr)
	if err != nil {
		s.Failure, s.Class = err.Error(), string(check.Classify(err))
		s.Refused = errors.Is(err, syscall.ECONNREFUSED)
		return nil, s, fmt.Errorf("smtp: connect %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(err error) (net.Conn, *Session, error) {
		conn.Close()
		err = blocked(ctx, s.Step, err)
		s.Failure, s.Class = err.Error(), string(check.Classify(err))
		return nil, s, err
	}
	r := bufio.NewReaderSize(conn, maxLine)

	s.Step = "greeting"
	code, lines, err := readReply(r)
	if err != nil {
		return fail(err)
	}
	s.Banner = clip(lines[0], 200)
	if code != 220 {
		return fail(&ReplyError{Step: "greeting", Code: code, Text: s.Banner})
	}

	s.Step = "ehlo"
	if _, err := fmt.Fprintf(conn, "EHLO %s\r\n", d.ehloName()); err != nil {
		return fail(err)
	}
	code, lines, err = readReply(r)
	if err != nil {
		return fail(err)
	}
	if code != 250 {
		return fail(&ReplyError{Step: "EHLO", Code: code, Text: clip(lines[0], 200)})
	}
	for _, l := range lines[1:] {
		kw := strings.ToUpper(strings.TrimSpace(l))
		if len(s.EHLO) < 32 {
			s.EHLO = append(s.EHLO, clip(kw, 80))
		}
		if kw == "STARTTLS" || strings.HasPrefix(kw, "STARTTLS ") {
			s.StartTLS = true
		}
	}
	if !s.StartTLS {
		conn.Close()
		s.Failure, s.NoStartTLS = ErrNoStartTLS.Error(), true
		return nil, s, ErrNoStartTLS
	}

	s.Step = "starttls"
	if _, err := io.WriteString(conn, "STARTTLS\r\n"); err != nil {
		return fail(err)
	}
	code, lines, err = readReply(r)
	if err != nil {
		return fail(err)
	}
	s.Code, s.Reply = code, clip(strings.Join(lines, " "), 200)
	if code != 220 {
		return fail(&ReplyError{Step: "STARTTLS", Code: code, Text: s.Reply})
	}
	if r.Buffered() > 0 {
		// Bytes after the go-ahead would be read as part of the TLS
		// stream: a server (or a man in the middle) injecting plaintext.
		return fail(check.WithClass(check.ErrMalformed, errors.New("smtp: data after the STARTTLS go-ahead")))
	}
	s.Elapsed = time.Since(start).Round(time.Millisecond).String()
	_ = conn.SetDeadline(time.Time{})
	return conn, s, nil
}

// blocked classifies a failure before the go-ahead: the server going
// silent or hanging up is a blocked probe; a context that ended is ours.
func blocked(ctx context.Context, step string, err error) error {
	var re *ReplyError
	switch {
	case errors.As(err, &re), check.Classify(err) == check.ErrMalformed:
		return err
	case errors.Is(ctx.Err(), context.Canceled):
		return check.WithClass(check.ErrCanceled, fmt.Errorf("smtp: %s: %w", step, ctx.Err()))
	}
	return check.WithClass(check.ErrBlocked, fmt.Errorf("smtp: probe blocked at the %s: %w", step, err))
}

// readReply reads one (multi-line) SMTP reply: "250-…" lines up to a
// "250 …" line, every line bounded, the count bounded, the code the same
// on every line.
func readReply(r *bufio.Reader) (int, []string, error) {
	var lines []string
	code := 0
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, nil, check.WithClass(check.ErrMalformed, fmt.Errorf("smtp: reply line longer than %d bytes", maxLine))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, nil, fmt.Errorf("connection closed: %w", io.ErrUnexpectedEOF)
			}
			return 0, nil, err
		}
		l := strings.TrimRight(string(line), "\r\n")
		if len(l) < 3 || (len(l) > 3 && l[3] != ' ' && l[3] != '-') {
			return 0, nil, check.WithClass(check.ErrMalformed, fmt.Errorf("smtp: not an SMTP reply: %q", clip(l, 60)))
		}
		c := 0
		for _, ch := range l[:3] {
			if ch < '0' || ch > '9' {
				return 0, nil, check.WithClass(check.ErrMalformed, fmt.Errorf("smtp: not an SMTP reply: %q", clip(l, 60)))
			}
			c = c*10 + int(ch-'0')
		}
		if code != 0 && c != code {
			return 0, nil, check.WithClass(check.ErrMalformed, fmt.Errorf("smtp: reply codes %d and %d in one reply", code, c))
		}
		code = c
		text := ""
		if len(l) > 4 {
			text = l[4:]
		}
		lines = append(lines, text)
		if len(l) == 3 || l[3] == ' ' {
			return code, lines, nil
		}
		if len(lines) >= maxReplyLines {
			return 0, nil, check.WithClass(check.ErrMalformed, fmt.Errorf("smtp: reply of more than %d lines", maxReplyLines))
		}
	}
}

// clip bounds a server-sent string and drops control characters, so that
// it is safe to store and show.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
