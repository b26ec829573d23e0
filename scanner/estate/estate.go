// Package estate reads the estate file: the organisations posture scans,
// their domains, contacts and GitHub organisations, and the scope discovery
// must never leave. Parsing is strict: every problem is reported with its
// file:line, because a silently ignored typo means an unscanned trust.
package estate

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"sort"
	"strings"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"

	"github.com/nhsx/posture/scanner/estate/orgdata"
)

// Estate is a parsed, validated estate file.
type Estate struct {
	Scope         Scope          `yaml:"scope" json:"scope"`
	Organisations []Organisation `yaml:"organisations" json:"organisations"`
	// Source names where the estate came from (a path, or "embedded").
	Source string `yaml:"-" json:"source"`
}

// Scope bounds discovery: names under Suffixes (and each organisation's own
// domains), minus Exclude.
type Scope struct {
	Suffixes []string `yaml:"suffixes" json:"suffixes"`
	Exclude  []string `yaml:"exclude" json:"exclude"`
}

// Organisation is one NHS body.
type Organisation struct {
	Code     string   `yaml:"code" json:"code"` // ODS code
	Name     string   `yaml:"name" json:"name"`
	Kind     string   `yaml:"kind" json:"kind,omitempty"` // trust, icb, region, national, other
	Parent   string   `yaml:"parent" json:"parent,omitempty"`
	Contacts []string `yaml:"contacts" json:"contacts,omitempty"`
	Domains  []string `yaml:"domains" json:"domains,omitempty"`
	GitHub   []string `yaml:"github" json:"github,omitempty"`
	// DKIMSelectors are the DKIM selectors the organisation signs with
	// (selectors cannot be enumerated from DNS), tried before a built-in
	// list of common ones.
	DKIMSelectors []string `yaml:"dkim_selectors" json:"dkim_selectors,omitempty"`
}

// Error is one problem in an estate file, with its position.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Errors is every problem found in one file.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded default estate: the national NHS bodies'
// domains and GitHub organisations.
func Default() *Estate {
	e, err := Parse("embedded:default.yaml", defaultYAML)
	if err != nil {
		panic("estate: embedded default does not parse: " + err.Error()) // a build defect, caught by tests
	}
	return e
}

// DefaultYAML returns the embedded default estate file.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Load reads and validates an estate file.
func Load(path string) (*Estate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("estate: %w", err)
	}
	return Parse(path, b)
}

const maxEstateBytes = 64 << 20

// Parse validates an estate file's bytes. The error, if any, is Errors: every
// problem with its line.
func Parse(file string, b []byte) (*Estate, error) {
	if len(b) > maxEstateBytes {
		return nil, Errors{{File: file, Line: 1, Msg: fmt.Sprintf("file is %d bytes; the limit is %d", len(b), maxEstateBytes)}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, Errors{yamlError(file, err)}
	}
	p := &parser{file: file, codeLine: map[string]int{}, domainLine: map[string]int{}}
	e := &Estate{Source: file}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, Errors{{File: file, Line: 1, Msg: "empty estate file: want scope and organisations"}}
	}
	p.root(doc.Content[0], e)
	if len(p.errs) == 0 {
		p.validate(e)
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	return e, nil
}

func yamlError(file string, err error) *Error {
	msg := err.Error()
	line := 1
	// yaml.v3: "yaml: line 7: did not find expected key"
	if _, e := fmt.Sscanf(strings.TrimPrefix(msg, "yaml: "), "line %d:", &line); e == nil {
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[i+2:]
			if j := strings.Index(msg, ": "); j >= 0 {
				msg = msg[j+2:]
			}
		}
	}
	return &Error{File: file, Line: line, Msg: "not valid YAML: " + msg}
}

type parser struct {
	file string
	errs Errors
	// lines remembers where each value was, for errors found after parsing.
	orgLine    []int
	domainLine map[string]int
	codeLine   map[string]int
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	line := 1
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) root(n *yaml.Node, e *Estate) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "the estate must be a mapping with keys scope and organisations")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			p.errorf(k, "key %q appears twice", k.Value)
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "scope":
			p.scope(v, &e.Scope)
		case "organisations":
			if v.Kind != yaml.SequenceNode {
				p.errorf(v, "organisations must be a list")
				continue
			}
			for _, o := range v.Content {
				var org Organisation
				p.org(o, &org)
				e.Organisations = append(e.Organisations, org)
				p.orgLine = append(p.orgLine, o.Line)
			}
		default:
			p.errorf(k, "unknown key %q (want scope or organisations)", k.Value)
		}
	}
	if !seen["organisations"] {
		p.errorf(n, "no organisations: an estate needs at least one")
	}
}

func (p *parser) scope(n *yaml.Node, s *Scope) {
	p.fields(n, "scope", map[string]func(*yaml.Node){
		"suffixes": func(v *yaml.Node) { s.Suffixes = p.domains(v, "scope suffix", true) },
		"exclude":  func(v *yaml.Node) { s.Exclude = p.domains(v, "scope exclusion", false) },
	})
}

func (p *parser) org(n *yaml.Node, o *Organisation) {
	p.fields(n, "organisation", map[string]func(*yaml.Node){
		"code":           func(v *yaml.Node) { o.Code = p.str(v, "code") },
		"name":           func(v *yaml.Node) { o.Name = p.str(v, "name") },
		"kind":           func(v *yaml.Node) { o.Kind = p.str(v, "kind") },
		"parent":         func(v *yaml.Node) { o.Parent = p.str(v, "parent") },
		"contacts":       func(v *yaml.Node) { o.Contacts = p.emails(v) },
		"domains":        func(v *yaml.Node) { o.Domains = p.domains(v, "domain", false) },
		"github":         func(v *yaml.Node) { o.GitHub = p.logins(v) },
		"dkim_selectors": func(v *yaml.Node) { o.DKIMSelectors = p.selectors(v) },
	})
	if n.Kind != yaml.MappingNode {
		return
	}
	if o.Code == "" {
		p.errorf(n, "organisation without a code (its ODS code)")
	} else if !validCode(o.Code) {
		p.errorf(n, "organisation code %q: want an ODS code (letters and digits, up to 10)", o.Code)
	}
	if o.Name == "" {
		p.errorf(n, "organisation %s has no name", o.Code)
	}
	switch o.Kind {
	case "", "trust", "icb", "region", "national", "other":
	default:
		p.errorf(n, "organisation %s: kind %q: want trust, icb, region, national or other", o.Code, o.Kind)
	}
	if o.Code != "" {
		if l, dup := p.codeLine[o.Code]; dup {
			p.errorf(n, "duplicate organisation code %s (first at line %d)", o.Code, l)
		} else {
			p.codeLine[o.Code] = n.Line
		}
	}
}

// fields walks a mapping, dispatching known keys and reporting unknown ones.
func (p *parser) fields(n *yaml.Node, what string, known map[string]func(*yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping", what)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		fn, ok := known[k.Value]
		if !ok {
			keys := make([]string, 0, len(known))
			for k := range known {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			p.errorf(k, "%s: unknown key %q (want one of %s)", what, k.Value, strings.Join(keys, ", "))
			continue
		}
		if seen[k.Value] {
			p.errorf(k, "%s: key %q appears twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		fn(v)
	}
}

func (p *parser) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s must be a single value", what)
		return ""
	}
	return strings.TrimSpace(n.Value)
}

func (p *parser) list(n *yaml.Node, what string, each func(*yaml.Node, string)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s must be a list", what)
		return
	}
	for _, v := range n.Content {
		if v.Kind != yaml.ScalarNode {
			p.errorf(v, "%s must be a single value", what)
			continue
		}
		each(v, strings.TrimSpace(v.Value))
	}
}

func (p *parser) domains(n *yaml.Node, what string, suffix bool) []string {
	var out []string
	p.list(n, what+"s", func(v *yaml.Node, s string) {
		d := strings.ToLower(strings.TrimSuffix(s, "."))
		if err := ValidDomain(d, suffix); err != nil {
			p.errorf(v, "%s %q: %v", what, s, err)
			return
		}
		if what == "domain" {
			if l, dup := p.domainLine[d]; dup {
				p.errorf(v, "domain %s is claimed by two organisations (also at line %d)", d, l)
				return
			}
			p.domainLine[d] = v.Line
		}
		out = append(out, d)
	})
	return out
}

func (p *parser) emails(n *yaml.Node) []string {
	var out []string
	p.list(n, "contacts", func(v *yaml.Node, s string) {
		a, err := mail.ParseAddress(s)
		if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s, "@") {
			p.errorf(v, "contact %q is not an email address (want name@domain, nothing else)", s)
			return
		}
		if err := ValidDomain(strings.ToLower(s[strings.LastIndex(s, "@")+1:]), false); err != nil {
			p.errorf(v, "contact %q: domain: %v", s, err)
			return
		}
		out = append(out, s)
	})
	return out
}

// selectors reads DKIM selectors: one or more DNS labels (RFC 6376 §3.1:
// a selector may have dots), not under _domainkey themselves.
func (p *parser) selectors(n *yaml.Node) []string {
	var out []string
	p.list(n, "dkim_selectors", func(v *yaml.Node, s string) {
		s = strings.ToLower(strings.TrimSpace(s))
		if err := ValidDomain(s+".invalid", false); err != nil || strings.Contains(s, "_domainkey") {
			p.errorf(v, "dkim selector %q: want DNS labels such as selector1 or google (the part before ._domainkey)", s)
			return
		}
		out = append(out, s)
	})
	return out
}

func (p *parser) logins(n *yaml.Node) []string {
	var out []string
	p.list(n, "github", func(v *yaml.Node, s string) {
		if !validLogin(s) {
			p.errorf(v, "github organisation %q: want a GitHub login (letters, digits, single hyphens, up to 39)", s)
			return
		}
		out = append(out, s)
	})
	return out
}

// validate checks what needs the whole file: parents exist, no cycles.
func (p *parser) validate(e *Estate) {
	h, err := orgdata.All()
	if err != nil {
		p.errs = append(p.errs, &Error{File: p.file, Line: 1, Msg: err.Error()})
		return
	}
	byCode := map[string]*Organisation{}
	for i := range e.Organisations {
		byCode[e.Organisations[i].Code] = &e.Organisations[i]
	}
	for i, o := range e.Organisations {
		line := p.orgLine[i]
		if o.Parent == "" {
			continue
		}
		if _, ok := byCode[o.Parent]; !ok {
			if _, ok := h[o.Parent]; !ok {
				p.errs = append(p.errs, &Error{File: p.file, Line: line,
					Msg: fmt.Sprintf("organisation %s: parent %s is neither in this file nor a known ICB, region or national body", o.Code, o.Parent)})
			}
			continue
		}
		seen := map[string]bool{o.Code: true}
		for c := o.Parent; c != ""; {
			if seen[c] {
				p.errs = append(p.errs, &Error{File: p.file, Line: line,
					Msg: fmt.Sprintf("organisation %s: its parents form a cycle through %s", o.Code, c)})
				break
			}
			seen[c] = true
			if po, ok := byCode[c]; ok {
				c = po.Parent
			} else {
				c = h[c].Parent
			}
		}
	}
}

// ValidDomain checks a domain name as an estate may list it: an FQDN with at
// least two labels (or one, for a scope suffix), LDH labels, no wildcards.
func ValidDomain(d string, suffix bool) error {
	if d == "" {
		return errors.New("empty")
	}
	if len(d) > 253 {
		return errors.New("longer than 253 characters")
	}
	if _, ok := dns.IsDomainName(d); !ok {
		return errors.New("not a domain name")
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 && !suffix {
		return errors.New("want a fully qualified name such as example.nhs.uk")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errors.New("empty or over-long label")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with a hyphen", l)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("label %q has %q (letters, digits and hyphens only; IDNs in xn-- form)", l, c)
			}
		}
	}
	return nil
}

func validCode(s string) bool {
	if len(s) > 10 {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validLogin(s string) bool {
	if s == "" || len(s) > 39 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// InScope reports whether a name may be scanned: at or under a scope suffix
// or one of the organisations' domains, and not at or under an exclusion.
func (e *Estate) InScope(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if e.Excluded(name) {
		return false
	}
	for _, s := range e.Scope.Suffixes {
		if under(name, s) {
			return true
		}
	}
	for _, o := range e.Organisations {
		for _, d := range o.Domains {
			if under(name, d) {
				return true
			}
		}
	}
	return false
}

// Excluded reports whether name is at or under a scope.exclude entry: the
// operator's "never touch" list, which beats every other allowance.
func (e *Estate) Excluded(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, x := range e.Scope.Exclude {
		if under(name, x) {
			return true
		}
	}
	return false
}

func under(name, zone string) bool {
	return name == zone || strings.HasSuffix(name, "."+zone)
}

// Owner returns the organisation owning name: the one whose domain is the
// longest suffix of name.
func (e *Estate) Owner(name string) (*Organisation, string) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	var best *Organisation
	bestDomain := ""
	for i := range e.Organisations {
		for _, d := range e.Organisations[i].Domains {
			if under(name, d) && len(d) > len(bestDomain) {
				best, bestDomain = &e.Organisations[i], d
			}
		}
	}
	return best, bestDomain
}

// Org returns the organisation with the code, or nil.
func (e *Estate) Org(code string) *Organisation {
	for i := range e.Organisations {
		if e.Organisations[i].Code == code {
			return &e.Organisations[i]
		}
	}
	return nil
}

// Marshal writes the estate back as YAML.
func (e *Estate) Marshal() ([]byte, error) { return yaml.Marshal(e) }
