package dnscheck_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnscheck"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
	"github.com/nhsx/posture/scanner/lab"
)

// knotBinary returns the path of a Knot DNS program. Missing, the test
// skips loudly, or, when CI is set (CI installs knot), fails: the
// tlsmust rule for external servers.
func knotBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		// Debian installs them in /usr/sbin, off the PATH of most users.
		if sb := filepath.Join("/usr/sbin", name); exec.Command(sb, "-V").Run() == nil {
			return sb
		}

		msg := fmt.Sprintf("%s is not installed (apt-get install -y knot); this test runs dns.dnssec and dns.caa against zones Knot DNS signs itself", name)
		if tlsmust.InCI() {
			t.Fatalf("FAILED LOUDLY (CI is set, so a missing Knot DNS fails the test): %s", msg)
		}
		t.Skipf("SKIPPED LOUDLY: %s", msg)
	}
	return p
}

// knotConf serves the parent zone test. and its children, Knot signing
// every zone but unsigned.test with the keys made beforehand by keymgr.
const knotConf = `server:
    rundir: "{dir}"
    listen: 127.0.0.1@{port}
database:
    storage: "{dir}"
log:
  - target: stderr
    any: warning
policy:
  - id: csk
    algorithm: ecdsap256sha256
    single-type-signing: on
    manual: on
template:
  - id: default
    storage: "{dir}"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: test.
    dnssec-signing: on
    dnssec-policy: csk
  - domain: signed.test.
    dnssec-signing: on
    dnssec-policy: csk
  - domain: mismatch.test.
    dnssec-signing: on
    dnssec-policy: csk
  - domain: unsigned.test.
`

func zoneFile(origin string, lines ...string) string {
	return "$ORIGIN " + origin + "\n$TTL 300\n@ SOA ns.test. hostmaster.test. 1 7200 3600 1209600 300\n@ NS ns.test.\n" + strings.Join(lines, "\n") + "\n"
}

// startKnot writes the zones and keys, starts knotd on a free loopback
// port and waits until it serves the signed parent. It returns the
// server's address and the parent's key-signing key as keymgr prints it.
func startKnot(t *testing.T) (addr, parentKey string) {
	knotd, keymgr := knotBinary(t, "knotd"), knotBinary(t, "keymgr")
	dir := t.TempDir()
	conf := filepath.Join(dir, "knot.conf")
	writeConf := func(port string) {
		c := strings.NewReplacer("{dir}", dir, "{port}", port).Replace(knotConf)
		if err := os.WriteFile(conf, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("53") // keymgr reads the configuration; knotd is given a free port below
	km := func(args ...string) string {
		out, err := exec.Command(keymgr, append([]string{"-c", conf}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("keymgr %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for _, z := range []string{"test.", "signed.test.", "mismatch.test."} {
		km(z, "generate", "algorithm=ecdsap256sha256", "ksk=yes", "zsk=yes")
	}
	// The children's DS, as Knot gives them for the registrar.
	var ds, wrong []string
	for _, l := range strings.Split(strings.TrimSpace(km("signed.test.", "ds")), "\n") {
		ds = append(ds, l)
		// mismatch.test's DS: signed.test's, which matches no key of it.
		wrong = append(wrong, strings.Replace(l, "signed.test.", "mismatch.test.", 1))
	}
	parentKey = strings.TrimSpace(km("test.", "dnskey"))
	files := map[string]string{
		"test.zone": zoneFile("test.", append(append([]string{"ns A 127.0.0.1", "signed NS ns.test.", "mismatch NS ns.test.", "unsigned NS ns.test."},
			ds...), wrong...)...),
		"signed.test.zone":   zoneFile("signed.test.", `@ CAA 0 issue "letsencrypt.org"`),
		"mismatch.test.zone": zoneFile("mismatch.test.", `@ CAA 0 issue "letsencrypt.org"`, `@ CAA 128 tbs "unknown"`),
		"unsigned.test.zone": zoneFile("unsigned.test."),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var last error
	for range 3 {
		addr = tlsmust.FreePort(t)
		_, port, _ := net.SplitHostPort(addr)
		writeConf(port)
		var out bytes.Buffer
		cmd := exec.Command(knotd, "-c", conf)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		if last = knotReady(addr, done); last == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
			})
			return addr, parentKey
		}
		_ = cmd.Process.Kill()
		<-done
		last = fmt.Errorf("%w\n%s", last, out.String())
	}
	t.Fatalf("knotd: %v", last)
	return "", ""
}

// knotReady waits until every zone answers its SOA, the signed ones with
// an RRSIG.
func knotReady(addr string, exited <-chan struct{}) error {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("knotd exited")
		default:
		}
		ready := true
		for _, z := range []string{"test.", "signed.test.", "mismatch.test.", "unsigned.test."} {
			m := new(dns.Msg)
			m.SetQuestion(z, dns.TypeSOA)
			m.SetEdns0(1232, true)
			in, _, err := c.Exchange(m, addr)
			if err != nil || in.Rcode != dns.RcodeSuccess || len(in.Answer) == 0 || (z != "unsigned.test." && len(in.Answer) < 2) {
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the zones were not served signed within 10 s")
}

// labTruth is the lab's ground truth of one check on one case.
func labTruth(t *testing.T, caseName, checkID string) check.Outcome {
	t.Helper()
	for _, c := range lab.Cases() {
		if c.Name != caseName {
			continue
		}
		d := c.Build("lab-" + caseName + ".nhs.uk")
		for _, e := range d.Expect {
			if e.CheckID == checkID && e.Name == d.Name {
				return e.Outcome
			}
		}
	}
	t.Fatalf("the lab has no case %s stating %s", caseName, checkID)
	return ""
}

// TestDNSSECAndCAAAgainstKnotDNS runs dns.dnssec and dns.caa against zones
// served and signed by Knot DNS (not the in-process test server), with the
// parent zone's key as the trust anchor, and finds the verdicts the lab
// states for the same situations: a signed child with its DS in the parent
// validates; a child without DS is unsigned; a DS that matches no key of
// the child is bogus.
func TestDNSSECAndCAAAgainstKnotDNS(t *testing.T) {
	addr, parentKey := startKnot(t)
	anchors, err := dnscheck.ParseTrustAnchors("keymgr test. dnskey", []byte(parentKey))
	if err != nil {
		t.Fatal(err)
	}
	pol := dnscheck.WithTrustAnchors(check.DefaultPolicy(), anchors)
	env := &check.Env{DNS: &dnsq.Resolver{Servers: []string{addr}, Timeout: time.Second, Retries: -1}}
	checks := map[string]check.Check{dnscheck.DNSSEC: dnscheck.DNSSECCheck(), dnscheck.CAA: dnscheck.CAACheck()}
	for _, tc := range []struct {
		zone, dnssecCase, caaCase string
	}{
		{"signed.test", "dnssec-signed", "caa-good"},
		{"unsigned.test", "dnssec-unsigned", "caa-none"},
		{"mismatch.test", "dnssec-ds-mismatch", "caa-critical-unknown"},
	} {
		for id, labCase := range map[string]string{dnscheck.DNSSEC: tc.dnssecCase, dnscheck.CAA: tc.caaCase} {
			t.Run(tc.zone+"/"+id, func(t *testing.T) {
				want := labTruth(t, labCase, id)
				c := checks[id]
				ev, _ := c.Collect(context.Background(), env, check.Asset{Kind: check.KindDomain, Name: tc.zone})
				fs := c.Evaluate(ev, pol)
				if len(fs) != 1 || fs[0].Outcome != want {
					t.Fatalf("%s on %s: %+v\nwant %s, as the lab's %s\nevidence: %s", id, tc.zone, fs, want, labCase, ev.Data)
				}
				if id == dnscheck.DNSSEC && want == check.Fail && fs[0].Severity != check.Critical {
					t.Errorf("a bogus chain has severity %s, want critical", fs[0].Severity)
				}
				t.Logf("%s: %s", fs[0].Outcome, fs[0].Message)
			})
		}
	}
}
