package tlscheck

import (
	"context"
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
		Rules:    CertRules,
		Applies:  func(a check.Asset) bool { return a.Kind == check.KindHost },
		Collect:  o.collectCert,
		Evaluate: evaluateCert,
	})
}

func (o Options) collectCert(ctx context.Context, env *check.Env, a check.Asset) (CertEvidence, error) {
	ev := CertEvidence{Host: a.Name, Port: env.Port(443)}
	addrs, err := Addrs(ctx, env, a.Name, ev.Port, o.maxAddrs())
	if err != nil {
		return ev, err
	}
	now := env.Clock()
	for _, addr := range addrs {
		ep := CertOf(ctx, env.DialContext, addr, a.Name, env.Roots, now, o.timeout())
		CheckCRL(ctx, env, &ep)
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
		if containsRefused(ep.Error) {
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
	vs := EvalCert(ev.Endpoints, in.CollectedAt, in.Policy)
	for _, id := range ids {
		out = append(out, vs[id].Finding(id))
	}
	return out
}

// EvalCert judges the certificate rules over every endpoint: each rule's
// verdict is the worst over the endpoints that were read. An endpoint that
// could not be read makes the rule unknown, unless it was merely
// unreachable (no route, refused) while another address answered.
func EvalCert(eps []Endpoint, now time.Time, p *check.Policy) map[string]Verdict {
	if p == nil {
		p = check.DefaultPolicy()
	}
	rules := map[string]func(Endpoint) Verdict{
		CertChain:  chainVerdict,
		CertName:   nameVerdict,
		CertExpiry: func(ep Endpoint) Verdict { return expiryVerdict(ep, now, p.TLS) },
		CertKey:    func(ep Endpoint) Verdict { return keyVerdict(ep, p.TLS) },
		CertSigAlg: sigVerdict,
		CertRevoke: func(ep Endpoint) Verdict { return revocationVerdict(ep, now) },
	}
	read := 0
	for _, ep := range eps {
		if !ep.failed() {
			read++
		}
	}
	out := map[string]Verdict{}
	for id, rule := range rules {
		var per []addrVerdict
		for _, ep := range eps {
			switch {
			case !ep.failed():
				per = append(per, addrVerdict{ep.Addr, rule(ep)})
			case read > 0 && ep.ErrorClass == check.ErrUnreachable:
				// Another address answered; a dead one is not a certificate fault.
			default:
				per = append(per, addrVerdict{ep.Addr, Verdict{Outcome: check.Unknown, Reason: string(ep.ErrorClass),
					Message: "could not read the certificate: " + ep.Error}})
			}
		}
		out[id] = combine(per, len(eps))
	}
	return out
}

type addrVerdict struct {
	addr string
	v    Verdict
}

// combine takes the worst verdict; when addresses disagree, the message
// says which addresses it is about.
func combine(per []addrVerdict, total int) Verdict {
	if len(per) == 0 {
		return Verdict{Outcome: check.Unknown, Reason: string(check.ErrOther), Message: "no address could be checked"}
	}
	var outcomes []check.Outcome
	for _, p := range per {
		outcomes = append(outcomes, p.v.Outcome)
	}
	worst := check.Worst(outcomes...)
	var w Verdict
	msgs := map[string][]string{}
	var order []string
	for _, p := range per {
		if p.v.Outcome != worst {
			continue
		}
		if w.Outcome == "" || p.v.Severity.Rank() > w.Severity.Rank() {
			w = p.v
		}
		if _, ok := msgs[p.v.Message]; !ok {
			order = append(order, p.v.Message)
		}
		msgs[p.v.Message] = append(msgs[p.v.Message], p.addr)
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

func chainVerdict(ep Endpoint) Verdict {
	ch := ep.Chain
	if ch == nil {
		return Verdict{Outcome: check.Unknown, Reason: string(check.ErrOther), Message: "no chain to judge"}
	}
	if ch.Trusted {
		root := ""
		if len(ch.Built) > 0 {
			root = ch.Built[len(ch.Built)-1]
		}
		if !ch.InOrder {
			return warn("the chain verifies to %q, but the server sends its certificates out of order", root)
		}
		return pass("the served chain is complete, in order, and verifies to the trusted root %q", root)
	}
	leaf := ep.Served[0]
	switch ch.Problem {
	case "self-signed":
		return fail("the certificate is self-signed (%q): clients cannot trust it", leaf.Subject)
	case "untrusted-root":
		return fail("the chain ends at %q, which is not a trusted root", ep.Served[len(ep.Served)-1].Subject)
	case "missing-intermediate":
		return fail("the chain is incomplete: %s", ch.Detail)
	case "insecure-signature":
		return fail("the chain is signed with an insecure algorithm, which clients reject: %s", ch.Detail)
	}
	return fail("the chain does not verify: %s", ch.Detail)
}

func nameVerdict(ep Endpoint) Verdict {
	if ep.NameMatch {
		return pass("the certificate covers the host name")
	}
	leaf := ep.Served[0]
	names := leaf.DNSNames
	if len(names) == 0 {
		names = []string{"no DNS names"}
	}
	return fail("the certificate does not cover the host name: it names %s", clipList(names, 5))
}

// judged are the certificates whose dates, keys and signatures count: the
// leaf and every served certificate that is not a self-signed root (a root
// the server sends is ignored by clients, which use their own copy).
func judged(ep Endpoint) []CertInfo {
	out := []CertInfo{ep.Served[0]}
	for _, c := range ep.Served[1:] {
		if !(c.SelfSigned && c.CA) {
			out = append(out, c)
		}
	}
	return out
}

func what(i int, c CertInfo) string {
	if i == 0 {
		return "the certificate"
	}
	return fmt.Sprintf("the intermediate %q", c.Subject)
}

func expiryVerdict(ep Endpoint, now time.Time, p check.TLSPolicy) Verdict {
	certs := judged(ep)
	for i, c := range certs {
		if now.Before(c.NotBefore) {
			return fail("%s is not valid until %s", what(i, c), c.NotBefore.Format(time.DateOnly))
		}
	}
	for i, c := range certs {
		if !now.Before(c.NotAfter) {
			return fail("%s expired on %s", what(i, c), c.NotAfter.Format(time.DateOnly))
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
		v := warn("%s expires on %s, in %d days", what(idx, soonest), soonest.NotAfter.Format(time.DateOnly), days)
		v.Severity = check.High
		return v
	case days <= p.CertWarnDays:
		v := warn("%s expires on %s, in %d days", what(idx, soonest), soonest.NotAfter.Format(time.DateOnly), days)
		v.Severity = check.Medium
		return v
	}
	return pass("valid until %s (%d days)", soonest.NotAfter.Format(time.DateOnly), days)
}

func keyVerdict(ep Endpoint, p check.TLSPolicy) Verdict {
	var weak, seen []string
	for i, c := range judged(ep) {
		desc := fmt.Sprintf("%s %d", c.KeyType, c.KeyBits)
		seen = append(seen, desc)
		switch {
		case c.KeyType == "RSA" && c.KeyBits < p.MinRSABits, c.KeyType == "ECDSA" && c.KeyBits < p.MinECBits,
			c.KeyType == "DSA" && c.KeyBits < p.MinRSABits:
			weak = append(weak, fmt.Sprintf("%s has a %d-bit %s key", what(i, c), c.KeyBits, c.KeyType))
		case c.KeyType == "unknown":
			return Verdict{Outcome: check.Unknown, Reason: string(check.ErrOther), Message: what(i, c) + " has a key of an unrecognised type"}
		}
	}
	if len(weak) > 0 {
		return fail("%s (minimum RSA %d, EC %d)", strings.Join(weak, "; "), p.MinRSABits, p.MinECBits)
	}
	return pass("keys: %s", strings.Join(seen, ", "))
}

func sigVerdict(ep Endpoint) Verdict {
	var weak []string
	for i, c := range judged(ep) {
		u := strings.ToUpper(c.SigAlg)
		if strings.Contains(u, "SHA1") || strings.Contains(u, "MD5") || strings.Contains(u, "MD2") {
			weak = append(weak, fmt.Sprintf("%s is signed with %s", what(i, c), c.SigAlg))
		}
	}
	if len(weak) > 0 {
		return fail("%s", strings.Join(weak, "; "))
	}
	algs := map[string]bool{}
	for _, c := range judged(ep) {
		algs[c.SigAlg] = true
	}
	var list []string
	for a := range algs {
		list = append(list, a)
	}
	sort.Strings(list)
	return pass("signed with %s", strings.Join(list, ", "))
}

// revocationVerdict is the worst of the leaf's status and the served
// intermediates' CRLs.
func revocationVerdict(ep Endpoint, now time.Time) Verdict {
	v := leafRevocation(ep, now)
	for _, c := range ep.IntermediateCRLs {
		if c.Signature == "no-issuer" {
			// The chain does not reach this intermediate's issuer:
			// tls.cert.chain says so; its CRL cannot be trusted or blamed.
			continue
		}
		iv := judgeCRL(&c, fmt.Sprintf("the intermediate %q", c.Subject), now)
		switch {
		case iv.Outcome == check.Pass && v.Outcome == check.Pass:
			v.Message += "; " + iv.Message
		case check.Worst(v.Outcome, iv.Outcome) != v.Outcome:
			v = iv
		}
	}
	return v
}

func leafRevocation(ep Endpoint, now time.Time) Verdict {
	o := ep.OCSP
	switch {
	case o == nil:
		return crlVerdict(ep, now)
	case o.Status == "revoked":
		return fail("the stapled OCSP response says the certificate was revoked on %s", o.RevokedAt.Format(time.DateOnly))
	case o.Status == "unparsed":
		return Verdict{Outcome: check.Unknown, Reason: string(check.ErrMalformed), Message: "the stapled OCSP response does not parse: " + o.Error}
	case o.Status == "unknown":
		return warn("the stapled OCSP response gives the status unknown")
	case !o.NextUpdate.IsZero() && now.After(o.NextUpdate):
		return warn("the stapled OCSP response says good, but it is stale (next update was due %s)", o.NextUpdate.Format(time.DateOnly))
	}
	return pass("the stapled OCSP response says good")
}
