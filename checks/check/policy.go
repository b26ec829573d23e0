package check

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Policy is what Evaluate applies besides the evidence: the generic parts
// (severity overrides, disabled ids, the trust anchors) and one typed
// section per family (its thresholds), which the family declares with
// NewSection and reads with Section.Get. The contract knows no family:
// adding a family adds a section without editing this file.
//
// A YAML file overrides any of it; `posture reeval` re-applies a changed
// policy to stored evidence.
type Policy struct {
	// Severity overrides the default severity of a catalogue id.
	Severity map[string]Severity `yaml:"severity,omitempty" json:"severity,omitempty"`
	// Disabled catalogue ids produce no findings.
	Disabled []string `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// Roots are the trust anchors certificate chains are judged against:
	// the system roots plus --ca-file (nil: the system roots). They are
	// configuration, not evidence, so a re-evaluation can change them.
	Roots *x509.CertPool `yaml:"-" json:"-"`

	// sections holds the decoded family sections by key; a missing one
	// is its family's defaults.
	sections map[string]any
}

// DefaultPolicy is the built-in policy: no overrides, and every family
// section at its defaults.
func DefaultPolicy() *Policy { return &Policy{} }

// FieldError is a value a section's validation rejects. Field is the YAML
// key inside the section, so the parser can point at its line.
type FieldError struct {
	Field string
	Msg   string
}

// AtLeast and InRange are the common range checks of section validators.
func AtLeast(field string, v, min int) *FieldError {
	if v < min {
		return &FieldError{field, fmt.Sprintf("%d is below the minimum of %d", v, min)}
	}
	return nil
}

// InRange rejects v outside [lo, hi].
func InRange(field string, v, lo, hi int) *FieldError {
	if v < lo || v > hi {
		return &FieldError{field, fmt.Sprintf("%d is outside %d..%d", v, lo, hi)}
	}
	return nil
}

// Sectioner is a family's policy section, as the parser sees it. Its only
// implementation is *Section[T]; collectors expose theirs in Spec.Policy.
type Sectioner interface {
	Key() string
	// Resolved is the section's value in p (its defaults if p sets none).
	Resolved(p *Policy) any
	decode(n *yaml.Node) (any, []fieldErr)
}

// Section is one family's typed policy section: its YAML key, its
// defaults and its range checks.
type Section[T any] struct {
	key      string
	def      T
	validate func(T) []*FieldError
}

// NewSection declares a family's policy section. T is a struct whose
// fields carry `yaml` tags; validate returns the out-of-range fields.
func NewSection[T any](key string, defaults T, validate func(T) []*FieldError) *Section[T] {
	return &Section[T]{key: key, def: defaults, validate: validate}
}

// Key is the section's top-level YAML key ("tls").
func (s *Section[T]) Key() string { return s.key }

// Defaults returns the built-in values.
func (s *Section[T]) Defaults() T { return s.def }

// Get returns the section's values in p: what the policy file set, or
// the defaults.
func (s *Section[T]) Get(p *Policy) T {
	if p != nil {
		if v, ok := p.sections[s.key].(T); ok {
			return v
		}
	}
	return s.def
}

// Set returns a copy of p with the section set to v (tests, and callers
// that build a policy in code).
func (s *Section[T]) Set(p *Policy, v T) *Policy {
	q := p.Clone()
	q.sections[s.key] = v
	return q
}

// Resolved implements Sectioner.
func (s *Section[T]) Resolved(p *Policy) any { return s.Get(p) }

type fieldErr struct {
	line int
	msg  string
}

func (s *Section[T]) decode(n *yaml.Node) (any, []fieldErr) {
	v := s.def
	if n.Kind != yaml.MappingNode {
		return nil, []fieldErr{{n.Line, fmt.Sprintf("%s: want a mapping of settings", s.key)}}
	}
	known := yamlFields(reflect.TypeOf(v))
	lines := map[string]int{}
	var errs []fieldErr
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(known, k.Value) {
			errs = append(errs, fieldErr{k.Line, fmt.Sprintf("%s: unknown setting %q (known: %s)", s.key, k.Value, strings.Join(known, ", "))})
			continue
		}
		if _, dup := lines[k.Value]; dup {
			errs = append(errs, fieldErr{k.Line, fmt.Sprintf("%s.%s is set twice", s.key, k.Value)})
		}
		lines[k.Value] = k.Line
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if err := n.Decode(&v); err != nil {
		return nil, []fieldErr{{n.Line, fmt.Sprintf("%s: %v", s.key, err)}}
	}
	if s.validate != nil {
		for _, fe := range s.validate(v) {
			if fe == nil {
				continue
			}
			line := lines[fe.Field]
			if line == 0 {
				line = n.Line
			}
			errs = append(errs, fieldErr{line, fmt.Sprintf("%s.%s: %s", s.key, fe.Field, fe.Msg)})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return v, nil
}

// yamlFields lists the YAML keys of a struct type's fields.
func yamlFields(t reflect.Type) []string {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, name)
	}
	return out
}

// Clone copies the policy (sections are values; maps are copied).
func (p *Policy) Clone() *Policy {
	if p == nil {
		p = DefaultPolicy()
	}
	q := *p
	q.Severity = map[string]Severity{}
	for k, v := range p.Severity {
		q.Severity[k] = v
	}
	q.Disabled = slices.Clone(p.Disabled)
	q.sections = map[string]any{}
	for k, v := range p.sections {
		q.sections[k] = v
	}
	return &q
}

// PolicyError lists every problem of a policy file, each with file:line.
type PolicyError []string

func (e PolicyError) Error() string { return strings.Join(e, "\n") }

// LoadPolicy reads a YAML policy file over the defaults. sections are the
// families' sections (checks.Sections()).
func LoadPolicy(path string, sections []Sectioner) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return ParsePolicy(path, b, sections)
}

// ParsePolicy parses YAML policy bytes over the defaults. Unknown keys,
// out-of-range values and unknown severities are errors with file:line,
// so a typo cannot silently leave a default in force or fail every asset.
func ParsePolicy(name string, b []byte, sections []Sectioner) (*Policy, error) {
	p := DefaultPolicy()
	p.sections = map[string]any{}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return p, nil
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
		return p, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: a policy is a mapping of settings", name, root.Line)
	}
	bySection := map[string]Sectioner{}
	var keys []string
	for _, s := range sections {
		bySection[s.Key()] = s
		keys = append(keys, s.Key())
	}
	slices.Sort(keys)
	var errs PolicyError
	at := func(line int, format string, a ...any) {
		errs = append(errs, fmt.Sprintf("%s:%d: %s", name, line, fmt.Sprintf(format, a...)))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			at(k.Line, "%s is set twice", k.Value)
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "severity":
			if err := v.Decode(&p.Severity); err != nil {
				at(v.Line, "severity: %v", err)
				continue
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				if s := Severity(v.Content[j+1].Value); s.Rank() < 0 {
					at(v.Content[j+1].Line, "severity of %s: unknown severity %q (want critical, high, medium, low or info)", v.Content[j].Value, s)
				}
			}
		case "disabled":
			if err := v.Decode(&p.Disabled); err != nil {
				at(v.Line, "disabled: %v", err)
			}
		default:
			s, ok := bySection[k.Value]
			if !ok {
				at(k.Line, "unknown setting %q (known: severity, disabled, %s)", k.Value, strings.Join(keys, ", "))
				continue
			}
			val, ferrs := s.decode(v)
			for _, fe := range ferrs {
				at(fe.line, "%s", fe.msg)
			}
			if ferrs == nil {
				p.sections[k.Value] = val
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// SeverityOf returns the policy's severity for a catalogue id, or def.
func (p *Policy) SeverityOf(id string, def Severity) Severity {
	if p != nil {
		if s, ok := p.Severity[id]; ok {
			return s
		}
	}
	return def
}

// Enabled reports whether a catalogue id is not disabled.
func (p *Policy) Enabled(id string) bool {
	return p == nil || !slices.Contains(p.Disabled, id)
}
