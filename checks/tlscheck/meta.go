package tlscheck

import "github.com/nhsx/posture/checks/check"

// Catalogue ids (checks.md §1.1).
const (
	NoSSL      = "tls.no-ssl"
	MinVersion = "tls.min-version"
	TLS13      = "tls.tls13"
	WeakCipher = "tls.weak-ciphers"
	CipherPref = "tls.cipher-preference"
	DHGroup    = "tls.dh-group"
	CertChain  = "tls.cert.chain"
	CertName   = "tls.cert.hostname"
	CertExpiry = "tls.cert.expiry"
	CertKey    = "tls.cert.key"
	CertSigAlg = "tls.cert.sig-alg"
	CertRevoke = "tls.cert.revocation"
)

// Rule names, phrased so that pass is good.
var ruleOf = map[string]string{
	NoSSL: "ssl-refused", MinVersion: "legacy-tls-refused", TLS13: "tls13-offered",
	WeakCipher: "weak-ciphers-refused", CipherPref: "strong-suite-chosen", DHGroup: "dh-group-strong",
	CertChain: "chain-trusted", CertName: "name-matches", CertExpiry: "in-date", CertKey: "key-strong",
	CertSigAlg: "signature-strong", CertRevoke: "not-revoked",
}

// Rule returns the rule name of a catalogue id.
func Rule(id string) string { return ruleOf[id] }

// withRule sets each entry's rule name, which unknown findings of a failed
// collection take (so the finding id is the same on a night that times out).
func withRule(ms []check.Meta) []check.Meta {
	for i := range ms {
		ms[i].Rule = ruleOf[ms[i].ID]
	}
	return ms
}

const mcRepo = "https://github.com/ukncsc/mail-check"

var (
	hostMail = []check.Kind{check.KindHost, check.KindMail}
	hostOnly = []check.Kind{check.KindHost}

	refBOD     = check.Ref{Standard: "CISA BOD 18-01", Section: "disable SSLv2/SSLv3, 3DES and RC4 on web and mail servers (120 days)", URL: "https://www.cisa.gov/news-events/directives/bod-18-01-enhance-email-and-web-security", Status: "secondary"}
	refNCSCTLS = check.Ref{Standard: "NCSC: Using TLS to protect data", Section: "TLS 1.3 configuration; TLS 1.2 configuration; Legacy versions", URL: "https://www.ncsc.gov.uk/guidance/using-tls-to-protect-data", Status: "secondary"}
	refSEQF    = check.Ref{Standard: "NHS England Software Engineering Quality Framework", Section: "practices/security.md: TLS versions shall be ideally v1.3 or v1.2 as a minimum", URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/practices/security.md"}
	refCAFB3b  = check.Ref{Standard: "NCSC CAF v3.2", Section: "B3.b Data in transit (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"}
	refCAFB4d  = check.Ref{Standard: "NCSC CAF v3.2", Section: "B4.d Vulnerability management (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"}
	refPshtt   = check.Ref{Standard: "CISA pshtt", Section: "HTTPS Bad Chain / HTTPS Bad Hostname", URL: "https://github.com/cisagov/pshtt"}
	refHSTSPre = check.Ref{Standard: "chromium/hstspreload", Section: "tls.go issue domain.tls.sha1", URL: "https://github.com/chromium/hstspreload"}
)

func mc(rule string) check.Ref {
	return check.Ref{Standard: "NCSC Mail Check", Section: rule, URL: mcRepo}
}

// ProtocolRules are the catalogue entries the Protocols collector judges.
var ProtocolRules = withRule([]check.Meta{
	{
		ID: NoSSL, Family: "tls", Title: "SSLv2 and SSLv3 refused", Severity: check.Critical, Targets: hostMail,
		Description: "Handshakes offering only SSLv2, and only SSLv3, are both refused.",
		Remediation: "Disable SSLv2 and SSLv3 on the server (and on any load balancer or CDN in front of it); offer TLS 1.2 and TLS 1.3 only.",
		Standards:   []check.Ref{refBOD, mc("MailCheck.Mx…/Ssl3/Ssl3FailsWithBadCipherSuite.cs"), refNCSCTLS, refCAFB3b},
	},
	{
		ID: MinVersion, Family: "tls", Title: "TLS 1.0 and 1.1 refused", Severity: check.High, Targets: hostOnly,
		Description: "The lowest protocol version the server accepts: TLS 1.0 and 1.1 must be refused, TLS 1.2 or 1.3 accepted.",
		Remediation: "Disable TLS 1.0 and TLS 1.1 and keep TLS 1.2 and TLS 1.3 enabled. If a legacy client still needs them, raise it as a risk (SEQF).",
		Standards:   []check.Ref{refSEQF, refNCSCTLS, refCAFB3b},
	},
	{
		ID: TLS13, Family: "tls", Title: "TLS 1.3 offered", Severity: check.Info, Targets: hostMail,
		Description: "A TLS 1.3 handshake succeeds. Absence is informational.",
		Remediation: "Enable TLS 1.3 alongside TLS 1.2 (current OpenSSL, IIS on Windows Server 2022 and every major CDN support it).",
		Standards:   []check.Ref{refNCSCTLS, mc("Tls13Available.cs (unavailable: INFORMATIONAL)")},
	},
	{
		ID: WeakCipher, Family: "tls", Title: "Weak cipher suites refused", Severity: check.High, Targets: hostMail,
		Description: "Every accepted suite at every version, found by elimination: NULL, EXPORT, single DES and RC4-MD5 fail; RC4-SHA, 3DES and anonymous suites fail on web hosts and warn on mail servers.",
		Remediation: "Remove NULL, EXPORT, DES, RC4, 3DES and anonymous (aNULL) suites from the server's cipher configuration; keep ECDHE with AES-GCM or ChaCha20-Poly1305.",
		Standards:   []check.Ref{refBOD, mc("Tls12/TlsWeakCipherSuitesRejected.cs"), mc("Tls12AvailableWithBestCipherSuiteSelected.cs"), refCAFB3b},
	},
	{
		ID: CipherPref, Family: "tls", Title: "Strong suite chosen for a modern client", Severity: check.Medium, Targets: hostMail,
		Description: "The suite the server chooses when a modern client offers its list over TLS 1.2: ECDHE or DHE with AES-GCM, ChaCha20-Poly1305 or AES-CCM, or ECDHE with AES-CBC-SHA256/384, passes; CBC with SHA-1 or static RSA key exchange warns.",
		Remediation: "Order the server's suites with ECDHE-ECDSA/ECDHE-RSA AES-GCM and ChaCha20-Poly1305 first and have the server enforce its own order.",
		Standards:   []check.Ref{mc("Tls12AvailableWithBestCipherSuiteSelected.cs"), refSEQF},
	},
	{
		ID: DHGroup, Family: "tls", Title: "Finite-field DH group of 2048 bits or more", Severity: check.Medium, Targets: hostMail,
		Description: "Size of the DH prime in the ServerKeyExchange of every accepted DHE suite: below 2048 bits fails.",
		Remediation: "Use DH parameters of 2048 bits or more (the RFC 7919 ffdhe2048/3072 groups), or drop the DHE suites and keep ECDHE.",
		Standards:   []check.Ref{mc("TlsSecureDiffieHellmanGroupSelected.cs: only groups of 2048 bits or more should be used")},
	},
})

// CertRules are the catalogue entries the Certificate collector judges.
var CertRules = withRule([]check.Meta{
	{
		ID: CertChain, Family: "tls", Title: "Certificate chain complete and trusted", Severity: check.High, Targets: hostMail,
		Description: "The served chain is complete, in order, correctly signed and anchored in a trusted root (system roots plus --ca-file), and the leaf may authenticate a server (extended key usage serverAuth, or none).",
		Remediation: "Install a certificate from a publicly trusted CA and configure the server to send the full chain: the leaf first, then each intermediate in order (not the root).",
		Standards:   []check.Ref{mc("CertificateEvaluation/Rules/RootCertificateShouldBeTrusted.cs, AllCertificatesShouldBePresent.cs, AllCertificatesShouldBeInOrder.cs, AllCertificatesSignaturesShouldBeValid.cs"), refPshtt, refCAFB3b},
	},
	{
		ID: CertName, Family: "tls", Title: "Certificate matches the host name", Severity: check.High, Targets: hostMail,
		Description: "A subjectAltName of the leaf matches the host name exactly or through a valid wildcard.",
		Remediation: "Issue a certificate whose subjectAltName lists this host name (or a wildcard covering it) and install it for this name (SNI).",
		Standards:   []check.Ref{mc("CertificateShouldMatchHostName.cs"), refPshtt},
	},
	{
		ID: CertExpiry, Family: "tls", Title: "Certificate in date", Severity: check.Critical, Targets: hostMail,
		Description: "notBefore and notAfter of the leaf and the intermediates on the path clients build (without a trusted path: every served certificate but a self-signed root): expired or not yet valid fails; 14 days or fewer left warns (7 or fewer: high). A served certificate off that path (an expired cross-signed root) is noted, not judged.",
		Remediation: "Renew the certificate now and automate renewal (ACME) with monitoring of the expiry date.",
		Standards:   []check.Ref{mc("CertificateExpiryShouldBeInDate.cs (_minDays = 14)"), refSEQF, refCAFB4d},
	},
	{
		ID: CertKey, Family: "tls", Title: "Certificate keys strong", Severity: check.High, Targets: hostMail,
		Description: "Public keys of the leaf and the intermediates on the path clients build: RSA 2048 bits or more, EC 256 bits or more.",
		Remediation: "Reissue the certificate with an RSA 2048-bit (or larger) or an ECDSA P-256 key.",
		Standards:   []check.Ref{mc("AllCertificatesShouldHaveStrongKey.cs (RSA 2048, ECC 256)")},
	},
	{
		ID: CertSigAlg, Family: "tls", Title: "Certificates signed with SHA-256 or stronger", Severity: check.Medium, Targets: hostMail,
		Description: "Signature hash of the leaf and the intermediates on the path clients build: SHA-1 or MD5 fails.",
		Remediation: "Reissue the certificate (and replace any intermediate) signed with SHA-256 or stronger.",
		Standards:   []check.Ref{refHSTSPre},
	},
	{
		ID: CertRevoke, Family: "tls", Title: "Certificate not revoked", Severity: check.Medium, Targets: hostMail,
		Description: "Revocation status of the leaf: a stapled OCSP response counts when it is signed by the issuer on the path (or a responder it delegated to with id-kp-OCSPSigning), is for the leaf, and is current (good passes, revoked fails, unknown warns); otherwise the CRL at the leaf's http(s) distribution point decides: listed fails, not listed on a CRL signed by the issuer and current (next update still ahead) passes. The intermediates on the path are checked on their issuers' CRLs the same way. A CRL that cannot be fetched, is too large, malformed, badly signed or stale, with no usable staple, is unknown.",
		Remediation: "If the certificate is revoked, replace it. Make sure the certificate's CRL distribution point (or OCSP stapling) is reachable and current.",
		Standards:   []check.Ref{mc("NonRootCertificatesShouldNotAppearOnRevocationLists.cs, OcspValidator.cs, CrlValidator.cs")},
	},
})
