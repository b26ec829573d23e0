package check

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"time"
)

// In is what a typed evaluate function receives.
type In[E any] struct {
	Asset       Asset
	Evidence    E
	CollectedAt time.Time
	Policy      *Policy
}

// Spec describes a typed check for New: everything about a collector is
// declared here once, and the scanner, `--only`, discovery, the run key and
// the catalogue derive from it.
type Spec[E any] struct {
	ID string
	// Family is the collector's family (dns, email, tls, web, repo): the
	// default Family of its Rules.
	Family string
	// Targets are the asset kinds the collector runs on: the default
	// Targets of its Rules, and (without Applies) the whole Applies test.
	// Discovery builds the kinds that the selected collectors target.
	Targets []Kind
	Rules   []Meta
	// Applies narrows Targets (nil: every asset of a target kind).
	Applies func(a Asset) bool
	Collect func(ctx context.Context, env *Env, a Asset) (E, error)
	// Evaluate is pure: it reads the evidence, CollectedAt and the policy.
	Evaluate func(in In[E]) []Finding
	// Version is the schema version of E (0 means 1). Bump it when the
	// evidence changes shape or meaning; stored evidence of another
	// version goes through Upgrade, or is judged unknown with the reason
	// "evidence-version", never decoded into a silent zero value.
	Version int
	// Upgrade decodes stored evidence of an older version (nil: none can).
	Upgrade func(version int, data json.RawMessage) (E, error)
	// Policy is the family's policy section (nil: none), which the policy
	// parser registers from the collectors in checks.All().
	Policy Sectioner
	// Timeout, if set, is the time one job of this check needs at most; the
	// scanner gives the job the longer of it and its own per-job limit.
	Timeout time.Duration
}

// TimeoutHinter is implemented by checks whose jobs need more time than the
// scanner's default per-job limit (an SMTP check opens a dozen sessions).
type TimeoutHinter interface{ JobTimeout() time.Duration }

// New adapts typed collect and evaluate functions to Check: it marshals the
// typed evidence for storage, turns a collection error into unknown findings
// for every rule, and fills in what every finding shares (check metadata,
// asset, policy severity, standards), so check code only states verdicts.
func New[E any](s Spec[E]) Check {
	if s.Version == 0 {
		s.Version = 1
	}
	rules := make([]Meta, len(s.Rules))
	for i, m := range s.Rules {
		if m.Family == "" {
			m.Family = s.Family
		}
		if len(m.Targets) == 0 {
			m.Targets = s.Targets
		}
		rules[i] = m
	}
	s.Rules = rules
	return &typed[E]{s}
}

// EvidenceVersioned is implemented by collectors whose evidence has a
// schema version (every collector made by New).
type EvidenceVersioned interface{ EvidenceVersion() int }

// PolicyHolder is implemented by collectors with a policy section.
type PolicyHolder interface{ PolicySection() Sectioner }

// Targeted is implemented by collectors that declare their asset kinds.
type Targeted interface{ Targets() []Kind }

// ErrEvidenceVersion is the reason of findings whose stored evidence has a
// schema version this build cannot read.
const ErrEvidenceVersion ErrClass = "evidence-version"

type typed[E any] struct{ s Spec[E] }

func (t *typed[E]) ID() string                { return t.s.ID }
func (t *typed[E]) JobTimeout() time.Duration { return t.s.Timeout }
func (t *typed[E]) Rules() []Meta             { return t.s.Rules }
func (t *typed[E]) EvidenceVersion() int      { return t.s.Version }
func (t *typed[E]) PolicySection() Sectioner  { return t.s.Policy }
func (t *typed[E]) Targets() []Kind           { return t.s.Targets }
func (t *typed[E]) Applies(a Asset) bool {
	if len(t.s.Targets) > 0 && !slices.Contains(t.s.Targets, a.Kind) {
		return false
	}
	return t.s.Applies == nil || t.s.Applies(a)
}

// Collect runs the typed collector. An error is recorded, classified, on the
// evidence: Evaluate then gives unknown for every rule. A collector that can
// tell part of the story (one SPF include timed out) records that inside its
// typed evidence and returns nil.
func (t *typed[E]) Collect(ctx context.Context, env *Env, a Asset) (Evidence, error) {
	ev := Evidence{CheckID: t.s.ID, Asset: a, CollectedAt: env.Clock(), Version: t.s.Version}
	e, err := t.s.Collect(ctx, env, a)
	if err != nil {
		ev.Error, ev.ErrorClass = err.Error(), Classify(err)
		return ev, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		err = fmt.Errorf("%s: encode evidence: %w", t.s.ID, err)
		ev.Error, ev.ErrorClass = err.Error(), ErrInternal
		return ev, err
	}
	ev.Data = b
	return ev, nil
}

// Evaluate never panics into the caller: a bug in an evaluator gives unknown
// findings with the panic as their reason.
func (t *typed[E]) Evaluate(ev Evidence, p *Policy) (out []Finding) {
	if p == nil {
		p = DefaultPolicy()
	}
	defer func() {
		if r := recover(); r != nil {
			out = t.unknownAll(ev.Asset, ErrInternal, fmt.Sprintf("evaluate panicked: %v\n%s", r, debug.Stack()))
		}
	}()
	if ev.Error != "" {
		return t.unknownAll(ev.Asset, ev.ErrorClass, ev.Error)
	}
	var e E
	switch v := max(ev.Version, 1); {
	case v != t.s.Version && t.s.Upgrade == nil:
		return t.unknownAll(ev.Asset, ErrEvidenceVersion, fmt.Sprintf(
			"the stored evidence has schema version %d and this build reads version %d: scan again to judge it", v, t.s.Version))
	case v != t.s.Version:
		var err error
		if e, err = t.s.Upgrade(v, ev.Data); err != nil {
			return t.unknownAll(ev.Asset, ErrEvidenceVersion, fmt.Sprintf("stored evidence of version %d could not be upgraded to %d: %v", v, t.s.Version, err))
		}
	case len(ev.Data) > 0:
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return t.unknownAll(ev.Asset, ErrInternal, "stored evidence does not decode: "+err.Error())
		}
	}
	fs := t.s.Evaluate(In[E]{Asset: ev.Asset, Evidence: e, CollectedAt: ev.CollectedAt, Policy: p})
	return t.finish(ev.Asset, fs, p)
}

func (t *typed[E]) meta(id string) (Meta, bool) {
	for _, m := range t.s.Rules {
		if m.ID == id {
			return m, true
		}
	}
	return Meta{}, false
}

func (t *typed[E]) finish(a Asset, fs []Finding, p *Policy) []Finding {
	out := fs[:0]
	for _, f := range fs {
		if f.CheckID == "" && len(t.s.Rules) == 1 {
			f.CheckID = t.s.Rules[0].ID
		}
		if !p.Enabled(f.CheckID) {
			continue
		}
		m, _ := t.meta(f.CheckID)
		if f.Asset.Name == "" {
			f.Asset = a
		}
		if f.Severity == "" {
			f.Severity = m.Severity
		}
		f.Severity = p.SeverityOf(f.CheckID, f.Severity)
		if f.Outcome == Pass || f.Outcome == NA {
			f.Remediation = ""
		} else if f.Remediation == "" {
			f.Remediation = m.Remediation
		}
		if len(f.Standards) == 0 {
			f.Standards = m.Standards
		}
		out = append(out, f)
	}
	return out
}

func (t *typed[E]) unknownAll(a Asset, class ErrClass, msg string) []Finding {
	if class == "" {
		class = ErrOther
	}
	var out []Finding
	for _, m := range t.s.Rules {
		rule := m.Rule
		if rule == "" {
			rule = m.ID
		}
		out = append(out, Finding{
			CheckID: m.ID, Rule: rule, Asset: a, Outcome: Unknown, Severity: m.Severity,
			Message: "could not tell: " + msg, Reason: string(class), Standards: m.Standards,
		})
	}
	return out
}
