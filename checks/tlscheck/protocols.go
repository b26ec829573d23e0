// Package tlscheck holds the tls.* checks of checks.md §1.1 for web hosts
// (port 443): Protocols runs the raw prober (versions, every accepted
// suite, server order, DH groups) on every address of the host, and
// Certificate makes one full crypto/tls handshake per (IP, SNI) and judges
// the chain, name, dates, keys, signatures and stapled OCSP status. The
// evaluation functions are exported for the mail-server checks
// (checks/smtptls), which run the same probes after STARTTLS.
package tlscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
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
	// Refused: the connection was refused, told from the error chain.
	Refused bool `json:"refused,omitempty"`
}

// NewAddrError records err for addr.
func NewAddrError(addr string, err error) AddrError {
	return AddrError{Addr: addr, Error: err.Error(), Class: check.Classify(err), Refused: errors.Is(err, syscall.ECONNREFUSED)}
}

// AddrScan is the prober's scan of one address.
type AddrScan struct {
	Addr   string           `json:"addr"`
	Report *tlsprobe.Report `json:"report,omitempty"`
	// Failure is why nothing could be told, when Report is nil.
	Failure *AddrError `json:"failure,omitempty"`
}

// ProtocolEvidence is what the Protocols collector saw.
type ProtocolEvidence struct {
	Host  string   `json:"host"`
	Port  int      `json:"port"`
	Addrs []string `json:"addrs"`
	// Scans are one per address, in the order of Addrs: a name's
	// addresses may be different servers (a pool, a migration half done).
	Scans []AddrScan `json:"scans"`
	// Closed: every address refused the connection (no TLS service).
	Closed bool `json:"closed,omitempty"`
}

// Protocols returns the tls.protocols collector for web hosts.
func Protocols() check.Check { return ProtocolsWith(Options{}) }

// ProtocolsWith is Protocols with options.
func ProtocolsWith(o Options) check.Check {
	return check.New(check.Spec[ProtocolEvidence]{
		ID:       "tls.protocols",
		Family:   "tls",
		Targets:  []check.Kind{check.KindHost},
		Rules:    ProtocolRules,
		Collect:  o.collectProtocols,
		Evaluate: evaluateProtocols,
		// 2: every address is scanned (was: the first that answered).
		Version: 2,
		Policy:  Settings,
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
	ev.Scans = ScanAll(ctx, o.Prober(env.DialContext), addrs, a.Name)
	return ev, scansErr(&ev.Closed, ev.Scans)
}

// ScanAll scans every address, at once (they are different IPs; the
// prober bounds the connections to each).
func ScanAll(ctx context.Context, p *tlsprobe.Prober, addrs []string, serverName string) []AddrScan {
	out := make([]AddrScan, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			out[i].Addr = addr
			rep, err := p.Scan(ctx, addr, serverName)
			if err != nil {
				f := NewAddrError(addr, err)
				out[i].Failure = &f
				return
			}
			out[i].Report = rep
		})
	}
	wg.Wait()
	return out
}

// scansErr is nil when some address was scanned; closed is set when every
// address refused the connection.
func scansErr(closed *bool, scans []AddrScan) error {
	refused := 0
	var first *AddrError
	for _, s := range scans {
		if s.Report != nil {
			return nil
		}
		if first == nil {
			first = s.Failure
		}
		if s.Failure != nil && s.Failure.Refused {
			refused++
		}
	}
	if refused == len(scans) && refused > 0 {
		*closed = true
		return nil
	}
	if first == nil {
		return check.WithClass(check.ErrInternal, errors.New("tls: no address was scanned"))
	}
	return check.WithClass(first.Class, fmt.Errorf("tls: %s: %s", first.Addr, first.Error))
}

func evaluateProtocols(in check.In[ProtocolEvidence]) []check.Finding {
	ev := in.Evidence
	ids := []string{NoSSL, MinVersion, TLS13, WeakCipher, CipherPref, DHGroup}
	var out []check.Finding
	if ev.Closed {
		for _, id := range ids {
			out = append(out, na("port %d refuses connections on every address (%v): no TLS service to judge", ev.Port, ev.Addrs).Finding(id))
		}
		return out
	}
	minDH := Settings.Get(in.Policy).MinDHBits
	rules := map[string]func(*tlsprobe.Report) Verdict{
		NoSSL: EvalNoSSL, MinVersion: EvalMinVersion, TLS13: EvalTLS13,
		WeakCipher: func(r *tlsprobe.Report) Verdict { return EvalWeakCiphers(r, false) },
		CipherPref: EvalCipherPreference,
		DHGroup:    func(r *tlsprobe.Report) Verdict { return EvalDHGroup(r, minDH) },
	}
	scanned := 0
	for _, s := range ev.Scans {
		if s.Report != nil {
			scanned++
		}
	}
	for _, id := range ids {
		var per []AddrVerdict
		for _, s := range ev.Scans {
			switch {
			case s.Report != nil && Silent(s.Report):
				per = append(per, AddrVerdict{s.Addr, Verdict{Outcome: check.Unknown, Reason: string(check.ErrBlocked),
					Message: fmt.Sprintf("port %d accepts connections but closed each of %d hellos without a TLS answer or alert: no TLS service could be judged", ev.Port, s.Report.Connections)}})
			case s.Report != nil:
				per = append(per, AddrVerdict{s.Addr, rules[id](s.Report)})
			case s.Failure == nil:
			case scanned > 0 && s.Failure.Class == check.ErrUnreachable:
				// Another address answered; a dead one is not a TLS fault.
			default:
				per = append(per, AddrVerdict{s.Addr, Verdict{Outcome: check.Unknown, Reason: string(s.Failure.Class),
					Message: "could not scan: " + s.Failure.Error}})
			}
		}
		out = append(out, Combine(per, len(ev.Scans)).Finding(id))
	}
	return out
}
