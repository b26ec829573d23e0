package tlscheck

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// analysis is what Evaluate makes of one endpoint's DER: the served
// certificates parsed, and the path a client builds from them to the
// policy's trust anchors.
type analysis struct {
	host  string
	at    time.Time // the collection time
	certs []*x509.Certificate
	// chain is the verified path, leaf to anchor; nil when none verifies.
	chain []*x509.Certificate
	// checkedAt is set when the path was verified at another time than at
	// (a certificate out of date), so that dates are judged once, by
	// tls.cert.expiry.
	checkedAt time.Time
	problem   string // why no path verifies: see chainProblem
	detail    string
	inOrder   bool // each served certificate is issued by the next one
	ep        Endpoint
}

// analyse parses the served DER and builds the chain against roots (nil:
// the system roots) at the collection time. A certificate that no longer
// parses (stored evidence from another build) is an error.
func analyse(ep Endpoint, host string, roots *x509.CertPool, at time.Time) (*analysis, error) {
	a := &analysis{host: host, at: at, ep: ep, inOrder: true}
	for i, der := range ep.Certs {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate #%d does not parse: %w", i, err)
		}
		a.certs = append(a.certs, c)
	}
	if len(a.certs) == 0 {
		return nil, errors.New("no certificate was recorded")
	}
	for i := 0; i+1 < len(a.certs); i++ {
		if !bytes.Equal(a.certs[i].RawIssuer, a.certs[i+1].RawSubject) {
			a.inOrder = false
		}
	}
	chains, checkedAt, err := buildChains(a.certs, roots, at, x509.ExtKeyUsageServerAuth)
	if err == nil {
		a.chain, a.checkedAt = chains[0], checkedAt
		return a, nil
	}
	a.problem, a.detail = a.chainProblem(err, roots, at)
	return a, nil
}

// buildChains verifies certs[0] with the others as intermediates, for usage
// (ExtKeyUsageAny: any). Validity dates are judged by tls.cert.expiry, so
// an out-of-date path is verified again at a time inside the leaf's
// validity, then inside every served certificate's; checkedAt is that time
// (zero when at itself worked).
func buildChains(certs []*x509.Certificate, roots *x509.CertPool, at time.Time, usage x509.ExtKeyUsage) ([][]*x509.Certificate, time.Time, error) {
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{usage}}
	chains, err := certs[0].Verify(opts)
	if !outOfDate(err) {
		return chains, time.Time{}, err
	}
	var tries []time.Time
	if t, ok := insideValidity(certs[:1]); ok {
		tries = append(tries, t)
	}
	if t, ok := insideValidity(certs); ok {
		tries = append(tries, t)
	}
	for _, t := range tries {
		opts.CurrentTime = t
		c, e := certs[0].Verify(opts)
		if e == nil {
			return c, t, nil
		}
		if !outOfDate(e) {
			err = e
		}
	}
	return nil, time.Time{}, err
}

func outOfDate(err error) bool {
	var inv x509.CertificateInvalidError
	return errors.As(err, &inv) && inv.Reason == x509.Expired
}

// Chain problems.
const (
	problemSelfSigned   = "self-signed"
	problemUntrusted    = "untrusted-root"
	problemMissing      = "missing-intermediate"
	problemInsecure     = "insecure-signature"
	problemNotForServer = "not-server-auth"
	problemInvalid      = "invalid"
)

// chainProblem names why no path verifies, from the verifier's typed
// errors (never its wording).
func (a *analysis) chainProblem(err error, roots *x509.CertPool, at time.Time) (string, string) {
	certs := a.certs
	var ua x509.UnknownAuthorityError
	var ia x509.InsecureAlgorithmError
	var inv x509.CertificateInvalidError
	last := certs[len(certs)-1]
	lastSelf := bytes.Equal(last.RawSubject, last.RawIssuer)
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
		return problemNotForServer, a.usageDetail(roots, at)
	case errors.As(err, &ia):
		return problemInsecure, err.Error()
	case errors.As(err, &ua) && insecureLink(certs) != "":
		// Verify rejects a SHA-1 (or MD5) signature between served
		// certificates as an unknown authority, keeping the reason to
		// itself: say it, rather than blame a missing intermediate.
		return problemInsecure, insecureLink(certs)
	case errors.As(err, &ua) && len(certs) == 1 && lastSelf:
		return problemSelfSigned, err.Error()
	case errors.As(err, &ua) && lastSelf:
		return problemUntrusted, err.Error()
	case errors.As(err, &ua):
		return problemMissing, fmt.Sprintf("the issuer of %q (%q) was not served and is not a trusted root: %v",
			last.Subject.String(), last.Issuer.String(), err)
	}
	return problemInvalid, err.Error()
}

// usageDetail says which certificate keeps the path from serving TLS
// servers: the leaf's own extended key usage, or an intermediate's.
func (a *analysis) usageDetail(roots *x509.CertPool, at time.Time) string {
	leaf := a.certs[0]
	if !allowsServerAuth(leaf) {
		return fmt.Sprintf("the certificate's extended key usage (%s) does not include server authentication: it is not for a TLS server",
			ekuNames(leaf))
	}
	if chains, _, err := buildChains(a.certs, roots, at, x509.ExtKeyUsageAny); err == nil {
		for _, c := range chains[0][1:] {
			if !allowsServerAuth(c) {
				return fmt.Sprintf("the issuer %q restricts its extended key usage to %s, without server authentication", c.Subject.String(), ekuNames(c))
			}
		}
	}
	return "no certificate path allows server authentication"
}

// allowsServerAuth: no EKU at all, serverAuth, or any.
func allowsServerAuth(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
}

var ekuName = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny: "any", x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth",
	x509.ExtKeyUsageCodeSigning: "codeSigning", x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping: "timeStamping", x509.ExtKeyUsageOCSPSigning: "OCSPSigning",
}

func ekuNames(c *x509.Certificate) string {
	var out []string
	for _, u := range c.ExtKeyUsage {
		if n, ok := ekuName[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("usage %d", u))
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		out = append(out, oid.String())
	}
	return strings.Join(out, ", ")
}

// insecureLink describes the first served certificate whose signature by
// the next served one (its issuer) uses an algorithm verifiers reject, or
// returns "".
func insecureLink(certs []*x509.Certificate) string {
	for i := 0; i+1 < len(certs); i++ {
		if !bytes.Equal(certs[i].RawIssuer, certs[i+1].RawSubject) {
			continue
		}
		var ia x509.InsecureAlgorithmError
		if err := certs[i].CheckSignatureFrom(certs[i+1]); errors.As(err, &ia) {
			return fmt.Sprintf("%q is signed by %q with %v", certs[i].Subject.String(), certs[i+1].Subject.String(), certs[i].SignatureAlgorithm)
		}
	}
	return ""
}

// insideValidity is a time inside every certificate's validity window,
// if there is one.
func insideValidity(certs []*x509.Certificate) (time.Time, bool) {
	lo, hi := certs[0].NotBefore, certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotBefore.After(lo) {
			lo = c.NotBefore
		}
		if c.NotAfter.Before(hi) {
			hi = c.NotAfter
		}
	}
	if !lo.Before(hi) {
		return time.Time{}, false
	}
	return lo.Add(hi.Sub(lo) / 2).UTC(), true
}

// path are the certificates whose dates, keys and signatures count: the
// verified path without its anchor (clients use their own copy of a
// root; a leaf that is itself an anchor counts). Without a verified path,
// the served certificates that are not self-signed roots.
func (a *analysis) path() []*x509.Certificate {
	if n := len(a.chain); n > 1 {
		return a.chain[:n-1]
	} else if n == 1 {
		return a.chain
	}
	out := []*x509.Certificate{a.certs[0]}
	for _, c := range a.certs[1:] {
		if !(c.IsCA && selfSigned(c)) {
			out = append(out, c)
		}
	}
	return out
}

// offPath are the served certificates a client does not use (a cross-
// signed root, a stray certificate): noted, never judged.
func (a *analysis) offPath() []*x509.Certificate {
	if a.chain == nil {
		return nil
	}
	var out []*x509.Certificate
	for _, c := range a.certs[1:] {
		if !slices.ContainsFunc(a.chain, c.Equal) {
			out = append(out, c)
		}
	}
	return out
}

// issuerOf is the certificate that issued c: the next one on the
// verified path. Without a path, a served certificate that names itself
// as c's issuer (by name and key id): the chain rule already fails, and
// the issuer's key still tells a genuine staple or CRL from a forged one.
func (a *analysis) issuerOf(c *x509.Certificate) *x509.Certificate {
	if a.chain != nil {
		for i := 0; i+1 < len(a.chain); i++ {
			if a.chain[i].Equal(c) {
				return a.chain[i+1]
			}
		}
		return nil
	}
	for _, p := range a.certs {
		if p.Equal(c) || !bytes.Equal(c.RawIssuer, p.RawSubject) {
			continue
		}
		if len(c.AuthorityKeyId) > 0 && len(p.SubjectKeyId) > 0 && !bytes.Equal(c.AuthorityKeyId, p.SubjectKeyId) {
			continue
		}
		return p
	}
	return nil
}

// what names the i-th certificate of the path for a message.
func what(i int, c *x509.Certificate) string {
	if i == 0 {
		return "the certificate"
	}
	return fmt.Sprintf("the intermediate %q", c.Subject.String())
}
