package mtasts

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
)

// policyServer serves handler over HTTPS with a certificate for names.
func policyServer(t *testing.T, names []string, handler http.HandlerFunc) string {
	t.Helper()
	is, err := ca(t).Issue(tlstest.Leaf{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(handler)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{is.Cert}}
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func textPolicy(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != WellKnownPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, body)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestCollectFetchesThePolicyAsSendersDo runs both collectors against a
// loopback DNS server and HTTPS policy servers with a test CA: the good
// policy passes, and each way a policy host can go wrong is told apart
// (a redirect, a certificate for another name, a refusal, a TLS alert, a
// host that does not resolve, a body over 64 KiB, a server that says
// nothing: unknown).
func TestCollectFetchesThePolicyAsSendersDo(t *testing.T) {
	body := "version: STSv1\r\nmode: enforce\r\nmx: mx1.mail.nhs.uk\r\nmx: *.mail.nhs.uk\r\nmax_age: 1209600\r\n"
	routes := map[string]string{
		"good": policyServer(t, []string{"mta-sts.good.nhs.uk"}, textPolicy(body)),
		"redirect": policyServer(t, []string{"mta-sts.redirect.nhs.uk"}, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://www.redirect.nhs.uk/p.txt", http.StatusMovedPermanently)
		}),
		"wrongname": policyServer(t, []string{"www.wrongname.nhs.uk"}, textPolicy(body)),
		"big":       policyServer(t, []string{"mta-sts.big.nhs.uk"}, textPolicy(body+strings.Repeat("x: y\r\n", MaxBody/6+1))),
		"refused":   closedAddr(t),
	}
	alert, err := tlstest.Serve(tlstest.TLSHandler(&tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return nil, errors.New("no certificate for this name")
	}}))
	if err != nil {
		t.Fatal(err)
	}
	defer alert.Close()
	routes["alert"] = alert.Addr
	silent, err := tlstest.Serve(tlstest.Stall)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	routes["silent"] = silent.Addr

	recs := []string{"mail.nhs.uk. 300 IN A 127.0.0.1"}
	for _, d := range []string{"good", "redirect", "wrongname", "big", "refused", "alert", "silent", "nohost", "none", "parked"} {
		z := d + ".nhs.uk."
		if d == "parked" {
			recs = append(recs, z+" 300 IN MX 0 .")
			continue
		}
		recs = append(recs, z+" 300 IN MX 10 mx1.mail.nhs.uk.", "_smtp._tls."+z+" 300 IN TXT \"v=TLSRPTv1; rua=mailto:tls@"+d+".nhs.uk\"")
		if d == "none" {
			continue
		}
		recs = append(recs, "_mta-sts."+z+" 300 IN TXT \"v=STSv1; id=1\"")
		if d != "nohost" {
			recs = append(recs, "mta-sts."+z+" 300 IN A 127.0.0.1")
		}
	}
	srv, err := dnstest.Start([]string{"nhs.uk."}, recs...)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	env := &check.Env{
		DNS: &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: time.Second, Retries: -1},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			d, _ := strings.CutSuffix(strings.TrimPrefix(host, "mta-sts."), ".nhs.uk")
			to, ok := routes[d]
			if !ok {
				return nil, fmt.Errorf("test: no route to %s", addr)
			}
			return tlstest.DialLoopback(ctx, network, to)
		},
	}
	pol := policyPolicy(t)
	tests := []struct {
		domain string
		want   [3]check.Outcome
		reason string // of the policy's unknown
		fetch  func(f *Fetch) bool
	}{
		{"good", [3]check.Outcome{check.Pass, check.Pass, check.Pass}, "", func(f *Fetch) bool { return f.Status == 200 && f.Cert != nil && len(f.Cert.Certs) == 2 }},
		{"redirect", [3]check.Outcome{check.Pass, check.Fail, check.NA}, "", func(f *Fetch) bool { return f.Status == 301 && f.Location == "https://www.redirect.nhs.uk/p.txt" }},
		{"wrongname", [3]check.Outcome{check.Pass, check.Fail, check.NA}, "", func(f *Fetch) bool { return f.Status == 200 }},
		{"big", [3]check.Outcome{check.Pass, check.Fail, check.NA}, "", func(f *Fetch) bool { return f.TooLarge && len(f.Body) == MaxBody }},
		{"refused", [3]check.Outcome{check.Pass, check.Fail, check.NA}, "", func(f *Fetch) bool { return f.Refused }},
		{"alert", [3]check.Outcome{check.Pass, check.Fail, check.NA}, "", func(f *Fetch) bool { return f.Alerted }},
		{"silent", [3]check.Outcome{check.Pass, check.Unknown, check.Unknown}, "timeout", func(f *Fetch) bool { return f.Failed() }},
		{"nohost", [3]check.Outcome{check.Pass, check.Fail, check.NA}, "", func(f *Fetch) bool { return f.NoHost }},
		{"none", [3]check.Outcome{check.Fail, check.NA, check.NA}, "", nil},
		{"parked", [3]check.Outcome{check.NA, check.NA, check.NA}, "", nil},
	}
	c, rc := Check(), TLSRPTCheck()
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			a := check.Asset{Kind: check.KindDomain, Name: tt.domain + ".nhs.uk"}
			ctx := func() context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				t.Cleanup(cancel)
				return ctx
			}
			ev, err := c.Collect(ctx(), env, a)
			if err != nil {
				t.Fatal(err)
			}
			fs := outcomes(c.Evaluate(ev, pol))
			for i, id := range []string{RecordID, PolicyID, ModeID} {
				if fs[id].Outcome != tt.want[i] {
					t.Errorf("%s: %s (%s), want %s", id, fs[id].Outcome, fs[id].Message, tt.want[i])
				}
			}
			if tt.reason != "" && fs[PolicyID].Reason != tt.reason {
				t.Errorf("policy reason %q, want %q", fs[PolicyID].Reason, tt.reason)
			}
			if tt.fetch != nil {
				d := Discover(ctx(), env, a.Name)
				if d.Policy == nil || !tt.fetch(d.Policy) {
					t.Errorf("fetch recorded %+v", d.Policy)
				}
			}
			rev, err := rc.Collect(ctx(), env, a)
			if err != nil {
				t.Fatal(err)
			}
			want := check.Pass
			if tt.domain == "parked" {
				want = check.NA
			}
			if rf := rc.Evaluate(rev, pol); len(rf) != 1 || rf[0].Outcome != want {
				t.Errorf("tlsrpt: %+v, want %s", rf, want)
			}
		})
	}
}

// TestCollectTellsNXDOMAINAndDNSFailuresApart: a domain that does not exist
// is unknown (nxdomain), a domain whose MX lookup times out unknown
// (timeout), never fail.
func TestCollectTellsNXDOMAINAndDNSFailuresApart(t *testing.T) {
	srv, err := dnstest.Start([]string{"nhs.uk."}, "slow.nhs.uk. 300 IN MX 10 mx.slow.nhs.uk.")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Drop("slow.nhs.uk.")
	env := &check.Env{DNS: &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: 200 * time.Millisecond, Retries: -1}}
	for _, c := range []check.Check{Check(), TLSRPTCheck()} {
		for name, reason := range map[string]check.ErrClass{"gone.nhs.uk": check.ErrNoDomain, "slow.nhs.uk": check.ErrTimeout} {
			ev, err := c.Collect(context.Background(), env, check.Asset{Kind: check.KindDomain, Name: name})
			if err == nil || ev.ErrorClass != reason {
				t.Fatalf("%s %s: error %v class %q, want %q", c.ID(), name, err, ev.ErrorClass, reason)
			}
			for _, f := range c.Evaluate(ev, nil) {
				if f.Outcome != check.Unknown || f.Reason != string(reason) {
					t.Errorf("%s %s: %s %s (%s)", name, f.CheckID, f.Outcome, f.Reason, f.Message)
				}
			}
		}
	}
}
