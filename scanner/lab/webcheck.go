package lab

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webcheck"
	"github.com/nhsx/posture/checks/webfetch"
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
		// HTTPS redirects off the public sector (web.redirect.scope fails;
		// the target is out of scope, so it is judged, not fetched).
		c("web-redirect-offsite", func(string) WebSpec { return WebSpec{HTTPS: Redirect("https://trust-website.example.com/")} }),
		// The apex: preload-ready, not listed (web.hsts.preload passes);
		// listed in the lab's preload list (passes); asking for preload
		// with a short max-age and no includeSubDomains (warns, at info).
		apex("web-preload-ready", webPage("max-age=31536000; includeSubDomains; preload")),
		apex(webPreloadedCase, webPage(webHSTS)),
		apex("web-preload-not-ready", webPage("max-age=86400; preload")),
		// Non-production hosts (web.nonprod.protected): basic
		// authentication (pass), open (fail), sent to sign in at
		// Microsoft Entra ID (pass).
		{Name: "web-nonprod", Family: "web", Build: func(d string) Domain {
			dom := Domain{Name: d}
			for label, hh := range map[string]http.Handler{
				"dev":     webStatus(http.StatusUnauthorized),
				"staging": webPage(webHSTS),
				"test":    Redirect("https://login.microsoftonline.com/lab-tenant/oauth2/v2.0/authorize?client_id=lab"),
			} {
				dom.Hosts = append(dom.Hosts, Host{Name: label + "." + d, Web: &WebSpec{HTTPS: hh}})
				dom.CT = append(dom.CT, label+"."+d)
			}
			slices.SortFunc(dom.Hosts, func(a, b Host) int { return strings.Compare(a.Name, b.Name) })
			slices.Sort(dom.CT)
			return dom
		}},
	}
}

// apex is a case whose estate domain itself is a web host (the apex).
func apex(name string, https http.Handler) Case {
	return Case{Name: name, Family: "web", Build: func(d string) Domain {
		return Domain{Name: d, Hosts: []Host{{Name: d, Web: &WebSpec{HTTPS: https}}}}
	}}
}

// webStatus answers every request with code and the good HSTS header.
func webStatus(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", webHSTS)
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="lab staging", charset="UTF-8"`)
		}
		http.Error(w, http.StatusText(code), code)
	})
}

// webJudged is a web host a scan judges on a lab domain: its name, the lab
// host that serves it (nil: none, such as the mail alias of the lab MX) and
// whether the TLS family finds TLS 1.3 negotiated there.
type webJudged struct {
	Name  string
	Spec  *Host
	TLS13 bool
}

// webJudgedHosts lists the hosts of d that the other families state truth
// for (the hosts a scan judges), except those stated(name) says a web
// family's case already covers (nil: none). Every web family's Complete
// walks this list.
func webJudgedHosts(d *Domain, stated func(name string) bool) []webJudged {
	var out []webJudged
	seen := map[string]bool{}
	for _, e := range d.Expect {
		if e.Kind != check.KindHost || seen[e.Name] {
			continue
		}
		seen[e.Name] = true
		if stated != nil && stated(e.Name) {
			continue
		}
		n := e.Name
		out = append(out, webJudged{Name: n, Spec: webHostServing(d, n), TLS13: slices.ContainsFunc(d.Expect, func(e Expect) bool {
			return e.Kind == check.KindHost && e.Name == n && e.CheckID == "tls.tls13" && e.Outcome == check.Pass
		})})
	}
	return out
}

// webHostServing is the lab host of d that serves n (nil: none): the host
// of that name, or for a name with the addresses of several hosts the
// first (the scan reaches it; the members serve the same pages).
func webHostServing(d *Domain, n string) *Host {
	named := func(n string) *Host {
		for i := range d.Hosts {
			if strings.EqualFold(strings.TrimSuffix(d.Hosts[i].Name, "."), n) {
				return &d.Hosts[i]
			}
		}
		return nil
	}
	if h := named(n); h != nil || len(d.Addrs[n]) == 0 {
		return h
	}
	return named(strings.ToLower(d.Addrs[n][0]))
}

// completeWeb states the family's ids on every web host of d that the
// other families state truth for (the hosts a scan judges).
func completeWeb(d *Domain, _ Case, _ Added, _ []Case) {
	for _, h := range webJudgedHosts(d, nil) {
		for id, o := range webExpectHost(h.Name, d.Name, h.Spec, h.TLS13) {
			d.Expect = append(d.Expect, Expect{Kind: check.KindHost, Name: h.Name, CheckID: id, Outcome: o})
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
		set(check.NA, webcheck.SiteIDs...)
		w[webcheck.HSTSPreload] = webPreloadExpect(host, domain, nil, check.NA)
		return w
	}
	if hh, ok := h.Web.HTTPS.(*hostileHandler); ok {
		// Never asked in-process as a normal page: its truth is stated.
		return hh.expect()
	}
	if h.Dead {
		set(check.Unknown, webcheck.CheckIDs...)
		set(check.Unknown, webcheck.RedirectScope)
		w[webcheck.HSTSPreload] = webPreloadExpect(host, domain, nil, check.Unknown)
		w[webcheck.NonprodProtected] = check.NA
		if webNonprodLabel(host, domain) {
			w[webcheck.NonprodProtected] = check.Unknown
		}
		return w
	}
	defer func() { webSiteExpect(w, host, domain, h) }()
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

// The site ids (web.hsts.preload, web.redirect.scope,
// web.nonprod.protected), derived by walking a host's own handlers from /
// as the fetcher would: redirects on the host are followed, one to
// another host ends the walk there (the lab's cases only leave a host
// for a host they do not serve, or one outside the scope).

// webPreloadedCase is the case whose apex the lab's preload list lists.
const webPreloadedCase = "web-preloaded"

// webPreloaded reports whether domain is a stamp of web-preloaded.
func webPreloaded(domain string) bool {
	first, rest, _ := strings.Cut(domain, ".")
	base := "lab-" + webPreloadedCase
	n, ok := strings.CutPrefix(first, base+"-")
	return rest == "nhs.uk" && (first == base || (ok && n != "" && strings.Trim(n, "0123456789") == ""))
}

// webPreloadList is the lab's preload list: the stamps of web-preloaded,
// dated as the embedded list (nil when the lab has none). The lab's Env
// hands it to Collect (check.Env.Lists) and its Policy to Evaluate, as
// --hsts-preload does to a scan and a reeval.
func webPreloadList(ds []Domain) *webcheck.PreloadList {
	date := "2026-06-01"
	if e, err := webcheck.EmbeddedPreload(); err == nil {
		date = e.Date()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# the lab's HSTS preload list, %s\n", date)
	n := 0
	for _, d := range ds {
		if webPreloaded(d.Name) {
			fmt.Fprintf(&b, "%s\t1\n", d.Name)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	l, err := webcheck.ParsePreload("lab", strings.NewReader(b.String()))
	if err != nil {
		return nil
	}
	return l
}

// webPreloadLists is webPreloadList for an Env.
func webPreloadLists(ds []Domain) map[string]check.List {
	if l := webPreloadList(ds); l != nil {
		return map[string]check.List{webcheck.PreloadListName: l}
	}
	return nil
}

// webPreloadPolicy puts the lab's preload list in p's web section.
func webPreloadPolicy(p *check.Policy, ds []Domain) *check.Policy {
	l := webPreloadList(ds)
	if l == nil {
		return p
	}
	v := webcheck.Settings.Get(p)
	v.Preload = l
	return webcheck.Settings.Set(p, v)
}

// webPreloadExpect is web.hsts.preload on host: the apex only; listed
// (web-preloaded) passes; else, with HTTPS answering (avail), a header
// asking for preload passes when ready and warns when not, and a header
// that does not ask is not applicable.
func webPreloadExpect(host, domain string, h *Host, avail check.Outcome) check.Outcome {
	switch {
	case host != domain:
		return check.NA
	case webPreloaded(domain):
		return check.Pass
	case avail == check.Unknown:
		return check.Unknown
	case avail != check.Pass || h == nil || h.Web == nil:
		return check.NA
	}
	hops, _, _ := webWalk(h, "https://"+host+"/", true)
	if len(hops) == 0 {
		return check.Unknown
	}
	vs := hops[0].Header.Values("Strict-Transport-Security")
	p, err := webcheck.ParseHSTS(strings.Join(vs, ""))
	if len(vs) != 1 || err != nil || !p.Preload {
		return check.NA // not asked (or no valid header: hsts.present fails)
	}
	ready := p.MaxAge >= 31536000 && p.IncludeSubDomains
	if !h.Web.NoHTTP {
		hh, _, _ := webWalk(h, "http://"+host+"/", true)
		if len(hh) == 0 {
			return check.Unknown
		}
		loc, _ := hh[0].Location()
		ready = ready && loc != nil && loc.Scheme == "https" && loc.Hostname() == host
	}
	if ready {
		return check.Pass
	}
	return check.Warn
}

// webWalk asks a lab host's own handlers along the chain from u as the
// fetcher would: the responses, the URL the walk did not follow (another
// host, another scheme, a URL asked before, the hop cap) and how it
// ended: "final", "left" (another host), "scheme", "loop", "max", or
// "down" (the next request would not be answered: a closed port, or,
// without httpsOK, a TLS server the fetcher cannot finish a handshake
// with).
func webWalk(h *Host, u string, httpsOK bool) (hops []*http.Response, next *url.URL, end string) {
	seen := map[string]bool{}
	cur, _ := url.Parse(u)
	for len(hops) < webfetch.DefaultMaxHops {
		var hh http.Handler
		switch {
		case cur.Scheme == "https" && (h.Web.NoHTTPS || !httpsOK):
			return hops, cur, "down"
		case cur.Scheme == "https":
			hh = h.Web.HTTPS
			if hh == nil {
				hh = goodPage(h.Name)
			}
		case h.Web.NoHTTP:
			return hops, cur, "down"
		default:
			hh = h.Web.HTTP
			if hh == nil {
				hh = toHTTPS(h.Name)
			}
		}
		seen[cur.String()] = true
		r := webAsk(hh, cur.String(), cur.Scheme == "https")
		hops = append(hops, r)
		loc, err := r.Location()
		if r.StatusCode < 301 || r.StatusCode > 308 || r.StatusCode == 304 || r.StatusCode == 305 || r.StatusCode == 306 || err != nil {
			return hops, nil, "final"
		}
		switch {
		case loc.Scheme != "http" && loc.Scheme != "https":
			return hops, loc, "scheme"
		case !strings.EqualFold(loc.Hostname(), h.Name):
			return hops, loc, "left"
		case seen[loc.String()]:
			return hops, loc, "loop"
		}
		cur = loc
	}
	return hops, cur, "max"
}

// webRedirectExpect is web.redirect.scope on a lab host: each open
// port's chain from /, the worse verdict.
func webRedirectExpect(host, domain string, h *Host, httpsOK bool) check.Outcome {
	var out check.Outcome
	for _, scheme := range []string{"https", "http"} {
		if (scheme == "https" && h.Web.NoHTTPS) || (scheme == "http" && h.Web.NoHTTP) {
			continue
		}
		if scheme == "https" && !httpsOK {
			out = check.Worst(out, check.Unknown)
			continue
		}
		hops, next, end := webWalk(h, scheme+"://"+host+"/", httpsOK)
		n := len(hops) - 1
		if end != "final" {
			n = len(hops) // the last answer was a redirect too
		}
		insecure := false
		for _, r := range hops {
			if loc, err := r.Location(); err == nil && loc.Scheme == "http" && r.StatusCode >= 301 && r.StatusCode <= 308 {
				insecure = true
			}
		}
		final := host
		if next != nil && (end == "left" || end == "scheme") {
			final = strings.ToLower(next.Hostname())
		}
		var o check.Outcome
		switch {
		case insecure, end == "scheme":
			o = check.Fail
		case !webPublicSector(final, domain) && !webLoginHost(final):
			o = check.Fail
		case end == "loop" || end == "max" || n > 3:
			o = check.Warn
		default:
			o = check.Pass
		}
		out = check.Worst(out, o)
	}
	if out == "" {
		return check.NA
	}
	return out
}

// webPublicSector: under a default public-sector suffix or the domain.
func webPublicSector(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain) || webcheck.PublicSector(host, webcheck.DefaultPublicSectorSuffixes)
}

// webNonprodLabel: the host's name is non-production by the defaults.
func webNonprodLabel(host, domain string) bool {
	return webcheck.NonprodLabel(host, domain, webcheck.DefaultNonprodLabels) != ""
}

// webNonprodExpect is web.nonprod.protected on a lab host: n/a unless its
// name is non-production; then the chain of https (http when 443 is
// closed) must ask for credentials or reach a sign-in service.
func webNonprodExpect(host, domain string, h *Host, httpsOK bool) check.Outcome {
	if !webNonprodLabel(host, domain) {
		return check.NA
	}
	scheme := "https"
	if h.Web.NoHTTPS {
		scheme = "http"
	} else if !httpsOK {
		return check.Unknown
	}
	hops, next, end := webWalk(h, scheme+"://"+host+"/", httpsOK)
	for _, r := range hops {
		switch {
		case r.StatusCode == 401 || r.StatusCode == 403:
			return check.Pass
		case r.StatusCode >= 200 && r.StatusCode < 300:
			return check.Fail
		case r.StatusCode < 301 || r.StatusCode > 308:
			return check.Warn
		}
	}
	if next != nil && end == "left" {
		n := strings.ToLower(next.Hostname())
		if webLoginHost(n) || !webNonprodLabel(n, domain) {
			return check.Pass
		}
	}
	return check.Warn
}

// webSiteExpect states the site ids of a served host, from what the
// transport ids found (w's web.https.available).
func webSiteExpect(w map[string]check.Outcome, host, domain string, h *Host) {
	avail := w[webcheck.HTTPSAvailable]
	w[webcheck.HSTSPreload] = webPreloadExpect(host, domain, h, avail)
	w[webcheck.RedirectScope] = webRedirectExpect(host, domain, h, avail == check.Pass)
	w[webcheck.NonprodProtected] = webNonprodExpect(host, domain, h, avail == check.Pass)
}

// webLoginHost: a default sign-in service.
func webLoginHost(n string) bool { return webcheck.LoginHost(n, webcheck.DefaultLoginHosts) }
