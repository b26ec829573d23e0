package reports

import (
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
	"math/big"
	"net"
	"net/mail"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is a real SMTP server on loopback that keeps what it receives.
type sink struct {
	addr string
	mu   sync.Mutex
	got  []received
}

type received struct {
	from string
	to   []string
	tls  bool
	data []byte
}

func (s *sink) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

type sinkSession struct {
	s   *sink
	c   *smtp.Conn
	cur received
}

func (s *sink) NewSession(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s, c: c}, nil }

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.cur = received{from: from}
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.cur.to = append(ss.cur.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, ss.cur.tls = ss.c.TLSConnectionState()
	ss.cur.data = b
	ss.s.mu.Lock()
	ss.s.got = append(ss.s.got, ss.cur)
	ss.s.mu.Unlock()
	return nil
}

func (ss *sinkSession) Reset()        { ss.cur = received{} }
func (ss *sinkSession) Logout() error { return nil }

func startSink(t *testing.T, cfg *tls.Config) *sink {
	t.Helper()
	s := &sink{}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.TLSConfig = cfg
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

// selfSigned makes a certificate for localhost and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
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

func TestSendDeliversOneMessagePerOrganisation(t *testing.T) {
	s := startSink(t, nil)
	es := fixtureEmails(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Send(ctx, s.addr, es); err != nil {
		t.Fatal(err)
	}
	for org, m := range checkOnePerOrg(t, s, es) {
		if m.tls {
			t.Errorf("%s: TLS without the server offering STARTTLS", org)
		}
	}
}

func TestSendUsesSTARTTLSWhenOffered(t *testing.T) {
	cert, pool := selfSigned(t)
	s := startSink(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	es := fixtureEmails(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := &Mailer{Addr: s.addr, TLSConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}, HELO: "posture.test"}
	if err := m.Send(ctx, es); err != nil {
		t.Fatal(err)
	}
	for org, r := range checkOnePerOrg(t, s, es) {
		if !r.tls {
			t.Errorf("%s: delivered without TLS though the server offered STARTTLS", org)
		}
	}

	// An untrusted certificate is refused, not silently accepted.
	s2 := startSink(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err := Send(ctx, s2.addr, es[:1]); err == nil {
		t.Error("delivered over STARTTLS to an untrusted certificate")
	}
	if n := len(s2.messages()); n != 0 {
		t.Errorf("%d messages delivered despite the bad certificate", n)
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
		t.Errorf("took %v for two emails with a 200ms timeout each", el)
	}

	// A cancelled context stops before the next email.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Send(ctx, es); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

func TestSendRejectsABadAddress(t *testing.T) {
	for _, addr := range []string{"", "localhost", "localhost:0", "localhost:smtp"} {
		if err := Send(context.Background(), addr, nil); err == nil {
			t.Errorf("%q: no error", addr)
		}
	}
}
