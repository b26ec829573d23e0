package smtptls

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlscheck"
	"github.com/nhsx/posture/checks/tlsprobe"
)

// Catalogue ids (checks.md §1.6).
const (
	MXStartTLS = "email.mx.starttls"
	MXTLS12    = "email.mx.tls12"
	MXCert     = "email.mx.cert"
	MXCiphers  = "email.mx.ciphers"
)

var ruleOf = map[string]string{
	MXStartTLS: "starttls-offered", MXTLS12: "tls12-offered", MXCert: "certificate-valid", MXCiphers: "ciphers-strong",
}

// Options tune the collector; the zero value is the default.
type Options struct {
	// EHLOName is the name the scanner greets with; "": posture.invalid.
	EHLOName string
	// Timeout bounds one SMTP session up to the end of the TLS answer,
	// greeting delays included; 0: 20 s.
	Timeout time.Duration
	// Parallel is how many sessions one MX gets at once; 0: 2.
	Parallel int
	// MaxAddrs bounds the addresses of an MX that are tried; 0: 2.
	MaxAddrs int
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 20 * time.Second
}

// Evidence is what the collector saw on one MX host.
type Evidence struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	Addr string `json:"addr,omitempty"` // the address probed
	// Session is the first SMTP session: greeting, EHLO, STARTTLS reply.
	Session *Session `json:"session,omitempty"`
	// Cert is the crypto/tls handshake on that first session.
	Cert *tlscheck.Endpoint `json:"cert,omitempty"`
	// Report is the raw prober's scan, one SMTP session per hello.
	Report    *tlsprobe.Report     `json:"report,omitempty"`
	ScanError string               `json:"scan_error,omitempty"`
	ScanClass check.ErrClass       `json:"scan_class,omitempty"`
	Tried     []tlscheck.AddrError `json:"tried,omitempty"`
}

// Rules are the catalogue entries this collector judges: the email.mx.*
// roll-ups and the two tls.* ids whose findings are not folded into them
// (tls.no-ssl, tls.tls13; checks.md §1.1 targets "host, mail").
var Rules = withRule([]check.Meta{
	{
		ID: MXStartTLS, Family: "email", Title: "MX offers STARTTLS", Severity: check.High, Targets: mailOnly,
		Description: "EHLO on port 25 advertises STARTTLS and a TLS handshake completes after it.",
		Remediation: "Enable STARTTLS on every MX host with a certificate for its name, so that mail to the domain can be encrypted in transit.",
		Standards:   []check.Ref{refBODStartTLS, refGovESS, refCAFB3b},
	},
	{
		ID: MXTLS12, Family: "email", Title: "MX accepts TLS 1.2 or later", Severity: check.High, Targets: mailOnly,
		Description: "TLS 1.2 (or 1.3) is accepted after STARTTLS; refusing it fails. TLS 1.0/1.1 also accepted is a warning only: SMTP TLS is opportunistic (checks.md §3.1.7).",
		Remediation: "Support TLS 1.2 and TLS 1.3 for SMTP. Keep TLS 1.0/1.1 only while old senders still need them.",
		Standards:   []check.Ref{refGovESS, mc("Tls12Available.cs (refusal: FAIL), Tls10Available.cs (INFORMATIONAL)")},
	},
	{
		ID: MXCert, Family: "email", Title: "MX certificate valid", Severity: check.Medium, Targets: mailOnly,
		Description: "The MX certificate's chain, its name (the MX host), key, signature, dates and revocation (a stapled OCSP status, or the CRL listing it), judged as in tls.cert.*. (checks.md raises it to high under MTA-STS enforce; that waits for the MTA-STS check.)",
		Remediation: "Install a certificate from a public CA that names the MX host, with the full chain, an RSA 2048/ECDSA P-256 key and automated renewal. Senders enforcing MTA-STS refuse delivery otherwise.",
		Standards:   []check.Ref{mc("certificate rules"), {Standard: "RFC 8461 (MTA-STS)", Section: "§4.2 (PKIX validation of MX certificates)", URL: "https://www.rfc-editor.org/rfc/rfc8461", Status: "unverified"}},
	},
	{
		ID: MXCiphers, Family: "email", Title: "MX cipher suites strong", Severity: check.High, Targets: mailOnly,
		Description: "The tls.weak-ciphers, tls.cipher-preference and tls.dh-group probes after STARTTLS, with SMTP thresholds: RC4-SHA, 3DES and anonymous suites warn; NULL, EXPORT, DES and RC4-MD5 fail; DH below 2048 bits fails.",
		Remediation: "Remove NULL, EXPORT, DES and RC4-MD5 suites (and, when senders allow, RC4, 3DES and anonymous suites), prefer ECDHE with AES-GCM, and use DH groups of 2048 bits or more.",
		Standards:   []check.Ref{mc("TLS rules"), refBODMail},
	},
})

func withRule(ms []check.Meta) []check.Meta {
	for i := range ms {
		ms[i].Rule = ruleOf[ms[i].ID]
	}
	return ms
}

var mailOnly = []check.Kind{check.KindMail}

var (
	refBODStartTLS = check.Ref{Standard: "CISA BOD 18-01", Section: "Enable STARTTLS on all Internet-facing email servers (90 days)", URL: "https://www.cisa.gov/news-events/directives/bod-18-01-enhance-email-and-web-security"}
	refBODMail     = check.Ref{Standard: "CISA BOD 18-01", Section: "disable 3DES and RC4 on mail servers (120 days)", URL: "https://www.cisa.gov/news-events/directives/bod-18-01-enhance-email-and-web-security", Status: "secondary"}
	refGovESS      = check.Ref{Standard: "GOV.UK: Set up government email services securely", Section: "use TLS version 1.2 or later", URL: "https://www.gov.uk/guidance/set-up-government-email-services-securely"}
	refCAFB3b      = check.Ref{Standard: "NCSC CAF v3.2", Section: "B3.b Data in transit (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"}
)

func mc(rule string) check.Ref {
	return check.Ref{Standard: "NCSC Mail Check", Section: rule, URL: "https://github.com/ukncsc/mail-check"}
}

// allRules: ours plus tls.no-ssl and tls.tls13 from tlscheck.
func allRules() []check.Meta {
	out := append([]check.Meta(nil), Rules...)
	for _, m := range tlscheck.ProtocolRules {
		if m.ID == tlscheck.NoSSL || m.ID == tlscheck.TLS13 {
			out = append(out, m)
		}
	}
	return out
}

// Check returns the email.mx.tls collector for MX hosts.
func Check() check.Check { return CheckWith(Options{}) }

// CheckWith is Check with options.
func CheckWith(o Options) check.Check {
	return check.New(check.Spec[Evidence]{
		ID:       "email.mx.tls",
		Rules:    allRules(),
		Applies:  func(a check.Asset) bool { return a.Kind == check.KindMail },
		Collect:  o.collect,
		Evaluate: evaluate,
		// A dozen SMTP sessions, each allowed its own timeout, on MX hosts
		// that greet slowly on purpose: more than the default job limit.
		Timeout: 5 * time.Minute,
	})
}

// recorder keeps the first session of a dialer shared by every probe.
type recorder struct {
	d     *Dialer
	mu    sync.Mutex
	first *Session
	err   error
}

func (r *recorder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, s, err := r.d.StartTLS(ctx, addr)
	r.mu.Lock()
	if r.first == nil {
		r.first, r.err = s, err
	}
	r.mu.Unlock()
	return conn, err
}

func (o Options) collect(ctx context.Context, env *check.Env, a check.Asset) (Evidence, error) {
	ev := Evidence{Host: a.Name, Port: env.Port(25)}
	max := o.MaxAddrs
	if max <= 0 {
		max = 2
	}
	addrs, err := tlscheck.Addrs(ctx, env, a.Name, ev.Port, max)
	if err != nil {
		return ev, err
	}
	now := env.Clock()
	for _, addr := range addrs {
		ehlo := o.EHLOName
		if ehlo == "" {
			ehlo = env.EHLOName
		}
		rec := &recorder{d: &Dialer{Dial: env.DialContext, EHLOName: ehlo}}
		ep := tlscheck.CertOf(ctx, rec.dial, addr, a.Name, env.Roots, now, o.timeout())
		if rec.first != nil && rec.first.Step == "connect" && rec.first.Class == string(check.ErrUnreachable) {
			ev.Tried = append(ev.Tried, tlscheck.AddrError{Addr: addr, Error: rec.first.Failure, Class: check.ErrUnreachable})
			continue
		}
		ev.Addr, ev.Session = addr, rec.first
		switch {
		case errors.Is(rec.err, ErrNoStartTLS):
			return ev, nil
		case rec.err != nil && !errors.As(rec.err, new(*ReplyError)):
			// Nothing was learned: the server dropped or tarpitted us.
			return ev, fmt.Errorf("smtp: %s: %w", addr, rec.err)
		case rec.err != nil:
			// A negative reply (to EHLO or STARTTLS) is evidence.
			return ev, nil
		}
		tlscheck.CheckCRL(ctx, env, &ep)
		ev.Cert = &ep
		if c := ep.ErrorClass; c == check.ErrTimeout || c == check.ErrBlocked || c == check.ErrCanceled {
			// The server went silent after the go-ahead: one timeout is
			// enough to know the probes would be blocked too.
			ev.ScanError, ev.ScanClass = "not tried: the TLS handshake after STARTTLS failed: "+ep.Error, c
			return ev, nil
		}
		p := &tlsprobe.Prober{Dial: rec.dial, Timeout: o.timeout(), Parallel: o.Parallel}
		rep, err := p.Scan(ctx, addr, a.Name)
		ev.Report = rep
		if err != nil {
			ev.ScanError, ev.ScanClass = err.Error(), check.Classify(err)
		}
		return ev, nil
	}
	if len(ev.Tried) > 0 {
		t := ev.Tried[0]
		return ev, check.WithClass(t.Class, fmt.Errorf("smtp: %s: %s", t.Addr, t.Error))
	}
	return ev, check.WithClass(check.ErrDNS, fmt.Errorf("smtp: %s has no address", a.Name))
}

func finding(id string, v tlscheck.Verdict) check.Finding {
	f := v.Finding(id)
	if r, ok := ruleOf[id]; ok {
		f.Rule = r
	}
	return f
}

func verdict(o check.Outcome, format string, a ...any) tlscheck.Verdict {
	return tlscheck.Verdict{Outcome: o, Message: fmt.Sprintf(format, a...)}
}

func evaluate(in check.In[Evidence]) []check.Finding {
	ev := in.Evidence
	s := ev.Session
	ids := []string{MXStartTLS, MXTLS12, MXCert, MXCiphers, tlscheck.NoSSL, tlscheck.TLS13}
	all := func(v tlscheck.Verdict) []check.Finding {
		var out []check.Finding
		for _, id := range ids {
			out = append(out, finding(id, v))
		}
		return out
	}
	if s == nil {
		return all(tlscheck.Verdict{Outcome: check.Unknown, Reason: string(check.ErrOther), Message: "no SMTP session"})
	}
	// Before TLS: no STARTTLS, or a refusal, decides everything.
	switch {
	case !s.StartTLS && s.Failure == ErrNoStartTLS.Error():
		out := []check.Finding{finding(MXStartTLS, verdict(check.Fail, "the server's EHLO reply does not offer STARTTLS (it offers %s): mail to it travels unencrypted", clipList(s.EHLO)))}
		for _, id := range ids[1:] {
			out = append(out, finding(id, verdict(check.NA, "no STARTTLS, so no TLS to judge (see %s)", MXStartTLS)))
		}
		return out
	case s.Code >= 500:
		out := []check.Finding{finding(MXStartTLS, verdict(check.Fail, "STARTTLS is advertised but refused: %d %s", s.Code, s.Reply))}
		for _, id := range ids[1:] {
			out = append(out, finding(id, verdict(check.NA, "STARTTLS refused, so no TLS to judge (see %s)", MXStartTLS)))
		}
		return out
	case s.Failure != "":
		return all(tlscheck.Verdict{Outcome: check.Unknown, Reason: orBlocked(s.Class), Message: "probe blocked: " + s.Failure})
	}
	r, cert := ev.Report, ev.Cert
	out := []check.Finding{
		finding(MXStartTLS, startTLSVerdict(ev)),
		finding(MXCert, certVerdict(cert, in.CollectedAt, in.Policy)),
	}
	if r == nil {
		u := tlscheck.Verdict{Outcome: check.Unknown, Reason: orBlocked(string(ev.ScanClass)), Message: "probe blocked: " + ev.ScanError}
		for _, id := range []string{MXTLS12, MXCiphers, tlscheck.NoSSL, tlscheck.TLS13} {
			out = append(out, finding(id, u))
		}
		return out
	}
	return append(out,
		finding(MXTLS12, tls12Verdict(r)),
		finding(MXCiphers, ciphersVerdict(r, in.Policy.TLS.MinDHBits)),
		finding(tlscheck.NoSSL, tlscheck.EvalNoSSL(r)),
		finding(tlscheck.TLS13, tlscheck.EvalTLS13(r)),
	)
}

func orBlocked(c string) string {
	if c == "" {
		return string(check.ErrBlocked)
	}
	return c
}

func clipList(xs []string) string {
	if len(xs) == 0 {
		return "no extensions"
	}
	if len(xs) > 8 {
		return strings.Join(xs[:8], ", ") + ", …"
	}
	return strings.Join(xs, ", ")
}

// startTLSVerdict: STARTTLS was offered and accepted; TLS must complete,
// by crypto/tls or by any raw probe.
func startTLSVerdict(ev Evidence) tlscheck.Verdict {
	if ev.Cert != nil && ev.Cert.Error == "" {
		return verdict(check.Pass, "STARTTLS is offered and a %v handshake completes", ev.Cert.Version)
	}
	if r := ev.Report; r != nil {
		for _, v := range []tlsprobe.Version{tlsprobe.TLS13, tlsprobe.TLS12, tlsprobe.TLS11, tlsprobe.TLS10, tlsprobe.SSL30} {
			if r.Accepts(v) {
				return verdict(check.Pass, "STARTTLS is offered and the server negotiates %v", v)
			}
		}
		refused := true
		for _, v := range r.Versions {
			if v.State != tlsprobe.Refused {
				refused = false
			}
		}
		if refused {
			return verdict(check.Fail, "STARTTLS is offered, but the server refuses every TLS handshake after it")
		}
	}
	reason, msg := string(check.ErrBlocked), "STARTTLS is offered, but the TLS handshake after it could not be completed"
	if ev.Cert != nil {
		reason, msg = orBlocked(string(ev.Cert.ErrorClass)), msg+": "+ev.Cert.Error
	}
	return tlscheck.Verdict{Outcome: check.Unknown, Reason: reason, Message: msg}
}

// tls12Verdict applies the SMTP thresholds: TLS 1.2 or 1.3 required;
// 1.0/1.1 as well is a warning only.
func tls12Verdict(r *tlsprobe.Report) tlscheck.Verdict {
	ok := r.Accepts(tlsprobe.TLS12) || r.Accepts(tlsprobe.TLS13)
	var legacy []string
	for _, v := range []tlsprobe.Version{tlsprobe.TLS10, tlsprobe.TLS11} {
		if r.Accepts(v) {
			legacy = append(legacy, v.String())
		}
	}
	switch {
	case ok && len(legacy) > 0:
		return verdict(check.Warn, "TLS 1.2 or later is accepted, and so is %s (SMTP: a warning only)", strings.Join(legacy, " and "))
	case ok:
		for _, v := range []tlsprobe.Version{tlsprobe.TLS10, tlsprobe.TLS11} {
			if vr := r.Version(v); vr.State == tlsprobe.Unknown {
				return verdict(check.Pass, "TLS 1.2 or later is accepted (whether %v is too could not be told: %s)", v, vr.Error)
			}
		}
		return verdict(check.Pass, "TLS 1.2 or later is accepted; TLS 1.0 and 1.1 are refused")
	}
	for _, v := range []tlsprobe.Version{tlsprobe.TLS12, tlsprobe.TLS13} {
		if vr := r.Version(v); vr.State == tlsprobe.Unknown {
			return tlscheck.Verdict{Outcome: check.Unknown, Reason: orBlocked(string(vr.ErrorClass)), Message: "probe blocked: " + vr.Error}
		}
	}
	if len(legacy) > 0 {
		return verdict(check.Fail, "TLS 1.2 and 1.3 are refused; the server offers only %s", strings.Join(legacy, " and "))
	}
	return verdict(check.Fail, "TLS 1.2 and 1.3 are refused")
}

// ciphersVerdict rolls tls.weak-ciphers (SMTP thresholds),
// tls.cipher-preference and tls.dh-group into one verdict.
func ciphersVerdict(r *tlsprobe.Report, minDH int) tlscheck.Verdict {
	parts := []tlscheck.Verdict{tlscheck.EvalWeakCiphers(r, true), tlscheck.EvalCipherPreference(r), tlscheck.EvalDHGroup(r, minDH)}
	var outcomes []check.Outcome
	for _, p := range parts {
		if p.Outcome != check.NA {
			outcomes = append(outcomes, p.Outcome)
		}
	}
	if len(outcomes) == 0 {
		return verdict(check.NA, "no suite to judge")
	}
	worst := check.Worst(outcomes...)
	var msgs []string
	reason := ""
	for _, p := range parts {
		if p.Outcome == worst {
			msgs = append(msgs, p.Message)
			if reason == "" {
				reason = p.Reason
			}
		}
	}
	return tlscheck.Verdict{Outcome: worst, Reason: reason, Message: strings.Join(msgs, "; ")}
}

// certVerdict rolls the tls.cert.* verdicts into one. Revocation counts
// when a status was stapled, or when the CRL lists the certificate: a CRL
// that could not be read is not held against the MX certificate (it would
// otherwise often go unjudged).
func certVerdict(ep *tlscheck.Endpoint, now time.Time, p *check.Policy) tlscheck.Verdict {
	if ep == nil {
		return tlscheck.Verdict{Outcome: check.Unknown, Reason: string(check.ErrBlocked), Message: "no TLS handshake"}
	}
	vs := tlscheck.EvalCert([]tlscheck.Endpoint{*ep}, now, p)
	ids := []string{tlscheck.CertChain, tlscheck.CertName, tlscheck.CertExpiry, tlscheck.CertKey, tlscheck.CertSigAlg}
	if ep.OCSP != nil || vs[tlscheck.CertRevoke].Outcome == check.Fail {
		ids = append(ids, tlscheck.CertRevoke)
	}
	var outcomes []check.Outcome
	for _, id := range ids {
		outcomes = append(outcomes, vs[id].Outcome)
	}
	worst := check.Worst(outcomes...)
	if worst == check.Pass {
		return verdict(check.Pass, "the certificate is valid for the MX host: %s; %s", vs[tlscheck.CertChain].Message, vs[tlscheck.CertExpiry].Message)
	}
	var msgs []string
	out := tlscheck.Verdict{Outcome: worst}
	for _, id := range ids {
		if v := vs[id]; v.Outcome == worst {
			msgs = append(msgs, v.Message)
			if out.Reason == "" {
				out.Reason = v.Reason
			}
		}
	}
	out.Message = strings.Join(msgs, "; ")
	return out
}
