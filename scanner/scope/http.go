package scope

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"
)

// MaxRedirects bounds redirect chains (hstspreload allows 3; we follow a
// little further to report what is there).
const MaxRedirects = 5

// HTTPClient returns a client whose every connection, redirects included,
// goes through the guard. A redirect to a host outside the scope is not
// followed: the client returns the redirect response itself, so a check can
// report where it pointed without connecting there.
func (g *Guard) HTTPClient(roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		DialContext:            g.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10},
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  15 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		DisableCompression:     true, // no decompression bombs; checks read bounded bodies
		Proxy:                  nil,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= MaxRedirects {
				return fmt.Errorf("scope: stopped after %d redirects", MaxRedirects)
			}
			if g.InScope == nil || !g.InScope(req.URL.Hostname()) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}
