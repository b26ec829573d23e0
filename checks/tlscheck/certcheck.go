package tlscheck

import (
	"context"
	"crypto/x509"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// CertEvidence is what the Certificate collector saw: one handshake per
// address of the host, with the host name as SNI.
type CertEvidence struct {
	Host      string     `json:"host"`
	Port      int        `json:"port"`
	Endpoints []Endpoint `json:"endpoints"`
	// Closed: every address refused the connection (no TLS service).
	Closed bool `json:"closed,omitempty"`
}

// Certificate returns the tls.cert collector for web hosts.
func Certificate() check.Check { return CertificateWith(Options{}) }

// CertificateWith is Certificate with options.
func CertificateWith(o Options) check.Check {
	return check.New(check.Spec[CertEvidence]{
		ID:       "tls.cert",
		Family:   "tls",
		Targets:  []check.Kind{check.KindHost},
		Rules:    CertRules,
		Collect:  o.collectCert,
		Evaluate: evaluateCert,
		// 2: the served DER, the staple and CRL facts instead of verdicts.
		Version: 2,
		Policy:  Settings,
	})
}

func (o Options) collectCert(ctx context.Context, env *check.Env, a check.Asset) (CertEvidence, error) {
	ev := CertEvidence{Host: a.Name, Port: env.Port(443)}
	addrs, err := Addrs(ctx, env, a.Name, ev.Port, o.maxAddrs())
	if err != nil {
		return ev, err
	}
	for _, addr := range addrs {
		ep := CertOf(ctx, env.DialContext, addr, a.Name, o.timeout())
		CollectCRLs(ctx, env, &ep)
		ev.Endpoints = append(ev.Endpoints, ep)
	}
	return ev, endpointsErr(&ev.Closed, ev.Endpoints)
}

// endpointsErr is nil when some endpoint was read; closed is set when
// every address refused the connection.
func endpointsErr(closed *bool, eps []Endpoint) error {
	refused := 0
	for _, ep := range eps {
		if !ep.failed() {
			return nil
		}
		if ep.Refused {
			refused++
		}
	}
	if refused == len(eps) && refused > 0 {
		*closed = true
		return nil
	}
	first := eps[0]
	return check.WithClass(first.ErrorClass, fmt.Errorf("tls: %s: %s", first.Addr, first.Error))
}

func evaluateCert(in check.In[CertEvidence]) []check.Finding {
	ev := in.Evidence
	ids := []string{CertChain, CertName, CertExpiry, CertKey, CertSigAlg, CertRevoke}
	var out []check.Finding
	if ev.Closed {
		for _, id := range ids {
			out = append(out, na("port %d refuses connections on every address: no certificate to judge", ev.Port).Finding(id))
		}
		return out
	}
	vs := EvalCert(ev.Host, ev.Endpoints, in.CollectedAt, in.Policy)
	for _, id := range ids {
		out = append(out, vs[id].Finding(id))
	}
	return out
}

// EvalCert judges the certificate rules over every endpoint of host, at
// the collection time at, against p's trust anchors and thresholds: each
// rule's verdict is the worst over the endpoints that were read. An
// endpoint that could not be read makes the rule unknown, unless it was
// merely unreachable (no route, refused) while another address answered.
func EvalCert(host string, eps []Endpoint, at time.Time, p *check.Policy) map[string]Verdict {
	if p == nil {
		p = check.DefaultPolicy()
	}
	pol := Settings.Get(p)
	rules := map[string]func(*analysis) Verdict{
		CertChain:  chainVerdict,
		CertName:   nameVerdict,
		CertExpiry: func(a *analysis) Verdict { return expiryVerdict(a, pol) },
		CertKey:    func(a *analysis) Verdict { return keyVerdict(a, pol) },
		CertSigAlg: sigVerdict,
		CertRevoke: revocationVerdict,
	}
	type judged struct {
		ep  Endpoint
		a   *analysis
		err error
	}
	var js []judged
	read := 0
	for _, ep := range eps {
		j := judged{ep: ep}
		if !ep.failed() {
			read++
			j.a, j.err = analyse(ep, host, p.Roots, at)
		}
		js = append(js, j)
	}
	out := map[string]Verdict{}
	for id, rule := range rules {
		var per []AddrVerdict
		for _, j := range js {
			ep := j.ep
			switch {
			case !ep.failed() && j.err == nil:
				per = append(per, AddrVerdict{ep.Addr, rule(j.a)})
			case !ep.failed():
				per = append(per, AddrVerdict{ep.Addr, Verdict{Outcome: check.Unknown, Reason: string(check.ErrMalformed),
					Message: "the recorded certificates cannot be judged: " + j.err.Error()}})
			case read > 0 && ep.ErrorClass == check.ErrUnreachable:
				// Another address answered; a dead one is not a certificate fault.
			default:
				per = append(per, AddrVerdict{ep.Addr, Verdict{Outcome: check.Unknown, Reason: string(ep.ErrorClass),
					Message: "could not read the certificate: " + ep.Error}})
			}
		}
		out[id] = Combine(per, len(eps))
	}
	return out
}

// AddrVerdict is one address's verdict on a rule.
type AddrVerdict struct {
	Addr    string
	Verdict Verdict
}

// Combine takes the worst verdict over addresses (total were tried); when
// they disagree, or some were not judged, the message says which
// addresses it is about.
func Combine(per []AddrVerdict, total int) Verdict {
	if len(per) == 0 {
		return Verdict{Outcome: check.Unknown, Reason: string(check.ErrOther), Message: "no address could be checked"}
	}
	var outcomes []check.Outcome
	for _, p := range per {
		outcomes = append(outcomes, p.Verdict.Outcome)
	}
	worst := check.Worst(outcomes...)
	var w Verdict
	msgs := map[string][]string{}
	var order []string
	for _, p := range per {
		if p.Verdict.Outcome != worst {
			continue
		}
		if w.Outcome == "" || p.Verdict.Severity.Rank() > w.Severity.Rank() {
			w = p.Verdict
		}
		if _, ok := msgs[p.Verdict.Message]; !ok {
			order = append(order, p.Verdict.Message)
		}
		msgs[p.Verdict.Message] = append(msgs[p.Verdict.Message], p.Addr)
	}
	if len(order) == 1 && len(msgs[order[0]]) == total {
		return w
	}
	var parts []string
	for _, m := range order {
		parts = append(parts, fmt.Sprintf("%s (at %s)", m, strings.Join(msgs[m], ", ")))
	}
	w.Message = strings.Join(parts, "; ")
	return w
}

func chainVerdict(a *analysis) Verdict {
	if a.chain != nil {
		root := a.chain[len(a.chain)-1].Subject.String()
		if !a.inOrder {
			return warn("the chain verifies to %q, but the server sends its certificates out of order", root)
		}
		return pass("the served chain is complete, in order, and verifies to the trusted root %q", root)
	}
	switch a.problem {
	case problemSelfSigned:
		return fail("the certificate is self-signed (%q): clients cannot trust it", a.certs[0].Subject.String())
	case problemUntrusted:
		return fail("the chain ends at %q, which is not a trusted root", a.certs[len(a.certs)-1].Subject.String())
	case problemMissing:
		return fail("the chain is incomplete: %s", a.detail)
	case problemInsecure:
		return fail("the chain is signed with an insecure algorithm, which clients reject: %s", a.detail)
	case problemNotForServer:
		return fail("the certificate is not valid for server authentication: %s", a.detail)
	}
	return fail("the chain does not verify: %s", a.detail)
}

func nameVerdict(a *analysis) Verdict {
	leaf := a.certs[0]
	if leaf.VerifyHostname(a.host) == nil {
		return pass("the certificate covers the host name")
	}
	names := leaf.DNSNames
	if len(names) > 20 {
		names = names[:20]
	}
	if len(names) == 0 {
		names = []string{"no DNS names"}
	}
	return fail("the certificate does not cover the host name: it names %s", clipList(names, 5))
}

// expiryVerdict judges the path's dates; an out-of-date certificate off
// the path (an expired cross-signed root still served) is a note only.
func expiryVerdict(a *analysis, p TLSPolicy) Verdict {
	v := pathExpiry(a, p)
	for _, c := range a.offPath() {
		switch {
		case a.at.Before(c.NotBefore):
			v.Message += fmt.Sprintf("; note: the server also sends %q, not valid until %s, which clients do not use (it is not on the path to the trusted root)",
				c.Subject.String(), c.NotBefore.UTC().Format(time.DateOnly))
		case !a.at.Before(c.NotAfter):
			v.Message += fmt.Sprintf("; note: the server also sends %q, expired on %s, which clients do not use (it is not on the path to the trusted root)",
				c.Subject.String(), c.NotAfter.UTC().Format(time.DateOnly))
		}
	}
	return v
}

func pathExpiry(a *analysis, p TLSPolicy) Verdict {
	certs, now := a.path(), a.at
	for i, c := range certs {
		if now.Before(c.NotBefore) {
			return fail("%s is not valid until %s", what(i, c), c.NotBefore.UTC().Format(time.DateOnly))
		}
	}
	for i, c := range certs {
		if !now.Before(c.NotAfter) {
			return fail("%s expired on %s", what(i, c), c.NotAfter.UTC().Format(time.DateOnly))
		}
	}
	soonest, idx := certs[0], 0
	for i, c := range certs {
		if c.NotAfter.Before(soonest.NotAfter) {
			soonest, idx = c, i
		}
	}
	days := int(math.Floor(soonest.NotAfter.Sub(now).Hours() / 24))
	switch {
	case days <= p.CertHighDays:
		v := warn("%s expires on %s, in %d days", what(idx, soonest), soonest.NotAfter.UTC().Format(time.DateOnly), days)
		v.Severity = check.High
		return v
	case days <= p.CertWarnDays:
		v := warn("%s expires on %s, in %d days", what(idx, soonest), soonest.NotAfter.UTC().Format(time.DateOnly), days)
		v.Severity = check.Medium
		return v
	}
	return pass("valid until %s (%d days)", soonest.NotAfter.UTC().Format(time.DateOnly), days)
}

func keyVerdict(a *analysis, p TLSPolicy) Verdict {
	var weak, seen []string
	for i, c := range a.path() {
		typ, bits := keyOf(c)
		seen = append(seen, fmt.Sprintf("%s %d", typ, bits))
		switch {
		case typ == "RSA" && bits < p.MinRSABits, typ == "ECDSA" && bits < p.MinECBits, typ == "DSA" && bits < p.MinRSABits:
			weak = append(weak, fmt.Sprintf("%s has a %d-bit %s key", what(i, c), bits, typ))
		case typ == "unknown":
			return Verdict{Outcome: check.Unknown, Reason: string(check.ErrOther), Message: what(i, c) + " has a key of an unrecognised type"}
		}
	}
	if len(weak) > 0 {
		return fail("%s (minimum RSA %d, EC %d)", strings.Join(weak, "; "), p.MinRSABits, p.MinECBits)
	}
	return pass("keys: %s", strings.Join(seen, ", "))
}

// weakSig are the signature algorithms verifiers reject (SHA-1, MD5, MD2).
var weakSig = map[x509.SignatureAlgorithm]bool{
	x509.MD2WithRSA: true, x509.MD5WithRSA: true, x509.SHA1WithRSA: true,
	x509.DSAWithSHA1: true, x509.ECDSAWithSHA1: true,
}

func sigVerdict(a *analysis) Verdict {
	var weak []string
	algs := map[string]bool{}
	for i, c := range a.path() {
		algs[c.SignatureAlgorithm.String()] = true
		if weakSig[c.SignatureAlgorithm] {
			weak = append(weak, fmt.Sprintf("%s is signed with %v", what(i, c), c.SignatureAlgorithm))
		}
	}
	if len(weak) > 0 {
		return fail("%s", strings.Join(weak, "; "))
	}
	var list []string
	for a := range algs {
		list = append(list, a)
	}
	sort.Strings(list)
	return pass("signed with %s", strings.Join(list, ", "))
}
