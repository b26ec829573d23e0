package lab

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webcheck"
)

// webhdrFamily: the lab of the security header ids, web.software.outdated
// and web.cookies (webcheck.HeaderIDs, judged by web.https). Each case is a
// www host whose page at / sends the good page's headers with one thing
// changed, and states its truth explicitly (webhdrCases: ids not named
// pass; web.software.outdated n/a).
//
// Its Complete states the family's ids on every other host a scan judges,
// without the product's parsers: web.https.available as the web family
// states it (webExpectHost: unknown → unknown, refused or no web server →
// n/a); otherwise the lab walks the host's own handlers from https://<host>/
// as the fetcher does (redirects on the domain's hosts followed; out of
// scope, a loop or ten hops: n/a; a host that cannot answer: unknown) and
// judges the final page's headers by a small table of what the lab's
// handlers send (webhdrJudge): a header absent, or goodPage's value; no
// version named (web.software.outdated n/a). Any other value has no truth
// here and shows as such in the truth tests: a handler that sends one
// must be a case of this family, or be added to the table. Cookies: no lab handler but this family's sets one, so every
// other host passes web.cookies.
var webhdrFamily = Family{Name: "webhdr", Cases: webhdrCases, Complete: completeWebhdr}

// webhdrPermissions is goodPage's Permissions-Policy.
const webhdrPermissions = "camera=(), geolocation=(), microphone=()"

// webhdrGood are goodPage's security headers: the values webhdrJudge
// knows to pass.
var webhdrGood = [][2]string{
	{"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
	{"Permissions-Policy", webhdrPermissions},
}

// webhdrPage is www.<d>'s page at /: the good page's headers, with each
// header named in set replaced by set's values for it ("" deletes it),
// and head in the page's <head>; other paths are goodPage's (its
// security.txt, 404s).
func webhdrPage(host, head string, set ...string) http.Handler {
	good := goodPage(host)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			good.ServeHTTP(w, r)
			return
		}
		hd := w.Header()
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Strict-Transport-Security", webHSTS)
		for _, kv := range webhdrGood {
			hd.Set(kv[0], kv[1])
		}
		replaced := map[string]bool{}
		for i := 0; i+1 < len(set); i += 2 {
			name := http.CanonicalHeaderKey(set[i])
			if !replaced[name] {
				hd.Del(name)
				replaced[name] = true
			}
			if set[i+1] != "" {
				hd.Add(name, set[i+1])
			}
		}
		fmt.Fprintf(w, "<!doctype html><html><head><title>lab</title>%s</head><body><p>A lab host of posture.</p></body></html>\n", head)
	})
}

// webhdrCookieRedirect is port 80 of a host that sets a cookie, without
// Secure, on its redirect to https.
func webhdrCookieRedirect(host string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "lab_tracking=1; Max-Age=3600; Path=/")
		http.Redirect(w, r, "https://"+host+r.URL.EscapedPath(), http.StatusMovedPermanently)
	})
}

// webhdrCases: one header or cookie changed on a good page each.
func webhdrCases() []Case {
	P, W, F := check.Pass, check.Warn, check.Fail
	type want = map[string]check.Outcome
	c := func(name string, set []string, w want) Case {
		return webhdrCase(name, "", set, nil, w)
	}
	N := check.NA
	return []Case{
		c("webhdr-csp-missing", []string{"Content-Security-Policy", ""}, want{webcheck.HdrCSP: F}),
		c("webhdr-csp-report-only", []string{"Content-Security-Policy", "", "Content-Security-Policy-Report-Only", "default-src 'self'"},
			want{webcheck.HdrCSP: F}),
		// A policy in a <meta http-equiv> element is enforced too.
		webhdrCase("webhdr-csp-meta", `<meta http-equiv="Content-Security-Policy" content="default-src 'self'">`,
			[]string{"Content-Security-Policy", ""}, nil, nil),
		c("webhdr-csp-nonce", []string{"Content-Security-Policy", "script-src 'self' 'unsafe-inline' 'nonce-bGFiLW5vbmNl'; frame-ancestors 'none'"}, nil),
		c("webhdr-csp-unsafe-inline", []string{"Content-Security-Policy", "default-src 'self' 'unsafe-inline'; frame-ancestors 'none'"},
			want{webcheck.HdrCSP: W}),
		c("webhdr-csp-unsafe-eval", []string{"Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-eval'"},
			want{webcheck.HdrCSP: W}),
		// Every policy applies: the second header's strict one wins.
		c("webhdr-csp-two-headers", []string{"Content-Security-Policy", "script-src * 'unsafe-inline' 'unsafe-eval'",
			"Content-Security-Policy", "default-src 'self'; frame-ancestors 'self'"}, nil),
		// frame-ancestors alone refuses framing (browsers prefer it to XFO).
		c("webhdr-frame-ancestors", []string{"X-Frame-Options", "", "Content-Security-Policy", "default-src 'self'; frame-ancestors 'self'"}, nil),
		// ALLOW-FROM is ignored by browsers; no frame-ancestors either.
		c("webhdr-xfo-allow-from", []string{"X-Frame-Options", "ALLOW-FROM https://www.nhs.uk/", "Content-Security-Policy", "default-src 'self'"},
			want{webcheck.HdrFraming: F}),
		c("webhdr-xcto-wrong", []string{"X-Content-Type-Options", "nosnif"}, want{webcheck.HdrXCTO: F}),
		c("webhdr-referrer-unsafe", []string{"Referrer-Policy", "unsafe-url"}, want{webcheck.HdrReferrer: F}),
		c("webhdr-permissions-missing", []string{"Permissions-Policy", ""}, want{webcheck.HdrPermissions: F}),
		// Feature-Policy syntax is not a structured-field dictionary:
		// browsers ignore the header.
		c("webhdr-permissions-invalid", []string{"Permissions-Policy", "geolocation 'none'; camera 'none'"}, want{webcheck.HdrPermissions: F}),
		// nginx 1.25 ended on 2024-05-29, PHP 8.1 on 2025-12-31; Apache
		// 2.4 is supported.
		c("webhdr-server-version", []string{"Server", "nginx/1.25.3"}, want{webcheck.HdrInfoLeak: F, webcheck.SoftwareOutdated: W}),
		c("webhdr-powered-by", []string{"X-Powered-By", "PHP/8.1.2"}, want{webcheck.HdrInfoLeak: F, webcheck.SoftwareOutdated: W}),
		c("webhdr-software-current", []string{"Server", "Apache/2.4.62 (Debian)"}, want{webcheck.HdrInfoLeak: F, webcheck.SoftwareOutdated: P}),
		webhdrCase("webhdr-generator-drupal7", `<meta name="Generator" content="Drupal 7 (https://www.drupal.org)">`, nil, nil,
			want{webcheck.SoftwareOutdated: F}),
		// Script in a header value is recorded as sent and judged.
		c("webhdr-script-header", []string{"X-Powered-By", "<script>alert(1)</script>"}, want{webcheck.HdrInfoLeak: F, webcheck.SoftwareOutdated: N}),
		c("webhdr-hpkp", []string{"Public-Key-Pins", `pin-sha256="d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="; max-age=5184000`},
			want{webcheck.HdrDeprecated: F}),
		c("webhdr-xss-protection", []string{"X-XSS-Protection", "1; mode=block"}, want{webcheck.HdrDeprecated: W}),
		c("webhdr-cookie-good", []string{"Set-Cookie", "__Host-session=abc; Secure; HttpOnly; SameSite=Lax; Path=/"}, nil),
		c("webhdr-cookie-insecure", []string{"Set-Cookie", "lab_theme=dark; Max-Age=86400; SameSite=Lax"}, want{webcheck.Cookies: F}),
		c("webhdr-cookie-no-httponly", []string{"Set-Cookie", "sessionid=abc; Secure; SameSite=Lax"}, want{webcheck.Cookies: F}),
		c("webhdr-cookie-samesite-none", []string{"Set-Cookie", "sessionid=abc; Secure; HttpOnly; SameSite=None"}, want{webcheck.Cookies: F}),
		c("webhdr-cookie-no-samesite", []string{"Set-Cookie", "sessionid=abc; Secure; HttpOnly"}, want{webcheck.Cookies: W}),
		webhdrCase("webhdr-cookie-redirect", "", nil, webhdrCookieRedirect, want{webcheck.Cookies: F}),
	}
}

// webhdrCase is a www host serving webhdrPage(head, set) on 443 and
// http80 (nil: the usual redirect) on 80, and its truth: the ids in w,
// the rest pass (web.software.outdated: n/a, no version named).
func webhdrCase(name, head string, set []string, http80 func(host string) http.Handler, w map[string]check.Outcome) Case {
	return Case{Name: name, Family: "webhdr", Build: func(d string) Domain {
		www := "www." + d
		spec := WebSpec{HTTPS: webhdrPage(www, head, set...)}
		if http80 != nil {
			spec.HTTP = http80(www)
		}
		dom := Domain{Name: d, Hosts: []Host{{Name: www, Web: &spec}}}
		for _, id := range webcheck.HeaderIDs {
			o, ok := w[id]
			switch {
			case ok:
			case id == webcheck.SoftwareOutdated:
				o = check.NA
			default:
				o = check.Pass
			}
			dom.Expect = append(dom.Expect, Expect{Kind: check.KindHost, Name: www, CheckID: id, Outcome: o})
		}
		return dom
	}}
}

// completeWebhdr states the family's ids on every host of d a scan
// judges that a case has not stated them for.
func completeWebhdr(d *Domain, _ Case, _ Added, _ []Case) {
	stated := func(n string) bool {
		return slices.ContainsFunc(d.Expect, func(e Expect) bool {
			return e.Kind == check.KindHost && e.Name == n && e.CheckID == webcheck.HdrCSP
		})
	}
	for _, h := range webJudgedHosts(d, stated) {
		avail := webExpectHost(h.Name, d.Name, h.Spec, h.TLS13)[webcheck.HTTPSAvailable]
		for id, o := range webhdrExpectHost(d, h.Name, h.Spec, avail, h.TLS13) {
			d.Expect = append(d.Expect, Expect{Kind: check.KindHost, Name: h.Name, CheckID: id, Outcome: o})
		}
	}
}

// webhdrExpectHost derives the family's ids on host, given what
// web.https.available finds there.
func webhdrExpectHost(d *Domain, host string, h *Host, avail check.Outcome, tls13 bool) map[string]check.Outcome {
	w := map[string]check.Outcome{}
	set := func(o check.Outcome, ids ...string) {
		for _, id := range ids {
			w[id] = o
		}
	}
	switch avail {
	case check.Pass:
	case check.Unknown:
		set(check.Unknown, webcheck.HeaderIDs...)
		return w
	default:
		set(check.NA, webcheck.HeaderIDs...)
		return w
	}
	hdrIDs := webcheck.HeaderIDs[:len(webcheck.HeaderIDs)-1]
	resps, end := webhdrWalk(d, host, "https://"+host+"/", tls13)
	switch end {
	case "final":
		for id, o := range webhdrJudge(resps[len(resps)-1]) {
			w[id] = o
		}
	case "unknown":
		set(check.Unknown, hdrIDs...)
	default:
		set(check.NA, hdrIDs...)
	}
	if h != nil && h.Web != nil && !h.Web.NoHTTP {
		more, _ := webhdrWalk(d, host, "http://"+host+"/", tls13)
		resps = append(resps, more...)
	}
	w[webcheck.Cookies] = check.Pass
	for _, r := range resps {
		if vs := r.Header.Values("Set-Cookie"); len(vs) > 0 {
			w[webcheck.Cookies] = webhdrUnstated(webcheck.Cookies, "Set-Cookie", vs)
		}
	}
	return w
}

// webhdrWalk asks the lab's handlers for start and follows redirects as
// the fetcher does: on the domain's own hosts, ten requests at most, a
// URL asked twice ends the walk. end is "final" (the last response is a
// page), "unknown" (a hop the scan cannot reach: no lab host there, a
// closed port, a dead or raw host) or "na" (out of scope, a loop, ten
// hops, another scheme: no page of this host).
func webhdrWalk(d *Domain, host, start string, tls13 bool) (resps []*http.Response, end string) {
	seen := map[string]bool{}
	cur := start
	for range 10 {
		if seen[cur] {
			return resps, "na"
		}
		seen[cur] = true
		u, err := url.Parse(cur)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return resps, "na"
		}
		hn := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		if hn != host && hn != d.Name && !strings.HasSuffix(hn, "."+d.Name) {
			return resps, "na"
		}
		h := webHostServing(d, hn)
		if h == nil || h.Web == nil || h.Dead {
			return resps, "unknown"
		}
		var hh http.Handler
		switch ws := h.Web; {
		case u.Scheme == "https" && (ws.NoHTTPS || (ws.Raw != nil && !tls13) || ws.Cert.BadExtension):
			return resps, "unknown"
		case u.Scheme == "https" && ws.HTTPS != nil:
			hh = ws.HTTPS
		case u.Scheme == "https":
			hh = goodPage(h.Name)
		case ws.NoHTTP:
			return resps, "unknown"
		case ws.HTTP != nil:
			hh = ws.HTTP
		default:
			hh = toHTTPS(h.Name)
		}
		r := webAsk(hh, cur, u.Scheme == "https")
		resps = append(resps, r)
		loc, err := r.Location()
		switch r.StatusCode {
		case 301, 302, 303, 307, 308:
			if err != nil {
				return resps, "final"
			}
			loc.Fragment = ""
			cur = loc.String()
		default:
			return resps, "final"
		}
	}
	return resps, "na"
}

// webhdrUnstated is the truth the lab cannot state: it names the header
// so that the truth tests say which handler needs a case or a table row.
func webhdrUnstated(id, name string, values []string) check.Outcome {
	return check.Outcome(fmt.Sprintf("lab has no truth for %s with %s %q", id, name, values))
}

// webhdrJudge is the lab's own judgement of a page's headers, without
// the product's parsers: a header absent, or the good page's value, has
// a known verdict (docs/checks.md §1.3); anything else is unstated.
func webhdrJudge(r *http.Response) map[string]check.Outcome {
	hd := r.Header
	good := map[string]string{}
	for _, kv := range webhdrGood {
		good[kv[0]] = kv[1]
	}
	isGood := func(name string) bool {
		vs := hd.Values(name)
		return len(vs) == 1 && vs[0] == good[name]
	}
	absent := func(names ...string) bool {
		for _, n := range names {
			if len(hd.Values(n)) > 0 {
				return false
			}
		}
		return true
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	lowerBody := strings.ToLower(string(body))
	w := map[string]check.Outcome{}
	simple := func(id, name string) {
		switch {
		case absent(name):
			w[id] = check.Fail
		case isGood(name):
			w[id] = check.Pass
		default:
			w[id] = webhdrUnstated(id, name, hd.Values(name))
		}
	}
	simple(webcheck.HdrCSP, "Content-Security-Policy")
	if strings.Contains(lowerBody, "http-equiv") {
		w[webcheck.HdrCSP] = webhdrUnstated(webcheck.HdrCSP, "a <meta http-equiv> in the page", nil)
	}
	simple(webcheck.HdrXCTO, "X-Content-Type-Options")
	simple(webcheck.HdrReferrer, "Referrer-Policy")
	simple(webcheck.HdrPermissions, "Permissions-Policy")
	switch {
	case isGood("Content-Security-Policy"): // frame-ancestors 'none'
		w[webcheck.HdrFraming] = check.Pass
	case absent("Content-Security-Policy", "X-Frame-Options"):
		w[webcheck.HdrFraming] = check.Fail
	case absent("Content-Security-Policy") && isGood("X-Frame-Options"):
		w[webcheck.HdrFraming] = check.Pass
	default:
		w[webcheck.HdrFraming] = webhdrUnstated(webcheck.HdrFraming, "Content-Security-Policy and X-Frame-Options",
			append(hd.Values("Content-Security-Policy"), hd.Values("X-Frame-Options")...))
	}
	switch {
	case !absent("X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version"):
		w[webcheck.HdrInfoLeak] = check.Fail
	case absent("Server"):
		w[webcheck.HdrInfoLeak] = check.Pass
	default:
		w[webcheck.HdrInfoLeak] = webhdrUnstated(webcheck.HdrInfoLeak, "Server", hd.Values("Server"))
	}
	if absent("Public-Key-Pins", "Public-Key-Pins-Report-Only", "Expect-CT", "X-XSS-Protection") {
		w[webcheck.HdrDeprecated] = check.Pass
	} else {
		w[webcheck.HdrDeprecated] = webhdrUnstated(webcheck.HdrDeprecated, "deprecated headers", nil)
	}
	// web.software.outdated: no product/version token ("/" then a digit)
	// in Server or X-Powered-By, no X-AspNet-Version and no generator in
	// the page: nothing to judge.
	w[webcheck.SoftwareOutdated] = check.NA
	versioned := slices.ContainsFunc(append(hd.Values("Server"), hd.Values("X-Powered-By")...), func(v string) bool {
		for i := 0; i+1 < len(v); i++ {
			if v[i] == '/' && v[i+1] >= '0' && v[i+1] <= '9' {
				return true
			}
		}
		return false
	})
	if versioned || !absent("X-AspNet-Version") || strings.Contains(lowerBody, "generator") {
		w[webcheck.SoftwareOutdated] = webhdrUnstated(webcheck.SoftwareOutdated, "Server, X-Powered-By, X-AspNet-Version or a generator", hd.Values("Server"))
	}
	return w
}
