package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/emersion/go-smtp"
)

// smtpListener starts the host's SMTP server on first use (a large lab has
// many MX hosts and most are never probed) and returns its listener.
func (h *host) smtpListener(l *Lab) *chanListener {
	h.smtpOnce.Do(func() {
		h.smtpLn = newChanListener(l.svc[svcSMTP].Addr())
		srv := smtp.NewServer(mxBackend{})
		srv.Domain = h.Name
		srv.MaxMessageBytes = 1 << 20
		srv.MaxRecipients = 50
		if !h.SMTP.NoStartTLS {
			srv.TLSConfig = h.smtpTLS(l.pki)
		}
		l.serveSMTP(srv, h.smtpLn)
	})
	return h.smtpLn
}

// mxBackend is a lab MX: it accepts mail for lab domains, refuses to relay
// anywhere else, and discards what it receives.
type mxBackend struct{}

func (mxBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &mxSession{}, nil }

type mxSession struct{}

func (*mxSession) Reset()                               {}
func (*mxSession) Logout() error                        { return nil }
func (*mxSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*mxSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (*mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if i := strings.LastIndexByte(to, '@'); i >= 0 && under(strings.ToLower(to[i+1:]), "nhs.uk") {
		return nil
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied"}
}

// Message is one mail the notification sink received.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Bounds on what the sink keeps.
const (
	maxSinkMessages = 100_000
	maxSinkBytes    = 10 << 20
)

// sink is the notification sink: the trusts' IT mailboxes.
type sink struct {
	mu   sync.Mutex
	msgs []Message
}

func (l *Lab) startSink() error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("lab: listen smtp sink: %w", err)
	}
	l.sink = &sink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &sinkSession{sink: l.sink}, nil
	}))
	srv.Domain = "mailbox.lab.nhs.uk"
	srv.MaxMessageBytes = maxSinkBytes
	srv.MaxRecipients = 1000
	l.SMTPAddr = ln.Addr().String()
	l.infra[portOf(l.SMTPAddr)] = true
	l.serveSMTP(srv, ln)
	return nil
}

type sinkSession struct {
	sink *sink
	from string
	to   []string
}

func (s *sinkSession) Reset()        { s.from, s.to = "", nil }
func (s *sinkSession) Logout() error { return nil }
func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(r, maxSinkBytes+1)); err != nil {
		return err
	}
	if b.Len() > maxSinkBytes {
		return smtp.ErrDataTooLarge
	}
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	if len(s.sink.msgs) >= maxSinkMessages {
		return errors.New("sink: mailbox full")
	}
	s.sink.msgs = append(s.sink.msgs, Message{From: s.from, To: append([]string(nil), s.to...), Data: b.Bytes()})
	return nil
}

// Received returns the mail the sink has received, oldest first.
func (l *Lab) Received() []Message {
	l.sink.mu.Lock()
	defer l.sink.mu.Unlock()
	out := make([]Message, len(l.sink.msgs))
	copy(out, l.sink.msgs)
	return out
}
