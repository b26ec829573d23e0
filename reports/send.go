package reports

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
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

// DefaultSendTimeout bounds the delivery of one email: connect, STARTTLS and
// the SMTP dialogue.
const DefaultSendTimeout = 30 * time.Second

// Mailer delivers emails over SMTP, one session per email so that one bad
// recipient or a stalled session does not hold up the rest.
type Mailer struct {
	Addr string // host:port of the SMTP server
	// TLSConfig is used for STARTTLS when the server offers it (opportunistic:
	// a server that does not offer it gets plain SMTP). nil: verify the
	// server's certificate for Addr's host against the system roots.
	TLSConfig *tls.Config
	// Timeout bounds each email (default DefaultSendTimeout), within ctx.
	Timeout time.Duration
	HELO    string // default: the local host name
	// Dial opens connections; nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Send delivers the emails to the SMTP server at addr with a default Mailer.
func Send(ctx context.Context, addr string, emails []Email) error {
	return (&Mailer{Addr: addr}).Send(ctx, emails)
}

// Send delivers each email. A failed email does not stop the others; the
// errors are joined. A cancelled ctx stops at once.
func (m *Mailer) Send(ctx context.Context, emails []Email) error {
	host, portStr, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return fmt.Errorf("reports: smtp address %q: %w", m.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return fmt.Errorf("reports: smtp address %q: bad port", m.Addr)
	}
	var errs []error
	for _, e := range emails {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("reports: send: %w", err))...)
		}
		if err := m.sendOne(ctx, host, port, e); err != nil {
			errs = append(errs, fmt.Errorf("reports: send to %s: %w", headerSafe(e.Org), err))
		}
	}
	return errors.Join(errs...)
}

func (m *Mailer) sendOne(ctx context.Context, host string, port int, e Email) error {
	msg, err := e.message()
	if err != nil {
		return err
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = DefaultSendTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// go-mail applies its own timeout to each SMTP command; keep it within
	// ctx's deadline, and close the connection if ctx ends mid-dialogue.
	deadline, _ := ctx.Deadline()
	left := time.Until(deadline)
	if left <= 0 {
		return context.DeadlineExceeded
	}
	dial := m.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tlsConfig := m.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTLSPolicy(gomail.TLSOpportunistic),
		gomail.WithTLSConfig(tlsConfig),
		gomail.WithTimeout(left),
		gomail.WithDialContextFunc(func(dctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			context.AfterFunc(ctx, func() { conn.Close() })
			return conn, nil
		}),
	}
	if m.HELO != "" {
		opts = append(opts, gomail.WithHELO(headerSafe(m.HELO)))
	}
	c, err := gomail.NewClient(host, opts...)
	if err != nil {
		return err
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return err
	}
	return nil
}
