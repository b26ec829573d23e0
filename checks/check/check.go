// Package check is the contract every posture check is written against:
// assets, typed evidence, findings, outcomes, severities, standards and the
// policy that turns evidence into findings.
//
// A Check is a collector: Collect does all the network I/O for one asset and
// returns Evidence, which is stored verbatim; Evaluate is a pure function of
// that Evidence and a Policy and returns findings for one or more catalogue
// ids (Rules). Keeping the two apart lets `posture reeval` re-apply a changed
// policy to last night's evidence with no new scan.
package check

import (
	"context"
	"encoding/json"
	"time"
)

// Kind is the type of target a check runs against.
type Kind string

const (
	KindDomain Kind = "domain" // a registrable or apex domain, e.g. example.nhs.uk
	KindHost   Kind = "host"   // a web hostname on TCP 80/443
	KindMail   Kind = "mail"   // an MX host on TCP 25
	KindRepo   Kind = "repo"   // a GitHub repository, owner/name
	KindOrg    Kind = "org"    // a GitHub organisation
	// KindZone is a DNS zone delegated below an estate domain (a
	// subdomain that owns NS records), e.g. dept.example.nhs.uk.
	KindZone Kind = "zone"
)

// Asset is one thing that is scanned. Name is a lower-case FQDN without the
// trailing dot (domain, host, mail), "owner/name" (repo) or the login (org).
type Asset struct {
	Kind Kind   `json:"kind"`
	Name string `json:"name"`
	// Org is the ODS code of the organisation that owns the asset.
	Org string `json:"org,omitempty"`
	// Domain is the estate domain the asset was found under (for hosts and
	// mail hosts), so findings can be routed to the domain's owner.
	Domain string `json:"domain,omitempty"`
	// Source says how the asset was found: estate, ct, dns, mx, github.
	Source string `json:"source,omitempty"`
}

// Key identifies an asset across runs.
func (a Asset) Key() string { return string(a.Kind) + ":" + a.Name }

// Meta describes one catalogue entry (a check id in checks.md).
type Meta struct {
	ID          string   `json:"id"`     // "email.dmarc.policy"
	Family      string   `json:"family"` // dns, email, tls, web, repo
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Severity    Severity `json:"severity"` // default severity of a fail
	Targets     []Kind   `json:"targets"`
	Standards   []Ref    `json:"standards"`
	Remediation string   `json:"remediation,omitempty"`
	// Rule is the rule name of the entry's main finding ("dmarc-policy-
	// enforced"). Unknown findings from a failed collection take it, so a
	// night that times out keeps the same finding id; "" means the id.
	Rule string `json:"rule,omitempty"`
}

// Ref cites a standard. Status marks citations that were not read from the
// primary document ("secondary", "unverified"): reports keep the reference
// but do not quote it.
type Ref struct {
	Standard string `json:"standard"`
	Section  string `json:"section,omitempty"`
	URL      string `json:"url,omitempty"`
	Status   string `json:"status,omitempty"`
}

// Check is one collector and the catalogue entries it evaluates.
type Check interface {
	// ID is the collector's stable key, e.g. "email.spf". Jobs are
	// asset × collector; evidence is stored under this id.
	ID() string
	// Rules lists the catalogue entries whose findings Evaluate returns.
	Rules() []Meta
	Applies(a Asset) bool
	// Collect does the I/O. A non-nil error means the evidence could not be
	// gathered; the returned Evidence then carries the classified error and
	// Evaluate turns it into unknown findings, never fail.
	Collect(ctx context.Context, env *Env, a Asset) (Evidence, error)
	// Evaluate is pure: no context, no network, no clock.
	Evaluate(ev Evidence, p *Policy) []Finding
}

// Evidence is what Collect saw, stored verbatim so that it can be shown,
// disputed and re-evaluated.
type Evidence struct {
	CheckID     string    `json:"check"`
	Asset       Asset     `json:"asset"`
	CollectedAt time.Time `json:"collected_at"`
	// Version is the schema version of Data (0: before versioning, read
	// as 1).
	Version    int             `json:"version,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	Error      string          `json:"error,omitempty"`
	ErrorClass ErrClass        `json:"error_class,omitempty"`
}

// Finding is one verdict of one catalogue entry on one asset.
type Finding struct {
	CheckID     string   `json:"check"`
	Rule        string   `json:"rule"` // phrased so that pass is good: "dmarc-policy-enforced"
	Asset       Asset    `json:"asset"`
	Outcome     Outcome  `json:"outcome"`
	Severity    Severity `json:"severity"`
	Message     string   `json:"message"`               // what we saw, with the values
	Remediation string   `json:"remediation,omitempty"` // what to do, plainly
	Standards   []Ref    `json:"standards,omitempty"`
	// Reason is the error class for unknown findings ("timeout", "servfail").
	Reason string `json:"reason,omitempty"`
}

// ID is the stable finding id: the same check, rule and asset give the same
// id in every run, which is what the lifecycle (first seen, resolved,
// regressed) hangs on.
func (f Finding) ID() string { return FindingID(f.CheckID, f.Rule, f.Asset.Key()) }
