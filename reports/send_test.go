package reports

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"maps"
	"math/big"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sink is a real SMTP server on loopback that keeps what it receives.
type sink struct {
	addr string
	// user and pass, when set, are the AUTH PLAIN credentials it accepts
	// (offered over TLS only, as go-smtp does).
	user, pass string
	// onData, when set, sees each message before it is accepted; an error
	// refuses it (an *smtp.SMTPError is the relay's reply).
	onData func(n int, data []byte, c *smtp.Conn) error
	// refuse is a recipient it refuses with 550.
	refuse string

	mu     sync.Mutex
	got    []received
	datas  int // DATA commands seen, accepted or not
	authed []string
}

type received struct {
	from string
	to   []string
	tls  bool
	auth string // the user that authenticated, if any
	data []byte
}

func (s *sink) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

type sinkSession struct {
	s    *sink
	c    *smtp.Conn
	user string
	cur  received
}

func (s *sink) NewSession(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s, c: c}, nil }

func (ss *sinkSession) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		ss.user = user
		ss.s.mu.Lock()
		ss.s.authed = append(ss.s.authed, user)
		ss.s.mu.Unlock()
		return nil
	}), nil
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && ss.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	ss.cur = received{from: from}
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == ss.s.refuse {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	ss.cur.to = append(ss.cur.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.datas++
	n := ss.s.datas
	ss.s.mu.Unlock()
	if ss.s.onData != nil {
		if err := ss.s.onData(n, b, ss.c); err != nil {
			return err
		}
	}
	_, ss.cur.tls = ss.c.TLSConnectionState()
	ss.cur.data, ss.cur.auth = b, ss.user
	ss.s.mu.Lock()
	ss.s.got = append(ss.s.got, ss.cur)
	ss.s.mu.Unlock()
	return nil
}

func (ss *sinkSession) Reset()        { ss.cur = received{} }
func (ss *sinkSession) Logout() error { return nil }

// startSink serves SMTP on loopback: STARTTLS offered when cfg is set.
func startSink(t *testing.T, cfg *tls.Config) *sink {
	return serveSink(t, &sink{}, cfg, false)
}

// serveSink serves s; implicit: TLS from the first byte (cfg required).
func serveSink(t testing.TB, s *sink, cfg *tls.Config, implicit bool) *sink {
	t.Helper()
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0) // dropped connections are what some tests do
	srv.TLSConfig = cfg
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		l = tls.NewListener(l, cfg)
	}
	s.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

// selfSigned makes a certificate for localhost and a pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func fixtureEmails(t *testing.T) []Email {
	t.Helper()
	es, _ := BuildEmails(mustSummary(t, fixture()), "posture@nhs.net")
	if len(es) != 3 {
		t.Fatalf("%d emails, want 3", len(es))
	}
	return es
}

// checkOnePerOrg asserts the sink got exactly one message per email, to the
// email's recipients, and returns them by organisation.
func checkOnePerOrg(t *testing.T, s *sink, es []Email) map[string]received {
	t.Helper()
	got := map[string]received{}
	for _, m := range s.messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.data))
		if err != nil {
			t.Fatalf("a received message does not parse: %v", err)
		}
		org := msg.Header.Get("X-Posture-Org")
		if _, dup := got[org]; dup {
			t.Errorf("two messages for %s", org)
		}
		got[org] = m
	}
	if len(got) != len(es) {
		t.Errorf("received %d messages, want %d", len(got), len(es))
	}
	for _, e := range es {
		m, ok := got[e.Org]
		if !ok {
			t.Errorf("nothing received for %s", e.Org)
			continue
		}
		if m.from != "posture@nhs.net" || !slices.Equal(m.to, e.To) {
			t.Errorf("%s: envelope from %q to %v, want %v", e.Org, m.from, m.to, e.To)
		}
	}
	return got
}

func trusting(pool *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: pool} }

func sendCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSendRequiresSTARTTLSByDefault(t *testing.T) {
	s := startSink(t, nil) // offers no STARTTLS
	err := Send(sendCtx(t), s.addr, fixtureEmails(t))
	if !errors.Is(err, ErrNoSTARTTLS) {
		t.Fatalf("err %v, want ErrNoSTARTTLS", err)
	}
	if n := len(s.messages()); n != 0 {
		t.Errorf("%d messages sent in the clear to a relay without STARTTLS", n)
	}
}

func TestSendUsesSTARTTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	s := startSink(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	es := fixtureEmails(t)
	m := &Mailer{Addr: s.addr, TLSConfig: trusting(pool), HELO: "posture.test"}
	if err := m.Send(sendCtx(t), es); err != nil {
		t.Fatal(err)
	}
	for org, r := range checkOnePerOrg(t, s, es) {
		if !r.tls {
			t.Errorf("%s: delivered without TLS", org)
		}
	}
}

func TestSendRefusesAnUntrustedCertificate(t *testing.T) {
	cert, _ := selfSigned(t)
	for _, mode := range []TLSMode{TLSStartTLS, TLSImplicit} {
		s := serveSink(t, &sink{}, &tls.Config{Certificates: []tls.Certificate{cert}}, mode == TLSImplicit)
		err := (&Mailer{Addr: s.addr, TLS: mode}).Send(sendCtx(t), fixtureEmails(t)[:1])
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("%s: err %v, want an unknown authority", mode, err)
		}
		if n := len(s.messages()); n != 0 {
			t.Errorf("%s: %d messages delivered despite the bad certificate", mode, n)
		}
	}
}

func TestSendImplicitTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	s := serveSink(t, &sink{}, &tls.Config{Certificates: []tls.Certificate{cert}}, true)
	es := fixtureEmails(t)
	if err := (&Mailer{Addr: s.addr, TLS: TLSImplicit, TLSConfig: trusting(pool)}).Send(sendCtx(t), es); err != nil {
		t.Fatal(err)
	}
	for org, r := range checkOnePerOrg(t, s, es) {
		if !r.tls {
			t.Errorf("%s: not over TLS", org)
		}
	}
	// STARTTLS against an implicit-TLS port fails instead of hanging.
	if err := (&Mailer{Addr: s.addr, TLSConfig: trusting(pool), Timeout: 300 * time.Millisecond}).Send(sendCtx(t), es[:1]); err == nil {
		t.Error("STARTTLS to an implicit-TLS port succeeded")
	}
}

func TestSendInTheClearOnlyWhenChosen(t *testing.T) {
	s := startSink(t, nil)
	es := fixtureEmails(t)
	if err := (&Mailer{Addr: s.addr, TLS: TLSNone}).Send(sendCtx(t), es); err != nil {
		t.Fatal(err)
	}
	for org, r := range checkOnePerOrg(t, s, es) {
		if r.tls {
			t.Errorf("%s: TLS though the relay offers none", org)
		}
	}
}

func TestSendAuthPlainOverTLSOnly(t *testing.T) {
	cert, pool := selfSigned(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	es := fixtureEmails(t)
	for _, mode := range []TLSMode{TLSStartTLS, TLSImplicit} {
		s := serveSink(t, &sink{user: "posture", pass: "s3cret pass"}, cfg, mode == TLSImplicit)
		m := &Mailer{Addr: s.addr, TLS: mode, TLSConfig: trusting(pool), Username: "posture", Password: "s3cret pass"}
		if err := m.Send(sendCtx(t), es); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		for org, r := range checkOnePerOrg(t, s, es) {
			if r.auth != "posture" || !r.tls {
				t.Errorf("%s: %s: auth %q tls %v", mode, org, r.auth, r.tls)
			}
		}
		// One session for the three emails: one AUTH.
		if len(s.authed) != 1 {
			t.Errorf("%s: %d AUTHs for one batch", mode, len(s.authed))
		}

		// A wrong password fails the session: nothing is sent.
		s2 := serveSink(t, &sink{user: "posture", pass: "right"}, cfg, mode == TLSImplicit)
		m.Addr, m.Password = s2.addr, "wrong"
		if err := m.Send(sendCtx(t), es); err == nil || !strings.Contains(err.Error(), "535") {
			t.Errorf("%s: wrong password: %v, want a 535", mode, err)
		}
		if n := len(s2.messages()); n != 0 {
			t.Errorf("%s: %d messages sent without authenticating", mode, n)
		}
	}

	// AUTH is never sent in the clear: refused before connecting.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dialled := false
	m := &Mailer{Addr: l.Addr().String(), TLS: TLSNone, Username: "posture", Password: "x",
		Dial: func(ctx context.Context, n, a string) (net.Conn, error) {
			dialled = true
			return (&net.Dialer{}).DialContext(ctx, n, a)
		}}
	if err := m.Send(sendCtx(t), es); err == nil || !strings.Contains(err.Error(), "only over TLS") {
		t.Errorf("AUTH with --smtp-tls none: %v", err)
	}
	if dialled {
		t.Error("connected to the relay to AUTH in the clear")
	}
}

func TestSendRelayWithoutAUTHIsRefusedWhenCredentialsAreSet(t *testing.T) {
	cert, pool := selfSigned(t)
	s := startSink(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	m := &Mailer{Addr: s.addr, TLSConfig: trusting(pool), Username: "posture", Password: "x"}
	if err := m.Send(sendCtx(t), fixtureEmails(t)); err == nil || !strings.Contains(err.Error(), "AUTH PLAIN") {
		t.Errorf("err %v, want the missing AUTH PLAIN named", err)
	}
	if n := len(s.messages()); n != 0 {
		t.Errorf("%d sent unauthenticated", n)
	}
}

func TestDeliverTemporaryAndPermanentRefusals(t *testing.T) {
	cert, pool := selfSigned(t)
	s := &sink{onData: func(n int, data []byte, _ *smtp.Conn) error {
		switch {
		case bytes.Contains(data, []byte("X-Posture-Org: RVR")) && n < 4:
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		case bytes.Contains(data, []byte("X-Posture-Org: RYJ")):
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected"}
		}
		return nil
	}}
	serveSink(t, s, &tls.Config{Certificates: []tls.Certificate{cert}}, false)
	var msgs []Message
	for _, e := range fixtureEmails(t) {
		m, err := e.Message()
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	m := &Mailer{Addr: s.addr, TLSConfig: trusting(pool)}
	outcome := map[string]string{}
	deliver := func(ms []Message) {
		t.Helper()
		if err := m.Deliver(sendCtx(t), ms, func(msg Message, err error) error {
			var se *SendError
			switch {
			case err == nil:
				outcome[msg.ID] = "sent"
			case errors.As(err, &se) && se.Permanent:
				outcome[msg.ID] = "permanent"
			case errors.As(err, &se):
				outcome[msg.ID] = "temporary"
			default:
				t.Errorf("%s: %v is not a *SendError", msg.ID, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	deliver(msgs)
	want := map[string]string{}
	var rvr Message
	for _, m := range msgs {
		switch {
		case strings.Contains(m.ID, "RVR"):
			want[m.ID], rvr = "temporary", m
		case strings.Contains(m.ID, "RYJ"):
			want[m.ID] = "permanent"
		default:
			want[m.ID] = "sent"
		}
	}
	if !maps.Equal(outcome, want) {
		t.Fatalf("outcomes %v, want %v", outcome, want)
	}
	// The 4xx is retried later (the outbox's next notify) and accepted.
	deliver([]Message{rvr})
	if outcome[rvr.ID] != "sent" {
		t.Errorf("retry of the 4xx: %s", outcome[rvr.ID])
	}
	got := s.messages()
	if len(got) != 2 {
		t.Errorf("%d accepted, want 2", len(got))
	}
}

func TestSendTimesOutOnAStalledServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept() // accepts, never greets
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	es := fixtureEmails(t)[:2]
	m := &Mailer{Addr: l.Addr().String(), Timeout: 200 * time.Millisecond}
	start := time.Now()
	err = m.Send(context.Background(), es)
	if err == nil {
		t.Fatal("no error from a server that never answers")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v with a 200ms timeout", el)
	}

	// A cancelled context stops before connecting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Send(ctx, es); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

func TestSendRejectsABadAddress(t *testing.T) {
	es := fixtureEmails(t)[:1]
	for _, addr := range []string{"", "localhost", "localhost:0", "localhost:smtp"} {
		if err := Send(context.Background(), addr, es); err == nil {
			t.Errorf("%q: no error", addr)
		}
	}
	if _, err := ParseTLSMode("ssl"); err == nil {
		t.Error("--smtp-tls ssl accepted")
	}
}

// A relay (or a man in the middle) that sends a reply after its 220 to
// STARTTLS, before the handshake, would have it read as if protected by
// TLS (CVE-2011-0411): the session is refused.
func TestSendRefusesDataInjectedBeforeTheTLSHandshake(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		io.WriteString(c, "220 relay ESMTP\r\n")
		r.ReadString('\n') // EHLO
		io.WriteString(c, "250-relay\r\n250 STARTTLS\r\n")
		r.ReadString('\n') // STARTTLS
		io.WriteString(c, "220 go ahead\r\n250 injected\r\n")
		r.ReadString('\n')
	}()
	err = (&Mailer{Addr: l.Addr().String(), Timeout: 2 * time.Second}).Send(sendCtx(t), fixtureEmails(t)[:1])
	if err == nil || !strings.Contains(err.Error(), "before the TLS handshake") {
		t.Errorf("err %v, want the injected data refused", err)
	}
}
