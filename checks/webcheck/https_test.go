package webcheck

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// site is one host's servers: nil handlers refuse the port.
type site struct{ http, https http.Handler }

// envFor routes host:80 and host:443 to loopback servers; any other
// address is refused.
func envFor(t *testing.T, sites map[string]site) *check.Env {
	routes := map[string]string{}
	for host, s := range sites {
		if s.http != nil {
			srv := httptest.NewServer(s.http)
			t.Cleanup(srv.Close)
			routes[host+":80"] = srv.Listener.Addr().String()
		}
		if s.https != nil {
			srv := httptest.NewTLSServer(s.https)
			t.Cleanup(srv.Close)
			routes[host+":443"] = srv.Listener.Addr().String()
		}
	}
	return &check.Env{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, ok := routes[addr]
		if !ok {
			return nil, &net.OpError{Op: "dial", Net: network, Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, to)
	}}
}

func page(sts ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, v := range sts {
			w.Header().Add("Strict-Transport-Security", v)
		}
		fmt.Fprint(w, "<p>hello</p>")
	})
}

func redirect(to string, code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, code) })
}

const good = "max-age=31536000; includeSubDomains"

// TestWebHTTPSVerdicts fetches loopback sites and judges them.
func TestWebHTTPSVerdicts(t *testing.T) {
	const host = "www.example.nhs.uk"
	toHTTPS := redirect("https://"+host+"/", 301)
	type want map[string]check.Outcome
	for _, tc := range []struct {
		name  string
		asset string
		sites map[string]site
		want  want
	}{
		{"good", host, map[string]site{host: {toHTTPS, page(good)}},
			want{HTTPSAvailable: check.Pass, HTTPEnforced: check.Pass, HSTSPresent: check.Pass, HSTSMaxAge: check.Pass, HSTSSubdomains: check.NA}},
		{"apex with includeSubDomains", "example.nhs.uk", map[string]site{"example.nhs.uk": {redirect("https://example.nhs.uk/", 308), page(good)}},
			want{HTTPEnforced: check.Pass, HSTSSubdomains: check.Pass}},
		{"apex without includeSubDomains", "example.nhs.uk", map[string]site{"example.nhs.uk": {redirect("https://example.nhs.uk/", 301), page("max-age=31536000")}},
			want{HSTSSubdomains: check.Fail, HSTSMaxAge: check.Pass}},
		{"no port 80", host, map[string]site{host: {nil, page(good)}},
			want{HTTPSAvailable: check.Pass, HTTPEnforced: check.Pass, HSTSPresent: check.Pass}},
		{"no port 443", host, map[string]site{host: {toHTTPS, nil}},
			want{HTTPSAvailable: check.Fail, HSTSPresent: check.NA, HSTSMaxAge: check.NA}},
		{"neither port", host, map[string]site{},
			want{HTTPSAvailable: check.NA, HTTPEnforced: check.NA, HSTSPresent: check.NA}},
		{"content over http", host, map[string]site{host: {page(), page(good)}},
			want{HTTPEnforced: check.Fail}},
		{"302 to https", host, map[string]site{host: {redirect("https://"+host+"/", 302), page(good)}},
			want{HTTPEnforced: check.Warn}},
		{"redirect to another host", host, map[string]site{host: {redirect("https://example.nhs.uk/", 301), page(good)}, "example.nhs.uk": {nil, page(good)}},
			want{HTTPEnforced: check.Fail}},
		{"redirect to http", host, map[string]site{host: {redirect("http://example.nhs.uk/", 301), page(good)}, "example.nhs.uk": {page(), nil}},
			want{HTTPEnforced: check.Fail}},
		{"https downgrades", host, map[string]site{host: {toHTTPS, redirect("http://"+host+"/plain", 301)}},
			want{HTTPEnforced: check.Fail, HSTSPresent: check.Fail}},
		{"no hsts", host, map[string]site{host: {toHTTPS, page()}},
			want{HSTSPresent: check.Fail, HSTSMaxAge: check.NA, HSTSSubdomains: check.NA}},
		{"hsts only over http", host, map[string]site{host: {page(good), page()}},
			want{HSTSPresent: check.Fail, HTTPEnforced: check.Fail}},
		{"two hsts headers", host, map[string]site{host: {toHTTPS, page(good, good)}},
			want{HSTSPresent: check.Fail, HSTSMaxAge: check.NA}},
		{"unparseable hsts", host, map[string]site{host: {toHTTPS, page("max-age=1; max-age=2")}},
			want{HSTSPresent: check.Fail}},
		{"short max-age", host, map[string]site{host: {toHTTPS, page("max-age=86400")}},
			want{HSTSPresent: check.Pass, HSTSMaxAge: check.Fail}},
		{"hsts on the https redirect hop", host, map[string]site{host: {toHTTPS, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				w.Header().Set("Strict-Transport-Security", good)
				http.Redirect(w, r, "/home", 301)
				return
			}
			fmt.Fprint(w, "home")
		})}}, want{HSTSPresent: check.Pass, HTTPEnforced: check.Pass}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := envFor(t, tc.sites)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := Check()
			a := check.Asset{Kind: check.KindHost, Name: tc.asset, Domain: "example.nhs.uk"}
			ev, err := c.Collect(ctx, env, a)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]check.Finding{}
			for _, f := range c.Evaluate(ev, nil) {
				got[f.CheckID] = f
			}
			for _, id := range append(CheckIDs[:len(CheckIDs):len(CheckIDs)], SiteIDs...) {
				if _, ok := got[id]; !ok {
					t.Errorf("no %s finding", id)
				}
			}
			for id, o := range tc.want {
				if got[id].Outcome != o {
					t.Errorf("%s = %s (%s), want %s", id, got[id].Outcome, got[id].Message, o)
				}
			}
		})
	}
}

func TestWebPolicyMaxAge(t *testing.T) {
	if errs := validatePolicy(Policy{HSTSMinMaxAge: 10}); errs[0] == nil {
		t.Fatal("a 10 s threshold validated")
	}
	if errs := validatePolicy(Settings.Defaults()); errs[0] != nil {
		t.Fatal(errs[0])
	}
}
