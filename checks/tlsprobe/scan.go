package tlsprobe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// State is what a scan learned about one protocol version.
type State string

const (
	Accepted State = "accepted"
	Refused  State = "refused"
	Unknown  State = "unknown" // a probe failed: could not tell
)

// VersionResult is one version's verdict and accepted suites.
type VersionResult struct {
	Version Version `json:"version"`
	State   State   `json:"state"`
	// Suites are the accepted suites in the order found: the server's
	// order when it imposes one, ours otherwise.
	Suites []SuiteID `json:"suites,omitempty"`
	// Complete: elimination ran until the server refused what was left, so
	// Suites is every registry suite the server accepts at this version.
	// False when a probe failed midway: Suites is then a lower bound.
	Complete bool `json:"complete"`
	// Refusal is how the server refused (an alert name, "connection
	// closed"), or why the refusal is inferred.
	Refusal string `json:"refusal,omitempty"`
	// Inferred: no hello of this version was sent; a hello of a higher
	// version was answered with a lower one, or refused, and a server
	// picks the highest version it supports up to the client's (RFC 5246
	// E.1), so this one is not supported.
	Inferred   bool           `json:"inferred,omitempty"`
	Error      string         `json:"error,omitempty"`
	ErrorClass check.ErrClass `json:"error_class,omitempty"`
	// Stalled: a hello of this version was sent and got no answer in time
	// (its ErrorClass is timeout). Unlike a refusal this says nothing
	// about support: the server, or a middlebox in front of it, hangs on
	// that hello. An Accepted version with Stalled stalled midway through
	// its suites (Complete is false). A version whose hello was never sent,
	// because the address had stalled or died, is Unknown without it.
	Stalled bool `json:"stalled,omitempty"`
	// SSLv2Ciphers are the SSLv2 cipher kinds a server offered.
	SSLv2Ciphers []uint32 `json:"sslv2_ciphers,omitempty"`
}

// Report is everything one Scan learned about one address.
type Report struct {
	Addr       string          `json:"addr"`
	ServerName string          `json:"server_name,omitempty"`
	Versions   []VersionResult `json:"versions"` // SSLv2 … TLS 1.3
	// Preference is "server" when the server imposes its own suite order,
	// "client" when it follows ours, "mixed" when neither, "" when not
	// tested (fewer than two suites at PreferenceVersion) or unknown.
	Preference        string  `json:"preference,omitempty"`
	PreferenceVersion Version `json:"preference_version,omitempty"`
	PreferenceError   string  `json:"preference_error,omitempty"`
	// DHBits are the finite-field DH prime sizes seen (sorted, distinct),
	// read from the ServerKeyExchange whenever a DHE suite was chosen.
	DHBits []int `json:"dh_bits,omitempty"`
	// Curves are the ECDHE curves seen in ServerKeyExchange messages.
	Curves []Group `json:"curves,omitempty"`
	// TLS13Group is the group of the TLS 1.3 key share the server chose
	// (or asked for with HelloRetryRequest).
	TLS13Group Group `json:"tls13_group,omitempty"`
	// Certificates is the DER chain the server sent in the clear (TLS ≤
	// 1.2), from the highest version that sent one.
	Certificates [][]byte `json:"-"`
	Connections  int      `json:"connections"`
	Elapsed      Duration `json:"elapsed"`
	Notes        []string `json:"notes,omitempty"`
}

// Duration is stored as text ("1.2s").
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
func (d *Duration) UnmarshalText(b []byte) error {
	x, err := time.ParseDuration(string(b))
	*d = Duration(x)
	return err
}

// Version returns the result for v (a zero State if v was not scanned).
func (r *Report) Version(v Version) VersionResult {
	for _, x := range r.Versions {
		if x.Version == v {
			return x
		}
	}
	return VersionResult{Version: v}
}

// Accepts reports whether the server accepted v.
func (r *Report) Accepts(v Version) bool { return r.Version(v).State == Accepted }

// AcceptedSuites is the number of accepted (version, suite) pairs: the K
// of the connection budget K + V + 3.
func (r *Report) AcceptedSuites() int {
	n := 0
	for _, v := range r.Versions {
		n += len(v.Suites)
	}
	return n
}

// AcceptedVersions is the number of versions accepted (V).
func (r *Report) AcceptedVersions() int {
	n := 0
	for _, v := range r.Versions {
		if v.State == Accepted {
			n++
		}
	}
	return n
}

// scan is one Scan's working state.
type scan struct {
	p      *Prober
	addr   string
	sni    string
	health health
	conns  atomic.Int64
	max    int64

	mu       sync.Mutex
	results  map[Version]*VersionResult
	dh       map[int]bool
	curves   map[Group]bool
	certs    [][]byte
	certsVer Version
	notes    []string
	tls13Grp Group
	pref     string
	prefVer  Version
	prefErr  string
}

// Scan probes every version and enumerates each accepted version's suites.
// The error is non-nil only when nothing could be told (every probe
// failed); otherwise failures are recorded per version as Unknown.
func (p *Prober) Scan(ctx context.Context, addr, serverName string) (*Report, error) {
	start := time.Now()
	max := int64(p.MaxConns)
	if max <= 0 {
		max = 600
	}
	s := &scan{p: p, addr: addr, sni: serverName, max: max,
		results: map[Version]*VersionResult{}, dh: map[int]bool{}, curves: map[Group]bool{}}

	// The first TLS 1.2 hello decides whether TLS 1.3 needs a probe of its
	// own: a TLS 1.3 server that negotiates TLS 1.2 must say so in its
	// random (RFC 8446 §4.1.3), so a TLS 1.2 answer without the sentinel
	// settles TLS 1.3 as refused for free.
	offer := ids(SuitesAt(TLS12))
	first, ferr := s.probe(ctx, Hello{Version: TLS12, Suites: offer})
	if stalled(ferr) {
		// Nothing is known of the address yet: send the first hello once
		// more before going on (a second stall marks the address stalled,
		// so a tarpit costs two timeouts).
		first, ferr = s.probe(ctx, Hello{Version: TLS12, Suites: offer})
	}
	probe13 := true
	if ferr == nil && first.Accepted() && first.ServerHello.Downgrade == "" {
		probe13 = false
		s.set(&VersionResult{Version: TLS13, State: Refused, Complete: true, Inferred: true,
			Refusal: fmt.Sprintf("inferred: the %v answer to a TLS 1.2 hello carries no TLS 1.3 downgrade sentinel (RFC 8446 4.1.3)", first.ServerHello.Version)})
	}
	modern := func() {
		if probe13 {
			s.tls13(ctx)
		}
		s.sslv2(ctx)
	}
	if p.Parallel == 1 {
		modern()
		s.legacy(ctx, first, ferr)
	} else {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); modern() }()
		s.legacy(ctx, first, ferr)
		wg.Wait()
	}
	rep := s.report()
	rep.Elapsed = Duration(time.Since(start))
	for _, v := range rep.Versions {
		if v.State != Unknown {
			return rep, nil
		}
	}
	return rep, fmt.Errorf("tlsprobe: %s: no version could be tested: %w", addr, s.firstErr())
}

func (s *scan) firstErr() error {
	if err := s.health.get(); err != nil {
		return err
	}
	for _, v := range Versions {
		if r := s.results[v]; r != nil && r.Error != "" {
			return check.WithClass(r.ErrorClass, errors.New(r.Error))
		}
	}
	return errors.New("no probe ran")
}

func (s *scan) report() *Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := &Report{Addr: s.addr, ServerName: s.sni, Connections: int(s.conns.Load()), Notes: s.notes, Certificates: s.certs}
	for _, v := range Versions {
		r := s.results[v]
		if r == nil {
			r = &VersionResult{Version: v, State: Unknown, Error: "not probed"}
		}
		rep.Versions = append(rep.Versions, *r)
	}
	for b := range s.dh {
		rep.DHBits = append(rep.DHBits, b)
	}
	slices.Sort(rep.DHBits)
	for g := range s.curves {
		rep.Curves = append(rep.Curves, g)
	}
	slices.Sort(rep.Curves)
	rep.Preference, rep.PreferenceVersion, rep.PreferenceError = s.pref, s.prefVer, s.prefErr
	rep.TLS13Group = s.tls13Grp
	return rep
}

// set records a version's result; the first result for a version stands.
func (s *scan) set(r *VersionResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, done := s.results[r.Version]; !done {
		s.results[r.Version] = r
	}
}

func (s *scan) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.notes) < 20 {
		s.notes = append(s.notes, fmt.Sprintf(format, args...))
	}
}

// probe sends one hello unless the address already failed in this scan.
func (s *scan) probe(ctx context.Context, h Hello) (*Response, error) {
	if err := s.gate(ctx); err != nil {
		return nil, err
	}
	h.ServerName = s.sni
	resp, err := s.p.Probe(ctx, s.addr, h)
	s.health.note(err)
	if err == nil {
		s.absorb(resp)
	}
	if stalled(err) {
		s.note("a %v hello offering %d suites got no answer in time", h.Version, len(h.Suites))
	}
	return resp, err
}

func (s *scan) gate(ctx context.Context) error {
	if err := s.health.get(); err != nil {
		return &notTriedError{what: s.addr + " failed earlier in this scan", cause: err}
	}
	if err := ctx.Err(); err != nil {
		return check.WithClass(check.Classify(err), fmt.Errorf("tlsprobe: %w", err))
	}
	if s.conns.Add(1) > s.max {
		return check.WithClass(check.ErrTooLarge, fmt.Errorf("tlsprobe: %s: more than %d connections needed", s.addr, s.max))
	}
	return nil
}

// absorb keeps what every accepted answer reveals beyond the suite.
func (s *scan) absorb(r *Response) {
	if !r.Accepted() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if kx := r.KeyExchange; kx != nil {
		if kx.DHBits > 0 {
			s.dh[kx.DHBits] = true
		}
		if kx.Curve != 0 {
			s.curves[kx.Curve] = true
		}
	}
	if v := r.ServerHello.Version; len(r.Certificates) > 0 && v > s.certsVer {
		s.certs, s.certsVer = r.Certificates, v
	}
	if r.ServerHello.Version == TLS13 && s.tls13Grp == 0 {
		s.tls13Grp = r.ServerHello.Group
	}
	if r.Note != "" && len(s.notes) < 20 {
		s.notes = append(s.notes, r.Note)
	}
}

// unknown is the result of a version whose probe failed with err.
func unknown(v Version, err error) *VersionResult {
	return &VersionResult{Version: v, State: Unknown, Error: err.Error(), ErrorClass: check.Classify(err), Stalled: stalled(err)}
}

func ids(suites []Suite) []uint16 {
	out := make([]uint16, len(suites))
	for i, s := range suites {
		out[i] = s.ID
	}
	return out
}

// eliminate enumerates version v's accepted suites: first is the answer to
// a hello offering offer; each further hello offers what is left minus the
// suites already chosen, until the server refuses.
func (s *scan) eliminate(ctx context.Context, v Version, first *Response, offer []uint16) *VersionResult {
	vr := &VersionResult{Version: v, State: Accepted}
	chosen := first.ServerHello.Suite
	remaining := slices.DeleteFunc(slices.Clone(offer), func(id uint16) bool { return id == uint16(chosen) })
	vr.Suites = append(vr.Suites, chosen)
	for len(remaining) > 0 {
		resp, err := s.probe(ctx, Hello{Version: v, Suites: remaining})
		if err != nil {
			vr.Error, vr.ErrorClass, vr.Stalled = err.Error(), check.Classify(err), stalled(err)
			return vr
		}
		if !resp.Accepted() {
			vr.Complete = true
			return vr
		}
		got := resp.ServerHello
		if got.Version != v {
			// The server would rather speak an older version than use
			// what is left at this one: none of it is accepted at v.
			s.note("%v: offered only the remaining suites, the server answered with %v and %v", v, got.Version, got.Suite)
			vr.Complete = true
			return vr
		}
		vr.Suites = append(vr.Suites, got.Suite)
		remaining = slices.DeleteFunc(remaining, func(id uint16) bool { return id == uint16(got.Suite) })
	}
	vr.Complete = true
	return vr
}

func (s *scan) tls13(ctx context.Context) {
	offer := ids(SuitesAt(TLS13))
	resp, err := s.probe(ctx, Hello{Version: TLS13, Suites: offer})
	switch {
	case err != nil:
		s.set(unknown(TLS13, err))
	case !resp.Accepted():
		s.set(&VersionResult{Version: TLS13, State: Refused, Complete: true, Refusal: resp.Refusal()})
	default:
		s.set(s.eliminate(ctx, TLS13, resp, offer))
	}
}

func (s *scan) sslv2(ctx context.Context) {
	if err := s.gate(ctx); err != nil {
		s.set(unknown(SSL20, err))
		return
	}
	resp, kinds, err := s.p.ProbeSSLv2(ctx, s.addr)
	s.health.note(err)
	switch {
	case err != nil:
		s.set(unknown(SSL20, err))
	case !resp.Accepted():
		s.set(&VersionResult{Version: SSL20, State: Refused, Complete: true, Refusal: resp.Refusal()})
	default:
		s.set(&VersionResult{Version: SSL20, State: Accepted, Complete: true, SSLv2Ciphers: kinds})
	}
}

// legacy probes TLS 1.2 down to SSLv3. Each hello offers the highest
// version not yet settled; the server answers with the highest version it
// supports up to that, which settles every version in between, and the
// elimination at the answered version starts from that same answer. So
// the versions cost one refused hello at the bottom, not one each. A
// hello that stalls leaves its version unknown and the next version down
// is tried, unless the address is now taken as stalled; any other failure
// leaves the versions below unknown too.
func (s *scan) legacy(ctx context.Context, first *Response, ferr error) {
	legacyVersions := []Version{TLS12, TLS11, TLS10, SSL30}
	for i := 0; i < len(legacyVersions); {
		top := legacyVersions[i]
		resp, err := first, ferr
		if i > 0 {
			resp, err = s.probe(ctx, Hello{Version: top, Suites: ids(SuitesAt(top))})
		}
		if err != nil {
			s.set(unknown(top, err))
			if stalled(err) && s.health.get() == nil {
				i++
				continue
			}
			for _, v := range legacyVersions[i+1:] {
				s.set(unknown(v, &notTriedError{what: fmt.Sprintf("the %v hello failed", top), cause: err}))
			}
			break
		}
		if !resp.Accepted() {
			s.set(&VersionResult{Version: top, State: Refused, Complete: true, Refusal: resp.Refusal()})
			for _, v := range legacyVersions[i+1:] {
				s.set(&VersionResult{Version: v, State: Refused, Complete: true, Inferred: true,
					Refusal: fmt.Sprintf("inferred: a %v hello was refused (%s)", top, resp.Refusal())})
			}
			break
		}
		got := resp.ServerHello.Version
		for ; i < len(legacyVersions) && legacyVersions[i] > got; i++ {
			v := legacyVersions[i]
			s.set(&VersionResult{Version: v, State: Refused, Complete: true, Inferred: v != top,
				Refusal: fmt.Sprintf("a %v hello was answered with %v", top, got)})
		}
		s.set(s.eliminate(ctx, got, resp, ids(SuitesAt(got))))
		i++
	}
	s.preference(ctx)
}

// preference offers the accepted suites of the highest pre-1.3 version in
// reverse order: a server that still picks its first choice imposes its
// own order.
func (s *scan) preference(ctx context.Context) {
	for _, v := range []Version{TLS12, TLS11, TLS10, SSL30} {
		s.mu.Lock()
		r := s.results[v]
		s.mu.Unlock()
		if r == nil || r.State != Accepted {
			continue
		}
		if len(r.Suites) < 2 {
			return
		}
		rev := make([]uint16, len(r.Suites))
		for i, id := range r.Suites {
			rev[len(rev)-1-i] = uint16(id)
		}
		var pref, why string
		resp, err := s.probe(ctx, Hello{Version: v, Suites: rev})
		switch {
		case err != nil:
			why = err.Error()
		case !resp.Accepted() || resp.ServerHello.Version != v:
			why = "the server refused its own accepted suites in reverse order"
		case resp.ServerHello.Suite == r.Suites[0]:
			pref = "server"
		case uint16(resp.ServerHello.Suite) == rev[0]:
			pref = "client"
		default:
			pref = "mixed"
		}
		s.mu.Lock()
		s.pref, s.prefVer, s.prefErr = pref, v, why
		s.mu.Unlock()
		return
	}
}
