package check

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"time"
)

// In is what a typed evaluate function receives.
type In[E any] struct {
	Asset       Asset
	Evidence    E
	CollectedAt time.Time
	Policy      *Policy
}

// Spec describes a typed check for New.
type Spec[E any] struct {
	ID       string
	Rules    []Meta
	Applies  func(a Asset) bool
	Collect  func(ctx context.Context, env *Env, a Asset) (E, error)
	Evaluate func(in In[E]) []Finding
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
func New[E any](s Spec[E]) Check { return &typed[E]{s} }

type typed[E any] struct{ s Spec[E] }

func (t *typed[E]) ID() string                { return t.s.ID }
func (t *typed[E]) JobTimeout() time.Duration { return t.s.Timeout }
func (t *typed[E]) Rules() []Meta             { return t.s.Rules }
func (t *typed[E]) Applies(a Asset) bool {
	return t.s.Applies == nil || t.s.Applies(a)
}

// Collect runs the typed collector. An error is recorded, classified, on the
// evidence: Evaluate then gives unknown for every rule. A collector that can
// tell part of the story (one SPF include timed out) records that inside its
// typed evidence and returns nil.
func (t *typed[E]) Collect(ctx context.Context, env *Env, a Asset) (Evidence, error) {
	ev := Evidence{CheckID: t.s.ID, Asset: a, CollectedAt: env.Clock()}
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
	if len(ev.Data) > 0 {
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
