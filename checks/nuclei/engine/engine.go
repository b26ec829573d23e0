// Package engine runs nuclei (as a library) for one batch of hosts. It is
// the only package of posture that imports nuclei; it runs inside the
// worker process (`posture nuclei-worker`), never in the scanner, because
// the nuclei SDK leaks memory over long runs (nuclei issues #4530, #5209):
// one process per batch returns everything to the system when it exits.
//
// The engine is built offline and narrow: no template or version update,
// no interactsh, only the http, dns and ssl protocols (headless, code,
// file and javascript stay off), one request time limit, a response size
// cap, a global rate limit, and every connection through the parent's
// guarded proxy (HTTP CONNECT for http, SOCKS5 for the rest) and every
// name through the parent's DNS relay.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/projectdiscovery/gologger"
	"github.com/projectdiscovery/gologger/levels"
	sdk "github.com/projectdiscovery/nuclei/v3/lib"
	"github.com/projectdiscovery/nuclei/v3/pkg/output"
	nucleihttp "github.com/projectdiscovery/nuclei/v3/pkg/protocols/http"
	updateutils "github.com/projectdiscovery/utils/update"

	"github.com/nhsx/posture/checks/nuclei"
)

// refuse is the transport of the SDK's version-check client: it never
// connects (the SDK asks api.pdtm.sh once per process whatever the
// options say).
type refuse struct{}

func (refuse) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("posture: nuclei's update check is disabled")
}

// Run runs job and writes one nuclei.Event per line to out, then a Done
// line. An error means the batch did not run (bad job, engine init).
func Run(ctx context.Context, job nuclei.Job, out io.Writer) error {
	if job.Version != nuclei.JobVersion {
		return fmt.Errorf("nuclei worker: job version %d, this worker reads %d", job.Version, nuclei.JobVersion)
	}
	if job.Pack && job.PackVersion != nuclei.PackVersion {
		return fmt.Errorf("nuclei worker: pack %s asked, this worker has %s", job.PackVersion, nuclei.PackVersion)
	}
	if job.WorkDir == "" || job.Proxy == "" || job.Resolver == "" {
		return errors.New("nuclei worker: the job needs a work directory, a proxy and a resolver")
	}
	if job.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(job.Deadline)*time.Second)
		defer cancel()
	}
	updateutils.DefaultHttpClient.Transport = refuse{}
	updateutils.DefaultHttpClient.Timeout = time.Millisecond

	w := &writer{enc: json.NewEncoder(out), loaded: map[string]string{}, start: time.Now()}
	var runs []source
	if job.Pack {
		dir := filepath.Join(job.WorkDir, "pack")
		if err := writePack(dir); err != nil {
			return err
		}
		runs = append(runs, source{name: "pack", dir: dir})
	}
	if job.UserDir != "" {
		runs = append(runs, source{name: "user", dir: job.UserDir, tags: job.Tags, severities: job.Severities})
	}
	// Load every source before running any, and say what was loaded: the
	// parent then knows when a host has every template's result.
	var loadErr []string
	var engines []*loaded
	defer func() {
		for _, l := range engines {
			l.e.Close()
		}
	}()
	for _, s := range runs {
		l, err := load(ctx, job, s, w)
		if err != nil {
			loadErr = append(loadErr, s.name+": "+err.Error())
			continue
		}
		engines = append(engines, l)
	}
	w.mu.Lock()
	_ = w.enc.Encode(nuclei.Event{Loaded: w.loaded})
	w.mu.Unlock()
	for _, l := range engines {
		if err := l.run(ctx, job, w); err != nil {
			loadErr = append(loadErr, l.s.name+": "+err.Error())
		}
		if ctx.Err() != nil {
			break
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.enc.Encode(nuclei.Event{Done: true, Loaded: w.loaded, LoadError: strings.Join(loadErr, "; ")})
}

type source struct {
	name, dir        string
	tags, severities []string
}

// writer serialises events from nuclei's callback goroutines.
type writer struct {
	mu     sync.Mutex
	enc    *json.Encoder
	loaded map[string]string
	start  time.Time
}

func (w *writer) write(e nuclei.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e.ElapsedMS = time.Since(w.start).Milliseconds()
	_ = w.enc.Encode(e)
}

func writePack(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return fs.WalkDir(nuclei.PackFS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := nuclei.PackFS.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o600)
	})
}

// loaded is an engine with one source's templates loaded.
type loaded struct {
	e       *sdk.NucleiEngine
	s       source
	n       int
	refused []string // pipelined templates, not run
}

// load builds an engine for one template source (the pack, or the
// operator's directory with its filters) and loads its templates.
func load(ctx context.Context, job nuclei.Job, s source, w *writer) (*loaded, error) {
	l, err := loadExcluding(ctx, job, s, w, nil)
	if err != nil {
		return nil, err
	}
	// Pipelined HTTP (pipeline: true) goes through rawhttp's own client,
	// which dials directly: such a template would bypass the proxy and the
	// scope guard. It is not run; each target gets its refusal.
	var refused []string
	for _, t := range l.e.GetTemplates() {
		for _, r := range append(append([]*nucleihttp.Request(nil), t.RequestsHTTP...), t.RequestsWithHTTP...) {
			if r != nil && r.Pipeline && !slices.Contains(refused, t.ID) {
				refused = append(refused, t.ID)
			}
		}
	}
	if len(refused) == 0 {
		return l, nil
	}
	l.e.Close()
	w.mu.Lock()
	for _, id := range refused {
		delete(w.loaded, s.name+"/"+id)
	}
	w.mu.Unlock()
	if l, err = loadExcluding(ctx, job, s, w, refused); err != nil {
		return nil, err
	}
	w.mu.Lock()
	for _, id := range refused {
		w.loaded[s.name+"/"+id] = s.name
	}
	w.mu.Unlock()
	l.refused = refused
	return l, nil
}

// ErrPipelineRefused is the error of a pipelined template's result.
const ErrPipelineRefused = "refused: pipelined HTTP (pipeline: true) dials directly, not through the scope guard"

func loadExcluding(ctx context.Context, job nuclei.Job, s source, w *writer, exclude []string) (*loaded, error) {
	proxyHTTP := "http://" + job.Proxy
	proxySOCKS := "socks5://" + job.Proxy
	timeout := max(job.Timeout, 1)
	rate := job.RateLimit
	if rate <= 0 {
		rate = 50
	}
	hostConc, tmplConc := max(job.HostConcurrency, 1), max(job.TemplateConcurrency, 1)
	maxErr := job.MaxHostErrors
	if maxErr <= 0 {
		maxErr = 3
	}
	logger := gologger.DefaultLogger
	logger.SetMaxLevel(levels.LevelSilent)
	opts := []sdk.NucleiSDKOptions{
		sdk.WithLogger(logger),
		sdk.DisableUpdateCheck(),
		sdk.WithTemplateUpdateCallback(true, nil),
		sdk.WithTemplatesOrWorkflows(sdk.TemplateSources{Templates: []string{s.dir}}),
		sdk.WithTemplateFilters(sdk.TemplateFilters{
			ProtocolTypes: "http,dns,ssl",
			Tags:          s.tags,
			Severity:      strings.Join(s.severities, ","),
			ExcludeIDs:    exclude,
		}),
		sdk.WithInteractshOptions(sdk.InteractshOpts{NoInteractsh: true, CacheSize: 16, Eviction: time.Minute,
			CooldownPeriod: time.Second, PollDuration: time.Minute, DisableHttpFallback: true}),
		sdk.EnableMatcherStatus(),
		sdk.WithConcurrency(sdk.Concurrency{
			TemplateConcurrency: tmplConc, HostConcurrency: hostConc,
			HeadlessHostConcurrency: 1, HeadlessTemplateConcurrency: 1, JavascriptTemplateConcurrency: 1,
			TemplatePayloadConcurrency: 1, ProbeConcurrency: 1,
		}),
		sdk.WithNetworkConfig(sdk.NetworkConfig{
			Timeout: timeout, Retries: 1, MaxHostError: maxErr,
			InternalResolversList: []string{job.Resolver},
		}),
		sdk.WithGlobalRateLimitCtx(ctx, rate, time.Second),
		sdk.WithResponseReadSize(256 << 10),
		sdk.WithSandboxOptions(false, false),
		sdk.WithTemporaryDirectory(job.WorkDir),
		sdk.WithVerbosity(sdk.VerbosityOptions{Silent: true}),
		func(e *sdk.NucleiEngine) error {
			o := e.Options()
			// Every request through the parent's guarded proxy: HTTP
			// (CONNECT: names travel to the proxy, which resolves them
			// through the scope guard) for the http protocol, SOCKS5 for
			// nuclei's own dialer (ssl) and DNS over TCP.
			o.AliveHttpProxy, o.AliveSocksProxy = proxyHTTP, proxySOCKS
			o.Proxy = nil
			o.ProxyInternal = false
			o.Headless, o.EnableCodeTemplates, o.EnableFileTemplates = false, false, false
			o.EnableSelfContainedTemplates, o.EnableGlobalMatchersTemplates = false, false
			o.DisableHTTPProbe = true
			o.NoInteractsh = true
			o.FollowRedirects, o.MaxRedirects = false, 0
			o.MaxHostError = maxErr
			o.ScanStrategy = "template-spray"
			o.StatsJSON = false
			return nil
		},
	}
	e, err := sdk.NewNucleiEngineCtx(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("nuclei engine: %w", err)
	}
	if err := e.LoadAllTemplates(); err != nil {
		e.Close()
		return nil, fmt.Errorf("load templates: %w", err)
	}
	w.mu.Lock()
	for _, t := range e.GetTemplates() {
		w.loaded[s.name+"/"+t.ID] = s.name
	}
	w.mu.Unlock()
	return &loaded{e: e, s: s, n: len(e.GetTemplates())}, nil
}

// run runs the source's templates on every target.
func (l *loaded) run(ctx context.Context, job nuclei.Job, w *writer) error {
	for _, id := range l.refused {
		for _, t := range job.Targets {
			w.write(nuclei.Event{Template: id, Source: l.s.name, Target: t, Error: ErrPipelineRefused})
		}
	}
	if l.n == 0 {
		return nil
	}
	l.e.LoadTargets(job.Targets, false)
	err := l.e.ExecuteCallbackWithCtx(ctx, func(ev *output.ResultEvent) {
		w.write(eventOf(ev, l.s.name, job.Targets))
	})
	if err != nil && !errors.Is(err, sdk.ErrNoTargetsAvailable) {
		return fmt.Errorf("execute: %w", err)
	}
	return nil
}

// eventOf converts a nuclei result, naming the job target it belongs to.
func eventOf(ev *output.ResultEvent, src string, targets []string) nuclei.Event {
	e := nuclei.Event{
		Template: ev.TemplateID, Source: src, Matched: ev.MatcherStatus,
		URL: ev.Matched, Matcher: ev.MatcherName, Error: ev.Error,
		Severity: ev.Info.SeverityHolder.Severity.String(), Name: ev.Info.Name,
	}
	if e.Matched {
		e.Error = ""
		if len(ev.ExtractedResults) > 0 {
			e.Extracted = ev.ExtractedResults
		}
	}
	e.Target = targetOf(targets, ev.Host, ev.URL, ev.Matched)
	return e
}

// targetOf finds the job target whose host a result names.
func targetOf(targets []string, cands ...string) string {
	for _, c := range cands {
		h := hostOf(c)
		if h == "" {
			continue
		}
		for _, t := range targets {
			if hostOf(t) == h {
				return t
			}
		}
	}
	for _, c := range cands {
		if c != "" {
			return c
		}
	}
	return ""
}

func hostOf(s string) string {
	if s == "" {
		return ""
	}
	if !strings.Contains(s, "://") {
		s = "x://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
}
