package lab

import (
	"crypto/tls"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// tlsFamily: the TLS checks' lab. Every other domain's default www host is
// a good web host, its mail alias serves no web TLS at all, and the shared
// MX hosts are good mail hosts.
var tlsFamily = Family{Name: "tls", Cases: tlsCases,
	Complete: func(d *Domain, c Case, added Added, _ []Case) {
		if added.WWW != "" {
			d.Expect = append(d.Expect, webExpect(added.WWW, nil)...)
		}
		if added.MailAlias != "" {
			// An alias of the MX, which serves nothing on 443: no TLS to judge.
			d.Expect = append(d.Expect, webExpect(added.MailAlias, all(WebTLSCheckIDs, check.NA))...)
		}
		if c.Family != "tls" {
			d.Expect = append(d.Expect, plainHostsExpect(d, added)...)
		}
	},
	Infra: func(host string, kind check.Kind) []Expect {
		if kind != check.KindMail {
			return nil
		}
		return mailExpect(host, nil)
	},
}

// WebTLSCheckIDs are the catalogue ids the TLS collectors (tls.protocols,
// tls.cert) emit for a web host: every TLS case states an outcome for each
// on its www host.
var WebTLSCheckIDs = []string{
	"tls.no-ssl", "tls.min-version", "tls.tls13", "tls.weak-ciphers", "tls.cipher-preference", "tls.dh-group",
	"tls.cert.chain", "tls.cert.hostname", "tls.cert.expiry", "tls.cert.key", "tls.cert.sig-alg", "tls.cert.revocation",
}

// MailTLSCheckIDs are the catalogue ids the SMTP collector (email.mx.tls)
// emits for an MX host.
var MailTLSCheckIDs = []string{
	"email.mx.starttls", "email.mx.tls12", "email.mx.cert", "email.mx.ciphers", "tls.no-ssl", "tls.tls13",
}

var certIDs = WebTLSCheckIDs[6:]

// goodWeb is what a good lab web host gets: Go's TLS server offers no
// finite-field DHE suite, so tls.dh-group does not apply; every other id
// passes (the lab staples a good OCSP response, and its CRL does not list
// the certificate).
var goodWeb = want{"tls.dh-group": check.NA}

// tlsCases are the TLS behaviours of the lab (checks.md §1.1, and §1.6
// with the SMTP thresholds of §3.1.7): each a lab domain whose www host
// (Kind host) or MX host mx.<domain> (Kind mail) shows one verdict. Expect
// lists every id the TLS collectors emit for that host. The cases publish
// no SPF or DMARC of their own, so they borrow the email family's all-pass
// records; an MX case's www host is the default good one.
func tlsCases() []Case {
	rsa := CertSpec{Key: KeyRSA2048}
	return []Case{
		// The all-pass baseline first.
		webCase("tls-good", web(WebSpec{}), want{}),
		// A load balancer that hangs on hellos of 256 to 511 bytes (old
		// F5s): every probe is padded out of the band, so all is judged.
		webCase("tls-f5-band", web(WebSpec{Raw: F5Band}), want{}),
		// One host name, two addresses that disagree: one accepts TLS 1.0
		// and 1.1, one does not. The finding says which address fails.
		{Name: "tls-two-addrs", Build: func(d string) Domain {
			multi, names := "multi."+d, []string{"multi." + d}
			return Domain{Name: d, CT: []string{multi},
				Hosts: []Host{
					{Name: "node1." + d, Web: &WebSpec{Cert: CertSpec{Names: names}}},
					{Name: "node2." + d, Web: &WebSpec{Cert: CertSpec{Names: names}, TLS: &tls.Config{MinVersion: tls.VersionTLS10}}},
				},
				Addrs:  map[string][]string{multi: {"node1." + d, "node2." + d}},
				Expect: webExpect(multi, want{"tls.min-version": check.Fail}),
			}
		}},

		// Protocol versions.
		// TLS 1.0 and 1.1 accepted beside 1.2 and 1.3: a web host fails.
		webCase("tls-legacy-versions", web(WebSpec{TLS: &tls.Config{MinVersion: tls.VersionTLS10}}),
			want{"tls.min-version": check.Fail}),
		// TLS 1.3 only: every suite is AEAD and forward secret, so the
		// TLS 1.2 suite choice does not apply.
		webCase("tls-13-only", web(WebSpec{TLS: &tls.Config{MinVersion: tls.VersionTLS13}}),
			want{"tls.cipher-preference": check.NA}),
		// TLS 1.2 only: no TLS 1.3 is informational (warn at severity info).
		webCase("tls-12-only", web(WebSpec{TLS: &tls.Config{MaxVersion: tls.VersionTLS12}}),
			want{"tls.tls13": check.Warn}),
		// SSLv3 accepted (a hand-built SSLv3 answer) beside TLS 1.0 to 1.3.
		// The versions are contiguous, as in every real stack: a server
		// answers a hello with the highest version it has up to the
		// client's (RFC 5246 E.1), which the prober relies on.
		webCase("tls-sslv3", web(WebSpec{Cert: rsa, Raw: SSLv3(0x002F), TLS: &tls.Config{MinVersion: tls.VersionTLS10}}),
			want{"tls.no-ssl": check.Fail, "tls.min-version": check.Fail}),
		// SSLv3 and nothing newer: the certificate is read from the raw
		// hello (so nothing stapled is seen: revocation is the CRL's), and
		// the one suite, static RSA with CBC-SHA, is what a modern client
		// gets.
		webCase("tls-sslv3-only", web(WebSpec{Cert: rsa, Raw: SSLv3Only(0x002F)}),
			want{"tls.no-ssl": check.Fail, "tls.min-version": check.Fail, "tls.tls13": check.Warn,
				"tls.cipher-preference": check.Warn}),

		// Cipher suites (TLS 1.3 stays on: its suites are not configurable).
		// 3DES accepted: fails on a web host (BOD 18-01).
		webCase("tls-3des", web(WebSpec{Cert: rsa, TLS: &tls.Config{CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}}}),
			want{"tls.weak-ciphers": check.Fail}),
		// RC4-SHA accepted (Go's server still offers it when configured).
		webCase("tls-rc4", web(WebSpec{Cert: rsa, TLS: &tls.Config{CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_RC4_128_SHA}}}),
			want{"tls.weak-ciphers": check.Fail}),
		// CBC with SHA-1 only, up to TLS 1.2: a modern client gets
		// ECDHE-RSA-AES128-CBC-SHA, which lacks an AEAD cipher.
		webCase("tls-cbc-only", web(WebSpec{Cert: rsa, TLS: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA}}}),
			want{"tls.cipher-preference": check.Warn, "tls.tls13": check.Warn}),

		// Certificates.
		// Expired a day ago: the chain still verifies inside its validity.
		certCase("tls-expired", cert(CertSpec{NotAfter: -24 * time.Hour}), want{"tls.cert.expiry": check.Fail}),
		certCase("tls-not-yet-valid", cert(CertSpec{NotBefore: 7 * 24 * time.Hour}), want{"tls.cert.expiry": check.Fail}),
		// 5 days left: warn, severity high (7 days or fewer).
		certCase("tls-expiring-5d", cert(CertSpec{NotAfter: 5*24*time.Hour + 12*time.Hour}), want{"tls.cert.expiry": check.Warn}),
		// 10 days left: warn, severity medium (14 days or fewer).
		certCase("tls-expiring-10d", cert(CertSpec{NotAfter: 10*24*time.Hour + 12*time.Hour}), want{"tls.cert.expiry": check.Warn}),
		certCase("tls-wrong-name", func(d string) CertSpec { return CertSpec{Names: []string{"other." + d}} },
			want{"tls.cert.hostname": check.Fail}),
		// Self-signed: untrusted, nothing stapled and no CRL.
		certCase("tls-self-signed", cert(CertSpec{SelfSigned: true}),
			want{"tls.cert.chain": check.Fail, "tls.cert.revocation": check.Unknown}),
		certCase("tls-rsa-1024", cert(CertSpec{Key: KeyRSA1024}), want{"tls.cert.key": check.Fail}),
		// SHA-1 signed: clients reject the signature, so the chain fails too.
		certCase("tls-sha1", cert(CertSpec{SHA1: true}), want{"tls.cert.sig-alg": check.Fail, "tls.cert.chain": check.Fail}),
		// The leaf alone, its issuer neither served nor trusted: the chain
		// fails, and nothing can check the staple's or the CRL's signature
		// (ocsp-no-issuer).
		certCase("tls-missing-intermediate", cert(CertSpec{MissingIntermediate: true}),
			want{"tls.cert.chain": check.Fail, "tls.cert.revocation": check.Unknown}),
		// The leaf alone, issued by the root itself: the chain is complete
		// (the root is the client's), and the root's staple, checked with
		// the root from the trust anchors, says good (the CRL host is dead,
		// so the staple alone decides).
		certCase("tls-leaf-from-root", cert(CertSpec{FromRoot: true, CRL: CRLDead}), want{}),
		// A leaf for client authentication only: no server may use it.
		certCase("tls-client-auth-only", cert(CertSpec{ClientAuthOnly: true}), want{"tls.cert.chain": check.Fail}),
		// Served after the intermediate, a copy of the root cross-signed by
		// an old root, both expired (ISRG Root X1 / DST Root CA X3):
		// clients build the path to their own root, so expiry passes and
		// notes the stale certificate.
		certCase("tls-cross-signed-expired", cert(CertSpec{CrossSigned: true}), want{}),
		// A subjectAltName that is not DER: the certificate cannot be read,
		// so no certificate rule can be judged (the protocols are fine).
		certCase("tls-bad-extension", cert(CertSpec{BadExtension: true}), all(certIDs, check.Unknown)),
		certCase("tls-ocsp-revoked", cert(CertSpec{Staple: StapleRevoked}), want{"tls.cert.revocation": check.Fail}),
		certCase("tls-ocsp-unknown", cert(CertSpec{Staple: StapleUnknown}), want{"tls.cert.revocation": check.Warn}),
		// Staples that must not be believed. Good, but for another serial;
		// the CRL host is dead: could not tell (ocsp-wrong-cert).
		certCase("tls-ocsp-wrong-cert", cert(CertSpec{Staple: StapleWrongCert, CRL: CRLDead}), want{"tls.cert.revocation": check.Unknown}),
		// Good, signed by a key that is not the issuer's, for a leaf the
		// CRL lists: the CRL decides, revoked.
		certCase("tls-ocsp-forged", cert(CertSpec{Staple: StapleForged, CRL: CRLRevoked}), want{"tls.cert.revocation": check.Fail}),
		// Good, but days past its next update: the CRL (current, not
		// listing the leaf) decides.
		certCase("tls-ocsp-stale", cert(CertSpec{Staple: StapleStale}), want{}),
		// Revoked, signed by the issuer with its own certificate embedded
		// (OpenSSL's default shape); the CRL does not list the leaf: the
		// staple decides.
		certCase("tls-ocsp-revoked-embedded", cert(CertSpec{Staple: StapleRevokedEmbedded}), want{"tls.cert.revocation": check.Fail}),
		// Good, from a responder the issuer delegated to (OCSPSigning);
		// the CRL host is dead, so the staple alone decides.
		certCase("tls-ocsp-delegated", cert(CertSpec{Staple: StapleDelegated, CRL: CRLDead}), want{}),
		// Nothing stapled: the lab CA's CRL (fetched, signed by the
		// intermediate, current) does not list the certificate.
		certCase("tls-no-staple", cert(CertSpec{Staple: StapleNone}), want{}),
		// Nothing stapled, and the CRL lists the serial.
		certCase("tls-crl-revoked", cert(CertSpec{Staple: StapleNone, CRL: CRLRevoked}), want{"tls.cert.revocation": check.Fail}),
		// Nothing stapled, and the CRL's host does not resolve: could not tell.
		certCase("tls-crl-unreachable", cert(CertSpec{Staple: StapleNone, CRL: CRLDead}), want{"tls.cert.revocation": check.Unknown}),

		// Accepts, then says nothing: could not tell, never fail.
		webCase("tls-tarpit", web(WebSpec{Raw: Tarpit}), all(WebTLSCheckIDs, check.Unknown)),
		// Accepts, reads the hello and hangs up, every time: no TLS answer
		// or alert to any version, so nothing about TLS can be told (not
		// "no version accepted").
		webCase("tls-hangup", web(WebSpec{Raw: HangUp}), all(WebTLSCheckIDs, check.Unknown)),

		// Mail servers (email.mx.tls, SMTP thresholds).
		mxCase("smtp-good", mail(SMTPSpec{}), want{}),
		// No STARTTLS: fail, and there is no TLS to judge.
		mxCase("smtp-no-starttls", mail(SMTPSpec{NoStartTLS: true}),
			want{"email.mx.starttls": check.Fail, "email.mx.tls12": check.NA, "email.mx.cert": check.NA,
				"email.mx.ciphers": check.NA, "tls.no-ssl": check.NA, "tls.tls13": check.NA}),
		// STARTTLS with TLS 1.0 only: TLS 1.2 refused fails; a modern
		// sender gets ECDHE-ECDSA-AES128-CBC-SHA (warn).
		mxCase("smtp-tls10-only", mail(SMTPSpec{TLS: &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}}),
			want{"email.mx.tls12": check.Fail, "email.mx.ciphers": check.Warn, "tls.tls13": check.Warn}),
		// 3DES on a mail server warns (checks.md §1.1: fail for web, warn for SMTP).
		mxCase("smtp-3des", mail(SMTPSpec{Cert: rsa, TLS: &tls.Config{CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}}}),
			want{"email.mx.ciphers": check.Warn}),
		mxCase("smtp-self-signed", mail(SMTPSpec{Cert: CertSpec{SelfSigned: true}}), want{"email.mx.cert": check.Fail}),
		// An MX certificate for client authentication only.
		mxCase("smtp-client-auth-only", mail(SMTPSpec{Cert: CertSpec{ClientAuthOnly: true}}), want{"email.mx.cert": check.Fail}),
		// Nothing stapled and the CRL lists the MX certificate.
		mxCase("smtp-crl-revoked", mail(SMTPSpec{Cert: CertSpec{Staple: StapleNone, CRL: CRLRevoked}}), want{"email.mx.cert": check.Fail}),
		// No greeting: silence for 3 s, then the server hangs up. Probe
		// blocked, whether the client's timeout (tests) or the hang-up
		// (a scan with the default 20 s) comes first; the hang-up keeps a
		// lab scan from waiting out the SMTP timeout.
		mxCase("smtp-tarpit", mail(SMTPSpec{Raw: TarpitFor(3 * time.Second)}), all(MailTLSCheckIDs, check.Unknown)),
		// A greeting, then the server hangs up: probe blocked.
		mxCase("smtp-hangup", mail(SMTPSpec{Raw: SMTPHangUp}), all(MailTLSCheckIDs, check.Unknown)),
	}
}

// plainHostsExpect states a good host's TLS truth on the hosts another
// family's case defines with the lab's default TLS (a scope case's web
// host that redirects is still a good TLS host). Excluded names are not
// scanned; hosts with TLS settings of their own are their case's to judge.
func plainHostsExpect(d *Domain, added Added) []Expect {
	var out []Expect
	for _, h := range d.Hosts {
		if h.Dead || h.Name == added.WWW || slices.ContainsFunc(d.Exclude, func(e string) bool {
			return h.Name == e || strings.HasSuffix(h.Name, "."+e) // a name and the names below it
		}) {
			continue
		}
		if w := h.Web; w != nil && w.Raw == nil && w.TLS == nil && !w.NoHTTPS && reflect.ValueOf(w.Cert).IsZero() {
			out = append(out, webExpect(h.Name, nil)...)
		}
		if m := h.SMTP; m != nil && m.Raw == nil && m.TLS == nil && !m.NoStartTLS && reflect.ValueOf(m.Cert).IsZero() {
			out = append(out, mailExpect(h.Name, nil)...)
		}
	}
	return out
}

func web(s WebSpec) func(string) WebSpec    { return func(string) WebSpec { return s } }
func cert(s CertSpec) func(string) CertSpec { return func(string) CertSpec { return s } }
func mail(s SMTPSpec) func(string) SMTPSpec { return func(string) SMTPSpec { return s } }

// all gives every id the outcome o.
func all(ids []string, o check.Outcome) want {
	w := want{}
	for _, id := range ids {
		w[id] = o
	}
	return w
}

// webCase is a case on www.<domain>, served as spec says.
func webCase(name string, spec func(d string) WebSpec, w want) Case {
	return Case{Name: name, Family: "tls", Build: func(d string) Domain {
		www := "www." + d
		s := spec(d)
		return Domain{Name: d, Hosts: []Host{{Name: www, Web: &s}}, Expect: webExpect(www, w)}
	}}
}

// certCase is a web case whose www host serves the certificate spec says.
func certCase(name string, spec func(d string) CertSpec, w want) Case {
	return webCase(name, func(d string) WebSpec { return WebSpec{Cert: spec(d)} }, w)
}

// mxCase is a case on mx.<domain>, the domain's only MX, served as spec
// says.
func mxCase(name string, spec func(d string) SMTPSpec, w want) Case {
	return Case{Name: name, Family: "tls", Build: func(d string) Domain {
		mx := "mx." + d
		s := spec(d)
		return Domain{Name: d, Records: []string{rr(d, "MX", "10 "+mx+".")},
			Hosts: []Host{{Name: mx, SMTP: &s}}, Expect: mailExpect(mx, w)}
	}}
}

// webExpect states every web TLS id on host: w's outcome, else a good
// host's.
func webExpect(host string, w want) []Expect {
	out := make([]Expect, 0, len(WebTLSCheckIDs))
	for _, id := range WebTLSCheckIDs {
		o, ok := w[id]
		if !ok {
			if o, ok = goodWeb[id]; !ok {
				o = check.Pass
			}
		}
		out = append(out, Expect{Kind: check.KindHost, Name: host, CheckID: id, Outcome: o})
	}
	return out
}

// mailExpect states every mail TLS id on host: w's outcome, else pass.
func mailExpect(host string, w want) []Expect {
	out := make([]Expect, 0, len(MailTLSCheckIDs))
	for _, id := range MailTLSCheckIDs {
		o, ok := w[id]
		if !ok {
			o = check.Pass
		}
		out = append(out, Expect{Kind: check.KindMail, Name: host, CheckID: id, Outcome: o})
	}
	return out
}
