package reports

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const postfixBin = "/usr/sbin/postfix"

// requirePostfix skips (loudly) where a private postfix cannot run: no
// Debian postfix, or not root (`postfix start` needs root). With CI set it
// fails instead: CI installs postfix and runs as root.
func requirePostfix(t *testing.T) {
	t.Helper()
	why := ""
	if _, err := os.Stat(postfixBin); err != nil {
		why = postfixBin + " is missing (apt-get install postfix)"
	} else if os.Geteuid() != 0 {
		why = "not root: `postfix start` needs root"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set but the postfix integration test cannot run: %s", why)
	}
	t.Skipf("SKIPPED LOUDLY: the postfix relay test cannot run: %s", why)
}

// labCA is a certificate authority of the test's own, and a leaf it signed
// for 127.0.0.1: the relay's smtpd certificate.
type labCA struct {
	pool              *x509.CertPool
	certPEM, keyPEM   []byte // the leaf then the CA, and the leaf's key
	caPEM             []byte
	leafDNS, leafAddr string
}

func newLabCA(t *testing.T) labCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "posture lab CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay.posture.test"},
		DNSNames: []string{"relay.posture.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return labCA{
		pool:    pool,
		certPEM: append(encodePEM(leafDER), encodePEM(caDER)...),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		caPEM:   encodePEM(caDER),
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// postfixMasterCF: smtpd on the test's port only, nothing chrooted (the
// queue directory is a temporary one).
const postfixMasterCF = `127.0.0.1:%d inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
lmtp       unix  - - n -  - lmtp
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
`

// postfixMainCF: a relay for 127.0.0.0/8 only that requires STARTTLS
// (smtpd_tls_security_level = encrypt) with the lab CA's certificate,
// records the TLS of each submission in its Received header, and relays
// everything to the sink, with no DNS.
const postfixMainCF = `compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
myhostname = relay.posture.test
mydomain = posture.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:%[2]d
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_tls_cert_file = %[1]s/conf/relay.pem
smtpd_tls_key_file = %[1]s/conf/relay.key
smtpd_tls_security_level = encrypt
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
smtp_tls_security_level = none
biff = no
`

// TestPostfixRelaysOverTLSWithHeadersIntact: Debian's postfix as the
// relay, on a loopback port with its own configuration and queue, STARTTLS
// with a lab CA certificate; posture submits an email to it and the
// go-smtp sink behind it receives it, headers intact.
func TestPostfixRelaysOverTLSWithHeadersIntact(t *testing.T) {
	requirePostfix(t)
	base := t.TempDir()
	// postfix's daemons run as the postfix user: the path must be traversable.
	for d := base; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(base, "conf")
	for _, d := range []string{conf, filepath.Join(base, "queue"), filepath.Join(base, "data")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The data directory is postfix's own (master.lock, the TLS caches).
	pu, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("no postfix user: %v", err)
	}
	uid, _ := strconv.Atoi(pu.Uid)
	gid, _ := strconv.Atoi(pu.Gid)
	if err := os.Chown(filepath.Join(base, "data"), uid, gid); err != nil {
		t.Fatal(err)
	}
	sink := startSink(t, nil) // the next hop: plain SMTP on loopback
	_, sinkPort, _ := net.SplitHostPort(sink.addr)
	var sp int
	fmt.Sscan(sinkPort, &sp)
	port := freePort(t)
	ca := newLabCA(t)
	files := map[string][]byte{
		"main.cf":    fmt.Appendf(nil, postfixMainCF, base, sp),
		"master.cf":  fmt.Appendf(nil, postfixMasterCF, port),
		"relay.pem":  ca.certPEM,
		"relay.key":  ca.keyPEM,
		"lab-ca.pem": ca.caPEM,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(conf, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	postfix := func(args ...string) error {
		cmd := exec.Command(postfixBin, append([]string{"-c", conf}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("postfix %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	maillog := func() string {
		b, _ := os.ReadFile(filepath.Join(base, "maillog"))
		return string(b)
	}
	if err := postfix("check"); err != nil {
		t.Fatal(err)
	}
	if err := postfix("start"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := postfix("stop"); err != nil {
			t.Log(err)
			postfix("abort")
		}
		if t.Failed() {
			t.Logf("postfix log:\n%s", maillog())
		}
	})
	relay := fmt.Sprintf("127.0.0.1:%d", port)
	// smtpd starts on the first connection: wait for the port.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", relay, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix does not listen on %s: %v", relay, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	es := fixtureEmails(t)
	e := es[0]
	want, err := e.Message()
	if err != nil {
		t.Fatal(err)
	}
	m := &Mailer{Addr: relay, TLSConfig: &tls.Config{RootCAs: ca.pool}, HELO: "posture.test", Timeout: 20 * time.Second}

	// The relay requires TLS: in the clear it refuses the mail.
	if err := (&Mailer{Addr: relay, TLS: TLSNone, Timeout: 20 * time.Second}).Deliver(sendCtx(t), []Message{want},
		func(_ Message, err error) error {
			if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
				t.Errorf("postfix took mail in the clear: %v", err)
			}
			return nil
		}); err != nil {
		t.Fatal(err)
	}

	accepted := 0
	if err := m.Deliver(sendCtx(t), []Message{want}, func(_ Message, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		accepted++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if accepted != 1 {
		t.Fatalf("%d accepted", accepted)
	}

	var got []received
	for deadline := time.Now().Add(30 * time.Second); len(got) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sink received nothing from postfix in 30 s")
		}
		got = sink.messages()
	}
	if len(got) != 1 {
		t.Fatalf("the sink received %d messages", len(got))
	}
	r := got[0]
	if r.from != want.From || !slices.Equal(r.to, want.To) {
		t.Errorf("envelope from %q to %v, want %q %v", r.from, r.to, want.From, want.To)
	}
	sent, _ := mail.ReadMessage(bytes.NewReader(want.Data))
	msg, err := mail.ReadMessage(bytes.NewReader(r.data))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range sent.Header {
		if g := msg.Header[k]; !slices.Equal(g, v) {
			t.Errorf("%s: %q arrived as %q", k, v, g)
		}
	}
	// Postfix adds its Received header and nothing else of note.
	for k := range msg.Header {
		if _, ok := sent.Header[k]; !ok && k != "Received" {
			t.Errorf("postfix added %s: %q", k, msg.Header[k])
		}
	}
	// The submission leg used TLS: postfix records it in its Received
	// header (smtpd_tls_received_header).
	rcv := strings.Join(strings.Fields(msg.Header.Get("Received")), " ")
	if !strings.Contains(rcv, "posture.test") || !strings.Contains(rcv, "(using TLSv1.") {
		t.Errorf("Received header %q does not record the TLS submission", rcv)
	}
	body, _ := mail.ReadMessage(bytes.NewReader(want.Data))
	wb, gb := new(bytes.Buffer), new(bytes.Buffer)
	wb.ReadFrom(body.Body)
	gb.ReadFrom(msg.Body)
	if !bytes.Equal(bytes.ReplaceAll(wb.Bytes(), []byte("\r\n"), []byte("\n")), bytes.ReplaceAll(gb.Bytes(), []byte("\r\n"), []byte("\n"))) {
		t.Error("the body arrived changed")
	}
	if log := maillog(); !strings.Contains(log, "TLS connection established from localhost") || !strings.Contains(log, "starttls=1 mail=1 rcpt=2 data=1") {
		t.Errorf("postfix's log does not show the TLS submission:\n%s", maillog())
	}
}
