package lab

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webcheck"
)

// webFamily: the lab of web.https (web.https.available, web.http.enforced,
// web.hsts.*). Its cases are www hosts without HSTS, with a short max-age,
// with HSTS only over HTTP, serving content over HTTP, redirecting with a
// 302 or to another host, without port 80 (a pass) and without 443.
//
// Its Complete states the five ids on every host another family states
// truth for (as dnshygiene.go does for dns.caa), derived from the host's
// WebSpec: the lab's handlers are asked for / as the scanner would ask
// (webExpectHost); hosts with neither port are not web servers (n/a).
var webFamily = Family{Name: "web", Cases: webCases, Complete: completeWeb}

// webHSTS is the lab's good HSTS value (goodPage's).
const webHSTS = "max-age=31536000; includeSubDomains"

func webPage(sts string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sts != "" {
			w.Header().Set("Strict-Transport-Security", sts)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>lab</title><p>A lab host of posture.</p>\n")
	})
}

func webCases() []Case {
	c := func(name string, spec func(d string) WebSpec) Case {
		return Case{Name: name, Family: "web", Build: func(d string) Domain {
			www := "www." + d
			s := spec(d)
			dom := Domain{Name: d, Hosts: []Host{{Name: www, Web: &s}}}
			if s.NoHTTPS {
				// The TLS collectors find nothing to judge on it.
				dom.Expect = webExpect(www, all(WebTLSCheckIDs, check.NA))
			}
			return dom
		}}
	}
	return []Case{
		c("web-no-hsts", func(string) WebSpec { return WebSpec{HTTPS: webPage("")} }),
		c("web-hsts-short", func(string) WebSpec { return WebSpec{HTTPS: webPage("max-age=86400; includeSubDomains")} }),
		c("web-hsts-http-only", func(string) WebSpec { return WebSpec{HTTPS: webPage(""), HTTP: webPage(webHSTS)} }),
		c("web-http-content", func(string) WebSpec { return WebSpec{HTTP: webPage("")} }),
		c("web-http-302", func(d string) WebSpec { return WebSpec{HTTP: Redirect("https://www." + d + "/")} }),
		c("web-http-other-host", func(d string) WebSpec {
			return WebSpec{HTTP: http.RedirectHandler("https://"+d+"/", http.StatusMovedPermanently)}
		}),
		c("web-no-http", func(string) WebSpec { return WebSpec{NoHTTP: true} }),
		c("web-no-https", func(string) WebSpec { return WebSpec{NoHTTPS: true} }),
	}
}

// completeWeb states the family's ids on every web host of d that the
// other families state truth for (the hosts a scan judges).
func completeWeb(d *Domain, _ Case, _ Added, _ []Case) {
	var hosts []string
	for _, e := range d.Expect {
		if e.Kind == check.KindHost && !slices.Contains(hosts, e.Name) {
			hosts = append(hosts, e.Name)
		}
	}
	hostNamed := func(n string) *Host {
		for i := range d.Hosts {
			if strings.EqualFold(strings.TrimSuffix(d.Hosts[i].Name, "."), n) {
				return &d.Hosts[i]
			}
		}
		return nil
	}
	for _, n := range hosts {
		spec := hostNamed(n)
		if spec == nil && len(d.Addrs[n]) > 0 {
			// A name with the addresses of several hosts: the scan
			// reaches the first (the members serve the same pages).
			spec = hostNamed(strings.ToLower(d.Addrs[n][0]))
		}
		tls13 := slices.ContainsFunc(d.Expect, func(e Expect) bool {
			return e.Kind == check.KindHost && e.Name == n && e.CheckID == "tls.tls13" && e.Outcome == check.Pass
		})
		for id, o := range webExpectHost(n, d.Name, spec, tls13) {
			d.Expect = append(d.Expect, Expect{Kind: check.KindHost, Name: n, CheckID: id, Outcome: o})
		}
	}
}

// webAsk asks a lab handler for / as the scanner's first request would.
func webAsk(h http.Handler, url string, tlsOn bool) *http.Response {
	req := httptest.NewRequest(http.MethodGet, url, nil)
	if tlsOn {
		req.TLS = &tls.ConnectionState{}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// webExpectHost derives the five outcomes on host from the spec of the
// lab host that serves it (nil: a name without a lab host of its own,
// such as the mail alias of the lab MX, which serves neither port).
// tls13 says the TLS family finds TLS 1.3 negotiated there: a raw
// handler that hands a modern hello to the lab's TLS server (SSLv3 with
// TLS too, the F5 band, which stalls only on hellos of 256 to 511
// bytes) serves the scanner's client; any other raw handler (tarpit,
// hang-up, SSLv3 only, a DHE-only relay) stops its handshake: unknown.
func webExpectHost(host, domain string, h *Host, tls13 bool) map[string]check.Outcome {
	w := map[string]check.Outcome{}
	set := func(o check.Outcome, ids ...string) {
		for _, id := range ids {
			w[id] = o
		}
	}
	hsts := []string{webcheck.HSTSPresent, webcheck.HSTSMaxAge, webcheck.HSTSSubdomains}
	if h == nil || h.Web == nil || (h.Web.NoHTTP && h.Web.NoHTTPS) {
		set(check.NA, webcheck.CheckIDs...)
		return w
	}
	if h.Dead {
		set(check.Unknown, webcheck.CheckIDs...)
		return w
	}
	ws := h.Web
	// HTTPS: the lab's server, unless a raw handler takes the connection
	// (tarpits, hang-ups, SSLv3: the handshake never completes).
	var first *http.Response
	switch {
	case ws.NoHTTPS:
		set(check.Fail, webcheck.HTTPSAvailable)
		set(check.NA, hsts...)
	case ws.Raw != nil && !tls13, ws.Cert.BadExtension:
		// A certificate that does not parse ends Go's handshake even
		// without verification.
		set(check.Unknown, webcheck.HTTPSAvailable)
		set(check.Unknown, hsts...)
	default:
		hh := ws.HTTPS
		if hh == nil {
			hh = goodPage(h.Name)
		}
		first = webAsk(hh, "https://"+host+"/", true)
		set(check.Pass, webcheck.HTTPSAvailable)
		webExpectHSTS(w, first, host == domain)
	}
	// HTTP.
	switch {
	case ws.NoHTTP:
		w[webcheck.HTTPEnforced] = check.Pass
	default:
		hh := ws.HTTP
		if hh == nil {
			hh = toHTTPS(h.Name)
		}
		r := webAsk(hh, "http://"+host+"/", false)
		loc, _ := r.Location()
		switch {
		case r.StatusCode < 300 || r.StatusCode > 308 || loc == nil || loc.Scheme != "https" || loc.Hostname() != host:
			w[webcheck.HTTPEnforced] = check.Fail
		case r.StatusCode == 301 || r.StatusCode == 308:
			w[webcheck.HTTPEnforced] = check.Pass
		default:
			w[webcheck.HTTPEnforced] = check.Warn
		}
	}
	if first != nil {
		if loc, _ := first.Location(); loc != nil && first.StatusCode >= 301 && first.StatusCode <= 308 && loc.Scheme == "http" {
			w[webcheck.HTTPEnforced] = check.Fail // HTTPS downgrades
		}
	}
	return w
}

// webExpectHSTS states the HSTS ids from the first HTTPS response.
func webExpectHSTS(w map[string]check.Outcome, r *http.Response, apex bool) {
	vs := r.Header.Values("Strict-Transport-Security")
	p, err := webcheck.ParseHSTS(strings.Join(vs, ""))
	if len(vs) != 1 || err != nil {
		w[webcheck.HSTSPresent], w[webcheck.HSTSMaxAge], w[webcheck.HSTSSubdomains] = check.Fail, check.NA, check.NA
		return
	}
	w[webcheck.HSTSPresent] = check.Pass
	w[webcheck.HSTSMaxAge] = check.Fail
	if p.MaxAge >= int64(webcheck.Settings.Defaults().HSTSMinMaxAge) {
		w[webcheck.HSTSMaxAge] = check.Pass
	}
	switch {
	case !apex:
		w[webcheck.HSTSSubdomains] = check.NA
	case p.IncludeSubDomains:
		w[webcheck.HSTSSubdomains] = check.Pass
	default:
		w[webcheck.HSTSSubdomains] = check.Fail
	}
}
