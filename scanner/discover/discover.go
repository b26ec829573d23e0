// Package discover turns an estate into assets: the organisations' domains,
// web hosts found in Certificate Transparency and DNS, the zones delegated
// below the domains (names that own NS records), the MX hosts that receive
// their mail, and their GitHub organisations and repositories.
// Every name it keeps is inside the estate's scope; every name it drops is
// counted with the reason, so an operator can see what was left out.
package discover

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"

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
	MaxRepos    int
	Concurrency int
	// AllowPrivate keeps hosts that resolve to private addresses (labs).
	AllowPrivate bool
	Log          *slog.Logger
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
	// Names are, per estate domain, every name discovery saw under it
	// (the apex, www and the CT names, cleaned: lower case, a wildcard's
	// "*." removed, valid host names inside the domain, not excluded),
	// whether kept as a host or dropped, sorted, at most MaxPerDomain.
	// Domain checks read them as the estate hint "names" (a CT name whose
	// alias dangles is dropped as a host but is what dns.dangling-cname
	// must see).
	Names map[string][]string
}

// HintNames is the estate hint key under which a domain's checks read
// Result.Names.
const HintNames = "names"

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
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	if o.DNS == nil {
		o.DNS = &dnsq.Resolver{}
	}
	d := &run{o: o, e: e, res: &Result{Dropped: map[string]int{}, MXHosts: map[string]bool{}, NSHosts: map[string]bool{}, Names: map[string][]string{}},
		seen: map[string]bool{}, sem: make(chan struct{}, o.Concurrency)}
	want := func(k check.Kind) bool { return o.Kinds == nil || o.Kinds[k] }

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	for _, org := range e.Organisations {
		for _, dom := range org.Domains {
			if !e.InScope(dom) {
				d.drop("excluded from scope")
				continue
			}
			d.add(check.Asset{Kind: check.KindDomain, Name: dom, Org: org.Code, Domain: dom, Source: "estate"})
			if want(check.KindDomain) {
				g.Go(func() error {
					for _, h := range nameServers(gctx, o.DNS, e, dom) {
						d.mu.Lock()
						d.res.NSHosts[h] = true
						d.mu.Unlock()
					}
					return nil
				})
			}
			if want(check.KindHost) || want(check.KindZone) || (o.Names && want(check.KindDomain)) {
				// Domain checks may need the names (dns.dangling-cname);
				// only host checks need them resolved and kept; zone
				// checks need those that are zone cuts.
				g.Go(func() error {
					d.hosts(gctx, org.Code, dom, want(check.KindHost))
					if want(check.KindZone) {
						d.zones(gctx, org.Code, dom)
					}
					return nil
				})
			}
			if want(check.KindMail) {
				g.Go(func() error { d.mx(gctx, org.Code, dom); return nil })
			}
		}
		if (want(check.KindRepo) || want(check.KindOrg)) && o.GitHub != nil {
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
	d.o.Log.Warn("discovery source failed", "source", source, "err", err)
	d.mu.Lock()
	d.res.Errors = append(d.res.Errors, source+": "+err.Error())
	d.mu.Unlock()
}

// hosts finds web hosts: the apex, www. and names from CT that resolve;
// it records every name seen under dom in Result.Names. keep false only
// records the names (no host checks run).
func (d *run) hosts(ctx context.Context, org, dom string, keep bool) {
	names := []string{dom, "www." + dom}
	if d.o.CTURL != "" {
		ct, err := d.ct(ctx, dom)
		if err != nil {
			d.fail("ct "+dom, err)
		}
		names = append(names, ct...)
	}
	kept := 0
	tried := map[string]bool{}
	var seen []string
	defer func() {
		sort.Strings(seen)
		d.mu.Lock()
		d.res.Names[dom] = append(d.res.Names[dom], seen...)
		d.mu.Unlock()
	}()
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
		if strings.HasPrefix(n, "*.") {
			n = n[2:] // a wildcard certificate names its parent
		}
		if tried[n] {
			continue // CT lists a name once per certificate
		}
		tried[n] = true
		switch {
		case estate.ValidDomain(n, false) != nil:
			d.drop("not a host name")
			continue
		case !d.e.InScope(n):
			d.drop("outside the scope")
			continue
		}
		if (n == dom || strings.HasSuffix(n, "."+dom)) && len(seen) < d.o.MaxPerDomain {
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
		d.mu.Unlock()
		if dup {
			continue
		}
		addrs, chain, err := d.o.DNS.Addrs(ctx, n)
		if err != nil {
			d.fail("resolve "+n, err)
			continue
		}
		if len(addrs) == 0 {
			d.drop("does not resolve")
			continue
		}
		if !d.anyAllowed(addrs) {
			// Internal names in public DNS (often HSCN 10.x addresses), or
			// the metadata address: the scope guard would refuse them.
			d.drop("resolves only to private, loopback or metadata addresses")
			continue
		}
		if out := d.outside(chain); out != "" {
			// The scope guard would refuse every connection to it; the
			// operator can add the provider's suffix to scope.suffixes.
			d.o.Log.Info("host is an alias of a name outside the scope", "host", n, "target", out)
			d.drop("alias (CNAME) of a name outside the scope")
			continue
		}
		src := "dns"
		if n != dom && n != "www."+dom {
			src = "ct"
		}
		owner, od := d.e.Owner(n)
		if owner != nil {
			org, dom = owner.Code, od
		}
		kept++
		d.add(check.Asset{Kind: check.KindHost, Name: n, Org: org, Domain: dom, Source: src})
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
func (d *run) mx(ctx context.Context, org, dom string) {
	mxs, resp, err := d.o.DNS.MX(ctx, dom)
	if err != nil {
		d.fail("mx "+dom, err)
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
		d.res.MXHosts[h] = true
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

// ctEntry is one crt.sh result row (only the fields used).
type ctEntry struct {
	NameValue  string `json:"name_value"`
	CommonName string `json:"common_name"`
}

const maxCTBytes = 32 << 20

// ct asks a crt.sh-compatible endpoint for names under dom.
func (d *run) ct(ctx context.Context, dom string) ([]string, error) {
	u, err := url.Parse(d.o.CTURL)
	if err != nil {
		return nil, fmt.Errorf("ct: bad URL: %w", err)
	}
	q := u.Query()
	q.Set("q", "%."+dom)
	q.Set("output", "json")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("ct: %w", err)
	}
	resp, err := d.o.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ct: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ct: HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCTBytes+1))
	if err != nil {
		return nil, fmt.Errorf("ct: read: %w", err)
	}
	if len(b) > maxCTBytes {
		return nil, fmt.Errorf("ct: response larger than %d bytes", maxCTBytes)
	}
	var rows []ctEntry
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("ct: decode: %w", err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, strings.Split(r.NameValue, "\n")...)
		out = append(out, r.CommonName)
	}
	return out, nil
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
