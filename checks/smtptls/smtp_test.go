package smtptls_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
	"github.com/nhsx/posture/checks/smtptls"
	"github.com/nhsx/posture/checks/tlscheck"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

const mx = "mx.lab.nhs.uk"

var dnsSrv *dnstest.Server

func TestMain(m *testing.M) {
	var err error
	if dnsSrv, err = dnstest.Start([]string{"lab.nhs.uk."}, mx+". 60 IN A 127.0.0.1"); err != nil {
		panic(err)
	}
	code := m.Run()
	dnsSrv.Close()
	os.Exit(code)
}

func labEnv(t testing.TB, addr string, roots *x509.CertPool) *check.Env {
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	return &check.Env{
		DNS:   &dnsq.Resolver{Servers: []string{dnsSrv.Addr}, Timeout: time.Second},
		Dial:  tlstest.DialLoopback,
		Roots: roots, PortMap: map[int]int{25: port},
	}
}

type nopSession struct{}

func (nopSession) Reset()                               {}
func (nopSession) Logout() error                        { return nil }
func (nopSession) Mail(string, *smtp.MailOptions) error { return nil }
func (nopSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (nopSession) Data(io.Reader) error                 { return nil }

// startSMTP runs a go-smtp server; with a TLS config it offers STARTTLS.
func startSMTP(t testing.TB, cfg *tls.Config) string { return startSMTPOn(t, "127.0.0.1", cfg) }

// startSMTPOn is startSMTP on the loopback address ip.
func startSMTPOn(t testing.TB, ip string, cfg *tls.Config) string {
	t.Helper()
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return nopSession{}, nil }))
	s.Domain, s.TLSConfig = mx, cfg
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return ln.Addr().String()
}

func run(t testing.TB, c check.Check, env *check.Env) (check.Evidence, map[string]check.Finding) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ev, _ := c.Collect(ctx, env, check.Asset{Kind: check.KindMail, Name: mx})
	p := check.DefaultPolicy()
	p.Roots = env.Roots // as a scan sets them
	out := map[string]check.Finding{}
	for _, f := range c.Evaluate(ev, p) {
		out[f.CheckID] = f
	}
	return ev, out
}

type want map[string]check.Outcome

func TestMailTLSVerdictsForLabServers(t *testing.T) {
	ca, err := tlstest.NewCA("Posture Lab")
	if err != nil {
		t.Fatal(err)
	}
	good, _ := ca.Issue(tlstest.Leaf{Names: []string{mx}, RSABits: 2048})
	self, _ := ca.Issue(tlstest.Leaf{Names: []string{mx}, SelfSigned: true})
	wrong, _ := ca.Issue(tlstest.Leaf{Names: []string{"mail.other.example"}})
	cfg := func(is *tlstest.Issued, min, max uint16, suites ...uint16) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{is.Cert}, MinVersion: min, MaxVersion: max, CipherSuites: suites}
	}
	cases := []struct {
		name string
		cfg  *tls.Config
		want want
	}{
		{"good", cfg(good, tls.VersionTLS12, 0), want{smtptls.MXStartTLS: check.Pass, smtptls.MXTLS12: check.Pass, smtptls.MXCert: check.Pass,
			smtptls.MXCiphers: check.Pass, tlscheck.NoSSL: check.Pass, tlscheck.TLS13: check.Pass}},
		{"no-starttls", nil, want{smtptls.MXStartTLS: check.Fail, smtptls.MXTLS12: check.NA, smtptls.MXCert: check.NA,
			smtptls.MXCiphers: check.NA, tlscheck.NoSSL: check.NA, tlscheck.TLS13: check.NA}},
		{"tls10-only", cfg(good, tls.VersionTLS10, tls.VersionTLS10), want{smtptls.MXStartTLS: check.Pass, smtptls.MXTLS12: check.Fail,
			tlscheck.TLS13: check.Warn}},
		{"tls10-to-12-with-3des", cfg(good, tls.VersionTLS10, tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA),
			want{smtptls.MXTLS12: check.Warn, smtptls.MXCiphers: check.Warn, smtptls.MXCert: check.Pass}},
		{"self-signed", cfg(self, tls.VersionTLS12, 0), want{smtptls.MXCert: check.Fail, smtptls.MXStartTLS: check.Pass}},
		{"wrong-name", cfg(wrong, tls.VersionTLS12, 0), want{smtptls.MXCert: check.Fail}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := startSMTP(t, tc.cfg)
			ev, got := run(t, smtptls.CheckWith(smtptls.Options{Timeout: 5 * time.Second}), labEnv(t, addr, ca.Pool()))
			for id, o := range tc.want {
				if got[id].Outcome != o {
					t.Errorf("%s: %s (%s), want %s", id, got[id].Outcome, got[id].Message, o)
				}
			}
			if t.Failed() {
				t.Logf("evidence: %s", ev.Data)
			}
		})
	}
}

func TestMailTLSConnectionBudget(t *testing.T) {
	ca, _ := tlstest.NewCA("Posture Lab")
	good, _ := ca.Issue(tlstest.Leaf{Names: []string{mx}})
	addr := startSMTP(t, &tls.Config{Certificates: []tls.Certificate{good.Cert}})
	ev, _ := run(t, smtptls.Check(), labEnv(t, addr, ca.Pool()))
	var e smtptls.Evidence
	if err := json.Unmarshal(ev.Data, &e); err != nil || len(e.Addrs) != 1 || e.Addrs[0].Report == nil {
		t.Fatalf("%s %v", ev.Data, err)
	}
	r := e.Addrs[0].Report
	k, v := r.AcceptedSuites(), r.AcceptedVersions()
	if r.Connections > k+v+3 {
		t.Errorf("%d SMTP sessions for the scan; budget K+V+3 = %d", r.Connections, k+v+3)
	}
	t.Logf("K=%d V=%d sessions=%d (+1 for the certificate)", k, v, r.Connections)
}

// Servers that drop or tarpit us give unknown ("probe blocked"), never
// fail, within one timeout.
func TestMailTLSOfBlockingServerIsUnknownNeverFail(t *testing.T) {
	cases := []struct {
		name   string
		handle func(net.Conn)
	}{
		{"tarpit-no-greeting", tlstest.Stall},
		{"hangs-up-after-greeting", func(c net.Conn) {
			_, _ = io.WriteString(c, "220 mx.lab.nhs.uk ESMTP\r\n")
			_, _ = c.Read(make([]byte, 100))
		}},
		{"refuses-with-554", func(c net.Conn) { _, _ = io.WriteString(c, "554 5.7.1 go away\r\n") }},
		{"stalls-after-starttls", func(c net.Conn) {
			_, _ = io.WriteString(c, "220 mx ESMTP\r\n")
			buf := make([]byte, 200)
			_, _ = c.Read(buf)
			_, _ = io.WriteString(c, "250-mx\r\n250 STARTTLS\r\n")
			_, _ = c.Read(buf)
			_, _ = io.WriteString(c, "220 go ahead\r\n")
			_, _ = io.Copy(io.Discard, c)
		}},
		{"greeting-never-ends", func(c net.Conn) {
			_, _ = io.WriteString(c, "220-mx.lab.nhs.uk still greeting\r\n")
			_, _ = io.Copy(io.Discard, c)
		}},
	}
	const timeout = 400 * time.Millisecond
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsmust.NoLeak(t)
			srv := tlsmust.Start(t, tc.handle)
			start := time.Now()
			_, got := run(t, smtptls.CheckWith(smtptls.Options{Timeout: timeout}), labEnv(t, srv.Addr, nil))
			if el := time.Since(start); el > 3*timeout {
				t.Errorf("took %v with a %v timeout", el, timeout)
			}
			if len(got) != 6 {
				t.Fatalf("%d findings", len(got))
			}
			for id, f := range got {
				if f.Outcome != check.Unknown {
					t.Errorf("%s: %s (%s), want unknown", id, f.Outcome, f.Message)
				}
				if f.Reason != string(check.ErrBlocked) && f.Reason != string(check.ErrTimeout) {
					t.Errorf("%s: reason %q (%s), want blocked or timeout", id, f.Reason, f.Message)
				}
			}
			if srv.Conns() > 3 {
				t.Errorf("%d connections to a server that blocks us", srv.Conns())
			}
		})
	}
}

func TestDialerStartTLS(t *testing.T) {
	cases := []struct {
		name      string
		script    []string // server lines: greeting, EHLO reply, STARTTLS reply
		wantErr   error
		wantClass check.ErrClass
		wantTLS   bool
	}{
		{"multiline-greeting-and-ehlo", []string{"220-mx.lab\r\n220-hello\r\n220 ready\r\n", "250-mx.lab\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 STARTTLS\r\n", "220 2.0.0 go ahead\r\n"}, nil, "", true},
		{"no-starttls", []string{"220 mx\r\n", "250-mx\r\n250 PIPELINING\r\n"}, smtptls.ErrNoStartTLS, "", false},
		{"starttls-temporary-failure", []string{"220 mx\r\n", "250-mx\r\n250 STARTTLS\r\n", "454 4.7.0 TLS not available\r\n"}, nil, check.ErrBlocked, true},
		{"garbage-greeting", []string{"HTTP/1.1 400 Bad Request\r\n"}, nil, check.ErrMalformed, false},
		{"endless-line", []string{"220 " + strings.Repeat("x", 5000) + "\r\n"}, nil, check.ErrMalformed, false},
		{"data-after-go-ahead", []string{"220 mx\r\n", "250-mx\r\n250 STARTTLS\r\n", "220 go ahead\r\ninjected"}, nil, check.ErrMalformed, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := tlsmust.Start(t, func(c net.Conn) {
				buf := make([]byte, 512)
				for i, l := range tc.script {
					if i > 0 {
						if _, err := c.Read(buf); err != nil {
							return
						}
					}
					_, _ = io.WriteString(c, l)
				}
				_, _ = io.Copy(io.Discard, c)
			})
			d := &smtptls.Dialer{Dial: tlstest.DialLoopback}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			conn, s, err := d.StartTLS(ctx, srv.Addr)
			if conn != nil {
				conn.Close()
			}
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("err %v, want %v", err, tc.wantErr)
				}
			case tc.wantClass != "":
				if check.Classify(err) != tc.wantClass {
					t.Errorf("err %v (class %q), want class %q", err, check.Classify(err), tc.wantClass)
				}
			case err != nil:
				t.Errorf("err %v", err)
			}
			if s.StartTLS != tc.wantTLS {
				t.Errorf("StartTLS advertised %v, want %v (%+v)", s.StartTLS, tc.wantTLS, s)
			}
		})
	}
}
