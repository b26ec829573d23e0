package lab

import (
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webcheck"
)

// securityTxtFamily: the lab of web.securitytxt (web.securitytxt.present,
// web.securitytxt.valid; RFC 9116). Every lab web host's default page
// (goodPage) serves a good security.txt, so hosts pass unless their case
// says otherwise; a host whose own HTTPS handler answers every path with
// a page (webPage) serves HTML there: a soft 404.
//
// Its cases are www hosts that serve the file well or badly: missing, an
// HTML page, the wrong Content-Type, expired, expiring in more than a
// year, two Expires, no Contact, an http: Contact, no Policy, a Canonical
// elsewhere, signed, CRLF, over 32 KiB, only at the legacy path, and
// redirects to the central Cabinet Office file (a pass, never fetched),
// to a file outside the scope (web.outside.example: a fail, never
// fetched, Lab.Conns(OutsideIP) stays 0) and to another path of the host.
// Each states its truth itself; Complete derives the truth of every other
// judged host by asking its handlers as the scanner would (secTxtExpectHost).
var securityTxtFamily = Family{Name: "securitytxt", Cases: securityTxtCases, Complete: completeSecurityTxt}

// secTxtFile is the lab's security.txt for the host that r asked, its
// Expires 180 days after the request (so that it is current whenever the
// lab runs), with edit applied to its lines.
func secTxtFile(r *http.Request, edit func(host string, lines []string) []string) string {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	lines := []string{
		"# posture lab: " + host,
		"Contact: mailto:security@" + host,
		"Expires: " + time.Now().UTC().Add(180*24*time.Hour).Format(time.RFC3339),
		"Policy: https://" + host + "/vulnerability-disclosure",
		"Canonical: https://" + host + r.URL.EscapedPath(),
		"Preferred-Languages: en, cy",
	}
	if edit != nil {
		lines = edit(host, lines)
	}
	return strings.Join(lines, "\n") + "\n"
}

// secTxtGoodFile serves the lab's good file (goodPage's).
func secTxtGoodFile(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, secTxtFile(r, nil))
}

// secTxtServe serves ct and the edited file at the well-known path, and
// goodPage everywhere else.
func secTxtServe(name, ct string, edit func(host string, lines []string) []string) http.Handler {
	page := goodPage(name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != webcheck.SecurityTxtPath {
			page.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", ct)
		fmt.Fprint(w, secTxtFile(r, edit))
	})
}

// secTxtAt serves h at the well-known path and goodPage elsewhere.
func secTxtAt(name string, h http.Handler) http.Handler {
	page := goodPage(name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == webcheck.SecurityTxtPath {
			h.ServeHTTP(w, r)
			return
		}
		page.ServeHTTP(w, r)
	})
}

// secTxtReplace replaces the line that starts with prefix (or drops it
// when with is empty).
func secTxtReplace(prefix string, with ...string) func(string, []string) []string {
	return func(_ string, lines []string) []string {
		var out []string
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				out = append(out, with...)
				continue
			}
			out = append(out, l)
		}
		return out
	}
}

func secTxtExpires(d time.Duration) string {
	return "Expires: " + time.Now().UTC().Add(d).Format(time.RFC3339)
}

// secTxtCentralURL is the default central file (web policy
// securitytxt_central); secTxtOutsideURL a file outside the scope.
const (
	secTxtCentralURL = "https://vdp.cabinetoffice.gov.uk/.well-known/security.txt"
	secTxtOutsideURL = "https://" + OutsideName + "/.well-known/security.txt"
)

func securityTxtCases() []Case {
	P, F, W, N := check.Pass, check.Fail, check.Warn, check.NA
	c := func(name string, present, valid check.Outcome, https func(www string) http.Handler) Case {
		return Case{Name: name, Family: "securitytxt", Build: func(d string) Domain {
			www := "www." + d
			return Domain{Name: d, Hosts: []Host{{Name: www, Web: &WebSpec{HTTPS: https(www)}}},
				Expect: []Expect{
					{Kind: check.KindHost, Name: www, CheckID: webcheck.SecurityTxtPresent, Outcome: present},
					{Kind: check.KindHost, Name: www, CheckID: webcheck.SecurityTxtValid, Outcome: valid},
				}}
		}}
	}
	plain := "text/plain; charset=utf-8"
	edit := func(ct string, e func(string, []string) []string) func(string) http.Handler {
		return func(www string) http.Handler { return secTxtServe(www, ct, e) }
	}
	return []Case{
		c("sectxt-good", P, P, edit(plain, nil)),
		c("sectxt-missing", F, N, func(www string) http.Handler { return secTxtAt(www, http.NotFoundHandler()) }),
		c("sectxt-soft-404", F, N, func(www string) http.Handler { return secTxtAt(www, webPage(webHSTS)) }),
		c("sectxt-content-type", F, N, edit("application/octet-stream", nil)),
		c("sectxt-expired", P, F, edit(plain, secTxtReplace("Expires:", secTxtExpires(-48*time.Hour)))),
		c("sectxt-far-expiry", P, W, edit(plain, secTxtReplace("Expires:", secTxtExpires(400*24*time.Hour)))),
		c("sectxt-two-expires", P, F, edit(plain, secTxtReplace("Expires:", secTxtExpires(90*24*time.Hour), secTxtExpires(100*24*time.Hour)))),
		c("sectxt-no-contact", P, F, edit(plain, secTxtReplace("Contact:"))),
		c("sectxt-http-contact", P, F, edit(plain, func(host string, lines []string) []string {
			return secTxtReplace("Contact:", "Contact: http://"+host+"/contact")(host, lines)
		})),
		c("sectxt-no-policy", P, W, edit(plain, secTxtReplace("Policy:"))),
		c("sectxt-canonical", P, F, edit(plain, secTxtReplace("Canonical:", "Canonical: https://www.example.org/.well-known/security.txt"))),
		c("sectxt-signed", P, P, edit(plain, func(_ string, lines []string) []string {
			// OpenPGP cleartext framing (RFC 4880 §7), a line
			// dash-escaped; the signature is not verified.
			out := []string{"-----BEGIN PGP SIGNED MESSAGE-----", "Hash: SHA256", ""}
			for i, l := range lines {
				if i == 1 {
					l = "- " + l
				}
				out = append(out, l)
			}
			return append(out, "-----BEGIN PGP SIGNATURE-----", "", "iHUEARYIAB0WIQRsYWIgc2lnbmF0dXJlIG5vdCBjaGVja2Vk", "=lab0", "-----END PGP SIGNATURE-----")
		})),
		c("sectxt-crlf", P, P, func(www string) http.Handler {
			return secTxtAt(www, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				fmt.Fprint(w, strings.ReplaceAll(secTxtFile(r, nil), "\n", "\r\n"))
			}))
		}),
		// Over the 32 KiB that RFC 9116 §5.4 lets tools refuse: the file
		// is there (present passes), and it is not read (valid fails).
		c("sectxt-huge", P, F, edit(plain, func(_ string, lines []string) []string {
			return append(lines, slices.Repeat([]string{"# " + strings.Repeat("padding ", 12)}, 400)...)
		})),
		c("sectxt-legacy", F, N, func(www string) http.Handler {
			page := goodPage(www)
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/security.txt" {
					secTxtGoodFile(w, r)
					return
				}
				if r.URL.Path == webcheck.SecurityTxtPath {
					http.NotFound(w, r)
					return
				}
				page.ServeHTTP(w, r)
			})
		}),
		c("sectxt-central", P, N, func(www string) http.Handler { return secTxtAt(www, Redirect(secTxtCentralURL)) }),
		c("sectxt-outside", F, N, func(www string) http.Handler { return secTxtAt(www, Redirect(secTxtOutsideURL)) }),
		c("sectxt-redirect", P, P, func(www string) http.Handler {
			page := goodPage(www)
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case webcheck.SecurityTxtPath:
					http.Redirect(w, r, "https://"+www+"/security/vdp.txt", http.StatusMovedPermanently)
				case "/security/vdp.txt":
					secTxtGoodFile(w, r)
				default:
					page.ServeHTTP(w, r)
				}
			})
		}),
	}
}

// completeSecurityTxt states the two ids on every judged web host of d
// (those another family states host truth for) that its case has not.
func completeSecurityTxt(d *Domain, _ Case, _ Added, _ []Case) {
	stated := func(n string) bool {
		return slices.ContainsFunc(d.Expect, func(e Expect) bool {
			return e.Kind == check.KindHost && e.Name == n && e.CheckID == webcheck.SecurityTxtPresent
		})
	}
	for _, h := range webJudgedHosts(d, stated) {
		present, valid := secTxtExpectHost(h.Name, h.Spec, h.TLS13)
		d.Expect = append(d.Expect,
			Expect{Kind: check.KindHost, Name: h.Name, CheckID: webcheck.SecurityTxtPresent, Outcome: present},
			Expect{Kind: check.KindHost, Name: h.Name, CheckID: webcheck.SecurityTxtValid, Outcome: valid})
	}
}

// secTxtExpecter is a handler that states what the scanner finds on its
// host (hostile.go's hostileHandler).
type secTxtExpecter interface {
	expect() map[string]check.Outcome
}

// secTxtExpectHost derives the two outcomes on host from the lab host
// that serves it, as webExpectHost does for web.https: not a web server
// or no HTTPS (443 refused: web.https.available judges that) is n/a; a
// dead host or a raw handler that stops Go's handshake is unknown;
// otherwise its HTTPS handler is asked for the file, following redirects
// on the same host (a scan of the lab without estate domains, as the
// lab's truth test runs, follows no other), and the answer is judged as
// web.securitytxt judges it, the file's fields by webcheck's parser.
func secTxtExpectHost(host string, h *Host, tls13 bool) (present, valid check.Outcome) {
	switch {
	case h == nil || h.Web == nil || h.Web.NoHTTPS:
		return check.NA, check.NA
	case h.Dead, h.Web.Raw != nil && !tls13, h.Web.Cert.BadExtension:
		return check.Unknown, check.Unknown
	}
	hh := h.Web.HTTPS
	if hh == nil {
		hh = goodPage(h.Name)
	}
	// A handler that states what the scanner finds on its host
	// (hostile.go's) and never lets a response head through there (drip:
	// web.https.available unknown) leaves the file unknown too.
	if x, ok := hh.(secTxtExpecter); ok && x.expect()[webcheck.HTTPSAvailable] == check.Unknown {
		return check.Unknown, check.Unknown
	}
	u := "https://" + host + webcheck.SecurityTxtPath
	first := u
	for range 10 {
		r := webAsk(hh, u, true)
		if r.StatusCode == 301 || r.StatusCode == 302 || r.StatusCode == 303 || r.StatusCode == 307 || r.StatusCode == 308 {
			loc, err := r.Location()
			switch {
			case err != nil || loc == nil:
				return check.Fail, check.NA
			case loc.String() == secTxtCentralURL:
				return check.Pass, check.NA
			case loc.Scheme != "https" || loc.Hostname() != host:
				return check.Fail, check.NA // out of scope, or plain HTTP
			}
			u = loc.String()
			continue
		}
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if r.StatusCode != 200 || err != nil || mt != "text/plain" {
			return check.Fail, check.NA
		}
		present = check.Pass
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			present = check.Fail
		}
		body, err := io.ReadAll(r.Body)
		if err != nil || len(body) > webcheck.SecurityTxtMaxBytes {
			return present, check.Fail
		}
		retrieved := []string{first}
		if u != first {
			retrieved = append(retrieved, u)
		}
		valid = check.Pass
		for _, p := range webcheck.ParseSecurityTxt(body).Check(retrieved, time.Now()) {
			if p.Level == webcheck.SecTxtError {
				return present, check.Fail
			}
			valid = check.Warn
		}
		return present, valid
	}
	return check.Fail, check.NA // a loop
}
