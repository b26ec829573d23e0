package nuclei

// The parent and the worker (`posture nuclei-worker`, built on
// checks/nuclei/engine) talk in JSON: one Job on the worker's stdin, one
// Event per line on its stdout, ending with a Done line.

// JobVersion is the wire version; a worker of another version refuses the
// job (a posture binary mismatched with its worker).
const JobVersion = 1

// Job is one batch of hosts for one worker process.
type Job struct {
	Version int `json:"version"`
	// Targets are URLs, https://<host>, one per host.
	Targets []string `json:"targets"`
	// Pack is true to run the embedded pack (the worker writes it from its
	// own copy, which must have PackVersion).
	Pack        bool   `json:"pack"`
	PackVersion string `json:"pack_version"`
	// UserDir is an operator's template directory (--templates); Tags and
	// Severities filter it (the pack is never filtered).
	UserDir    string   `json:"user_dir,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Severities []string `json:"severities,omitempty"`
	// Proxy is the parent's guarded proxy, host:port on loopback: nuclei's
	// HTTP goes through it as an HTTP proxy (CONNECT), its other TCP (ssl
	// templates, DNS over TCP) as SOCKS5. Resolver is the parent's DNS
	// relay (UDP and TCP) on loopback.
	Proxy    string `json:"proxy"`
	Resolver string `json:"resolver"`
	// RateLimit is the global request rate (per second) of the worker.
	RateLimit int `json:"rate_limit"`
	// Timeout is one request's time limit, in seconds.
	Timeout int `json:"timeout"`
	// WorkDir is a private directory the worker may write (config, pack).
	WorkDir string `json:"work_dir"`
	// HostConcurrency and TemplateConcurrency bound nuclei's parallelism.
	HostConcurrency     int `json:"host_concurrency"`
	TemplateConcurrency int `json:"template_concurrency"`
	// Deadline is the worker's own time limit in seconds (0: none): it
	// ends by itself even if the parent is gone.
	Deadline int `json:"deadline,omitempty"`
	// MaxHostErrors: after this many errors on a host nuclei skips its
	// remaining templates (they are then "not run": unknown).
	MaxHostErrors int `json:"max_host_errors"`
}

// Event is one line of the worker's output: a template's result on a
// target, or the final Done line.
type Event struct {
	Template string `json:"template,omitempty"`
	// Source is "pack" or "user".
	Source string `json:"source,omitempty"`
	Target string `json:"target,omitempty"` // the Job target it ran against
	// Matched: a matcher matched. Otherwise Error says whether the
	// template failed (non-empty) or ran clean.
	Matched   bool     `json:"matched,omitempty"`
	URL       string   `json:"url,omitempty"` // where it matched
	Matcher   string   `json:"matcher,omitempty"`
	Extracted []string `json:"extracted,omitempty"`
	Error     string   `json:"error,omitempty"`
	Severity  string   `json:"severity,omitempty"`
	Name      string   `json:"name,omitempty"`
	// ElapsedMS: when the result came, in ms since the worker started.
	ElapsedMS int64 `json:"elapsed_ms,omitempty"`

	// Done closes the stream: the templates loaded, by source.
	Done      bool              `json:"done,omitempty"`
	Loaded    map[string]string `json:"loaded,omitempty"` // "source/template id" → source (sent before any result, and with Done)
	LoadError string            `json:"load_error,omitempty"`
}
