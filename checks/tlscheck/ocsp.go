package tlscheck

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Reasons a stapled OCSP response is not used (the reason of an unknown
// tls.cert.revocation when the CRL cannot answer either).
const (
	OCSPUnparsed     = "ocsp-unparsed"      // not an OCSP response, or an error status
	OCSPWrongCert    = "ocsp-wrong-cert"    // it speaks of another certificate
	OCSPNoIssuer     = "ocsp-no-issuer"     // no issuer to check its signature with
	OCSPBadSignature = "ocsp-bad-signature" // neither the issuer nor a responder it delegated to signed it
	OCSPStale        = "ocsp-stale"         // not current at collection time
)

// StapleReason reports whether reason is one of the OCSP reasons above.
func StapleReason(reason string) bool {
	switch reason {
	case OCSPUnparsed, OCSPWrongCert, OCSPNoIssuer, OCSPBadSignature, OCSPStale:
		return true
	}
	return false
}

const (
	// ocspMaxAge bounds a response without nextUpdate (RFC 6960 allows
	// it: "newer information is always available"): older than this it
	// is not current.
	ocspMaxAge = 7 * 24 * time.Hour
	// ocspSkew tolerates a responder clock slightly ahead of ours.
	ocspSkew = 5 * time.Minute
)

// staple is the judgement of a stapled response: usable, with its
// status, or not, with the reason.
type staple struct {
	usable  bool
	resp    *ocsp.Response
	reason  string
	message string
	signer  string // who signed a usable one, for the message
}

func unusable(reason, format string, a ...any) staple {
	return staple{reason: reason, message: fmt.Sprintf(format, a...)}
}

// judgeStaple decides whether a stapled response speaks for leaf: signed
// by issuer, or by a responder issuer delegated to (id-kp-OCSPSigning,
// issued by issuer); for leaf's serial under issuer's key; current at at.
func judgeStaple(der []byte, leaf, issuer *x509.Certificate, at time.Time) staple {
	body, embedded, singles, err := splitOCSP(der)
	var re ocsp.ResponseError
	switch {
	case errors.As(err, &re):
		return unusable(OCSPUnparsed, "the stapled OCSP response is an error from the responder (%v)", re.Status)
	case err != nil:
		return unusable(OCSPUnparsed, "the stapled OCSP response does not parse: %v", err)
	}
	var single *singleID
	for i := range singles {
		if singles[i].Serial != nil && singles[i].Serial.Cmp(leaf.SerialNumber) == 0 {
			single = &singles[i]
			break
		}
	}
	if single == nil {
		var serials []string
		for _, s := range singles {
			if s.Serial != nil && len(serials) < 3 {
				serials = append(serials, s.Serial.Text(16))
			}
		}
		return unusable(OCSPWrongCert, "the stapled OCSP response is for another certificate (serial %v; the certificate's is %s)",
			serials, leaf.SerialNumber.Text(16))
	}
	// body carries no certificates, so the library checks no signature:
	// the signer logic is below, where an issuer that embeds its own
	// certificate (OpenSSL's default, allowed by RFC 6960) is accepted.
	resp, err := ocsp.ParseResponseForCert(body, leaf, nil)
	switch {
	case err != nil:
		return unusable(OCSPUnparsed, "the stapled OCSP response does not parse: %v", err)
	case issuer == nil:
		return unusable(OCSPNoIssuer, "the stapled OCSP response cannot be checked: the certificate's issuer is not known")
	}
	if !single.issuedBy(issuer) {
		return unusable(OCSPWrongCert, "the stapled OCSP response is for serial %s of another issuer than %q",
			leaf.SerialNumber.Text(16), issuer.Subject.String())
	}
	signer, why := ocspSigner(resp, embedded, issuer, at)
	if signer == "" {
		return unusable(OCSPBadSignature, "the stapled OCSP response is not signed by the issuer %q: %s", issuer.Subject.String(), why)
	}
	st := staple{resp: resp, signer: signer}
	if resp.Status == ocsp.Revoked {
		// A validly signed revocation is final, current or not.
		st.usable = true
		return st
	}
	switch {
	case resp.ThisUpdate.After(at.Add(ocspSkew)):
		return unusable(OCSPStale, "the stapled OCSP response is not valid yet (this update %s)", resp.ThisUpdate.UTC().Format(time.RFC3339))
	case resp.NextUpdate.IsZero() && at.Sub(resp.ThisUpdate) > ocspMaxAge:
		return unusable(OCSPStale, "the stapled OCSP response is stale (no next update, and this update %s is more than 7 days old)",
			resp.ThisUpdate.UTC().Format(time.DateOnly))
	case !resp.NextUpdate.IsZero() && !at.Before(resp.NextUpdate):
		return unusable(OCSPStale, "the stapled OCSP response is stale (its next update was due %s)", resp.NextUpdate.UTC().Format(time.RFC3339))
	}
	st.usable = true
	return st
}

// ocspSigner names who signed resp: the issuer itself (whatever it
// embedded), or an embedded responder certificate that the issuer issued
// for OCSP signing and that was valid at at. "" and why, otherwise.
func ocspSigner(resp *ocsp.Response, embedded []*x509.Certificate, issuer *x509.Certificate, at time.Time) (string, string) {
	if resp.CheckSignatureFrom(issuer) == nil {
		return "the issuer", ""
	}
	why := "its signature does not verify with the issuer's key"
	for _, e := range embedded {
		switch {
		case e.Equal(issuer):
			continue
		case e.CheckSignatureFrom(issuer) != nil:
			why = fmt.Sprintf("the responder certificate %q it carries is not issued by the issuer", e.Subject.String())
		case !slices.Contains(e.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning):
			why = fmt.Sprintf("the responder certificate %q it carries is not authorised for OCSP signing", e.Subject.String())
		case at.Before(e.NotBefore) || at.After(e.NotAfter):
			why = fmt.Sprintf("the responder certificate %q it carries is out of date", e.Subject.String())
		case resp.CheckSignatureFrom(e) != nil:
			why = fmt.Sprintf("its signature does not verify with the key of the responder %q it carries", e.Subject.String())
		default:
			return fmt.Sprintf("the issuer's delegated responder %q", e.Subject.String()), ""
		}
	}
	return "", why
}

// The parts of an OCSP response that golang.org/x/crypto/ocsp keeps to
// itself: every certificate it carries, and each single response's CertID.
type (
	ocspOuter struct {
		Status   asn1.Enumerated
		Response ocspBytes `asn1:"explicit,tag:0,optional"`
	}
	ocspBytes struct {
		ResponseType asn1.ObjectIdentifier
		Response     []byte
	}
	ocspBasic struct {
		TBSResponseData    asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
		Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	ocspBasicNoCerts struct {
		TBSResponseData    asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
	}
	ocspData struct {
		Version        int `asn1:"optional,default:0,explicit,tag:0"`
		RawResponderID asn1.RawValue
		ProducedAt     time.Time       `asn1:"generalized"`
		Responses      []asn1.RawValue // status, dates, extensions: the library reads them
	}
)

// singleID is a single response's CertID.
type singleID struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	NameHash      []byte
	IssuerKeyHash []byte
	Serial        *big.Int
}

var hashOf = map[string]crypto.Hash{
	"1.3.14.3.2.26":          crypto.SHA1,
	"2.16.840.1.101.3.4.2.1": crypto.SHA256,
	"2.16.840.1.101.3.4.2.2": crypto.SHA384,
	"2.16.840.1.101.3.4.2.3": crypto.SHA512,
}

// issuedBy: the CertID names issuer's key (RFC 6960 4.1.1).
func (s singleID) issuedBy(issuer *x509.Certificate) bool {
	h, ok := hashOf[s.HashAlgorithm.Algorithm.String()]
	if !ok || !h.Available() {
		return false
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return false
	}
	w := h.New()
	w.Write(spki.PublicKey.RightAlign())
	return bytes.Equal(w.Sum(nil), s.IssuerKeyHash)
}

var idPKIXOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}

// splitOCSP returns the response without its certificates (which leaves
// the signature, over the response data only, intact), the certificates
// (at most 4), and the CertIDs of its single responses.
func splitOCSP(der []byte) ([]byte, []*x509.Certificate, []singleID, error) {
	var outer ocspOuter
	if rest, err := asn1.Unmarshal(der, &outer); err != nil {
		return nil, nil, nil, err
	} else if len(rest) > 0 {
		return nil, nil, nil, errors.New("trailing data")
	}
	if st := ocsp.ResponseStatus(outer.Status); st != ocsp.Success {
		return nil, nil, nil, ocsp.ResponseError{Status: st}
	}
	if !outer.Response.ResponseType.Equal(idPKIXOCSPBasic) {
		return nil, nil, nil, errors.New("not a basic OCSP response")
	}
	var basic ocspBasic
	if rest, err := asn1.Unmarshal(outer.Response.Response, &basic); err != nil {
		return nil, nil, nil, err
	} else if len(rest) > 0 {
		return nil, nil, nil, errors.New("trailing data")
	}
	var data ocspData
	if _, err := asn1.Unmarshal(basic.TBSResponseData.FullBytes, &data); err != nil {
		return nil, nil, nil, err
	}
	var singles []singleID
	for _, raw := range data.Responses {
		var id singleID // the first field of a SingleResponse
		if _, err := asn1.Unmarshal(raw.Bytes, &id); err != nil {
			return nil, nil, nil, fmt.Errorf("single response: %w", err)
		}
		singles = append(singles, id)
	}
	var certs []*x509.Certificate
	for _, raw := range basic.Certificates {
		if len(certs) == 4 {
			break
		}
		c, err := x509.ParseCertificate(raw.FullBytes)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("embedded certificate: %w", err)
		}
		certs = append(certs, c)
	}
	inner, err := asn1.Marshal(ocspBasicNoCerts{basic.TBSResponseData, basic.SignatureAlgorithm, basic.Signature})
	if err != nil {
		return nil, nil, nil, err
	}
	outer.Response.Response = inner
	body, err := asn1.Marshal(outer)
	if err != nil {
		return nil, nil, nil, err
	}
	return body, certs, singles, nil
}
