// Package discover turns an estate into assets: the organisations' domains,
// web hosts found in Certificate Transparency, DNS (common labels, CNAME
// chains) and other sources (NameSource: GitHub Pages CNAME files), the
// zones delegated below the domains (names that own NS records), the MX
// hosts that receive their mail, and their GitHub organisations and
// repositories.
//
// Every name found passes the scope rules and is given to the estate
// domain that is its longest suffix (the owner), whichever domain's search
// found it; a name in scope that no estate domain owns is listed as
// unowned (Result.Unowned), not scanned. Every name it drops is counted
// with the reason, so an operator can see what was left out.
package discover

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/sync/errgroup"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/scope"
)

// Options configure discovery. Zero fields switch a source off.
type Options struct {
	DNS *dnsq.Resolver
	// CTURL is a crt.sh-compatible search endpoint ("" = no CT search).
	CTURL string
	// HTTP reaches the CT endpoint and the GitHub API (configured services,
	// not scan targets, so they do not pass the scope guard).
	HTTP *http.Client
	// CTCache keeps CT results between runs (nil: every search is full).
	CTCache CTCache
	// CTRefresh is how old the last full CT search (expired certificates
	// included) may be before the next one; searches in between ask only
	// for current certificates and add their names to the cached ones
	// (default 7 days).
	CTRefresh time.Duration
	// CTRowCap is the row count at which a CT answer is capped and split
	// (default 10,000: crt.sh's c_resultLimit).
	CTRowCap int
	// CTMaxQueries bounds the CT queries per organisational domain,
	// splits included (default 64).
	CTMaxQueries int
	// CTMaxWait is the longest Retry-After honoured (default 2 minutes);
	// CTBackoff the first wait after a 429 or 5xx without one (default 2 s,
	// doubling); CTConcurrency the concurrent CT queries (default 2).
	CTMaxWait     time.Duration
	CTBackoff     time.Duration
	CTConcurrency int
	// Labels are common host labels (www, mail, remote, vpn …) asked for
	// under every estate domain: a label.<domain> that exists in DNS is
	// a discovered name (nil: none asked).
	Labels []string
	// Sources find names for an organisation by other means (GitHub Pages
	// CNAME files …). Their names pass the same scope and owner rules.
	Sources []NameSource
	// Dial reaches the estate's name servers for zone transfers (AXFR),
	// through the scope guard's address rules (nil: no transfer asked).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// GitHub is the API client ("nil" = no repository discovery).
	GitHub *github.Client
	// Kinds are the asset kinds the selected collectors target: discovery
	// builds only those (nil: every kind).
	Kinds map[check.Kind]bool
	// MaxPerDomain bounds the names kept per domain from CT (default 500),
	// and the names recorded per domain in Result.Names.
	MaxPerDomain int
	// Names asks for Result.Names even when no host is built (the names
	// are then searched in CT but not resolved). With host kinds wanted
	// they are always recorded.
	Names bool
	// MaxZones bounds the names per domain asked whether they are zone
	// cuts (default 50).
	MaxZones int
	// MaxRepos bounds repositories per GitHub organisation (default 1000).
	MaxRepos int
	// MaxUnowned bounds Result.Unowned (default 5000).
	MaxUnowned  int
	Concurrency int
	// AllowPrivate keeps hosts that resolve to private addresses (labs).
	AllowPrivate bool
	Log          *slog.Logger
	Now          func() time.Time // nil: time.Now
}

// NameSource finds names for an organisation by means other than CT and
// DNS (GitHub Pages CNAME files in its repositories, …). Discovery calls
// Names once per organisation; every name returned passes the scope rules
// and goes to its owner (the longest matching estate domain), or to
// Result.Unowned when it is in scope and no estate domain matches.
type NameSource interface {
	// Name identifies the source: Asset.Source of the hosts it leads to,
	// Result.Errors and the run summary ("pages").
	Name() string
	Names(ctx context.Context, org estate.Organisation) ([]string, error)
}

// Unowned is a name in scope that no estate domain owns.
type Unowned struct {
	Name   string `json:"name"`
	Source string `json:"source"` // ct, cname, or a NameSource's name
	// Via is what led to it: the domain searched in CT, the alias whose
	// CNAME chain passes through it, or the organisation of a source.
	Via string `json:"via"`
}

// Result is the discovered assets and what was dropped, by reason.
type Result struct {
	Assets  []check.Asset
	Dropped map[string]int // reason → count
	// MXHosts are the mail hosts of estate domains: connecting to them is in
	// scope even when their names are not (a trust's MX may be hosted).
	MXHosts map[string]bool
	// Errors are sources that could not be read (they leave gaps, not fails).
	Errors []string
	// Missing are estate domains that do not exist in DNS (NXDOMAIN).
	Missing []string
	// Excluded are names something led to (an MX record) that the estate
	// excludes: not assets, never contacted.
	Excluded []string
	// NSHosts are the name servers of estate domains and of the zones
	// delegated below them (KindZone assets): DNS checks may query
	// them directly (delegation, AXFR) even when their names are not in
	// scope (a trust's zone may be hosted). Excluded names are left out.
	NSHosts map[string]bool
	// Names are, per estate domain, every name discovery saw that the
	// domain owns (the apex, www, the CT names, label and source names,
	// cleaned: lower case, a wildcard's "*." removed, valid host names,
	// not excluded), whether kept as a host or dropped, sorted, at most
	// MaxPerDomain. Domain checks read them as the estate hint "names" (a
	// CT name whose alias dangles is dropped as a host but is what
	// dns.dangling-cname must see).
	Names map[string][]string
	// Unowned are names in scope that no estate domain owns (sorted by
	// name, at most MaxUnowned): found, listed, not scanned. MX and name
	// server hosts are not listed (they serve an estate domain).
	Unowned []Unowned
	// CT sums up the CT searches.
	CT CTStats
	// AXFR are the estate domains whose zone a name server transferred
	// (their names are discovered; dns.axfr-open judges the server).
	AXFR []string
}

// CTStats sums up a run's CT searches.
type CTStats struct {
	Domains   int // organisational domains searched
	Queries   int // requests made, splits included
	Full      int // full searches (expired certificates included)
	NewCerts  int // certificates above the cached greatest id
	Cached    int // domains served from the cache after the service failed
	Truncated int // domains whose answer stayed capped after splitting
	Skipped   int // domains not searched: the service is down
}

// HintNames is the estate hint key under which a domain's checks read
// Result.Names.
const HintNames = "names"

// DefaultLabels are common host labels of NHS organisations' services.
var DefaultLabels = []string{"www", "mail", "webmail", "remote", "vpn", "portal", "intranet", "owa",
	"autodiscover", "sts", "adfs", "citrix", "gateway", "extranet", "jobs", "careers", "api", "secure"}

// ServiceDown is implemented by the error a configured service's client
// returns once it has been found down for the run (scanner.Breaker):
// discovery skips that source without a warning per domain.
type ServiceDown interface{ ServiceDown() bool }

func isServiceDown(err error) bool {
	var sd ServiceDown
	return errors.As(err, &sd) && sd.ServiceDown()
}

// Run discovers the estate's assets.
func Run(ctx context.Context, e *estate.Estate, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxPerDomain <= 0 {
		o.MaxPerDomain = 500
	}
	if o.MaxZones <= 0 {
		o.MaxZones = 50
	}
	if o.MaxRepos <= 0 {
		o.MaxRepos = 1000
	}
	if o.MaxUnowned <= 0 {
		o.MaxUnowned = 5000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	if o.DNS == nil {
		o.DNS = &dnsq.Resolver{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CTRefresh <= 0 {
		o.CTRefresh = 7 * 24 * time.Hour
	}
	if o.CTRowCap <= 0 {
		o.CTRowCap = ctDefaultCap
	}
	if o.CTMaxQueries <= 0 {
		o.CTMaxQueries = 64
	}
	if o.CTMaxWait <= 0 {
		o.CTMaxWait = 2 * time.Minute
	}
	if o.CTBackoff <= 0 {
		o.CTBackoff = 2 * time.Second
	}
	if o.CTConcurrency <= 0 {
		o.CTConcurrency = 2
	}
	d := &run{o: o, e: e, res: &Result{Dropped: map[string]int{}, MXHosts: map[string]bool{}, NSHosts: map[string]bool{}, Names: map[string][]string{}},
		seen: map[string]bool{}, sem: make(chan struct{}, o.Concurrency),
		cands: map[string]string{}, via: map[string]string{}, resolved: map[string]resolution{}, unowned: map[string]Unowned{}, infra: map[string]bool{},
		classified: map[string]bool{}, byDom: map[string][]found{}}
	want := func(k check.Kind) bool { return o.Kinds == nil || o.Kinds[k] }
	names := want(check.KindHost) || want(check.KindZone) || (o.Names && want(check.KindDomain))

	// Phase 1: the estate's domains, and the names the searches find
	// (CT once per organisational domain, other sources once per
	// organisation, labels per domain).
	type owned struct{ org, dom string }
	var doms []owned
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	var ct *ctClient
	if names && o.CTURL != "" {
		c, err := newCTClient(o)
		if err != nil {
			d.fail("ct", err)
		} else {
			ct = c
		}
	}
	searched := map[string]bool{}
	for _, org := range e.Organisations {
		for _, dom := range org.Domains {
			if !e.InScope(dom) {
				d.drop("excluded from scope")
				continue
			}
			d.add(check.Asset{Kind: check.KindDomain, Name: dom, Org: org.Code, Domain: dom, Source: "estate"})
			doms = append(doms, owned{org.Code, dom})
			if want(check.KindDomain) || names {
				g.Go(func() error {
					for _, h := range nameServers(gctx, o.DNS, e, dom) {
						d.mu.Lock()
						if want(check.KindDomain) {
							d.res.NSHosts[h] = true
						}
						d.infra[h] = true
						d.mu.Unlock()
					}
					return nil
				})
			}
			if !names {
				continue
			}
			if od := OrgDomain(dom); ct != nil && !searched[od] {
				searched[od] = true
				g.Go(func() error { d.ctSearch(gctx, ct, od); return nil })
			}
			if len(o.Labels) > 0 {
				g.Go(func() error { d.labels(gctx, dom); return nil })
			}
			if o.Dial != nil {
				g.Go(func() error { d.axfr(gctx, dom); return nil })
			}
		}
		if names {
			for _, src := range o.Sources {
				g.Go(func() error { d.source(gctx, src, org); return nil })
			}
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	byDomain := d.classify()
	if want(check.KindHost) {
		// CNAME chains: a name the aliases lead to that an estate
		// domain owns is that domain's name.
		d.chase(ctx, byDomain)
		byDomain = d.classify()
	}

	// Phase 2: per estate domain, its names (hosts, zones) and mail hosts.
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	for _, od := range doms {
		org, dom := od.org, od.dom
		if names {
			// Domain checks may need the names (dns.dangling-cname);
			// only host checks need them resolved and kept; zone
			// checks need those that are zone cuts.
			g.Go(func() error {
				d.hosts(gctx, org, dom, byDomain[dom], want(check.KindHost))
				if want(check.KindZone) {
					d.zones(gctx, org, dom)
				}
				return nil
			})
		}
		if want(check.KindMail) || names {
			g.Go(func() error { d.mx(gctx, org, dom, want(check.KindMail)); return nil })
		}
	}
	if (want(check.KindRepo) || want(check.KindOrg)) && o.GitHub != nil {
		for _, org := range e.Organisations {
			for _, login := range org.GitHub {
				g.Go(func() error { d.github(gctx, org.Code, login); return nil })
			}
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	d.finishUnowned()
	sort.Strings(d.res.AXFR)
	sort.Slice(d.res.Assets, func(i, j int) bool { return d.res.Assets[i].Key() < d.res.Assets[j].Key() })
	return d.res, nil
}

type run struct {
	o    Options
	e    *estate.Estate
	mu   sync.Mutex
	res  *Result
	seen map[string]bool
	// sem bounds the lookups a domain's task fans out (zone cuts): leaf
	// work, so a task holding the errgroup's slot never waits for one.
	sem chan struct{}
	// cands are the names the searches found (raw) → the source that
	// found them first; via what led to them.
	cands map[string]string
	via   map[string]string
	// resolved are the label probes' answers, reused by hosts.
	resolved map[string]resolution
	unowned  map[string]Unowned
	// classified are the raw candidates classify has seen; byDom what it
	// gave each estate domain.
	classified map[string]bool
	byDom      map[string][]found
	// infra are the MX and name-server hosts of estate domains (and of
	// zones below them): not unowned names.
	infra map[string]bool
}

type resolution struct {
	addrs []netip.Addr
	chain []string
	err   error
}

func (d *run) add(a check.Asset) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen[a.Key()] {
		return
	}
	d.seen[a.Key()] = true
	d.res.Assets = append(d.res.Assets, a)
}

func (d *run) drop(reason string) {
	d.mu.Lock()
	d.res.Dropped[reason]++
	d.mu.Unlock()
}

func (d *run) fail(source string, err error) {
	if isServiceDown(err) {
		// Said once, by the service's breaker, for the whole run (and
		// counted: CTStats.Skipped).
		d.o.Log.Debug("discovery source skipped: service down", "source", source, "err", err)
		return
	}
	d.o.Log.Warn("discovery source failed", "source", source, "err", err)
	d.mu.Lock()
	d.res.Errors = append(d.res.Errors, source+": "+err.Error())
	d.mu.Unlock()
}

// candidate records a raw name a search found.
func (d *run) candidate(name, source, via string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.cands[name]; !ok {
		d.cands[name] = source
		d.via[name] = via
	}
}

// ctSearch searches CT once for an organisational domain.
func (d *run) ctSearch(ctx context.Context, ct *ctClient, od string) {
	res, err := ct.search(ctx, od)
	d.mu.Lock()
	d.res.CT.Domains++
	d.res.CT.Queries += res.queries
	d.res.CT.NewCerts += res.newCerts
	if res.full && err == nil {
		d.res.CT.Full++
	}
	if res.truncated {
		d.res.CT.Truncated++
	}
	if res.cached {
		d.res.CT.Cached++
	}
	if isServiceDown(err) {
		d.res.CT.Skipped++
	}
	d.mu.Unlock()
	if err != nil {
		d.fail("ct "+od, err)
	}
	if res.truncated {
		d.o.Log.Warn("CT answer still capped after splitting: some names may be missing", "domain", od)
	}
	for _, n := range res.names {
		d.candidate(n, "ct", od)
	}
}

// source asks one NameSource for an organisation's names.
func (d *run) source(ctx context.Context, src NameSource, org estate.Organisation) {
	names, err := src.Names(ctx, org)
	if err != nil {
		d.fail(src.Name()+" "+org.Code, err)
	}
	for i, n := range names {
		if i >= maxCTNames {
			d.drop("over the per-source limit")
			break
		}
		d.candidate(n, src.Name(), org.Code)
	}
}

// labels asks for label.dom for every configured label: a name that
// exists (an address or an alias) is a candidate.
// A domain with a wildcard record answers for every label: its answers
// say nothing, so none is taken (a random label is asked first).
func (d *run) labels(ctx context.Context, dom string) {
	var rnd [6]byte
	rand.Read(rnd[:])
	probe := "posture-" + hex.EncodeToString(rnd[:]) + "." + dom
	if addrs, chain, err := d.o.DNS.Addrs(ctx, probe); err != nil || len(addrs) > 0 || len(chain) > 0 {
		if err == nil {
			d.o.Log.Info("domain answers for any label (a wildcard): common labels not asked", "domain", dom)
			d.drop("label under a wildcard")
		}
		return
	}
	for _, l := range d.o.Labels {
		l = strings.ToLower(strings.TrimSpace(l))
		if l == "" {
			continue
		}
		n := l + "." + dom
		addrs, chain, err := d.o.DNS.Addrs(ctx, n)
		if err != nil || (len(addrs) == 0 && len(chain) == 0) {
			continue
		}
		d.mu.Lock()
		d.resolved[n] = resolution{addrs, chain, nil}
		d.mu.Unlock()
		d.candidate(n, "dns-label", dom)
	}
}

// cleanName is a found name as discovery compares it: lower case, no
// trailing dot, a wildcard's "*." removed (a wildcard certificate names
// its parent); "" when it is not a valid host name.
func cleanName(n string) string {
	n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
	n = strings.TrimPrefix(n, "*.")
	if estate.ValidDomain(n, false) != nil {
		return ""
	}
	return n
}

// classify gives every candidate to its owner (the longest matching
// estate domain): domain → names with their source. A name out of scope
// is dropped; one in scope without an owner is unowned.
// Candidates already classified are not again (it is called once more
// after the CNAME chase).
func (d *run) classify() map[string][]found {
	out := d.byDom
	raw := slices.Sorted(func(yield func(string) bool) {
		for n := range d.cands {
			if !d.classified[n] && !yield(n) {
				return
			}
		}
	})
	for _, r := range raw {
		d.classified[r] = true
		n := cleanName(r)
		switch {
		case n == "":
			d.drop("not a host name")
			continue
		case d.classified["\x00"+n]:
			continue
		}
		d.classified["\x00"+n] = true
		if !d.e.InScope(n) {
			d.drop("outside the scope")
			continue
		}
		owner, od := d.e.Owner(n)
		if owner == nil {
			d.unown(n, d.cands[r], d.via[r])
			continue
		}
		out[od] = append(out[od], found{n, d.cands[r]})
	}
	return out
}

type found struct{ name, source string }

// chase resolves the names each estate domain owns (at most MaxPerDomain
// each, the apex and www first, as hosts will) and makes the names their
// CNAME chains pass through that another estate domain owns candidates of
// that domain ("cname"). The answers are kept for hosts.
func (d *run) chase(ctx context.Context, byDomain map[string][]found) {
	follow := func(n string, chain []string) {
		for _, c := range chain {
			if c = cleanName(c); c != "" && c != n && d.e.InScope(c) {
				if o, _ := d.e.Owner(c); o != nil {
					d.candidate(c, "cname", n)
				}
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.o.Concurrency)
	for _, org := range d.e.Organisations {
		for _, dom := range org.Domains {
			if !d.e.InScope(dom) {
				continue
			}
			names := []string{dom, "www." + dom}
			for _, f := range byDomain[dom] {
				if len(names) >= d.o.MaxPerDomain {
					break
				}
				names = append(names, f.name)
			}
			for _, n := range names {
				d.mu.Lock()
				r, done := d.resolved[n]
				if !done {
					d.resolved[n] = resolution{err: errPending}
				}
				d.mu.Unlock()
				if done {
					follow(n, r.chain) // a label's, asked before
					continue
				}
				g.Go(func() error {
					var r resolution
					r.addrs, r.chain, r.err = d.o.DNS.Addrs(gctx, n)
					d.mu.Lock()
					d.resolved[n] = r
					d.mu.Unlock()
					follow(n, r.chain)
					return nil
				})
			}
		}
	}
	g.Wait()
}

var errPending = errors.New("resolution pending")

func (d *run) unown(n, source, via string) {
	d.mu.Lock()
	if _, ok := d.unowned[n]; !ok {
		d.unowned[n] = Unowned{Name: n, Source: source, Via: via}
	}
	d.mu.Unlock()
}

// finishUnowned lists the unowned names, less the MX and name-server
// hosts (they serve an estate domain), sorted and bounded.
func (d *run) finishUnowned() {
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for n := range d.unowned {
			if !yield(n) {
				return
			}
		}
	}) {
		if d.infra[n] || d.res.NSHosts[n] {
			continue
		}
		if len(d.res.Unowned) >= d.o.MaxUnowned {
			d.drop("over the unowned-name limit")
			continue
		}
		d.res.Unowned = append(d.res.Unowned, d.unowned[n])
	}
}

// hosts finds web hosts among the names dom owns: the apex, www. and the
// names found for it that resolve; it records every name in
// Result.Names. keep false only records the names (no host checks run).
func (d *run) hosts(ctx context.Context, org, dom string, names []found, keep bool) {
	names = append([]found{{dom, "dns"}, {"www." + dom, "dns"}}, names...)
	kept := 0
	tried := map[string]bool{}
	var seen []string
	defer func() {
		sort.Strings(seen)
		d.mu.Lock()
		d.res.Names[dom] = append(d.res.Names[dom], seen...)
		d.mu.Unlock()
	}()
	for _, f := range names {
		n := f.name
		if tried[n] {
			continue
		}
		tried[n] = true
		if !d.e.InScope(n) {
			d.drop("outside the scope")
			continue
		}
		if len(seen) < d.o.MaxPerDomain {
			seen = append(seen, n)
		}
		switch {
		case !keep:
			continue
		case kept >= d.o.MaxPerDomain:
			d.drop("over the per-domain limit")
			continue
		}
		d.mu.Lock()
		dup := d.seen[string(check.KindHost)+":"+n]
		r, ok := d.resolved[n]
		d.mu.Unlock()
		if dup {
			continue
		}
		if !ok {
			r.addrs, r.chain, r.err = d.o.DNS.Addrs(ctx, n)
		}
		if r.err != nil {
			d.fail("resolve "+n, r.err)
			continue
		}
		for _, c := range r.chain {
			// A CNAME chain through names in scope that no estate
			// domain owns: listed as unowned.
			if c = cleanName(c); c != "" && c != n && d.e.InScope(c) {
				if o, _ := d.e.Owner(c); o == nil {
					d.unown(c, "cname", n)
				}
			}
		}
		if len(r.addrs) == 0 {
			d.drop("does not resolve")
			continue
		}
		if !d.anyAllowed(r.addrs) {
			// Internal names in public DNS (often HSCN 10.x addresses), or
			// the metadata address: the scope guard would refuse them.
			d.drop("resolves only to private, loopback or metadata addresses")
			continue
		}
		if out := d.outside(r.chain); out != "" {
			// The scope guard would refuse every connection to it; the
			// operator can add the provider's suffix to scope.suffixes.
			d.o.Log.Info("host is an alias of a name outside the scope", "host", n, "target", out)
			d.drop("alias (CNAME) of a name outside the scope")
			continue
		}
		kept++
		d.add(check.Asset{Kind: check.KindHost, Name: n, Org: org, Domain: dom, Source: f.source})
	}
}

// zones finds the zones delegated below dom: the names recorded under it
// (the apex excluded; at most MaxZones) that own NS records themselves
// (an alias's NS records are its target's, not a cut). Each becomes a
// KindZone asset, and its name servers join NSHosts, so the DNS checks
// may ask them (excluded names never).
func (d *run) zones(ctx context.Context, org, dom string) {
	d.mu.Lock()
	var names []string
	for _, n := range d.res.Names[dom] {
		if n != dom && strings.HasSuffix(n, "."+dom) && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	d.mu.Unlock()
	if len(names) > d.o.MaxZones {
		d.drop("over the per-domain zone limit")
		names = names[:d.o.MaxZones]
	}
	var wg sync.WaitGroup
	for _, n := range names {
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-d.sem }()
			hosts, ok, err := zoneCut(ctx, d.o.DNS, d.e, n)
			if err != nil {
				d.fail("ns "+n, err)
				return
			}
			if !ok {
				return
			}
			d.mu.Lock()
			for _, h := range hosts {
				d.res.NSHosts[h] = true
			}
			d.mu.Unlock()
			d.add(check.Asset{Kind: check.KindZone, Name: n, Org: org, Domain: dom, Source: "ns"})
		}()
	}
	wg.Wait()
}

// zoneCut asks NS at name: it is a zone cut when the answer has NS records
// owned by name itself. hosts are their targets, less invalid and
// excluded names.
func zoneCut(ctx context.Context, r *dnsq.Resolver, e *estate.Estate, name string) (hosts []string, cut bool, err error) {
	resp, err := r.Query(ctx, name, dns.TypeNS)
	if err != nil {
		return nil, false, err
	}
	owner := dns.CanonicalName(name)
	for _, rr := range resp.Of(dns.TypeNS) {
		if !strings.EqualFold(rr.Header().Name, owner) {
			continue
		}
		cut = true
		h := strings.ToLower(strings.TrimSuffix(rr.(*dns.NS).Ns, "."))
		if estate.ValidDomain(h, false) == nil && !e.Excluded(h) && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts, cut, nil
}

// ZoneNameServers are the NS hosts of delegated zones (KindZone assets),
// less excluded names: what a resumed run lets the DNS checks query, as
// discovery's NSHosts did.
func ZoneNameServers(ctx context.Context, r *dnsq.Resolver, e *estate.Estate, zones []string) map[string]bool {
	if r == nil {
		r = &dnsq.Resolver{}
	}
	out := map[string]bool{}
	for _, z := range zones {
		hosts, _, _ := zoneCut(ctx, r, e, z)
		for _, h := range hosts {
			out[h] = true
		}
	}
	return out
}

func (d *run) anyAllowed(addrs []netip.Addr) bool {
	for _, a := range addrs {
		if scope.AddrAllowed(a, d.o.AllowPrivate) == nil {
			return true
		}
	}
	return false
}

func (d *run) outside(chain []string) string {
	for _, c := range chain {
		if !d.e.InScope(c) {
			return c
		}
	}
	return ""
}

// mx finds the mail hosts of a domain; a null MX ("0 .") means none.
// keep false only notes the hosts as the estate's infrastructure (not
// unowned names).
func (d *run) mx(ctx context.Context, org, dom string, keep bool) {
	mxs, resp, err := d.o.DNS.MX(ctx, dom)
	if err != nil {
		if keep {
			d.fail("mx "+dom, err)
		}
		return
	}
	if !keep {
		d.mu.Lock()
		for _, m := range mxs {
			d.infra[strings.ToLower(strings.TrimSuffix(m.Mx, "."))] = true
		}
		d.mu.Unlock()
		return
	}
	if resp.NXDomain() {
		// A lapsed or mistyped estate domain (or a resolver that answers
		// NXDOMAIN for everything): its checks will say unknown.
		d.o.Log.Info("estate domain does not exist in DNS (NXDOMAIN)", "domain", dom, "org", org)
		d.mu.Lock()
		d.res.Missing = append(d.res.Missing, dom)
		d.mu.Unlock()
		return
	}
	for _, m := range mxs {
		h := strings.ToLower(strings.TrimSuffix(m.Mx, "."))
		if h == "" {
			continue
		}
		if estate.ValidDomain(h, false) != nil {
			d.drop("not a host name")
			continue
		}
		if d.e.Excluded(h) {
			// The operator's "never touch" list beats the MX allowance.
			d.o.Log.Info("mail host excluded from the scan (scope.exclude)", "host", h, "domain", dom)
			d.drop("excluded from scope")
			d.mu.Lock()
			d.res.Excluded = append(d.res.Excluded, h)
			d.mu.Unlock()
			continue
		}
		d.mu.Lock()
		d.res.MXHosts[h], d.infra[h] = true, true
		d.mu.Unlock()
		d.add(check.Asset{Kind: check.KindMail, Name: h, Org: org, Domain: dom, Source: "mx"})
	}
}

// NameServers are the NS hosts of the estate's domains (and of the zones
// they are in), less excluded names: what DNS checks may query directly.
func NameServers(ctx context.Context, r *dnsq.Resolver, e *estate.Estate) map[string]bool {
	out := map[string]bool{}
	for _, o := range e.Organisations {
		for _, dom := range o.Domains {
			for _, h := range nameServers(ctx, r, e, dom) {
				out[h] = true
			}
		}
	}
	return out
}

// nameServers asks NS at dom and, while there is none (dom is not a zone
// apex), at its parents up to the public suffix's child.
func nameServers(ctx context.Context, r *dnsq.Resolver, e *estate.Estate, dom string) []string {
	if r == nil {
		r = &dnsq.Resolver{}
	}
	var out []string
	for name := dom; strings.Count(name, ".") >= 1; {
		resp, err := r.Query(ctx, name, dns.TypeNS)
		if err != nil {
			return out
		}
		for _, rr := range resp.Of(dns.TypeNS) {
			h := strings.ToLower(strings.TrimSuffix(rr.(*dns.NS).Ns, "."))
			if estate.ValidDomain(h, false) == nil && !e.Excluded(h) {
				out = append(out, h)
			}
		}
		if len(out) > 0 || resp.NXDomain() {
			return out
		}
		_, name, _ = strings.Cut(name, ".")
		if ps, _ := publicsuffix.PublicSuffix(name); ps == name {
			return out
		}
	}
	return out
}

// github lists an organisation's public repositories.
func (d *run) github(ctx context.Context, org, login string) {
	d.add(check.Asset{Kind: check.KindOrg, Name: login, Org: org, Source: "estate"})
	opt := &github.RepositoryListByOrgOptions{Type: "public", ListOptions: github.ListOptions{PerPage: 100}}
	n := 0
	for {
		repos, resp, err := d.o.GitHub.Repositories.ListByOrg(ctx, login, opt)
		if err != nil {
			d.fail("github "+login, err)
			return
		}
		for _, r := range repos {
			if n >= d.o.MaxRepos {
				d.drop("over the per-organisation repository limit")
				continue
			}
			n++
			d.add(check.Asset{Kind: check.KindRepo, Name: r.GetFullName(), Org: org, Source: "github"})
		}
		if resp.NextPage == 0 {
			return
		}
		opt.Page = resp.NextPage
	}
}
