package lab

import (
	"crypto/tls"
	"net/http"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// Case is one behaviour the scanner must judge. Build instantiates it on a
// domain name, so that the lab can scale by stamping cases onto many domains
// while still knowing the right answer for each (its ground truth).
type Case struct {
	Name   string // short, unique: "spf-plus-all"
	Family string // email, dns, tls, web, repo
	Build  func(domain string) Domain
}

// Domain is one lab domain: the DNS records that make the behaviour, and the
// outcomes the scanner must find.
type Domain struct {
	// Name is the estate domain (the domain asset). Build is given the
	// stamped zone, lab-<case>[-n].nhs.uk, and usually returns it; it may
	// return a name below it (mail.<zone>), and the zone apex then only
	// holds what the case puts there.
	Name string
	// Records are RFC 1035 presentation-format RRs with absolute owner
	// names, e.g. `lab-spf-none.nhs.uk. 300 IN TXT "v=spf1 -all"`. Their
	// owners are the zone or names below it.
	Records []string
	// Drop lists owner names whose queries the lab DNS never answers, so a
	// resolver times out on them.
	Drop []string
	// Expect is the ground truth: the worst outcome (check.Worst) of each
	// catalogue id on each asset. A test compares a scan of the lab with it.
	Expect []Expect
	// Absent makes the domain not exist at all (NXDOMAIN): an estate that
	// lists a lapsed domain. The lab adds nothing to it (no SOA, MX or www).
	Absent bool

	// Hosts are servers under the domain. Each gets its own loopback address
	// and an A record; its Web and SMTP specs say what it serves.
	Hosts []Host
	// Repos are repositories the domain's organisation publishes in its lab
	// GitHub organisation (which the lab then creates).
	Repos []Repo
	// CT lists extra names the fake CT search returns for the domain.
	CT []string
	// Exclude lists names the lab estate excludes from scope.
	Exclude []string
	// Addrs gives a name the addresses of some of the domain's Hosts (by
	// name): a host name with several addresses, each its own server, as
	// behind a load balancer whose members disagree.
	Addrs map[string][]string
}

// Expect is one expected verdict.
type Expect struct {
	Kind    check.Kind    `json:"kind"`
	Name    string        `json:"name"` // asset name
	CheckID string        `json:"check"`
	Outcome check.Outcome `json:"outcome"`
}

// Host is one lab server. Its address is on loopback (127.1.x.y); the lab's
// Dial maps ports 443, 80 and 25 on it to the lab's shared listeners, which
// tell hosts apart by the address that was dialled.
type Host struct {
	Name string    // FQDN under the domain, without the trailing dot
	Web  *WebSpec  // nil: nothing on 443 or 80 (connection refused)
	SMTP *SMTPSpec // nil: nothing on 25
	Dead bool      // the address accepts nothing: a connection hangs until the caller gives up
}

// WebSpec is what a host serves on HTTPS (443) and HTTP (80).
type WebSpec struct {
	// HTTPS serves 443. nil: a small page with good security headers (HSTS).
	HTTPS http.Handler
	// HTTP serves 80. nil: a permanent redirect to https://<host>/.
	HTTP    http.Handler
	NoHTTPS bool // 443 refuses connections
	NoHTTP  bool // 80 refuses connections
	Cert    CertSpec
	// TLS is a template for the server's TLS settings (versions, cipher
	// suites, curves). nil: Go's defaults. Its certificate comes from Cert
	// unless the template sets Certificates or GetCertificate.
	TLS *tls.Config
	// Raw, if set, is handed every connection to 443 instead of the lab's
	// TLS server: a hand-built SSLv3 server, a tarpit (see RawHandler).
	Raw RawHandler
}

// SMTPSpec is what a host serves on SMTP (25).
type SMTPSpec struct {
	NoStartTLS bool // do not advertise STARTTLS
	Cert       CertSpec
	TLS        *tls.Config // template, as in WebSpec
	// Raw, if set, is handed every connection to 25 instead of the lab's
	// SMTP server: a tarpit, a server that hangs up (see RawHandler).
	Raw RawHandler
}

// CertSpec is a certificate profile. The zero value is a good certificate:
// ECDSA P-256, SHA-256, issued by the lab's intermediate CA for the host's
// name, served with that intermediate, valid from a day before the lab's
// start for 90 days, with a stapled OCSP response saying good, naming the
// lab CA's CRL (which does not list it) as its distribution point.
type CertSpec struct {
	Key      KeyType       // "": ECDSA P-256
	Names    []string      // nil: the host's name
	NotAfter time.Duration // from the lab's start; 0: 90 days; negative: expired
	// NotBefore is from the lab's start; 0: a day before it (90 days
	// before NotAfter when that is negative); positive: not yet valid.
	NotBefore  time.Duration
	SelfSigned bool // signed with its own key, served alone, nothing stapled
	// MissingIntermediate serves the leaf without the intermediate that
	// signed it.
	MissingIntermediate bool
	// SHA1 signs the leaf with SHA-1, by an RSA intermediate (served) of
	// the lab root.
	SHA1 bool
	// BadExtension replaces the subjectAltName with bytes that are not
	// DER: clients cannot parse the certificate.
	BadExtension bool
	// Staple is the OCSP status stapled to the handshake ("": good).
	Staple Staple
	// CRL is what the leaf's CRL distribution point says ("": the lab
	// CA's CRL, which does not list it). Self-signed and SHA-1 leaves name
	// no distribution point.
	CRL CRLMark
	// FromRoot has the lab root issue the leaf, served alone (a complete
	// chain: the root is the client's); the root staples and its CRL is
	// the distribution point.
	FromRoot bool
	// ClientAuthOnly gives the leaf the clientAuth extended key usage
	// only: it cannot authenticate a server.
	ClientAuthOnly bool
	// CrossSigned serves, after the intermediate, a copy of the lab root
	// cross-signed by an older root, both expired (the ISRG Root X1 /
	// DST Root CA X3 shape): clients build the path to their own root.
	CrossSigned bool
}

// CRLMark is how a lab leaf appears to CRL checking.
type CRLMark string

const (
	CRLGood    CRLMark = ""
	CRLRevoked CRLMark = "revoked" // on the lab CA's CRL
	CRLDead    CRLMark = "dead"    // the distribution point does not resolve
)

// Staple is the OCSP status a lab host staples.
type Staple string

const (
	StapleGood    Staple = ""
	StapleNone    Staple = "none" // no OCSP response
	StapleRevoked Staple = "revoked"
	StapleUnknown Staple = "unknown"
)

// KeyType names a certificate key. Keys are generated once per type and
// shared by every certificate of that type, so that a large lab starts fast.
type KeyType string

const (
	KeyECDSAP256 KeyType = "ecdsa-p256"
	KeyRSA2048   KeyType = "rsa-2048"
	KeyRSA1024   KeyType = "rsa-1024" // weak
)

// Repo is one repository in a lab GitHub organisation.
type Repo struct {
	Name          string
	Description   string
	Language      string
	Topics        []string
	DefaultBranch string // "": main
	Homepage      string
	Archived      bool
	Fork          bool
	HasPages      bool
	License       string        // SPDX id, e.g. "MIT"; "": none
	PushedAgo     time.Duration // 0: a day before the lab started
	// Spec is what the repository holds and how it is set up, which the
	// repo.* and org.* checks judge (githubrepos.go). Zero: well kept.
	Spec RepoSpec
}
