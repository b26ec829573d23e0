package lab

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
)

// startWeb serves every lab web host: one HTTPS and one HTTP server, fed by
// the service listeners' dispatch, picking the host by the dialled address.
func (l *Lab) startWeb() {
	for i, s := range []service{svcHTTPS, svcHTTP} {
		l.web[i] = newChanListener(l.svc[s].Addr())
		tlsOn := s == svcHTTPS
		l.serve(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
			h := l.hosts[addrOf(a)]
			if h == nil || h.Web == nil {
				http.Error(w, "no such lab host", http.StatusMisdirectedRequest)
				return
			}
			switch {
			case tlsOn && h.Web.HTTPS != nil:
				h.Web.HTTPS.ServeHTTP(w, r)
			case tlsOn:
				goodPage(h.Name).ServeHTTP(w, r)
			case h.Web.HTTP != nil:
				h.Web.HTTP.ServeHTTP(w, r)
			default:
				toHTTPS(h.Name).ServeHTTP(w, r)
			}
		})}, l.web[i])
	}
}

// goodPage is a small page with the security headers a good site sends.
func goodPage(name string) http.Handler {
	body := fmt.Sprintf("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title></head>"+
		"<body><h1>%s</h1><p>A lab host of posture.</p></body></html>\n", html.EscapeString(name), html.EscapeString(name))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		hd.Set("Permissions-Policy", webhdrPermissions)
		if r.URL.Path == "/.well-known/security.txt" {
			secTxtGoodFile(w, r) // securitytxt.go: a good RFC 9116 file
			return
		}
		if r.URL.Path != "/" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, body)
	})
}

// toHTTPS redirects to the same path on https://name.
func toHTTPS(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+name+r.URL.EscapedPath(), http.StatusMovedPermanently)
	})
}

// Redirect answers every request with a redirect to url (302).
func Redirect(url string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, url, http.StatusFound)
	})
}

// outsideHost is a counting listener behind an address outside the scope:
// any connection that reaches it is a scope-guard failure.
type outsideHost struct {
	ln net.Listener
	n  atomic.Int64
}

func (o *outsideHost) Addr() net.Addr { return o.ln.Addr() }

// startOutside makes the outside addresses: each a listener on 127.0.0.1
// (any port dialled maps to it) that counts connections and answers HTTP.
func (l *Lab) startOutside() error {
	for _, s := range []string{OutsideIP, MetadataIP} {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("lab: listen outside %s: %w", s, err)
		}
		o := &outsideHost{ln: ln}
		l.outside[netip.MustParseAddr(s)] = o
		msg := "outside the scope: " + s + "\n"
		l.serve(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, msg)
		})}, countingListener{ln, &o.n})
	}
	// The CA's CRL host: outside the estate too, but CA infrastructure
	// that the scanner may reach (as a configured service).
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("lab: listen CRL host: %w", err)
	}
	o := &outsideHost{ln: ln}
	l.outside[netip.MustParseAddr(CRLIP)] = o
	lists := map[string][]byte{"/lab.crl": l.pki.crl, "/root.crl": l.pki.rootCRL}
	l.serve(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := lists[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(b)
	})}, countingListener{ln, &o.n})
	return nil
}
