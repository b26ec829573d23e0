// Package nuclei is the web family's nuclei collector, web.nuclei: an
// embedded template pack written for the NHS estate (exposed .git, .env,
// server-status, directory listings, phpinfo, default install pages,
// administration logins, backups, and the unclaimed-resource pages of
// takeover-prone hosting services) plus an optional operator template
// directory, run by nuclei in a child process per batch of hosts.
//
// This package does not import nuclei (checks/nuclei/engine does, and
// only the worker process runs it). It embeds the pack, derives the
// catalogue from it (one entry per template: web.exposure.<name> or
// web.takeover.<service>), batches hosts, starts the worker
// (`posture nuclei-worker`), and gives the worker its only way out: a
// loopback proxy whose every connection goes through env.DialContext (the
// scope guard) and a DNS relay to env.DNS.
package nuclei

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// CustomID is the catalogue id of operator templates' findings (the
// catalogue is static: every operator template on a host is judged under
// this one id, the templates named in the message).
const CustomID = "web.exposure.custom"

// Settings keys (check.Env.Settings) the collector reads.
const (
	SetTemplates = "nuclei.templates"  // operator template directory
	SetTags      = "nuclei.tags"       // comma-separated tags filter
	SetSeverity  = "nuclei.severity"   // comma-separated severities filter
	SetRate      = "nuclei.rate"       // global requests per second of a worker
	SetHostRate  = "nuclei.host-rate"  // new connections per second per host
	SetBatch     = "nuclei.batch-size" // hosts per worker (default 64)
)

// EvidenceVersion is web.nuclei's evidence schema version.
const EvidenceVersion = 1

// Evidence is web.nuclei's raw evidence on one host (Version 1).
//
// Schema (JSON): {"host", "pack_version", "user_dir"?, "tags"?,
// "severities"?, "templates": [Run], "net": what the proxy saw of the host
// ({"dials", "refused", "failed", "scope", "last_class", "bytes"}),
// "worker": Worker, "resolve_error"?, "resolve_class"?}.
type Evidence struct {
	Host        string   `json:"host"`
	PackVersion string   `json:"pack_version"`
	UserDir     string   `json:"user_dir,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Severities  []string `json:"severities,omitempty"`
	Templates   []Run    `json:"templates"`
	Net         hostNet  `json:"net"`
	Worker      Worker   `json:"worker"`
	// ResolveError: the host's name could not be resolved through the
	// guard (the worker was not asked).
	ResolveError string         `json:"resolve_error,omitempty"`
	ResolveClass check.ErrClass `json:"resolve_class,omitempty"`
}

// Run is one template's outcome on the host.
//
// Schema (JSON): {"template", "source" (pack|user), "hash"? (sha256 of a
// pack template), "check"? (catalogue id of a pack template), "outcome"
// (matched|clean|error|not-run), "class"?, "error"? (clipped), "url"?,
// "matcher"?, "extracted"? (clipped; key names only for .env), "severity"?,
// "name"?, "elapsed_ms"? (when its last result came, since the worker
// started)}.
type Run struct {
	Template  string         `json:"template"`
	Source    string         `json:"source"`
	Hash      string         `json:"hash,omitempty"`
	CheckID   string         `json:"check,omitempty"`
	Outcome   string         `json:"outcome"`
	Class     check.ErrClass `json:"class,omitempty"`
	Error     string         `json:"error,omitempty"`
	URL       string         `json:"url,omitempty"`
	Matcher   string         `json:"matcher,omitempty"`
	Extracted []string       `json:"extracted,omitempty"`
	Severity  string         `json:"severity,omitempty"`
	Name      string         `json:"name,omitempty"`
	ElapsedMS int64          `json:"elapsed_ms,omitempty"`
}

// Run outcomes.
const (
	Matched = "matched"
	Clean   = "clean"
	Errored = "error"
	NotRun  = "not-run"
)

// Worker is what became of the batch's worker process.
//
// Schema (JSON): {"batch" (hosts in the batch), "elapsed_ms", "exit"?
// (how it ended when not cleanly), "class"?, "load_error"?,
// "scope_refused"? (connections of the batch's worker the scope guard
// refused, to any host)}.
type Worker struct {
	Batch        int            `json:"batch"`
	ScopeRefused int            `json:"scope_refused,omitempty"`
	ElapsedMS    int64          `json:"elapsed_ms"`
	Exit         string         `json:"exit,omitempty"`
	Class        check.ErrClass `json:"class,omitempty"`
	LoadError    string         `json:"load_error,omitempty"`
}

// Check returns the web.nuclei collector, with a runner of its own.
func Check() check.Check { return NewCheck(&Runner{}) }

// NewCheck returns web.nuclei on r (tests count r's worker starts).
func NewCheck(r *Runner) check.Check {
	return check.New(check.Spec[Evidence]{
		ID: "web.nuclei", Family: "web", Targets: []check.Kind{check.KindHost}, Version: EvidenceVersion,
		Rules:    Rules(),
		Timeout:  3 * time.Minute,
		Collect:  r.Collect,
		Evaluate: Evaluate,
	})
}

// Rules are the catalogue: one entry per pack template, and CustomID.
func Rules() []check.Meta {
	var out []check.Meta
	for _, t := range Pack() {
		out = append(out, t.Meta)
	}
	out = append(out, check.Meta{
		ID: CustomID, Rule: CustomID, Title: "No finding from the operator's nuclei templates", Severity: check.Medium,
		Description: "The operator's own nuclei templates (--templates DIR, filtered by --template-tags and --template-severity; http, dns and ssl only) run on the host: none matches passes; a match fails, with the worst matching template's severity and every matching template named. Not reported when no directory is configured.",
		Remediation: "See the matching template's description: it names what was found and where.",
		Standards: []check.Ref{{Standard: "ProjectDiscovery nuclei templates", Section: "matchers and extractors of the operator's templates",
			URL: "https://docs.projectdiscovery.io/templates/introduction"}},
	})
	return out
}

// IDs are the catalogue ids web.nuclei reports on every host (CustomID
// only with an operator directory).
func IDs() []string {
	var out []string
	for _, t := range Pack() {
		out = append(out, t.Meta.ID)
	}
	return out
}

// Evaluate is pure: matched fails with the template's severity, clean
// passes, an error or a template that did not run is unknown with its
// class; a host that refuses every HTTPS connection has nothing to inspect
// (not applicable: web.https.available judges it).
func Evaluate(in check.In[Evidence]) []check.Finding {
	ev := in.Evidence
	var out []check.Finding
	byTmpl := map[string]Run{}
	for _, r := range ev.Templates {
		if r.Source == "pack" {
			byTmpl[r.Template] = r
		}
	}
	refused := ev.Net.Dials > 0 && ev.Net.Refused == ev.Net.Dials
	slow := timedOut(ev)
	for _, t := range Pack() {
		f := check.Finding{CheckID: t.Meta.ID, Rule: t.Meta.Rule}
		r, ok := byTmpl[t.ID]
		switch {
		case ev.ResolveError != "":
			f.Outcome, f.Reason = check.Unknown, string(orClass(ev.ResolveClass))
			f.Message = "could not tell: " + ev.Host + " was not resolved through the scope guard: " + ev.ResolveError
		case refused:
			f.Outcome = check.NA
			f.Message = fmt.Sprintf("https://%s/ refuses connections: nothing to inspect (web.https.available judges HTTPS)", ev.Host)
		case !ok:
			f.Outcome, f.Reason = check.Unknown, string(orClass(ev.Worker.Class))
			f.Message = fmt.Sprintf("could not tell: template %s (pack %s) was not run on %s%s", t.ID, ev.PackVersion, ev.Host, workerNote(ev.Worker))
		case r.Hash != "" && r.Hash != t.Hash:
			f.Outcome, f.Reason = check.Unknown, string(check.ErrEvidenceVersion)
			f.Message = fmt.Sprintf("could not tell: the stored result is of another version of template %s (pack %s)", t.ID, ev.PackVersion)
		case r.Outcome == Matched:
			f.Outcome = check.Fail
			f.Message = fmt.Sprintf("%s: %s matched at %s%s", t.Meta.Title, t.ID, r.URL, extractedNote(r))
		case r.Outcome == Clean && slow:
			// A host that timed out (a trickled body, the budget spent)
			// may have been judged on a cut response: not a pass.
			f.Outcome, f.Reason = check.Unknown, string(check.ErrTimeout)
			f.Message = fmt.Sprintf("could not tell: template %s did not match, but %s timed out during the batch, so what nuclei read may be cut short", t.ID, ev.Host)
		case r.Outcome == Clean:
			f.Outcome = check.Pass
			f.Message = fmt.Sprintf("template %s (pack %s) ran on %s and did not match", t.ID, ev.PackVersion, ev.Host)
		default:
			f.Outcome, f.Reason = check.Unknown, string(orClass(r.Class))
			f.Message = fmt.Sprintf("could not tell: template %s failed on %s (%s)", t.ID, ev.Host, orClass(r.Class))
			if r.Outcome == NotRun {
				f.Message = fmt.Sprintf("could not tell: template %s was not run on %s (nuclei skipped the host after errors, class %s)%s", t.ID, ev.Host, orClass(r.Class), workerNote(ev.Worker))
			}
		}
		out = append(out, f)
	}
	if ev.UserDir != "" {
		out = append(out, evaluateCustom(ev, refused))
	}
	return out
}

// timedOut: the host timed out somewhere in the batch (a connection, the
// per-host budget, a template's request, or the worker's time limit).
func timedOut(ev Evidence) bool {
	if ev.Net.LastClass == check.ErrTimeout || ev.Worker.Class == check.ErrTimeout {
		return true
	}
	for _, r := range ev.Templates {
		if r.Outcome != Matched && r.Outcome != Clean && r.Class == check.ErrTimeout {
			return true
		}
	}
	return false
}

func evaluateCustom(ev Evidence, refused bool) check.Finding {
	f := check.Finding{CheckID: CustomID, Rule: CustomID}
	var matched, failed []string
	worst := check.Severity("")
	clean := 0
	for _, r := range ev.Templates {
		if r.Source != "user" {
			continue
		}
		switch r.Outcome {
		case Matched:
			matched = append(matched, fmt.Sprintf("%s (%s) at %s%s", r.Template, r.Severity, r.URL, extractedNote(r)))
			if s := check.Severity(strings.ToLower(r.Severity)); sevRank(s) > sevRank(worst) {
				worst = s
			}
		case Clean:
			clean++
		default:
			failed = append(failed, r.Template+" ("+string(orClass(r.Class))+")")
		}
	}
	sort.Strings(matched)
	sort.Strings(failed)
	switch {
	case len(matched) > 0:
		f.Outcome, f.Severity = check.Fail, worst
		f.Message = "operator templates matched: " + strings.Join(matched, "; ")
	case ev.ResolveError != "":
		f.Outcome, f.Reason = check.Unknown, string(orClass(ev.ResolveClass))
		f.Message = "could not tell: " + ev.ResolveError
	case refused:
		f.Outcome, f.Message = check.NA, "https://"+ev.Host+"/ refuses connections: nothing to inspect"
	case len(failed) > 0:
		f.Outcome, f.Reason = check.Unknown, string(orClass(ev.Worker.Class))
		f.Message = "could not tell: operator templates failed: " + strings.Join(failed, ", ")
		for _, r := range ev.Templates {
			if r.Source == "user" && r.Outcome != Clean && r.Class != "" {
				f.Reason = string(r.Class)
				break
			}
		}
	case timedOut(ev):
		f.Outcome, f.Reason = check.Unknown, string(check.ErrTimeout)
		f.Message = "could not tell: no operator template matched, but " + ev.Host + " timed out during the batch"
	case clean == 0:
		f.Outcome, f.Reason = check.Unknown, string(check.ErrOther)
		f.Message = "could not tell: no operator template ran on " + ev.Host + " (none selected by the filters, or the directory has none)" + workerNote(ev.Worker)
	default:
		f.Outcome = check.Pass
		f.Message = strconv.Itoa(clean) + " operator templates ran on " + ev.Host + " and none matched"
	}
	return f
}

func sevRank(s check.Severity) int {
	return slices.Index([]check.Severity{check.Info, check.Low, check.Medium, check.High, check.Critical}, s)
}

func orClass(c check.ErrClass) check.ErrClass {
	if c == "" {
		return check.ErrOther
	}
	return c
}

func workerNote(w Worker) string {
	if w.Exit == "" {
		return ""
	}
	return " (the nuclei worker " + w.Exit + ")"
}

func extractedNote(r Run) string {
	if len(r.Extracted) == 0 {
		return ""
	}
	return " (" + strings.Join(r.Extracted, ", ") + ")"
}

// clip bounds a string from a worker (hostile servers feed it).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// configOf reads the operator's settings (defaults where unset).
type config struct {
	userDir          string
	tags, severities []string
	rate             int
	hostRate         float64
	batch            int
}

func configOf(env *check.Env) config {
	split := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	c := config{userDir: env.Setting(SetTemplates), tags: split(env.Setting(SetTags)),
		severities: split(env.Setting(SetSeverity)), rate: 300, hostRate: 20, batch: 64}
	if n, err := strconv.Atoi(env.Setting(SetRate)); err == nil && n > 0 {
		c.rate = n
	}
	if f, err := strconv.ParseFloat(env.Setting(SetHostRate), 64); err == nil && f > 0 {
		c.hostRate = f
	}
	if n, err := strconv.Atoi(env.Setting(SetBatch)); err == nil && n > 0 {
		c.batch = min(n, 1000)
	}
	return c
}

func (c config) key() string {
	return fmt.Sprintf("%s|%s|%s|%d|%g|%d", c.userDir, strings.Join(c.tags, ","), strings.Join(c.severities, ","), c.rate, c.hostRate, c.batch)
}

// ensure context is used (Collect lives in batch.go).
var _ = context.Background
