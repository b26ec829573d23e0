package reports

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// WriteEML writes each email as an RFC 5322 .eml file in dir (created if
// missing), named after the organisation code: RXX.eml, RXX-2.eml, …
func WriteEML(dir string, emails []Email) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("reports: eml: %w", err)
	}
	used := map[string]bool{}
	for _, e := range emails {
		base := fileSafe(e.Org)
		name := base + ".eml"
		for i := 2; used[name]; i++ {
			name = base + "-" + strconv.Itoa(i) + ".eml"
		}
		used[name] = true
		if err := writeEML(filepath.Join(dir, name), e); err != nil {
			return err
		}
	}
	return nil
}

func writeEML(path string, e Email) error {
	// Findings are sensitive until fixed: owner-only permissions.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("reports: eml: %w", err)
	}
	if _, err := e.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("reports: eml: %w", err)
	}
	return nil
}

// DefaultSendTimeout bounds each step of delivery: connecting with TLS and
// authentication, and each message's SMTP dialogue.
const DefaultSendTimeout = 30 * time.Second

// TLSMode is how the connection to the relay is protected. Findings are
// sensitive until fixed, so the default requires TLS.
type TLSMode string

const (
	// TLSStartTLS (the default) requires STARTTLS: a relay that does not
	// offer it is refused, nothing is sent in the clear.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit is TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit TLSMode = "tls"
	// TLSNone sends in the clear: an explicit choice, for a relay on the
	// same host or a test sink. AUTH is refused with it.
	TLSNone TLSMode = "none"
)

// ParseTLSMode parses starttls, tls or none.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(strings.ToLower(strings.TrimSpace(s))); m {
	case TLSStartTLS, TLSImplicit, TLSNone:
		return m, nil
	case "":
		return TLSStartTLS, nil
	}
	return "", fmt.Errorf("reports: smtp tls %q: want starttls, tls or none", s)
}

// ErrNoSTARTTLS is returned when the relay does not offer STARTTLS and the
// mode requires it.
var ErrNoSTARTTLS = errors.New("reports: the relay does not offer STARTTLS, which is required (--smtp-tls starttls)")

// Mailer delivers emails to one SMTP relay.
type Mailer struct {
	Addr string  // host:port of the relay
	TLS  TLSMode // "": TLSStartTLS
	// TLSConfig verifies the relay. nil: the system roots, and the
	// certificate must name Addr's host.
	TLSConfig *tls.Config
	// Username and Password authenticate with AUTH PLAIN, only ever over
	// TLS. Empty Username: no AUTH.
	Username, Password string
	// Timeout bounds connecting (TLS and AUTH included) and each message's
	// dialogue, within ctx (default DefaultSendTimeout).
	Timeout time.Duration
	HELO    string // default: the local host name
	// Dial opens connections; nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Message is an email as it goes over the wire: the envelope and the exact
// RFC 5322 bytes.
type Message struct {
	ID   string // Message-ID, without angle brackets
	From string // envelope sender
	To   []string
	Data []byte
}

// Message renders the email for sending. The bytes carry the email's
// Message-ID; rendering twice gives different MIME boundaries, which is why
// the outbox keeps the bytes it rendered once.
func (e Email) Message() (Message, error) {
	var b bytes.Buffer
	if _, err := e.WriteTo(&b); err != nil {
		return Message{}, err
	}
	from, err := mail.ParseAddress(headerSafe(e.From))
	if err != nil {
		return Message{}, fmt.Errorf("reports: email %s: from: %w", headerSafe(e.Org), err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(b.Bytes()))
	if err != nil {
		return Message{}, fmt.Errorf("reports: email %s: %w", headerSafe(e.Org), err)
	}
	id := strings.Trim(msg.Header.Get("Message-Id"), "<>")
	return Message{ID: id, From: from.Address, To: slices.Clone(e.To), Data: b.Bytes()}, nil
}

// SendError is the failure of one message. Permanent: the relay refused it
// with a 5xx reply, and sending it again would fail again.
type SendError struct {
	ID        string
	Permanent bool
	// Accepted: the relay accepted the message for some recipients and
	// refused the others (Err); it must not be sent again.
	Accepted bool
	Err      error
}

func (e *SendError) Error() string {
	kind := "temporary"
	if e.Accepted {
		return fmt.Sprintf("message %s: accepted, but some recipients were refused: %v", asciiSafe(e.ID), e.Err)
	}
	if e.Permanent {
		kind = "permanent"
	}
	return fmt.Sprintf("message %s: %s failure: %v", asciiSafe(e.ID), kind, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// Send delivers the emails to the relay at addr with a default Mailer
// (STARTTLS required).
func Send(ctx context.Context, addr string, emails []Email) error {
	return (&Mailer{Addr: addr}).Send(ctx, emails)
}

// Send delivers each email. A refused email does not stop the others; the
// errors are joined. A failure to connect, a cancelled ctx or a relay
// without the required TLS stops at once.
func (m *Mailer) Send(ctx context.Context, emails []Email) error {
	var errs []error
	msgs := make([]Message, 0, len(emails))
	for _, e := range emails {
		msg, err := e.Message()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		msgs = append(msgs, msg)
	}
	err := m.Deliver(ctx, msgs, func(_ Message, err error) error {
		if err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// Deliver sends the messages in order, over one session while it lasts.
// After each message, done is called with nil once the relay has accepted
// its DATA (250), or with a *SendError (whose Accepted says the relay took
// it for some of the recipients); a message is never retried within
// one Deliver. done returning an error stops delivery with that error
// before the next message: the outbox records each acceptance there, so a
// message the relay accepted is never sent again.
//
// Deliver returns an error, sending nothing more, when it cannot set up a
// session (connect, TLS, AUTH) or ctx ends; messages not yet reported to
// done were not accepted.
func (m *Mailer) Deliver(ctx context.Context, msgs []Message, done func(Message, error) error) error {
	host, port, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return fmt.Errorf("reports: smtp address %q: %w", m.Addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("reports: smtp address %q: bad port", m.Addr)
	}
	mode, err := ParseTLSMode(string(m.TLS))
	if err != nil {
		return err
	}
	if m.Username != "" && mode == TLSNone {
		return errors.New("reports: smtp: AUTH is sent only over TLS: use --smtp-tls starttls or tls")
	}
	var c *smtp.Client
	defer func() {
		if c != nil {
			c.Quit()
			c.Close()
		}
	}()
	for _, msg := range msgs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reports: send: %w", err)
		}
		if c == nil {
			if c, err = m.connect(ctx, host, mode); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("reports: send: %w (%w)", ctx.Err(), err)
				}
				return fmt.Errorf("reports: smtp %s: %w", m.Addr, err)
			}
		}
		serr, broken := m.sendOne(ctx, c, msg)
		if broken {
			c.Close()
			c = nil
		}
		if serr != nil && ctx.Err() != nil {
			// Cancelled mid-message: not accepted, and nothing more is sent.
			if err := done(msg, serr); err != nil {
				return err
			}
			return fmt.Errorf("reports: send: %w", ctx.Err())
		}
		var derr error
		if serr != nil {
			derr = serr
		}
		if err := done(msg, derr); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mailer) timeout() time.Duration {
	if m.Timeout > 0 {
		return m.Timeout
	}
	return DefaultSendTimeout
}

func (m *Mailer) helo() string {
	if m.HELO != "" {
		return headerSafe(m.HELO)
	}
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}

// connect opens a session: TCP, TLS as the mode says, EHLO and AUTH.
func (m *Mailer) connect(ctx context.Context, host string, mode TLSMode) (*smtp.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout())
	defer cancel()
	dial := m.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", m.Addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	cfg := m.TLSConfig
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	var sc net.Conn = conn
	switch mode {
	case TLSImplicit:
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		sc = tc
	case TLSStartTLS:
		greeting, err := startTLS(conn, m.helo())
		if err != nil {
			conn.Close()
			return nil, err
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("starttls: %w", err)
		}
		// go-smtp's client starts by reading a greeting; after STARTTLS the
		// server sends none, so it is given the first one again.
		sc = &greetedConn{Conn: tc, greeting: strings.NewReader("220 " + greeting + "\r\n")}
	}
	conn.SetDeadline(time.Time{})
	c := smtp.NewClient(sc)
	c.CommandTimeout, c.SubmissionTimeout = m.timeout(), m.timeout()
	if err := c.Hello(m.helo()); err != nil {
		c.Close()
		return nil, fmt.Errorf("ehlo: %w", err)
	}
	if m.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok || !c.SupportsAuth(sasl.Plain) {
			c.Close()
			return nil, errors.New("the relay does not offer AUTH PLAIN")
		}
		if err := c.Auth(sasl.NewPlainClient("", m.Username, m.Password)); err != nil {
			c.Close()
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	if ctx.Err() != nil {
		c.Close()
		return nil, ctx.Err()
	}
	return c, nil
}

// startTLS runs the plaintext leg: greeting, EHLO, STARTTLS. It fails if
// the relay does not offer STARTTLS, and if the relay sends anything after
// its 220 to STARTTLS (bytes that would otherwise be read as if protected
// by TLS: the STARTTLS command injection of CVE-2011-0411).
func startTLS(conn net.Conn, helo string) (greeting string, err error) {
	r := bufio.NewReader(io.LimitReader(conn, 64<<10))
	tp := textproto.NewConn(struct {
		io.Reader
		io.Writer
		io.Closer
	}{r, conn, io.NopCloser(nil)})
	_, greeting, err = tp.ReadResponse(220)
	if err != nil {
		return "", fmt.Errorf("greeting: %w", err)
	}
	if err := tp.PrintfLine("EHLO %s", helo); err != nil {
		return "", err
	}
	_, ext, err := tp.ReadResponse(250)
	if err != nil {
		return "", fmt.Errorf("ehlo: %w", err)
	}
	offered := false
	for _, line := range strings.Split(ext, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		tp.PrintfLine("QUIT")
		return "", ErrNoSTARTTLS
	}
	if err := tp.PrintfLine("STARTTLS"); err != nil {
		return "", err
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		return "", fmt.Errorf("starttls: %w", err)
	}
	if r.Buffered() > 0 || tp.R.Buffered() > 0 {
		return "", errors.New("starttls: the relay sent data before the TLS handshake")
	}
	if i := strings.IndexByte(greeting, '\n'); i >= 0 {
		greeting = greeting[:i]
	}
	return asciiSafe(greeting), nil
}

// greetedConn replays a greeting before reading from Conn.
type greetedConn struct {
	net.Conn
	greeting io.Reader
}

func (g *greetedConn) Read(p []byte) (int, error) {
	if n, _ := g.greeting.Read(p); n > 0 {
		return n, nil
	}
	return g.Conn.Read(p)
}

// sendOne runs one mail transaction. broken says the session cannot be
// used again (the connection failed); otherwise it has been reset.
func (m *Mailer) sendOne(ctx context.Context, c *smtp.Client, msg Message) (serr *SendError, broken bool) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout())
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	fail := func(err error) (*SendError, bool) {
		var se *smtp.SMTPError
		if errors.As(err, &se) && ctx.Err() == nil {
			c.Reset()
			return &SendError{ID: msg.ID, Permanent: se.Code >= 500, Err: err}, false
		}
		return &SendError{ID: msg.ID, Err: err}, true
	}
	if err := c.Mail(msg.From, nil); err != nil {
		return fail(fmt.Errorf("MAIL FROM: %w", err))
	}
	var refused []error
	accepted := 0
	for _, to := range msg.To {
		err := c.Rcpt(to, nil)
		var se *smtp.SMTPError
		switch {
		case err == nil:
			accepted++
		case errors.As(err, &se) && se.Code >= 500:
			// One unknown mailbox does not stop the organisation's others.
			refused = append(refused, fmt.Errorf("RCPT TO %s: %w", asciiSafe(to), err))
		default:
			// A temporary refusal: the whole message waits, so that no
			// recipient gets it twice.
			return fail(fmt.Errorf("RCPT TO %s: %w", asciiSafe(to), err))
		}
	}
	if accepted == 0 {
		c.Reset()
		return &SendError{ID: msg.ID, Permanent: true, Err: errors.Join(refused...)}, false
	}
	w, err := c.Data()
	if err != nil {
		return fail(fmt.Errorf("DATA: %w", err))
	}
	if _, err := w.Write(msg.Data); err != nil {
		return &SendError{ID: msg.ID, Err: fmt.Errorf("DATA: %w", err)}, true
	}
	if err := w.Close(); err != nil {
		return fail(fmt.Errorf("DATA: %w", err))
	}
	if len(refused) > 0 {
		// Accepted for the others; the refused are not retried.
		return &SendError{ID: msg.ID, Accepted: true, Permanent: true, Err: errors.Join(refused...)}, false
	}
	return nil, false
}
