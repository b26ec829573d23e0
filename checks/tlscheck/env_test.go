package tlscheck_test

import (
	"context"
	"crypto/x509"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest/tlsmust"
)

const host = "www.lab.nhs.uk"

// dnsSrv is the package's lab DNS, started before any test so that the
// goroutine-leak checks do not count it.
var dnsSrv *dnstest.Server

func TestMain(m *testing.M) {
	var err error
	if dnsSrv, err = dnstest.Start([]string{"lab.nhs.uk."}, host+". 60 IN A 127.0.0.1"); err != nil {
		panic(err)
	}
	code := m.Run()
	dnsSrv.Close()
	os.Exit(code)
}

// labEnv resolves host to 127.0.0.1 through a loopback DNS server (one for
// the package) and maps port 443 (and 25) to the test server's port, as
// the lab does.
func labEnv(t testing.TB, srvAddr string, roots *x509.CertPool) *check.Env {
	t.Helper()
	d := dnsSrv
	_, p, _ := net.SplitHostPort(srvAddr)
	port, _ := strconv.Atoi(p)
	return &check.Env{
		DNS:     &dnsq.Resolver{Servers: []string{d.Addr}, Timeout: time.Second},
		Dial:    tlstest.DialLoopback,
		Roots:   roots,
		PortMap: map[int]int{443: port, 25: port},
	}
}

func newCA(t testing.TB) *tlstest.CA { return tlsmust.NewCA(t, "Posture Lab") }

func issue(t testing.TB, ca *tlstest.CA, l tlstest.Leaf) *tlstest.Issued {
	return tlsmust.Issue(t, ca, l, host)
}

// policyFor is the default policy with env's roots as the trust anchors,
// as a scan sets them.
func policyFor(env *check.Env) *check.Policy {
	p := check.DefaultPolicy()
	p.Roots = env.Roots
	return p
}

// run collects and evaluates one check on the host asset.
func run(t testing.TB, c check.Check, env *check.Env) (check.Evidence, map[string]check.Finding) {
	t.Helper()
	a := check.Asset{Kind: check.KindHost, Name: host}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, _ := c.Collect(ctx, env, a)
	out := map[string]check.Finding{}
	for _, f := range c.Evaluate(ev, policyFor(env)) {
		out[f.CheckID] = f
	}
	return ev, out
}
