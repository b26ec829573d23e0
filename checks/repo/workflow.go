package repo

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A GitHub Actions workflow (or action.yml) as the actions checks read it.
// Parsing is bounded (the file is already capped at ghMaxFile; yaml.v3
// refuses excessive aliasing) and never panics on hostile input (fuzzed).

// Workflow is what the checks need of one workflow file.
type Workflow struct {
	Path string
	// Error: the file does not parse as a YAML mapping.
	Error string
	// On lists the events that trigger it.
	On []string
	// Permissions: whether a top-level permissions: key is present, and
	// its value when it is a scalar (read-all, write-all).
	HasPermissions bool
	Permissions    string
	// JobWriteAll lists jobs whose permissions: is write-all.
	JobWriteAll []string
	Uses        []Use
	Steps       []Step
}

// Use is one uses: reference.
type Use struct {
	Job, Ref string
}

// Step is what the trigger and gitleaks checks read of a step.
type Step struct {
	Job  string
	Uses string
	Run  string
	// With holds the step's with: scalars.
	With map[string]string
}

// parseWorkflow parses a workflow (or, with action true, an action.yml).
func parseWorkflow(path, text string, action bool) Workflow {
	w := Workflow{Path: path}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		w.Error = "does not parse: " + err.Error()
		return w
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		w.Error = "not a YAML mapping"
		return w
	}
	root := doc.Content[0]
	if on := mapGet(root, "on"); on != nil {
		w.On = triggers(on)
	} else if on := mapGet(root, "true"); on != nil {
		// YAML 1.1 readers turn an unquoted on: into true.
		w.On = triggers(on)
	}
	if p := mapGet(root, "permissions"); p != nil {
		w.HasPermissions = true
		if p.Kind == yaml.ScalarNode {
			w.Permissions = p.Value
		}
	}
	if action {
		if runs := mapGet(root, "runs"); runs != nil {
			w.addSteps("(action)", mapGet(runs, "steps"))
		}
		return w
	}
	jobs := mapGet(root, "jobs")
	if jobs == nil || jobs.Kind != yaml.MappingNode {
		return w
	}
	for i := 0; i+1 < len(jobs.Content); i += 2 {
		name, job := jobs.Content[i].Value, jobs.Content[i+1]
		if job.Kind != yaml.MappingNode {
			continue
		}
		if p := mapGet(job, "permissions"); p != nil && p.Kind == yaml.ScalarNode && p.Value == "write-all" {
			w.JobWriteAll = append(w.JobWriteAll, name)
		}
		if u := mapGet(job, "uses"); u != nil && u.Kind == yaml.ScalarNode {
			w.Uses = append(w.Uses, Use{Job: name, Ref: strings.TrimSpace(u.Value)})
		}
		w.addSteps(name, mapGet(job, "steps"))
	}
	return w
}

func (w *Workflow) addSteps(job string, steps *yaml.Node) {
	if steps == nil || steps.Kind != yaml.SequenceNode {
		return
	}
	for _, s := range steps.Content {
		if s.Kind != yaml.MappingNode {
			continue
		}
		st := Step{Job: job}
		if u := mapGet(s, "uses"); u != nil && u.Kind == yaml.ScalarNode {
			st.Uses = strings.TrimSpace(u.Value)
			w.Uses = append(w.Uses, Use{Job: job, Ref: st.Uses})
		}
		if r := mapGet(s, "run"); r != nil && r.Kind == yaml.ScalarNode {
			st.Run = r.Value
		}
		if with := mapGet(s, "with"); with != nil && with.Kind == yaml.MappingNode {
			st.With = map[string]string{}
			for i := 0; i+1 < len(with.Content); i += 2 {
				if v := with.Content[i+1]; v.Kind == yaml.ScalarNode {
					st.With[with.Content[i].Value] = v.Value
				}
			}
		}
		w.Steps = append(w.Steps, st)
	}
}

// mapGet returns the value of key in a mapping node (aliases resolved one
// level).
func mapGet(m *yaml.Node, key string) *yaml.Node {
	if m == nil {
		return nil
	}
	if m.Kind == yaml.AliasNode {
		m = m.Alias
	}
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			return v
		}
	}
	return nil
}

// triggers reads on: as a string, a list or a mapping.
func triggers(n *yaml.Node) []string {
	var out []string
	switch n.Kind {
	case yaml.ScalarNode:
		out = append(out, n.Value)
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode {
				out = append(out, c.Value)
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, n.Content[i].Value)
		}
	}
	sort.Strings(out)
	return out
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// pinned reports whether a uses: reference is pinned to a full commit SHA
// (SEQF actions-best-practices; GDS Way): local actions (./) and docker
// images by digest are pinned by construction.
func pinned(ref string) bool {
	switch {
	case strings.HasPrefix(ref, "./"):
		return true
	case strings.HasPrefix(ref, "docker://"):
		return strings.Contains(ref, "@sha256:")
	}
	at := strings.LastIndexByte(ref, '@')
	return at > 0 && fullSHA.MatchString(ref[at+1:])
}

// prHead matches expressions that name the pull request's own code: its
// head ref or SHA, the workflow_run's head, or the PR's merge ref.
var prHead = regexp.MustCompile(`github\.event\.pull_request\.head\.|github\.event\.workflow_run\.head_|github\.head_ref|refs/pull/|github\.event\.number|gh pr checkout`)

// riskyTrigger reports why a workflow that runs with the base repository's
// secrets (pull_request_target, workflow_run) checks out and runs code from
// the pull request ("" when it does not): the "pwn request" GDS Way warns
// of.
func riskyTrigger(w Workflow) string {
	var trig []string
	for _, t := range w.On {
		if t == "pull_request_target" || t == "workflow_run" {
			trig = append(trig, t)
		}
	}
	if len(trig) == 0 {
		return ""
	}
	for _, s := range w.Steps {
		if strings.HasPrefix(strings.ToLower(s.Uses), "actions/checkout@") {
			for _, k := range []string{"ref", "repository"} {
				if v := s.With[k]; prHead.MatchString(v) {
					return fmt.Sprintf("%s on %s checks out %s (job %s)", w.Path, strings.Join(trig, ", "), v, s.Job)
				}
			}
		}
		if s.Run != "" && prHead.MatchString(s.Run) && strings.Contains(s.Run, "checkout") {
			return fmt.Sprintf("%s on %s runs a checkout of the pull request (job %s)", w.Path, strings.Join(trig, ", "), s.Job)
		}
	}
	return ""
}

// runsGitleaks reports whether a workflow scans for secrets with gitleaks
// (the gitleaks action, a gitleaks command, or the NHS repository
// template's scan-secrets action).
func runsGitleaks(w Workflow) bool {
	for _, s := range w.Steps {
		l := strings.ToLower(s.Uses + " " + s.Run)
		if strings.Contains(l, "gitleaks") || strings.Contains(l, "scan-secrets") {
			return true
		}
	}
	for _, u := range w.Uses {
		if strings.Contains(strings.ToLower(u.Ref), "gitleaks") || strings.Contains(strings.ToLower(u.Ref), "scan-secrets") {
			return true
		}
	}
	return false
}
