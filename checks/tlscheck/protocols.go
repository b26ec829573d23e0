// Package tlscheck holds the tls.* checks of checks.md §1.1 for web hosts
// (port 443): Protocols runs the raw prober (versions, every accepted
// suite, server order, DH groups) on one address of the host, and
// Certificate makes one full crypto/tls handshake per (IP, SNI) and judges
// the chain, name, dates, keys, signatures and stapled OCSP status. The
// evaluation functions are exported for the mail-server checks
// (checks/smtptls), which run the same probes after STARTTLS.
package tlscheck

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlsprobe"
)

// Options tune the collectors; the zero value is the default.
type Options struct {
	// Timeout bounds one connection; 0: 5 s.
	Timeout time.Duration
	// Parallel is how many probe connections one host gets at once; 0: 2.
	// (The scanner's scope guard also caps connections per IP.)
	Parallel int
	// MaxAddrs bounds the addresses of a host that are tried; 0: 4.
	MaxAddrs int
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 5 * time.Second
}

func (o Options) maxAddrs() int {
	if o.MaxAddrs > 0 {
		return o.MaxAddrs
	}
	return 4
}

// Prober returns a raw prober over dial with these options.
func (o Options) Prober(dial tlsprobe.DialFunc) *tlsprobe.Prober {
	return &tlsprobe.Prober{Dial: dial, Timeout: o.timeout(), Parallel: o.Parallel}
}

// AddrError records an address that could not be probed.
type AddrError struct {
	Addr  string         `json:"addr"`
	Error string         `json:"error"`
	Class check.ErrClass `json:"class"`
}

// ProtocolEvidence is what the Protocols collector saw.
type ProtocolEvidence struct {
	Host  string   `json:"host"`
	Port  int      `json:"port"`
	Addrs []string `json:"addrs"`
	// Report is the scan of the first address that answered.
	Report *tlsprobe.Report `json:"report,omitempty"`
	// Tried are the addresses that failed before it.
	Tried []AddrError `json:"tried,omitempty"`
	// Closed: every address refused the connection (no TLS service).
	Closed bool `json:"closed,omitempty"`
}

// Protocols returns the tls.protocols collector for web hosts.
func Protocols() check.Check { return ProtocolsWith(Options{}) }

// ProtocolsWith is Protocols with options.
func ProtocolsWith(o Options) check.Check {
	return check.New(check.Spec[ProtocolEvidence]{
		ID:       "tls.protocols",
		Rules:    ProtocolRules,
		Applies:  func(a check.Asset) bool { return a.Kind == check.KindHost },
		Collect:  o.collectProtocols,
		Evaluate: evaluateProtocols,
	})
}

// Addrs resolves host to at most max "ip:port" addresses.
func Addrs(ctx context.Context, env *check.Env, host string, port, max int) ([]string, error) {
	ips, err := env.Addrs(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("tls: resolve %s: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, check.WithClass(check.ErrDNS, fmt.Errorf("tls: %s has no address", host))
	}
	var out []string
	for _, ip := range ips {
		if len(out) == max {
			break
		}
		out = append(out, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
	}
	return out, nil
}

func (o Options) collectProtocols(ctx context.Context, env *check.Env, a check.Asset) (ProtocolEvidence, error) {
	ev := ProtocolEvidence{Host: a.Name, Port: env.Port(443)}
	addrs, err := Addrs(ctx, env, a.Name, ev.Port, o.maxAddrs())
	if err != nil {
		return ev, err
	}
	ev.Addrs = addrs
	rep, tried, err := ScanFirst(ctx, o.Prober(env.DialContext), addrs, a.Name)
	ev.Report, ev.Tried = rep, tried
	if err != nil && allRefused(tried) {
		ev.Closed = true
		return ev, nil
	}
	return ev, err
}

// ScanFirst scans the first address that can be scanned: an unreachable
// address (refused, no route) is cheap to skip, a timeout is not, so only
// the former moves on to the next address.
func ScanFirst(ctx context.Context, p *tlsprobe.Prober, addrs []string, serverName string) (*tlsprobe.Report, []AddrError, error) {
	var tried []AddrError
	var last error
	for _, addr := range addrs {
		rep, err := p.Scan(ctx, addr, serverName)
		if err == nil {
			return rep, tried, nil
		}
		last = err
		c := check.Classify(err)
		tried = append(tried, AddrError{Addr: addr, Error: err.Error(), Class: c})
		if c != check.ErrUnreachable {
			break
		}
	}
	return nil, tried, last
}

func allRefused(tried []AddrError) bool {
	if len(tried) == 0 {
		return false
	}
	for _, t := range tried {
		if t.Class != check.ErrUnreachable || !containsRefused(t.Error) {
			return false
		}
	}
	return true
}

// containsRefused reads "connection refused" from a stored error text
// (evidence keeps text, not the error chain).
func containsRefused(msg string) bool {
	return strings.Contains(msg, syscall.ECONNREFUSED.Error())
}

func evaluateProtocols(in check.In[ProtocolEvidence]) []check.Finding {
	ev := in.Evidence
	ids := []string{NoSSL, MinVersion, TLS13, WeakCipher, CipherPref, DHGroup}
	if ev.Closed {
		var out []check.Finding
		for _, id := range ids {
			out = append(out, na("port %d refuses connections on every address (%v): no TLS service to judge", ev.Port, ev.Addrs).Finding(id))
		}
		return out
	}
	r := ev.Report
	if r == nil { // Collect returned an error; the adapter handles it
		return nil
	}
	if Silent(r) {
		v := Verdict{Outcome: check.Unknown, Reason: string(check.ErrBlocked),
			Message: fmt.Sprintf("port %d accepts connections but closed each of %d hellos without a TLS answer or alert: no TLS service could be judged", ev.Port, r.Connections)}
		var out []check.Finding
		for _, id := range ids {
			out = append(out, v.Finding(id))
		}
		return out
	}
	return []check.Finding{
		EvalNoSSL(r).Finding(NoSSL),
		EvalMinVersion(r).Finding(MinVersion),
		EvalTLS13(r).Finding(TLS13),
		EvalWeakCiphers(r, false).Finding(WeakCipher),
		EvalCipherPreference(r).Finding(CipherPref),
		EvalDHGroup(r, in.Policy.TLS.MinDHBits).Finding(DHGroup),
	}
}
