package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// relay is a go-smtp server that requires STARTTLS and AUTH PLAIN, as an
// organisation's relay would.
type relay struct {
	addr   string
	caFile string
	mu     sync.Mutex
	got    int
	authed bool
}

type relaySession struct {
	r    *relay
	user bool
}

func (r *relay) NewSession(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }
func (s *relaySession) AuthMechanisms() []string             { return []string{sasl.Plain} }
func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "posture" || pass != "relay pass" {
			return &smtp.SMTPError{Code: 535, Message: "bad credentials"}
		}
		s.user = true
		return nil
	}), nil
}
func (s *relaySession) Mail(string, *smtp.MailOptions) error {
	if !s.user {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	return nil
}
func (s *relaySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *relaySession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	s.r.mu.Lock()
	s.r.got++
	s.r.mu.Unlock()
	return nil
}
func (s *relaySession) Reset()        {}
func (s *relaySession) Logout() error { return nil }

func (r *relay) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

func startRelay(t *testing.T) *relay {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{caFile: filepath.Join(t.TempDir(), "relay-ca.pem")}
	if err := os.WriteFile(r.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(r)
	srv.Domain = "relay.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return r
}

// TestNotifyCLISendsOncePerRunOverTLSWithAuth: the demo notified its runs
// through the outbox already; with the outbox emptied, posture notify sends
// the newest run's emails over STARTTLS with AUTH, and a second notify
// sends nothing and says so.
func TestNotifyCLISendsOncePerRunOverTLSWithAuth(t *testing.T) {
	dir, db := demoCopy(t)
	r := startRelay(t)

	// The demo sent its emails through the outbox: a notify of its newest
	// run has nothing to do, and connects to no relay.
	code, out, errs := runCLI(t, "notify", "--db", db, "--smtp", r.addr, "--ca-file", r.caFile)
	if code != 0 || !regexp.MustCompile(`run \d+ was already notified: 0 sent \(nothing pending\)`).MatchString(out) {
		t.Fatalf("notify after the demo: exit %d\n%s%s", code, out, errs)
	}

	sqldb, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqldb.ExecContext(context.Background(), "DELETE FROM outbox; DELETE FROM outbox_runs"); err != nil {
		t.Fatal(err)
	}
	sqldb.Close()

	// The password comes from the environment (or a file), never a flag.
	if code, out, errs := runCLI(t, "notify", "--db", db, "--smtp", r.addr, "--ca-file", r.caFile, "--smtp-password", "x"); code != exitUsage {
		t.Errorf("--smtp-password accepted: exit %d\n%s%s", code, out, errs)
	}
	pwFile := filepath.Join(dir, "smtp-password")
	os.WriteFile(pwFile, []byte("relay pass\n"), 0o600)
	code, out, errs = runCLI(t, "notify", "--db", db, "--smtp", r.addr, "--ca-file", r.caFile,
		"--smtp-user", "posture", "--smtp-password-file", pwFile)
	m := regexp.MustCompile(`run \d+: (\d+) emails queued; (\d+) sent`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] != m[2] || m[1] == "0" {
		t.Fatalf("notify: exit %d\n%s%s", code, out, errs)
	}
	n, _ := strconv.Atoi(m[2])
	if got := r.received(); got != n {
		t.Errorf("the relay received %d, notify says %d sent", got, n)
	}

	t.Setenv(SMTPPasswordEnv, "relay pass")
	code, out, errs = runCLI(t, "notify", "--db", db, "--smtp", r.addr, "--ca-file", r.caFile, "--smtp-user", "posture")
	if code != 0 || !strings.Contains(out, "already notified: 0 sent (nothing pending)") {
		t.Errorf("second notify: exit %d\n%s%s", code, out, errs)
	}
	if got := r.received(); got != n {
		t.Errorf("the second notify sent again: %d received, want %d", got, n)
	}
}

func TestNotifyCLIRefusesUnsafeOrBadSettings(t *testing.T) {
	db := filepath.Join(t.TempDir(), "none.db")
	t.Setenv(SMTPPasswordEnv, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--smtp", "127.0.0.1:25", "--smtp-tls", "ssl"}, "--smtp-tls"},
		{[]string{"--smtp", "127.0.0.1:25", "--smtp-tls", "none", "--smtp-user", "u"}, "AUTH is sent only over TLS"},
		{[]string{"--smtp", "127.0.0.1:25", "--smtp-user", "u"}, SMTPPasswordEnv},
		{[]string{"--smtp", "127.0.0.1:25", "--smtp-password-file", "/dev/null"}, "needs --smtp-user"},
		{[]string{"--smtp", "127.0.0.1:25", "--digest-day", "Funday"}, "--digest-day"},
		{[]string{"--smtp", "relay-without-port"}, "HOST:PORT"},
	} {
		code, out, errs := runCLI(t, append([]string{"notify", "--db", db}, tc.args...)...)
		if code != exitUsage || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%v: exit %d\n%s%s\nwant exit %d naming %q", tc.args, code, out, errs, exitUsage, tc.want)
		}
	}
	// In the clear only by choice, and with a warning.
	code, out, errs := runCLI(t, "notify", "--db", db, "--smtp", "127.0.0.1:25", "--smtp-tls", "none")
	if !strings.Contains(errs, "in the clear") {
		t.Errorf("--smtp-tls none: no warning (exit %d)\n%s%s", code, out, errs)
	}
}

func TestNotifyDigestDayOverridesDigest(t *testing.T) {
	mon := time.Date(2026, 11, 30, 12, 0, 0, 0, time.Local) // a Monday, local time
	for _, tc := range []struct {
		digest bool
		day    string
		at     time.Time
		want   bool
	}{
		{false, "", mon, false},
		{true, "", mon, true},
		{false, "Mon", mon, true},
		{true, "Mon", mon.AddDate(0, 0, 1), false},
		{false, "tuesday", mon.AddDate(0, 0, 1), true},
	} {
		eo, err := notifyOptions{From: "posture@nhs.net", Digest: tc.digest, DigestDay: tc.day}.emailOptions(tc.at)
		if err != nil || eo.Digest != tc.want {
			t.Errorf("--digest=%v --digest-day %q on a %s: digest %v, %v; want %v", tc.digest, tc.day, tc.at.Weekday(), eo.Digest, err, tc.want)
		}
	}
}

func TestDigestDayIsReadInTheGivenZone(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no Europe/London zone:", err)
	}
	// Sunday 23:30 UTC in summer is Monday 00:30 in London.
	started := time.Date(2026, 6, 7, 23, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		loc  *time.Location
		want bool
	}{{time.UTC, false}, {london, true}} {
		o := notifyOptions{DigestDay: "Mon", Loc: tc.loc}
		eo, err := o.emailOptions(started)
		if err != nil {
			t.Fatal(err)
		}
		if eo.Digest != tc.want {
			t.Errorf("in %s: digest %v, want %v", tc.loc, eo.Digest, tc.want)
		}
	}
}
