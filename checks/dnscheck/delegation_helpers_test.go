package dnscheck

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
)

// hygieneNet is a test network for the DNS hygiene collectors: a resolver
// on one loopback authoritative server (the "world"), and name servers
// reached by name on port 53, each mapped to a loopback server of its
// own. A name server missing from the map has no address (as the scope
// guard says of a name that does not resolve).
type hygieneNet struct {
	world   *dnstest.Server
	servers map[string]string // name server host → "127.0.0.1:port"
}

func (n *hygieneNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if port != "53" {
		return nil, fmt.Errorf("test network: port %s", port)
	}
	a, ok := n.servers[strings.ToLower(host)]
	if !ok {
		return nil, check.WithClass(check.ErrUnreachable, fmt.Errorf("test network: %s has no address", host))
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, a)
	if err != nil {
		return nil, err
	}
	return guardConn{c}, nil
}

// guardConn hides the connection's type, as the scope guard's wrapper
// does: a UDP connection is then no net.PacketConn.
type guardConn struct{ net.Conn }

func (n *hygieneNet) env() *check.Env {
	return &check.Env{
		DNS:  &dnsq.Resolver{Servers: []string{n.world.Addr}, Timeout: 300 * time.Millisecond, Retries: -1},
		Dial: n.dial,
	}
}

// startDNS starts a loopback server for zones and stops it with the test.
func startDNS(t *testing.T, zones []string, records ...string) *dnstest.Server {
	t.Helper()
	s, err := dnstest.Start(zones, records...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// shortTimeouts makes a dead name server cost little in a test.
func shortTimeouts(t *testing.T) {
	ask, xfr := delegationAskTimeout, axfrTimeout
	delegationAskTimeout, axfrTimeout = 200*time.Millisecond, 500*time.Millisecond
	t.Cleanup(func() { delegationAskTimeout, axfrTimeout = ask, xfr })
}

func soa(zone string, serial int) string {
	return fmt.Sprintf("%s. 300 IN SOA ns1.dns.test. hostmaster.%s. %d 7200 3600 1209600 300", zone, zone, serial)
}

func nsRR(zone string, hosts ...string) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, zone+". 300 IN NS "+h+".")
	}
	return out
}

func collectOne(t *testing.T, c check.Check, env *check.Env, name string) (check.Evidence, []check.Finding) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ev, _ := c.Collect(ctx, env, check.Asset{Kind: check.KindDomain, Name: name})
	return ev, c.Evaluate(ev, nil)
}

func byID(fs []check.Finding) map[string]check.Finding {
	m := map[string]check.Finding{}
	for _, f := range fs {
		m[f.CheckID] = f
	}
	return m
}
