package smtptls

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/mtasts"
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

// Evidence is what the collector saw on one MX host: one probe per
// address (an MX name's addresses may be different servers).
//
// Version 3 (this one) adds MTASTS; version 2 evidence is read with it
// absent (the domain's MTA-STS mode unknown).
type Evidence struct {
	Host  string   `json:"host"`
	Port  int      `json:"port"`
	Addrs []MXAddr `json:"addrs"`
	// MTASTS is the MTA-STS discovery of the estate domain the MX host
	// was found under (Asset.Domain): under a valid enforce policy a bad
	// certificate stops delivery, so email.mx.cert is high. nil: the
	// asset names no domain, or the evidence predates it.
	MTASTS *mtasts.Discovery `json:"mta_sts,omitempty"`
}

// MXAddr is what one address of the MX host said.
type MXAddr struct {
	Addr string `json:"addr"`
	// Session is the first SMTP session: greeting, EHLO, STARTTLS reply.
	Session *Session `json:"session,omitempty"`
	// Cert is the crypto/tls handshake on that first session.
	Cert *tlscheck.Endpoint `json:"cert,omitempty"`
	// Report is the raw prober's scan, one SMTP session per hello.
	Report    *tlsprobe.Report `json:"report,omitempty"`
	ScanError string           `json:"scan_error,omitempty"`
	ScanClass check.ErrClass   `json:"scan_class,omitempty"`
}

// unreachable: the address could not be connected to at all.
func (m MXAddr) unreachable() bool {
	s := m.Session
	return s != nil && s.Step == "connect" && s.Class == string(check.ErrUnreachable)
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
		Description: "The MX certificate's chain, its name (the MX host), key, signature, dates and revocation (a stapled OCSP status, or the CRL listing it), judged as in tls.cert.*. A fail or warning is high when the domain the MX host serves has a valid MTA-STS policy in enforce mode (senders that honour it refuse delivery over a bad certificate).",
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
		Family:   "email",
		Targets:  []check.Kind{check.KindMail},
		Rules:    allRules(),
		Collect:  o.collect,
		Evaluate: evaluate,
		// 2: every address, and the certificates as served (raw DER).
		// 3: the domain's MTA-STS discovery.
		Version: 3,
		Upgrade: upgrade,
		Policy:  tlscheck.Settings,
		// A dozen SMTP sessions, each allowed its own timeout, on MX hosts
		// that greet slowly on purpose: more than the default job limit.
		Timeout: 5 * time.Minute,
	})
}

// upgrade reads version 2 evidence: the same, without the MTA-STS
// discovery (the mode is unknown, so the certificate keeps its severity).
func upgrade(version int, data json.RawMessage) (Evidence, error) {
	var ev Evidence
	if version != 2 {
		return ev, fmt.Errorf("no upgrade from version %d", version)
	}
	err := json.Unmarshal(data, &ev)
	ev.MTASTS = nil
	return ev, err
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
	ehlo := o.EHLOName
	if ehlo == "" {
		ehlo = env.EHLOName
	}
	ev.Addrs = make([]MXAddr, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() { ev.Addrs[i] = o.probe(ctx, env, addr, a.Name, ehlo) })
	}
	if a.Domain != "" {
		wg.Go(func() {
			d := mtasts.Discover(ctx, env, a.Domain)
			ev.MTASTS = &d
		})
	}
	wg.Wait()
	for _, m := range ev.Addrs {
		if !m.unreachable() {
			return ev, nil
		}
	}
	s := ev.Addrs[0].Session
	return ev, check.WithClass(check.ErrUnreachable, fmt.Errorf("smtp: %s: %s", ev.Addrs[0].Addr, s.Failure))
}

// probe runs the SMTP session, the certificate handshake and the raw scan
// on one address. What the session learned before TLS (no STARTTLS, a
// refusal, a drop) is recorded on it, and nothing more is tried.
func (o Options) probe(ctx context.Context, env *check.Env, addr, host, ehlo string) MXAddr {
	m := MXAddr{Addr: addr}
	rec := &recorder{d: &Dialer{Dial: env.DialContext, EHLOName: ehlo}}
	ep := tlscheck.CertOf(ctx, rec.dial, addr, host, o.timeout())
	m.Session = rec.first
	if rec.err != nil || m.Session == nil {
		return m
	}
	tlscheck.CollectCRLs(ctx, env, &ep)
	m.Cert = &ep
	if c := ep.ErrorClass; c == check.ErrTimeout || c == check.ErrBlocked || c == check.ErrCanceled {
		// The server went silent after the go-ahead: one timeout is
		// enough to know the probes would be blocked too.
		m.ScanError, m.ScanClass = "not tried: the TLS handshake after STARTTLS failed: "+ep.Error, c
		return m
	}
	p := &tlsprobe.Prober{Dial: rec.dial, Timeout: o.timeout(), Parallel: o.Parallel}
	rep, err := p.Scan(ctx, addr, host)
	m.Report = rep
	if err != nil {
		m.ScanError, m.ScanClass = err.Error(), check.Classify(err)
	}
	return m
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

var ids = []string{MXStartTLS, MXTLS12, MXCert, MXCiphers, tlscheck.NoSSL, tlscheck.TLS13}

// evaluate judges each address, then takes each rule's worst verdict over
// them, naming the address that disagrees. An address that could not be
// connected to while another answered is not a fault.
func evaluate(in check.In[Evidence]) []check.Finding {
	ev := in.Evidence
	answered := false
	for _, m := range ev.Addrs {
		answered = answered || !m.unreachable()
	}
	per := map[string][]tlscheck.AddrVerdict{}
	for _, m := range ev.Addrs {
		if answered && m.unreachable() {
			continue
		}
		vs := evaluateAddr(m, ev.Host, in.CollectedAt, in.Policy)
		for _, id := range ids {
			per[id] = append(per[id], tlscheck.AddrVerdict{Addr: m.Addr, Verdict: vs[id]})
		}
	}
	var out []check.Finding
	for _, id := range ids {
		f := finding(id, tlscheck.Combine(per[id], len(ev.Addrs)))
		if id == MXCert {
			enforced(&f, ev.MTASTS, in)
		}
		out = append(out, f)
	}
	return out
}

// enforced makes a failing or warning email.mx.cert high when the domain's
// valid MTA-STS policy is in enforce mode (checks.md §1.6): senders that
// honour it then refuse to deliver over a certificate they cannot verify.
// An operator's severity override still wins (check.Policy.Severity).
func enforced(f *check.Finding, d *mtasts.Discovery, in check.In[Evidence]) {
	if d == nil || (f.Outcome != check.Fail && f.Outcome != check.Warn) {
		return
	}
	if mode, known := mtasts.InForce(*d, in.CollectedAt, in.Policy); !known || mode != mtasts.ModeEnforce {
		return
	}
	if f.Severity.Rank() < check.High.Rank() {
		f.Severity = check.High
	}
	f.Message += fmt.Sprintf("; %s has an MTA-STS policy in enforce mode, so senders that honour it refuse to deliver to this host", d.Domain)
}

// evaluateAddr judges one address.
func evaluateAddr(m MXAddr, host string, at time.Time, p *check.Policy) map[string]tlscheck.Verdict {
	s := m.Session
	all := func(v tlscheck.Verdict) map[string]tlscheck.Verdict {
		out := map[string]tlscheck.Verdict{}
		for _, id := range ids {
			out[id] = v
		}
		return out
	}
	first := func(v tlscheck.Verdict, rest tlscheck.Verdict) map[string]tlscheck.Verdict {
		out := all(rest)
		out[MXStartTLS] = v
		return out
	}
	if s == nil {
		return all(tlscheck.Verdict{Outcome: check.Unknown, Reason: string(check.ErrOther), Message: "no SMTP session"})
	}
	// Before TLS: no STARTTLS, or a refusal, decides everything.
	switch {
	case s.NoStartTLS:
		return first(verdict(check.Fail, "the server's EHLO reply does not offer STARTTLS (it offers %s): mail to it travels unencrypted", clipList(s.EHLO)),
			verdict(check.NA, "no STARTTLS, so no TLS to judge (see %s)", MXStartTLS))
	case s.Code >= 500:
		return first(verdict(check.Fail, "STARTTLS is advertised but refused: %d %s", s.Code, s.Reply),
			verdict(check.NA, "STARTTLS refused, so no TLS to judge (see %s)", MXStartTLS))
	case s.Failure != "":
		return all(tlscheck.Verdict{Outcome: check.Unknown, Reason: orBlocked(s.Class), Message: "probe blocked: " + s.Failure})
	}
	r := m.Report
	out := map[string]tlscheck.Verdict{
		MXStartTLS: startTLSVerdict(m),
		MXCert:     certVerdict(m.Cert, host, at, p),
	}
	if r == nil {
		u := tlscheck.Verdict{Outcome: check.Unknown, Reason: orBlocked(string(m.ScanClass)), Message: "probe blocked: " + m.ScanError}
		for _, id := range []string{MXTLS12, MXCiphers, tlscheck.NoSSL, tlscheck.TLS13} {
			out[id] = u
		}
		return out
	}
	out[MXTLS12] = tls12Verdict(r)
	out[MXCiphers] = ciphersVerdict(r, tlscheck.Settings.Get(p).MinDHBits)
	out[tlscheck.NoSSL] = tlscheck.EvalNoSSL(r)
	out[tlscheck.TLS13] = tlscheck.EvalTLS13(r)
	return out
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
func startTLSVerdict(ev MXAddr) tlscheck.Verdict {
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
// when it is told (a usable staple, or a CRL), or when a staple is there
// but unusable: a CRL that could not be read, with nothing stapled, is not
// held against the MX certificate (it would otherwise often go unjudged).
func certVerdict(ep *tlscheck.Endpoint, host string, at time.Time, p *check.Policy) tlscheck.Verdict {
	if ep == nil {
		return tlscheck.Verdict{Outcome: check.Unknown, Reason: string(check.ErrBlocked), Message: "no TLS handshake"}
	}
	vs := tlscheck.EvalCert(host, []tlscheck.Endpoint{*ep}, at, p)
	ids := []string{tlscheck.CertChain, tlscheck.CertName, tlscheck.CertExpiry, tlscheck.CertKey, tlscheck.CertSigAlg}
	if rv := vs[tlscheck.CertRevoke]; rv.Outcome != check.Unknown || tlscheck.StapleReason(rv.Reason) {
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
