package tlscheck

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/nhsx/posture/checks/check"
)

// CRLFacts is what a certificate's CRL said, as facts for Evaluate to judge
// (the list itself, up to 20 MiB, is not kept).
type CRLFacts struct {
	// For is the SHA-256 of the DER of the certificate whose
	// distribution point URL is.
	For        string    `json:"for"`
	Subject    string    `json:"subject,omitempty"` // of that certificate
	URL        string    `json:"url"`
	Size       int       `json:"size,omitempty"` // bytes fetched
	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	// Listed: the certificate's serial is on the list, revoked at RevokedAt.
	Listed    bool      `json:"listed,omitempty"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// Tried are the keys (SHA-256 of the SubjectPublicKeyInfo) of the
	// candidate issuers, served or met while building chains at
	// collection, that the list's signature was checked with; Signers
	// those that verify it. Evaluate accepts the list if the issuer on its
	// own path is a signer.
	Tried   []string `json:"tried,omitempty"`
	Signers []string `json:"signers,omitempty"`
	// Error is why the CRL could not be read; ErrorClass one of timeout,
	// unreachable, too-large, malformed, unsupported, not-fetched.
	Error      string `json:"error,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`
}

// CRL reasons of unknown verdicts.
const (
	CRLNotFetched    = "not-fetched"      // the environment fetched no CRL
	crlNoDP          = "not-stapled"      // nothing stapled and no distribution point
	crlNoIssuer      = "no-issuer"        // the certificate's issuer is not known
	crlBadSignature  = "bad-signature"    // the issuer's key does not verify the list
	crlSignerUnknown = "signer-unchecked" // the issuer's key was not met at collection
	crlStale         = "stale"
)

// maxCRLs bounds the lists fetched for one endpoint.
const maxCRLs = 6

// CollectCRLs records what the CRLs say of the leaf and of each
// intermediate (served, or met building a chain against env.Roots): one
// list per certificate, its first http(s) distribution point, through
// env.CRLs (one fetch per URL per run). The leaf's list is fetched even
// when a response is stapled: the staple may prove unusable in Evaluate.
func CollectCRLs(ctx context.Context, env *check.Env, ep *Endpoint) {
	if ep.failed() || len(ep.Certs) == 0 {
		return
	}
	var served []*x509.Certificate
	for _, der := range ep.Certs {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		served = append(served, c)
	}
	var roots *x509.CertPool
	if env != nil {
		roots = env.Roots
	}
	// Candidates: whatever a client could take for an issuer. Targets:
	// the leaf, then every certificate that is not an anchor.
	candidates := slices.Clone(served)
	targets := []*x509.Certificate{served[0]}
	for _, c := range served[1:] {
		if !(c.IsCA && selfSigned(c)) {
			targets = append(targets, c)
		}
	}
	if chains, _, err := buildChains(served, roots, env.Clock(), x509.ExtKeyUsageAny); err == nil {
		for _, ch := range chains {
			candidates = append(candidates, ch...)
			targets = append(targets, ch[1:len(ch)-1]...)
		}
	}
	seen := map[string]bool{}
	for _, c := range targets {
		fp := fingerprint(c)
		urls := crlURLs(c)
		if seen[fp] || len(urls) == 0 {
			continue
		}
		seen[fp] = true
		if len(ep.CRLs) == maxCRLs {
			break
		}
		f := crlFacts(ctx, env, urls[0], c, candidates)
		f.For, f.Subject = fp, c.Subject.String()
		ep.CRLs = append(ep.CRLs, f)
	}
}

func crlFacts(ctx context.Context, env *check.Env, url string, c *x509.Certificate, candidates []*x509.Certificate) CRLFacts {
	f := CRLFacts{URL: url}
	if env == nil || env.CRLs == nil {
		f.Error, f.ErrorClass = "no CRL source for CA services: the CRL was not fetched", CRLNotFetched
		return f
	}
	l, err := env.CRLs.CRL(ctx, url)
	if err != nil {
		f.Error, f.ErrorClass = err.Error(), string(check.Classify(err))
		return f
	}
	f.Size = l.Bytes()
	f.ThisUpdate, f.NextUpdate = l.Updates()
	f.ThisUpdate, f.NextUpdate = f.ThisUpdate.UTC(), f.NextUpdate.UTC()
	f.RevokedAt, f.Listed = l.Revoked(c.SerialNumber)
	f.RevokedAt = f.RevokedAt.UTC()
	for _, p := range candidates {
		k := spkiHash(p)
		if !bytes.Equal(p.RawSubject, c.RawIssuer) || slices.Contains(f.Tried, k) {
			continue
		}
		f.Tried = append(f.Tried, k)
		if l.CheckSignatureFrom(p) == nil {
			f.Signers = append(f.Signers, k)
		}
	}
	return f
}

// crlOf is the recorded list of c, if any.
func (a *analysis) crlOf(c *x509.Certificate) *CRLFacts {
	fp := fingerprint(c)
	for i := range a.ep.CRLs {
		if a.ep.CRLs[i].For == fp {
			return &a.ep.CRLs[i]
		}
	}
	return nil
}

func unknownf(reason, format string, a ...any) Verdict {
	return Verdict{Outcome: check.Unknown, Reason: reason, Message: fmt.Sprintf(format, a...)}
}

// judgeCRL judges the recorded list of the certificate what names, issued
// by issuer. A list the issuer's key does not verify says nothing (not
// even revoked); a revocation on a validly signed list stands even when
// the list is stale, since revocation is final.
func judgeCRL(f *CRLFacts, issuer *x509.Certificate, what string, at time.Time) Verdict {
	switch {
	case f.Error != "":
		return unknownf(f.ErrorClass, "the CRL of %s at %s could not be read: %s", what, f.URL, f.Error)
	case issuer == nil:
		return unknownf(crlNoIssuer, "the CRL of %s at %s cannot be verified: its issuer is not known", what, f.URL)
	}
	k := spkiHash(issuer)
	switch {
	case !slices.Contains(f.Tried, k):
		return unknownf(crlSignerUnknown, "the CRL of %s at %s was not checked against the key of its issuer %q at collection", what, f.URL, issuer.Subject.String())
	case !slices.Contains(f.Signers, k):
		return unknownf(crlBadSignature, "the CRL of %s at %s is not signed by its issuer %q", what, f.URL, issuer.Subject.String())
	case f.Listed:
		return fail("the CRL at %s lists %s as revoked on %s", f.URL, what, f.RevokedAt.Format(time.DateOnly))
	case f.NextUpdate.IsZero():
		return unknownf(crlStale, "the CRL of %s at %s has no next update, so whether it is current cannot be told", what, f.URL)
	case !at.Before(f.NextUpdate):
		return unknownf(crlStale, "the CRL of %s at %s is stale (its next update was due %s)", what, f.URL, f.NextUpdate.Format(time.DateOnly))
	}
	return pass("%s is not on its issuer's CRL at %s (updated %s, next update %s)", what, f.URL,
		f.ThisUpdate.Format(time.DateOnly), f.NextUpdate.Format(time.DateOnly))
}

// revocationVerdict is the worst of the leaf's status and the CRLs of the
// intermediates on the path.
func revocationVerdict(a *analysis) Verdict {
	v := leafRevocation(a)
	path := a.path()
	for i, c := range path[1:] {
		f := a.crlOf(c)
		issuer := a.issuerOf(c)
		var iv Verdict
		switch {
		case issuer == nil:
			// The path does not reach this certificate's issuer:
			// tls.cert.chain says so; its CRL cannot be trusted or blamed.
			continue
		case f == nil && len(crlURLs(c)) > 0:
			iv = unknownf(CRLNotFetched, "the CRL of %s at %s was not fetched", what(i+1, c), crlURLs(c)[0])
		case f == nil:
			continue
		default:
			iv = judgeCRL(f, issuer, what(i+1, c), a.at)
		}
		switch {
		case iv.Outcome == check.Pass && v.Outcome == check.Pass:
			v.Message += "; " + iv.Message
		case check.Worst(v.Outcome, iv.Outcome) != v.Outcome:
			v = iv
		}
	}
	return v
}

// leafRevocation: a usable staple decides; otherwise the CRL does, and an
// unusable staple is said in the message (and is the reason when the CRL
// cannot answer either).
func leafRevocation(a *analysis) Verdict {
	leaf := a.certs[0]
	issuer := a.issuerOf(leaf)
	var st *staple
	if len(a.ep.OCSP) > 0 {
		s := judgeStaple(a.ep.OCSP, leaf, issuer, a.at)
		if s.usable {
			return stapleVerdict(s)
		}
		st = &s
	}
	cv := leafCRL(a, issuer)
	switch {
	case st == nil && cv.Outcome == check.Unknown:
		cv.Message = "no OCSP response is stapled, and " + cv.Message
	case st == nil:
	case cv.Outcome == check.Pass || cv.Outcome == check.Fail:
		cv.Message = st.message + ", so the CRL decides: " + cv.Message
	default:
		cv = Verdict{Outcome: check.Unknown, Reason: st.reason, Message: st.message + "; and " + cv.Message}
	}
	return cv
}

func stapleVerdict(s staple) Verdict {
	r := s.resp
	switch r.Status {
	case ocsp.Good:
		return pass("the stapled OCSP response, signed by %s, says good", s.signer)
	case ocsp.Revoked:
		return fail("the stapled OCSP response, signed by %s, says the certificate was revoked on %s", s.signer, r.RevokedAt.UTC().Format(time.DateOnly))
	}
	return warn("the stapled OCSP response, signed by %s, gives the status unknown", s.signer)
}

func leafCRL(a *analysis, issuer *x509.Certificate) Verdict {
	leaf := a.certs[0]
	f := a.crlOf(leaf)
	urls := crlURLs(leaf)
	switch {
	case f == nil && len(urls) > 0:
		return unknownf(CRLNotFetched, "the CRL at %s was not fetched: revocation not checked", urls[0])
	case f == nil:
		return unknownf(crlNoDP, "the certificate names no http(s) CRL distribution point: revocation not checked")
	}
	return judgeCRL(f, issuer, "the certificate", a.at)
}
