package repo

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// SecretsHistory is the catalogue id of the secret scan of a repository's
// history; SecretsCollector is its collector.
const (
	SecretsHistory   = "repo.secrets.history"
	SecretsCollector = "repo.secrets"
	secretsRule      = "no-secrets-in-history"
)

// GitHubService is the configured service (Env.Service) that reaches the
// GitHub REST API: GitHub.com, GitHub Enterprise or the lab. GitService,
// when configured, is the network the clones take instead of the API's
// client: the same service without the API token (GitHub's git endpoint
// does not take the API's Bearer token, and public repositories need
// none) and without the API's ETag cache. Without it the clone goes
// through the GitHub service's client.
const (
	GitHubService = "github"
	GitService    = "github-git"
)

// secretsMaxPack is the most packfile bytes fetched (a variable so that a
// test can lower it).
var secretsMaxPack int64 = secretsMaxPackMB << 20

// secretsMaxCommits is the most commits walked (a variable so that a test
// can lower it).
var secretsMaxCommits = 50_000

// secretsMemPack: a repository whose pack is at most this size is fetched
// into memory (its objects inflated there), a larger one to disk.
var secretsMemPack int64 = 4 << 20

// Bounds of one history scan. A repository over the size cap is not
// cloned (unknown, too-large); one that takes longer than the time cap is
// judged on what was scanned (a secret found is a fail; none found in part
// of the history is unknown).
const (
	secretsMaxPackMB   = 200             // megabytes of packfile fetched
	secretsMaxTime     = 4 * time.Minute // clone and scan
	secretsMaxBlob     = 4 << 20         // a file version larger than this is not scanned
	secretsMaxLeaks    = 200             // leaks kept in the evidence
	secretsMaxConfig   = 256 << 10       // bytes read of .gitleaks.toml and .gitleaksignore
	secretsJobTimeout  = 5 * time.Minute // the scanner gives a job of this check at least this
	secretsMaxAPIBody  = 4 << 20         // GET /repos/{owner}/{repo}
	secretsMaxExcerpt  = 48              // bytes of context kept before a secret
	secretsShownInText = 5               // leaks named in a finding's message
	secretsRedactKeep  = 4               // leading characters of a secret kept in a redaction
	secretsMinHidden   = 8               // a redaction hides at least this many characters
	secretsAPIAccept   = "application/vnd.github+json"
	secretsAPIVersion  = "2022-11-28"
	secretsUserAgent   = "posture (NHS England security posture scanner)"
	secretsHashPrefix  = "hmac-sha256:"
	secretsDecodedTag  = "decoded:"
	secretsMaxMsgBytes = 2000
)

// Reasons of unknown findings that are not network error classes.
const (
	SecretsNoService = "no-service" // no GitHub service is configured
	SecretsNotFound  = "not-found"  // the API has no such repository
	SecretsPartial   = "partial"    // the scan stopped before the end of the history
	SecretsNoClone   = "no-clone"   // the API gives no clone URL the scanner may use
)

// SecretsEvidence is what the history scan saw: where it cloned from, how
// much history it walked, which allowlist the repository supplied, and a
// fingerprint of each secret found. It never holds a secret: each leak
// carries a keyed hash (HMAC-SHA256 under the deployment's key) and a
// redacted excerpt.
type SecretsEvidence struct {
	Repo string `json:"repo"`
	// CloneURL is the API's clone_url (without credentials).
	CloneURL      string `json:"clone_url,omitempty"`
	DefaultBranch string `json:"default_branch,omitempty"`
	// Head is the default branch's tip commit; Empty a repository with
	// no commits (nothing to scan: pass).
	Head  string `json:"head,omitempty"`
	Empty bool   `json:"empty,omitempty"`
	// SizeKB is the API's size of the repository.
	SizeKB    int64 `json:"size_kb,omitempty"`
	PackBytes int64 `json:"pack_bytes,omitempty"`
	// Commits walked (merges are walked, not diffed, as `git log -p`
	// does); Scanned file versions; Skipped ones (binary, or larger than
	// the per-file cap).
	Commits int `json:"commits"`
	Scanned int `json:"scanned"`
	Skipped int `json:"skipped,omitempty"`
	// Config is what the repository's own gitleaks files added.
	Config SecretsConfig `json:"config"`
	// Leaks are the un-allowlisted findings, oldest commit first (at most
	// secretsMaxLeaks); LeaksTotal counts them all.
	Leaks      []Leak `json:"leaks,omitempty"`
	LeaksTotal int    `json:"leaks_total,omitempty"`
	// Partial says why the scan stopped before the end of the history
	// (with its error class); "" when it walked all of it.
	Partial      string `json:"partial,omitempty"`
	PartialClass string `json:"partial_class,omitempty"`
	// KeyID names the key of the hashes (the first bytes of its SHA-256),
	// so hashes made under different keys are never compared.
	KeyID   string `json:"key_id,omitempty"`
	Scanner string `json:"scanner"` // "gitleaks v8.30.1 default rules"
	// Error and Class: the scan could not be made at all (Evaluate says
	// unknown with Class as the reason).
	Error string `json:"error,omitempty"`
	Class string `json:"class,omitempty"`
	// Took is the clone and scan time in milliseconds.
	Took int64 `json:"took_ms,omitempty"`
}

// SecretsConfig is what the repository's gitleaks files contributed.
type SecretsConfig struct {
	// File is ".gitleaks.toml" when the default branch's tip has one.
	File string `json:"file,omitempty"`
	// Allowlists taken from it (global and per-rule, for the default
	// rules); its own rules and [extend] are not used.
	Allowlists int `json:"allowlists,omitempty"`
	// Ignores are the .gitleaksignore fingerprints read; Ignored the
	// findings they dropped.
	Ignores int `json:"ignores,omitempty"`
	Ignored int `json:"ignored,omitempty"`
	// Error is why the repository's .gitleaks.toml was not applied (the
	// scan then used the default rules alone).
	Error string `json:"error,omitempty"`
}

// Leak is one secret found in the history, without the secret.
type Leak struct {
	Rule   string `json:"rule"`
	File   string `json:"file"`
	Commit string `json:"commit"`
	// Date is the commit's author date (RFC 3339).
	Date      string `json:"date,omitempty"`
	Line      int    `json:"line"`
	EndLine   int    `json:"end_line,omitempty"`
	Column    int    `json:"column,omitempty"`
	EndColumn int    `json:"end_column,omitempty"`
	// Fingerprint is gitleaks' (commit:file:rule:line): the line of a
	// .gitleaksignore that silences this finding.
	Fingerprint string `json:"fingerprint"`
	// Hash is HMAC-SHA256(deployment key, secret), hex, prefixed with
	// "hmac-sha256:": the same secret gives the same hash in every run and
	// repository, and cannot be guessed back without the key.
	Hash string `json:"hash"`
	// Redacted is an excerpt of the line with the secret masked: a few
	// characters of context, the secret's first characters and its length.
	Redacted string `json:"redacted"`
	// InHead is true when the secret is still in the file at the default
	// branch's tip (not only in history).
	InHead bool `json:"in_head,omitempty"`
}

// ID is the leak's stable identity across runs: the hash of the secret and
// where it was added.
func (l Leak) ID() string { return l.Hash + "|" + l.Fingerprint }

// Standards of repo.secrets.history (checks.md §1.7).
var secretsStandards = []check.Ref{
	{Standard: "GOV.UK Service Standard", Section: `point 12 Make new source code open: "publish it in an open repository - minus any sensitive information, like secret keys and credentials"`,
		URL: "https://www.gov.uk/service-manual/service-standard/point-12-make-new-source-code-open"},
	{Standard: "NHS (nhsx) Open Source Policy", Section: `§4g "Valid keys and credentials must not be published"`},
	{Standard: "NHS England Software Engineering Quality Framework", Section: `quality-checks.md Secret scan: "Full repository (including history) scan, and all secrets removed"`,
		URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/quality-checks.md"},
	{Standard: "nhs-england-tools/repository-template", Section: ".github/actions/scan-secrets: gitleaks with check=whole-history"},
}

// Secrets is the repo.secrets collector: gitleaks (its default rules, with
// the repository's own allowlist) over the full history of the default
// branch, cloned from the API's clone_url.
func Secrets() check.Check {
	return check.New(check.Spec[SecretsEvidence]{
		ID:      SecretsCollector,
		Family:  "repo",
		Targets: []check.Kind{check.KindRepo},
		Rules: []check.Meta{{
			ID:    SecretsHistory,
			Title: "No secrets in the repository's history",
			Description: "gitleaks (the scanner NHS England's quality framework mandates; its default rules, with the " +
				"repository's own .gitleaks.toml allowlists and .gitleaksignore fingerprints, as gitleaks applies them) " +
				"over every commit of the default branch's full history, cloned from the GitHub API's clone_url: no " +
				"un-allowlisted finding passes; any finding fails (critical), whether the secret is still in the latest " +
				"commit or only in history. A repository over 200 MB, or a scan that runs out of time before finding " +
				"anything, is unknown. Secrets are never stored: each finding keeps gitleaks' fingerprint (commit, file, " +
				"rule, line), a keyed hash of the secret and a redacted excerpt.",
			Severity: check.Critical,
			Rule:     secretsRule,
			Remediation: "Treat every secret found as compromised: revoke or rotate it at its issuer now (deleting the " +
				"commit does not un-publish it: clones, forks and caches keep it). Then remove it from the history " +
				"(git filter-repo, or BFG) or, once it is revoked, add the finding's fingerprint to .gitleaksignore; mark " +
				"test fixtures in .gitleaks.toml's allowlist. Stop new ones with gitleaks in a pre-commit hook and in CI " +
				"on every pull request, and turn on GitHub secret scanning with push protection.",
			Standards: secretsStandards,
		}},
		Collect:  collectSecrets,
		Evaluate: evaluateSecrets,
		Timeout:  secretsJobTimeout,
	})
}

func evaluateSecrets(in check.In[SecretsEvidence]) []check.Finding {
	e := in.Evidence
	f := check.Finding{CheckID: SecretsHistory, Rule: secretsRule}
	switch {
	case e.Error != "":
		f.Outcome, f.Reason = check.Unknown, cmp.Or(e.Class, string(check.ErrOther))
		f.Message = "could not tell: " + e.Error
	case e.Empty:
		f.Outcome = check.Pass
		f.Message = fmt.Sprintf("%s has no commits: no history to scan", e.Repo)
	case e.LeaksTotal > 0 || len(e.Leaks) > 0:
		f.Outcome = check.Fail
		f.Message = secretsMessage(e)
	case e.Partial != "":
		f.Outcome, f.Reason = check.Unknown, cmp.Or(e.PartialClass, SecretsPartial)
		f.Message = fmt.Sprintf("could not tell: the scan of %s stopped after %d commits with no secret found: %s",
			e.Repo, e.Commits, e.Partial)
	default:
		f.Outcome = check.Pass
		f.Message = fmt.Sprintf("no secrets in the %d commits of %s's default branch %s (%s%s)",
			e.Commits, e.Repo, e.DefaultBranch, e.Scanner, secretsConfigNote(e.Config))
	}
	return []check.Finding{f}
}

func secretsConfigNote(c SecretsConfig) string {
	var parts []string
	if c.File != "" && c.Error == "" {
		parts = append(parts, fmt.Sprintf("with %d allowlists from %s", c.Allowlists, c.File))
	}
	if c.Ignores > 0 {
		parts = append(parts, fmt.Sprintf("%d findings silenced by .gitleaksignore", c.Ignored))
	}
	if c.Error != "" {
		parts = append(parts, "the repository's "+c.File+" was not applied: "+c.Error)
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

// secretsMessage names the leaks: how many, how many are still at the tip,
// and the first few with their place and redacted excerpt.
func secretsMessage(e SecretsEvidence) string {
	total := max(e.LeaksTotal, len(e.Leaks))
	inHead := 0
	byRule := map[string]int{}
	for _, l := range e.Leaks {
		if l.InHead {
			inHead++
		}
		byRule[l.Rule]++
	}
	var b strings.Builder
	noun := "secrets"
	if total == 1 {
		noun = "secret"
	}
	fmt.Fprintf(&b, "%d %s in the history of %s's default branch %s", total, noun, e.Repo, e.DefaultBranch)
	if inHead > 0 {
		fmt.Fprintf(&b, ", %d still in its latest commit", inHead)
	}
	rules := make([]string, 0, len(byRule))
	for r, n := range byRule {
		rules = append(rules, fmt.Sprintf("%s ×%d", r, n))
	}
	slices.Sort(rules)
	fmt.Fprintf(&b, " (%s)", strings.Join(rules, ", "))
	for i, l := range e.Leaks {
		if i == secretsShownInText {
			fmt.Fprintf(&b, "; and %d more", total-i)
			break
		}
		fmt.Fprintf(&b, "; %s in %s line %d of commit %s", l.Rule, l.File, l.Line, secretsShort(l.Commit))
		if l.Date != "" {
			fmt.Fprintf(&b, " (%s)", strings.SplitN(l.Date, "T", 2)[0])
		}
		if l.Redacted != "" {
			fmt.Fprintf(&b, ": %s", l.Redacted)
		}
	}
	if e.Partial != "" {
		fmt.Fprintf(&b, "; the scan stopped early (%s), so there may be more", e.Partial)
	}
	if note := secretsConfigNote(e.Config); note != "" {
		b.WriteString(note)
	}
	msg := b.String()
	if len(msg) > secretsMaxMsgBytes {
		msg = strings.ToValidUTF8(msg[:secretsMaxMsgBytes], "") + "…"
	}
	return msg
}

func secretsShort(commit string) string {
	if len(commit) > 10 {
		return commit[:10]
	}
	return commit
}

// DecodeSecrets reads stored evidence of the repo.secrets collector (for
// exports that place each leak, such as SARIF). ok is false for evidence of
// another collector or an error.
func DecodeSecrets(ev check.Evidence) (SecretsEvidence, bool) {
	var e SecretsEvidence
	if ev.CheckID != SecretsCollector || ev.Error != "" || len(ev.Data) == 0 {
		return e, false
	}
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return e, false
	}
	return e, true
}
