package scanner

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/crl"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/scanner/discover"
	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/estate/orgdata"
	"github.com/nhsx/posture/scanner/scope"
	"github.com/nhsx/posture/scanner/store"
)

// RunStore is the store as a whole run needs it; *store.Store implements it.
type RunStore interface {
	Store
	BeginRun(ctx context.Context, key, options string) (store.Run, bool, error)
	FinishRun(ctx context.Context, runID int64, status store.RunStatus) error
	PutAssets(ctx context.Context, runID int64, assets []check.Asset) error
	Assets(ctx context.Context, runID int64) ([]check.Asset, error)
	// PutNames and Names keep what discovery saw under each domain (the
	// hint "names") with the run, for a resume that does not discover.
	PutNames(ctx context.Context, runID int64, names map[string][]string) error
	Names(ctx context.Context, runID int64) (map[string][]string, error)
	PutOrganisations(ctx context.Context, orgs []store.Org) error
}

// Config is one `posture scan`.
type Config struct {
	Estate   *estate.Estate
	Checks   []check.Check
	Families []string // empty: all
	DNS      *dnsq.Resolver
	// Dial is the network under the scope guard (nil: the host's).
	Dial           check.DialFunc
	AllowPrivate   bool
	PerIP          int
	ConnectTimeout time.Duration // 0: the guard's default (5 s)
	EHLOName       string        // what SMTP probes greet with
	// Roots are the trust anchors (system roots plus CAPEM); CAPEM, the
	// operator's extra anchors (--ca-file), is stored with the run so that
	// `posture reeval` judges chains against the same anchors.
	Roots *x509.CertPool
	CAPEM []byte
	// TrustAnchors are the operator's DNSSEC trust anchors (--trust-anchor,
	// zone-file lines), stored with the run for the same reason as CAPEM.
	// The policy carries them for evaluation; nil: the built-in ones.
	TrustAnchors []string
	CTURL        string
	// RDAPURL is the RDAP service's base URL ("": none; the checks that
	// need it say unknown).
	RDAPURL string
	GitHub  *github.Client
	// ServiceHTTP reaches configured services (CT, GitHub API).
	ServiceHTTP *http.Client
	// Services watches the configured services: a breaker each, one
	// warning when one is down, the summary's list (nil: Run makes one;
	// cmd makes it to give the GitHub client its breaker too).
	Services *Services
	// Labels are common host labels discovery asks for under every
	// estate domain (nil: none; cmd: discover.DefaultLabels).
	Labels []string
	// Sources find names by other means (GitHub Pages CNAME files).
	Sources []discover.NameSource
	// CTRefresh is how often the CT search is full (0: 7 days).
	CTRefresh time.Duration
	// NoAXFR stops discovery asking the estate's name servers for zone
	// transfers (on by default: a server that refuses costs one exchange).
	NoAXFR bool
	Options
}

// ctCacheStore is the store's CT cache (migration 0004); unownedStore its
// unowned names. Optional: a store without them searches CT in full and
// keeps no unowned list.
type ctCacheStore interface {
	CTEntry(ctx context.Context, domain string) (store.CTEntry, bool, error)
	PutCTEntry(ctx context.Context, domain string, e store.CTEntry) error
}

type unownedStore interface {
	PutUnowned(ctx context.Context, runID int64, us []store.Unowned) error
	Unowned(ctx context.Context, runID int64) ([]store.Unowned, error)
}

// ctCache adapts the store's CT cache to discovery's.
type ctCache struct{ st ctCacheStore }

func (c ctCache) CTEntry(ctx context.Context, domain string) (discover.CTCacheEntry, bool, error) {
	e, ok, err := c.st.CTEntry(ctx, domain)
	return discover.CTCacheEntry(e), ok, err
}

func (c ctCache) PutCTEntry(ctx context.Context, domain string, e discover.CTCacheEntry) error {
	return c.st.PutCTEntry(ctx, domain, store.CTEntry(e))
}

// Key identifies "the same command": the estate, the families, the check
// list and the policy. Re-running with the same key resumes an unfinished run.
func (c *Config) Key() (string, error) {
	b, err := c.Estate.Marshal()
	if err != nil {
		return "", fmt.Errorf("run key: %w", err)
	}
	h := sha256.New()
	h.Write(b)
	fams := append([]string(nil), c.Families...)
	sort.Strings(fams)
	fmt.Fprintf(h, "\x00%s\x00", strings.Join(fams, ","))
	for _, ch := range c.Checks {
		fmt.Fprintf(h, "%s,", ch.ID())
	}
	// A different policy is a different run: resuming must not mix the
	// verdicts of two policies (reeval is how a policy is re-applied).
	pol := c.Policy
	if pol == nil {
		pol = check.DefaultPolicy()
	}
	pb, err := json.Marshal(pol)
	if err != nil {
		return "", fmt.Errorf("run key: %w", err)
	}
	h.Write(pb)
	// Family sections resolve to their defaults when the file sets none:
	// hash the values in force, so an explicit default is the same run.
	secs := map[string]any{}
	for _, ch := range c.Checks {
		if ph, ok := ch.(check.PolicyHolder); ok && ph.PolicySection() != nil {
			secs[ph.PolicySection().Key()] = ph.PolicySection().Resolved(pol)
		}
	}
	sb, err := json.Marshal(secs)
	if err != nil {
		return "", fmt.Errorf("run key: %w", err)
	}
	h.Write(sb)
	h.Write(c.CAPEM)
	return hex.EncodeToString(h.Sum(nil)[:12]), nil
}

// Select keeps the collectors that emit a catalogue id of one of the
// families (every collector when fams is empty), and returns which ids the
// run keeps: a collector of another family that also judges one of these
// (the SMTP collector emits tls.no-ssl for mail hosts) runs, and only its
// findings of the selected families are kept.
func Select(cs []check.Check, fams []string) ([]check.Check, func(id string) bool) {
	if len(fams) == 0 {
		return cs, func(string) bool { return true }
	}
	want := map[string]bool{}
	for _, f := range fams {
		want[f] = true
	}
	keep := map[string]bool{}
	var out []check.Check
	for _, c := range cs {
		any := false
		for _, m := range c.Rules() {
			if want[m.Family] {
				keep[m.ID], any = true, true
			}
		}
		if any {
			out = append(out, c)
		}
	}
	return out, func(id string) bool { return keep[id] }
}

// Kinds are the asset kinds the collectors target: what discovery builds.
func Kinds(cs []check.Check) map[check.Kind]bool {
	out := map[check.Kind]bool{}
	for _, c := range cs {
		if t, ok := c.(check.Targeted); ok && len(t.Targets()) > 0 {
			for _, k := range t.Targets() {
				out[k] = true
			}
			continue
		}
		for _, m := range c.Rules() {
			for _, k := range m.Targets {
				out[k] = true
			}
		}
	}
	return out
}

// wantsNames says whether a collector of the dns family targets domains:
// those read the hint "names" (dns.dangling-cname), for which discovery
// searches CT even when no host is built. Other runs that build no host
// (`--only email`) make no CT search.
func wantsNames(cs []check.Check) bool {
	for _, c := range cs {
		for _, m := range c.Rules() {
			if m.Family == "dns" && slices.Contains(m.Targets, check.KindDomain) {
				return true
			}
		}
	}
	return false
}

// RunOptions are stored with a run (store.Run.Options): what a
// re-evaluation needs to judge as the scan did.
type RunOptions struct {
	// Families the run was limited to (nil: every family).
	Families []string `json:"families"`
	Estate   string   `json:"estate"`
	Checks   int      `json:"checks"`
	// CAPEM and Anchors are the operator's extra certificate anchors
	// (--ca-file) and DNSSEC trust anchors (--trust-anchor; nil: the
	// built-in ones).
	CAPEM   string   `json:"ca_pem,omitempty"`
	Anchors []string `json:"trust_anchors,omitempty"`
}

// ReadRunOptions decodes a stored run's options (zero values when they
// predate a field).
func ReadRunOptions(options string) RunOptions {
	var o RunOptions
	_ = json.Unmarshal([]byte(options), &o)
	return o
}

// Roots are the certificate trust anchors the run was judged against: the
// system roots plus its --ca-file.
func (o RunOptions) Roots() *x509.CertPool {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if o.CAPEM != "" {
		roots.AppendCertsFromPEM([]byte(o.CAPEM))
	}
	return roots
}

// Run discovers (or, on resume, reloads) the assets, scans them and finishes
// the run. An interrupted run is marked interrupted and returns ctx's error.
func Run(ctx context.Context, st RunStore, c Config) (*Stats, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Services == nil {
		c.Services = &Services{Log: c.Log}
	}
	cs, keep := Select(c.Checks, c.Families)
	c.Checks, c.Options.Checks, c.Options.Keep = cs, cs, keep
	c.DNS = c.DNS.Fresh() // the resolver's cache is per run
	key, err := c.Key()
	if err != nil {
		return nil, err
	}
	// Chains are judged in Evaluate against the run's anchors.
	pol := c.Policy.Clone()
	if pol.Roots == nil {
		pol.Roots = c.Roots
	}
	c.Options.Policy = pol
	opts, _ := json.Marshal(RunOptions{Families: c.Families, Estate: c.Estate.Source, Checks: len(cs), CAPEM: string(c.CAPEM), Anchors: c.TrustAnchors})
	run, resumed, err := st.BeginRun(ctx, key, string(opts))
	if err != nil {
		return nil, fmt.Errorf("scan: begin run: %w", err)
	}
	runID := run.ID
	c.Log.Info("run", "id", runID, "resumed", resumed, "key", key)
	if err := st.PutOrganisations(ctx, Organisations(c.Estate)); err != nil {
		return nil, fmt.Errorf("scan: organisations: %w", err)
	}

	var assets []check.Asset
	var excluded []string // names discovery was led to but the estate excludes
	var names map[string][]string
	if resumed {
		if assets, err = st.Assets(ctx, runID); err != nil {
			return nil, fmt.Errorf("scan: reload assets: %w", err)
		}
		if names, err = st.Names(ctx, runID); err != nil {
			return nil, fmt.Errorf("scan: reload names: %w", err)
		}
	}
	mx, ns := map[string]bool{}, map[string]bool{}
	var ctStats discover.CTStats
	unowned := -1 // not discovered in this attempt: read from the store
	if len(assets) == 0 {
		var cache discover.CTCache
		if cc, ok := st.(ctCacheStore); ok {
			cache = ctCache{cc}
		}
		var dial func(ctx context.Context, network, addr string) (net.Conn, error)
		if !c.NoAXFR {
			// Discovery dials only the estate domains' name servers (and
			// their SOA primary) for zone transfers: allowed as the DNS
			// checks' are, under the guard's address rules and per-IP cap;
			// excluded names never.
			dial = (&scope.Guard{
				InScope:        func(string) bool { return true },
				Excluded:       c.Estate.Excluded,
				AllowPrivate:   c.AllowPrivate,
				DNS:            c.DNS,
				Dial:           c.Dial,
				PerIP:          c.PerIP,
				ConnectTimeout: c.ConnectTimeout,
			}).DialContext
		}
		if c.Options.Progress != nil && c.Options.Phase != nil {
			domains := 0
			for _, o := range c.Estate.Organisations {
				domains += len(o.Domains)
			}
			c.Options.Phase("discovery", domains)
		}
		res, err := discover.Run(ctx, c.Estate, discover.Options{
			Dial: dial,
			DNS:  c.DNS, CTURL: c.CTURL, HTTP: c.Services.Client("ct", c.ServiceHTTP), GitHub: c.GitHub,
			CTCache: cache, CTRefresh: c.CTRefresh, Labels: c.Labels, Sources: c.Sources,
			Kinds: Kinds(cs), Names: wantsNames(cs), Concurrency: c.Concurrency, Log: c.Log, AllowPrivate: c.AllowPrivate,
		})
		if err != nil {
			return c.interrupted(ctx, st, runID, resumed, err)
		}
		if len(res.Missing) > 0 {
			c.Log.Warn("estate domains that do not exist in DNS: their checks are unknown", "count", len(res.Missing), "domains", res.Missing)
		}
		for reason, n := range res.Dropped {
			c.Log.Info("discovery dropped names", "reason", reason, "count", n)
		}
		assets = res.Assets
		excluded = res.Excluded
		ctStats, unowned = res.CT, len(res.Unowned)
		if len(res.Unowned) > 0 {
			c.Log.Info("names in scope that no estate domain owns (listed, not scanned)", "count", len(res.Unowned))
		}
		if us, ok := st.(unownedStore); ok && len(res.Unowned) > 0 {
			list := make([]store.Unowned, len(res.Unowned))
			for i, u := range res.Unowned {
				list[i] = store.Unowned(u)
			}
			// Before the assets, as the names: stored assets mark
			// discovery done.
			if err := us.PutUnowned(ctx, runID, list); err != nil {
				return nil, fmt.Errorf("scan: store unowned names: %w", err)
			}
		}
		for h := range res.NSHosts {
			ns[h] = true
		}
		// The names first: stored assets are what marks discovery done.
		names = res.Names
		if err := st.PutNames(ctx, runID, names); err != nil {
			return nil, fmt.Errorf("scan: store names: %w", err)
		}
		if err := st.PutAssets(ctx, runID, assets); err != nil {
			return nil, fmt.Errorf("scan: store assets: %w", err)
		}
	}
	for _, a := range assets {
		if a.Kind == check.KindMail {
			mx[a.Name] = true
		}
	}
	if resumed {
		// The name servers are not assets: ask again (cached, cheap).
		ns = discover.NameServers(ctx, c.DNS, c.Estate)
		var zones []string
		for _, a := range assets {
			if a.Kind == check.KindZone {
				zones = append(zones, a.Name)
			}
		}
		maps.Copy(ns, discover.ZoneNameServers(ctx, c.DNS, c.Estate, zones))
	}
	for h := range ns {
		mx[h] = true // DNS checks query a zone's own servers, as mail checks its MX
	}
	env, guard := c.newEnv(mx, names)
	c.Options.Env = env
	stats, err := Scan(ctx, st, runID, assets, c.Options)
	if stats != nil {
		stats.Resumed = resumed
		stats.CT, stats.Unowned = ctStats, unowned
		if unowned < 0 {
			stats.Unowned = 0
			if us, ok := st.(unownedStore); ok {
				if l, err := us.Unowned(ctx, runID); err == nil {
					stats.Unowned = len(l)
				}
			}
		}
		stats.Unavailable = c.Services.Down()
		stats.Excluded = guard.Skipped()
		for _, n := range excluded {
			stats.Excluded[n]++
		}
		for name, n := range stats.Excluded {
			c.Log.Info("excluded name not contacted (scope.exclude)", "name", name, "refused", n)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			_, err = c.interrupted(ctx, st, runID, resumed, err)
		}
		return stats, err
	}
	if err := st.FinishRun(ctx, runID, store.Complete); err != nil {
		return stats, fmt.Errorf("scan: finish run: %w", err)
	}
	return stats, nil
}

// NewEnv builds the checks' environment for a run: every connection goes
// through a scope guard over the estate's scope plus the estate's MX and
// name-server hosts (extra), less the estate's exclusions, which beat
// everything.
func (c *Config) NewEnv(mx map[string]bool) *check.Env {
	env, _ := c.newEnv(mx, nil)
	return env
}

// newEnv builds the environment; names are what discovery saw under each
// estate domain, handed to the domain's checks as the hint "names".
func (c *Config) newEnv(mx map[string]bool, names map[string][]string) (*check.Env, *scope.Guard) {
	guard := &scope.Guard{
		InScope:        func(n string) bool { return c.Estate.InScope(n) || mx[n] },
		Excluded:       c.Estate.Excluded,
		AllowPrivate:   c.AllowPrivate,
		DNS:            c.DNS,
		Dial:           c.Dial,
		PerIP:          c.PerIP,
		ConnectTimeout: c.ConnectTimeout,
	}
	env := &check.Env{}
	if c.Env != nil {
		e := *c.Env
		env = &e
	}
	env.DNS, env.Dial, env.Lookup, env.Roots = c.DNS, guard.DialContext, guard.Resolve, c.Roots
	env.HTTP = guard.HTTPClient(c.Roots)
	// CRLs are CA infrastructure: their hosts are not in the estate, so the
	// estate scope does not apply. But the URL comes from a scanned server's
	// certificate (hostile input), so the address checks still do: no
	// private, loopback or metadata address (unless --allow-private), and
	// the same per-IP cap. One cache per run.
	ca := &scope.Guard{
		InScope:        func(string) bool { return true },
		Excluded:       c.Estate.Excluded,
		AllowPrivate:   c.AllowPrivate,
		DNS:            c.DNS,
		Dial:           c.Dial,
		PerIP:          c.PerIP,
		ConnectTimeout: c.ConnectTimeout,
	}
	env.CRLs = crl.Source{Client: ca.HTTPClient(c.Roots), Cache: &crl.Cache{}}
	env.Hints = func(a check.Asset, key string) []string {
		if key == discover.HintNames {
			if a.Kind != check.KindDomain {
				return nil
			}
			return names[a.Name]
		}
		name := a.Domain
		if name == "" {
			name = a.Name
		}
		o, _ := c.Estate.Owner(name)
		if o == nil || key != "dkim_selectors" {
			return nil
		}
		return o.DKIMSelectors
	}
	env.Services = map[string]check.Service{}
	if c.RDAPURL != "" {
		if u, err := url.Parse(c.RDAPURL); err == nil && c.ServiceHTTP != nil {
			env.Services["rdap"] = check.Service{URL: u, Client: c.Services.Client("rdap", c.ServiceHTTP)}
		}
	}
	// The GitHub API (repo.* and org.*), through the GitHub client's own
	// HTTP client: its token, ETag cache and rate-limit handling.
	if c.GitHub != nil && c.GitHub.BaseURL != nil {
		env.Services["github"] = check.Service{URL: c.GitHub.BaseURL, Client: c.GitHub.Client()}
		// Clones (repo.secrets.history): the service's network without the
		// API token (GitHub's git endpoint does not take it; public
		// repositories need none), the ETag cache, the 2-minute request
		// timeout or the 64 MiB body cap: a clone is bounded by its
		// collector (its job's time, a 200 MB pack). Its own breaker.
		if c.ServiceHTTP != nil {
			rt := c.ServiceHTTP.Transport
			if cp, ok := rt.(capped); ok {
				rt = cp.rt
			}
			git := &http.Client{Transport: rt}
			env.Services["github-git"] = check.Service{URL: c.GitHub.BaseURL, Client: c.Services.Client("github-git", git)}
		}
	}
	if c.EHLOName != "" {
		env.EHLOName = c.EHLOName
	}
	if env.Log == nil {
		env.Log = c.Log
	}
	return env, guard
}

func (c *Config) interrupted(ctx context.Context, st RunStore, runID int64, resumed bool, cause error) (*Stats, error) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := st.FinishRun(fctx, runID, store.Interrupted); err != nil {
		c.Log.Error("could not mark the run interrupted", "run", runID, "err", err)
	}
	return nil, fmt.Errorf("scan interrupted (run %d; run the same command again to resume): %w", runID, cause)
}

// Organisations lists the estate's organisations and their ancestors from
// the hierarchy, so reports can roll up trust → ICB → region → national.
func Organisations(e *estate.Estate) []store.Org {
	h, _ := orgdata.All()
	seen := map[string]bool{}
	var out []store.Org
	for _, o := range e.Organisations {
		seen[o.Code] = true
		kind := o.Kind
		if kind == "" {
			kind = h[o.Code].Kind
		}
		out = append(out, store.Org{Code: o.Code, Name: o.Name, Parent: o.Parent, Kind: kind,
			Contacts: o.Contacts, Domains: o.Domains, GitHub: o.GitHub})
	}
	for i := 0; i < len(out); i++ {
		p := out[i].Parent
		if p == "" || seen[p] {
			continue
		}
		if ho, ok := h[p]; ok {
			seen[p] = true
			out = append(out, store.Org{Code: ho.Code, Name: ho.Name, Parent: ho.Parent, Kind: ho.Kind})
		}
	}
	return out
}
