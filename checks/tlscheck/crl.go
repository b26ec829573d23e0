package tlscheck

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/crl"
)

// CRLStatus is what a certificate's CRL said: the facts only, judged by
// Evaluate (currency against the collection time).
type CRLStatus struct {
	Subject    string    `json:"subject,omitempty"` // of an intermediate
	URL        string    `json:"url"`
	Size       int       `json:"size,omitempty"` // bytes fetched
	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	// Listed: the certificate's serial is on the list, revoked at RevokedAt.
	Listed    bool      `json:"listed,omitempty"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// Signature is "ok", "bad", or "no-issuer" (the issuer's certificate
	// was neither served nor found when building the chain).
	Signature      string `json:"signature,omitempty"`
	SignatureError string `json:"signature_error,omitempty"`
	// Error is why the CRL could not be read; ErrorClass one of timeout,
	// unreachable, too-large, malformed, unsupported, not-fetched.
	Error      string `json:"error,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`
}

// CRLNotFetched is the class of a CRL the environment gave no client for.
const CRLNotFetched = "not-fetched"

// CheckCRL records what the CRLs say: the leaf's, when the handshake
// stapled no OCSP response (a stapled answer takes precedence), and each
// served intermediate's, when they name an http(s) distribution point.
// CRLs are CA infrastructure: they are fetched with env.Services, not the
// scope guard, through the run's cache (one fetch per list per run).
func CheckCRL(ctx context.Context, env *check.Env, ep *Endpoint) {
	if ep.failed() || len(ep.certs) == 0 || len(ep.Served) != len(ep.certs) {
		return
	}
	if ep.OCSP == nil && len(ep.Served[0].CRL) > 0 {
		ep.CRL = crlStatus(ctx, env, ep.Served[0].CRL[0], ep.certs[0], issuerOf(ep, 0))
	}
	for i := 1; i < len(ep.certs); i++ {
		info := ep.Served[i]
		if len(info.CRL) == 0 || (info.SelfSigned && info.CA) {
			continue // a served root is not judged (clients use their own)
		}
		st := crlStatus(ctx, env, info.CRL[0], ep.certs[i], issuerOf(ep, i))
		st.Subject = info.Subject
		ep.IntermediateCRLs = append(ep.IntermediateCRLs, *st)
	}
}

func crlStatus(ctx context.Context, env *check.Env, url string, cert, issuer *x509.Certificate) *CRLStatus {
	st := &CRLStatus{URL: url}
	if env == nil || env.Services == nil {
		st.Error, st.ErrorClass = "no client for CA services: the CRL was not fetched", CRLNotFetched
		return st
	}
	l, err := env.CRLs.Get(ctx, env.Services, url)
	if err != nil {
		st.Error, st.ErrorClass = err.Error(), crl.Class(err)
		return st
	}
	st.Size, st.ThisUpdate, st.NextUpdate = l.Size, l.ThisUpdate, l.NextUpdate
	st.RevokedAt, st.Listed = l.Revoked(cert.SerialNumber)
	switch {
	case issuer == nil:
		st.Signature = "no-issuer"
	default:
		if err := l.CheckSignatureFrom(issuer); err != nil {
			st.Signature, st.SignatureError = "bad", err.Error()
		} else {
			st.Signature = "ok"
		}
	}
	return st
}

// issuerOf is the certificate that signed certs[i]: a served one, or the
// next in the verified chain.
func issuerOf(ep *Endpoint, i int) *x509.Certificate {
	c := ep.certs[i]
	for _, p := range ep.certs {
		if p != c && bytes.Equal(c.RawIssuer, p.RawSubject) && c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	for k := 0; k+1 < len(ep.built); k++ {
		if ep.built[k].Equal(c) {
			return ep.built[k+1]
		}
	}
	return nil
}

// crlVerdict judges the leaf's CRL.
func crlVerdict(ep Endpoint, now time.Time) Verdict {
	c := ep.CRL
	switch {
	case c == nil && len(ep.Served) > 0 && len(ep.Served[0].CRL) > 0:
		return unknownf(CRLNotFetched, "no OCSP response is stapled and the CRL at %s was not fetched: revocation not checked", ep.Served[0].CRL[0])
	case c == nil:
		return unknownf("not-stapled", "no OCSP response is stapled and the certificate names no http(s) CRL distribution point: revocation not checked")
	case c.Error != "":
		return unknownf(c.ErrorClass, "no OCSP response is stapled and the CRL at %s could not be read: %s", c.URL, c.Error)
	}
	return judgeCRL(c, "the certificate", now)
}

func unknownf(reason, format string, a ...any) Verdict {
	return Verdict{Outcome: check.Unknown, Reason: reason, Message: fmt.Sprintf(format, a...)}
}

// judgeCRL judges a fetched CRL for the certificate what names. A list
// whose signature does not verify says nothing (not even revoked); a
// revocation on a validly signed list stands even when the list is stale,
// since revocation is final.
func judgeCRL(c *CRLStatus, what string, now time.Time) Verdict {
	switch {
	case c.Error != "":
		return unknownf(c.ErrorClass, "the CRL of %s at %s could not be read: %s", what, c.URL, c.Error)
	case c.Signature == "no-issuer":
		return unknownf("no-issuer", "the CRL of %s at %s cannot be verified: its issuer is not known", what, c.URL)
	case c.Signature != "ok":
		return unknownf("bad-signature", "the CRL of %s at %s is not signed by its issuer: %s", what, c.URL, c.SignatureError)
	case c.Listed:
		return fail("the CRL at %s lists %s as revoked on %s", c.URL, what, c.RevokedAt.Format(time.DateOnly))
	case c.NextUpdate.IsZero():
		return unknownf("stale", "the CRL of %s at %s has no next update, so whether it is current cannot be told", what, c.URL)
	case !now.Before(c.NextUpdate):
		return unknownf("stale", "the CRL of %s at %s is stale (its next update was due %s)", what, c.URL, c.NextUpdate.Format(time.DateOnly))
	}
	return pass("%s is not on its issuer's CRL at %s (updated %s, next update %s)", what, c.URL,
		c.ThisUpdate.Format(time.DateOnly), c.NextUpdate.Format(time.DateOnly))
}
