package main

import (
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/nuclei"
)

// nucleiFlags are the scan's options for web.nuclei: the operator's own
// template directory with its filters, and the worker's rate limits.
type nucleiFlags struct {
	templates, tags, severity string
	rate                      int
	hostRate                  float64
}

func (n *nucleiFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&n.templates, "templates", "", "a directory of your own nuclei templates (http, dns and ssl only) to run beside the built-in pack; their findings are web.exposure.custom")
	fl.StringVar(&n.tags, "template-tags", "", "run only --templates templates with one of these tags (comma-separated)")
	fl.StringVar(&n.severity, "template-severity", "", "run only --templates templates of these severities (comma-separated: info, low, medium, high, critical)")
	fl.IntVar(&n.rate, "nuclei-rate", 300, "requests per second of one nuclei worker, all hosts together")
	fl.Float64Var(&n.hostRate, "nuclei-host-rate", 20, "new connections per second nuclei may open to one host")
}

// settings validates the flags and returns them as check.Env settings.
func (n *nucleiFlags) settings() (map[string]string, error) {
	set := map[string]string{}
	if n.templates != "" {
		st, err := os.Stat(n.templates)
		if err != nil || !st.IsDir() {
			return nil, usagef("--templates %q: want a directory of nuclei templates", n.templates)
		}
		set[nuclei.SetTemplates] = n.templates
	}
	if n.tags != "" {
		set[nuclei.SetTags] = n.tags
	}
	if n.severity != "" {
		for _, s := range strings.Split(n.severity, ",") {
			switch strings.TrimSpace(strings.ToLower(s)) {
			case "info", "low", "medium", "high", "critical":
			default:
				return nil, usagef("--template-severity %q: want info, low, medium, high or critical", s)
			}
		}
		set[nuclei.SetSeverity] = strings.ToLower(n.severity)
	}
	if (n.tags != "" || n.severity != "") && n.templates == "" {
		return nil, usagef("--template-tags and --template-severity filter --templates: give a directory")
	}
	if n.rate < 1 || n.rate > 10000 {
		return nil, usagef("--nuclei-rate %d: want 1 to 10000 requests per second", n.rate)
	}
	if n.hostRate <= 0 || n.hostRate > 1000 {
		return nil, usagef("--nuclei-host-rate %g: want more than 0 and at most 1000", n.hostRate)
	}
	set[nuclei.SetRate] = strconv.Itoa(n.rate)
	set[nuclei.SetHostRate] = strconv.FormatFloat(n.hostRate, 'g', -1, 64)
	return set, nil
}

// withNuclei returns env (a copy; a new one when nil) with the settings.
func withNuclei(env *check.Env, set map[string]string) *check.Env {
	e := &check.Env{}
	if env != nil {
		c := *env
		e = &c
	}
	s := map[string]string{}
	for k, v := range e.Settings {
		s[k] = v
	}
	for k, v := range set {
		s[k] = v
	}
	e.Settings = s
	return e
}
