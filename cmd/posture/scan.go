package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnscheck"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/scanner"
	"github.com/nhsx/posture/scanner/discover"
	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/ghhttp"
	"github.com/nhsx/posture/scanner/ghpages"
	"github.com/nhsx/posture/scanner/store"
)

// families a scan can be limited to: those the catalogue has.
var families = checks.Families()

type scanFlags struct {
	estate, db, resolver, caFile, policy string
	only                                 []string
	allowPrivate                         bool
	concurrency, perIP, perDomain        int
	jobTimeout, dnsTimeout, connTimeout  time.Duration
	ehloName                             string
	githubTokenEnv, githubAPI, ctURL     string
	githubMaxWait                        time.Duration
	ghCache                              *ghCache
	rdapURL                              string
	trustAnchor                          string
	labels                               []string
	nuclei                               nucleiFlags
	ctRefresh                            time.Duration
	axfr                                 bool
	hstsPreload                          string
	hold                                 int // lifecycle: runs a change must hold (hold.go)
}

func scanCmd(g *globals) *cobra.Command {
	f := &scanFlags{}
	c := &cobra.Command{
		Use:   "scan",
		Short: "Discover, scan and store one run (re-run the same command to resume an interrupted run)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.config(g)
			if err != nil {
				return err
			}
			pr := newProgress(g.stderr, g.log)
			pr.attach(&cfg.Options)
			defer pr.close()
			unlock, err := store.LockScans(f.db)
			if err != nil {
				return err
			}
			defer unlock()
			st, err := store.Open(cmd.Context(), f.db)
			if err != nil {
				return err
			}
			defer st.Close()
			stats, err := runPipeline(cmd.Context(), g, f, st, cfg, nil)
			if stats != nil {
				printStats(g.stdout, stats, f.db)
			}
			return err
		},
	}
	f.register(c.Flags())
	return c
}

// register adds the flags of a run (scan's, and serve's too).
func (f *scanFlags) register(fl *pflag.FlagSet) {
	f.nuclei.register(fl)
	fl.StringVar(&f.estate, "estate", "", "estate file (default: the embedded national estate)")
	fl.StringVar(&f.db, "db", "posture.db", "SQLite database")
	holdFlag(fl, &f.hold, store.DefaultHold, "")
	fl.StringVar(&f.resolver, "resolver", "", "recursive resolver IP:PORT (default: /etc/resolv.conf)")
	fl.StringVar(&f.caFile, "ca-file", "", "extra trusted CA certificates (PEM), added to the system roots")
	fl.StringVar(&f.policy, "policy", "", "policy file (YAML) overriding thresholds and severities")
	fl.StringVar(&f.trustAnchor, "trust-anchor", "", "DNSSEC trust anchors: DS or DNSKEY records in zone-file form, replacing the built-in root anchors")
	fl.StringSliceVar(&f.only, "only", nil, "only these check families: "+strings.Join(families, ","))
	fl.BoolVar(&f.allowPrivate, "allow-private", false, "allow private, loopback and link-local addresses (labs only)")
	fl.IntVar(&f.concurrency, "concurrency", 16, "concurrent jobs")
	fl.IntVar(&f.perIP, "per-ip", 4, "concurrent connections per IP address")
	fl.IntVar(&f.perDomain, "per-domain", 4, "concurrent jobs per estate domain")
	fl.DurationVar(&f.jobTimeout, "job-timeout", 60*time.Second, "time limit of one check on one asset")
	fl.DurationVar(&f.connTimeout, "connect-timeout", 5*time.Second, "time limit of one TCP connect (a host that misses it is dead for the run)")
	fl.StringVar(&f.ehloName, "ehlo-name", defaultEHLO(), "the name SMTP probes greet mail servers with (this host's FQDN)")
	fl.DurationVar(&f.dnsTimeout, "dns-timeout", 2*time.Second, "time limit of one DNS attempt (retried twice)")
	fl.StringVar(&f.githubTokenEnv, "github-token-env", "GITHUB_TOKEN", "environment variable holding a GitHub token")
	fl.StringVar(&f.githubAPI, "github-api", "https://api.github.com/", "GitHub REST API base URL")
	fl.DurationVar(&f.githubMaxWait, "github-max-wait", ghhttp.DefaultMaxWait, "longest wait for a GitHub rate limit to reset; beyond it the repository checks left are unknown (rate-limited)")
	fl.StringVar(&f.ctURL, "ct-url", "https://crt.sh/", "Certificate Transparency search (crt.sh JSON); empty: no CT discovery")
	fl.StringSliceVar(&f.labels, "discover-labels", discover.DefaultLabels, "host labels asked for in DNS under every estate domain (label.<domain>); empty: none")
	fl.BoolVar(&f.axfr, "discover-axfr", true, "ask the estate domains' name servers (and SOA primary) for zone transfers; a server that allows one gives the zone's names")
	fl.DurationVar(&f.ctRefresh, "ct-refresh", 7*24*time.Hour, "how often the CT search is full (expired certificates included); runs in between ask only for current certificates and add their names to the cached ones")
	fl.StringVar(&f.hstsPreload, "hsts-preload", "", hstsPreloadUsage)
	fl.StringVar(&f.rdapURL, "rdap-url", "", "RDAP service base URL for domain expiry and registrar lock (e.g. https://rdap.nominet.uk/uk/); empty: those checks are unknown")
}

// afterRun is a step after a complete run (serve: notify).
type afterRun func(ctx context.Context, st *store.Store, stats *scanner.Stats) error

// runPipeline is one run into st, as `scan` does it and `serve` each
// night: discovery, scan and store (scanner.Run), then, if the run
// completed, its scores and then after (serve: notify). The caller holds
// the scan lock (store.LockScans).
func runPipeline(ctx context.Context, g *globals, f *scanFlags, st *store.Store, cfg *scanner.Config, after afterRun) (*scanner.Stats, error) {
	if err := setHold(st, f.hold); err != nil {
		return nil, err
	}
	f.ghCache.st = st // the GitHub ETag cache lives in the database
	if err := useSecretKey(f.db); err != nil {
		return nil, err
	}
	stats, err := scanner.Run(ctx, st, *cfg)
	if err != nil || stats == nil || stats.Status != string(store.Complete) {
		return stats, err
	}
	// Reports compute the scores themselves when they are missing: a
	// failure here costs time later, not a result. The run is complete: a
	// signal now does not cut its scores short (they take seconds).
	if err := RecordRunScores(context.WithoutCancel(ctx), st, stats.RunID); err != nil {
		g.log.Warn("scores of the run not stored; the next report computes them", "run", stats.RunID, "err", err)
	}
	if after != nil {
		if err := after(ctx, st, stats); err != nil {
			return stats, err
		}
	}
	return stats, nil
}

func (f *scanFlags) config(g *globals) (*scanner.Config, error) {
	e, err := loadEstate(f.estate)
	if err != nil {
		return nil, err
	}
	fams, err := parseFamilies(f.only)
	if err != nil {
		return nil, err
	}
	pol := check.DefaultPolicy()
	if f.policy != "" {
		if pol, err = checks.LoadPolicy(f.policy); err != nil {
			return nil, &usageError{err}
		}
	}
	if pol, err = withTrustAnchors(pol, f.trustAnchor); err != nil {
		return nil, err
	}
	preload, err := loadHSTSPreload(f.hstsPreload)
	if err != nil {
		return nil, err
	}
	var anchors []string
	if f.trustAnchor != "" {
		anchors = dnscheck.Settings.Get(pol).TrustAnchors
	}
	res := &dnsq.Resolver{Timeout: f.dnsTimeout}
	if f.resolver != "" {
		if _, _, err := net.SplitHostPort(f.resolver); err != nil {
			return nil, usagef("--resolver %q: want IP:PORT", f.resolver)
		}
		res.Servers = []string{f.resolver}
	}
	roots, caPEM, err := loadRoots(f.caFile)
	if err != nil {
		return nil, err
	}
	if err := checkHold(f.hold, false); err != nil {
		return nil, err
	}
	if f.concurrency < 1 || f.perIP < 1 || f.perDomain < 1 {
		return nil, usagef("--concurrency, --per-ip and --per-domain must be at least 1")
	}
	if f.rdapURL != "" {
		if u, err := url.Parse(f.rdapURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, usagef("--rdap-url %q: want an http(s) URL", f.rdapURL)
		}
	}
	svc := scanner.ServiceClient(nil)
	if f.ctRefresh < 0 {
		return nil, usagef("--ct-refresh must not be negative")
	}
	var labels []string
	for _, l := range f.labels {
		l = strings.ToLower(strings.TrimSpace(l))
		if l == "" {
			continue
		}
		if !validLabel(l) {
			return nil, usagef("--discover-labels %q: want host name labels (letters, digits, hyphens)", l)
		}
		labels = append(labels, l)
	}
	// One breaker per configured service, for the run: a GitHub API that
	// is down costs one timeout, as a CT or RDAP service does.
	services := &scanner.Services{Log: g.log}
	if f.githubMaxWait < 0 {
		return nil, usagef("--github-max-wait must not be negative")
	}
	f.ghCache = &ghCache{}
	gh, err := githubClient(services.Client("github", svc), f.githubAPI, os.Getenv(f.githubTokenEnv), f.ghCache, f.githubMaxWait)
	if err != nil {
		return nil, err
	}
	set, err := f.nuclei.settings()
	if err != nil {
		return nil, err
	}
	return &scanner.Config{
		Estate: e, Checks: checks.All(), Families: fams, DNS: res,
		AllowPrivate: f.allowPrivate, PerIP: f.perIP, Roots: roots, CAPEM: caPEM, TrustAnchors: anchors,
		ConnectTimeout: f.connTimeout, EHLOName: f.ehloName,
		CTURL: f.ctURL, RDAPURL: f.rdapURL, GitHub: gh, ServiceHTTP: svc, Services: services, Sources: pagesSource(gh),
		Labels: labels, CTRefresh: f.ctRefresh, NoAXFR: !f.axfr,
		Options: scanner.Options{
			Env: withNuclei(hstsPreloadEnv(preload), set), Policy: pol, Concurrency: f.concurrency, PerDomain: f.perDomain, JobTimeout: f.jobTimeout,
			Log: g.log,
		},
	}, nil
}

// validLabel says whether l is one host name label (RFC 1123 §2.1).
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// withTrustAnchors sets the dns section's DNSSEC trust anchors from a file
// (--trust-anchor; "": pol unchanged). A file that cannot be read, does not
// parse or holds no DS or DNSKEY record is bad input: exit 2, with
// file:line.
func withTrustAnchors(pol *check.Policy, file string) (*check.Policy, error) {
	if file == "" {
		return pol, nil
	}
	anchors, err := dnscheck.LoadTrustAnchors(file)
	if err != nil {
		return nil, &usageError{fmt.Errorf("--trust-anchor: %w", err)}
	}
	return dnscheck.WithTrustAnchors(pol, anchors), nil
}

func loadEstate(path string) (*estate.Estate, error) {
	if path == "" {
		return estate.Default(), nil
	}
	e, err := estate.Load(path)
	if err != nil {
		if es, ok := err.(estate.Errors); ok {
			return nil, es
		}
		return nil, &usageError{err}
	}
	return e, nil
}

func parseFamilies(only []string) ([]string, error) {
	var out []string
	for _, f := range only {
		f = strings.TrimSpace(strings.ToLower(f))
		ok := false
		for _, k := range families {
			ok = ok || k == f
		}
		if !ok {
			return nil, usagef("--only %q: families are %s", f, strings.Join(families, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// loadRoots returns the system roots plus caFile's certificates, and
// caFile's PEM (stored with a run, so reeval judges with the same anchors).
func loadRoots(caFile string) (*x509.CertPool, []byte, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile == "" {
		return roots, nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, usagef("--ca-file: %v", err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, nil, usagef("--ca-file %s: no PEM certificates in it", caFile)
	}
	return roots, pem, nil
}

// githubClient is the GitHub API client of a run: go-github over the
// GitHub transport (ghhttp: ETags kept in cache, rate limits waited out up
// to maxWait, 0: the default) over hc's transport. The client has no
// overall timeout, so that a rate-limit wait is not cut short; hc's
// transport bounds each exchange.
func githubClient(hc *http.Client, base, token string, cache ghhttp.Cache, maxWait time.Duration) (*github.Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, usagef("--github-api %q: want an http(s) URL", base)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	var rt http.RoundTripper
	if hc != nil {
		rt = hc.Transport
	}
	c := github.NewClient(&http.Client{Transport: &ghhttp.Transport{Base: rt, Cache: cache, MaxWait: maxWait}})
	if token != "" {
		c = c.WithAuthToken(token)
	}
	c.BaseURL = u
	return c, nil
}

// pagesSource finds names in the GitHub Pages CNAME files of the
// organisations' repositories (nil: no GitHub client).
func pagesSource(gh *github.Client) []discover.NameSource {
	if gh == nil {
		return nil
	}
	return []discover.NameSource{ghpages.Source{GitHub: gh}}
}

// ghCache is the GitHub ETag cache: the run's database once it is open
// (until then, and without one, nothing is kept).
type ghCache struct{ st *store.Store }

func (c *ghCache) GitHubCacheGet(ctx context.Context, key string) (string, http.Header, []byte, bool, error) {
	if c == nil || c.st == nil {
		return "", nil, nil, false, nil
	}
	return c.st.GitHubCacheGet(ctx, key)
}

func (c *ghCache) GitHubCachePut(ctx context.Context, key, etag string, h http.Header, body []byte) error {
	if c == nil || c.st == nil {
		return nil
	}
	return c.st.GitHubCachePut(ctx, key, etag, h, body)
}

func printStats(w io.Writer, s *scanner.Stats, db string) {
	var parts []string
	for _, o := range check.Outcomes {
		if n := s.Findings[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	resumed := ""
	if s.Resumed {
		resumed = fmt.Sprintf(" (resumed: %d jobs were already done)", s.Skipped)
	}
	fmt.Fprintf(w, "run %d %s: %d jobs%s; findings: %s; stored in %s\n",
		s.RunID, s.Status, s.Jobs, resumed, strings.Join(parts, ", "), db)
	if len(s.Excluded) > 0 {
		names := make([]string, 0, len(s.Excluded))
		for n := range s.Excluded {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(w, "not contacted (scope.exclude): %s\n", strings.Join(names, ", "))
	}
	if len(s.Unavailable) > 0 {
		names := make([]string, 0, len(s.Unavailable))
		for n, err := range s.Unavailable {
			names = append(names, fmt.Sprintf("%s (%s)", n, err))
		}
		sort.Strings(names)
		fmt.Fprintf(w, "discovery sources unavailable (skipped for the rest of the run): %s\n", strings.Join(names, "; "))
	}
	if s.Unowned > 0 {
		fmt.Fprintf(w, "unowned names (in scope, no estate domain owns them; listed, not scanned): %d\n", s.Unowned)
	}
}

// defaultEHLO is the host name if it looks like an FQDN, else "" (the probe
// then greets as posture.invalid).
func defaultEHLO() string {
	h, err := os.Hostname()
	if err != nil || !strings.Contains(h, ".") {
		return ""
	}
	return h
}
