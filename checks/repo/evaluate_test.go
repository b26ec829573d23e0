package repo

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

var evalAt = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func call(status int, body string) *Call {
	return &Call{Status: status, Body: json.RawMessage(body)}
}

// goodRepo is a well-kept repository as an administrator sees it.
func goodRepo() Evidence {
	files := map[string]string{
		"README.md":                 fmt.Sprintf("# x\n\n%0300d\n\nReleased under the MIT licence.\n", 0),
		".github/SECURITY.md":       "Report to cybersecurity@nhs.net\n",
		".github/dependabot.yaml":   "version: 2\nupdates:\n  - package-ecosystem: github-actions\n  - package-ecosystem: gomod\n",
		".pre-commit-config.yaml":   "repos:\n  - repo: https://github.com/gitleaks/gitleaks\n    hooks:\n      - id: gitleaks\n",
		".github/workflows/ci.yaml": "on: push\npermissions:\n  contents: read\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683\n      - uses: gitleaks/gitleaks-action@ff98106e4c7b2bc287b24eaf42907196329070c7\n",
	}
	ev := Evidence{Owner: "o", Name: "r", Files: map[string]File{}, Calls: map[string]*Call{},
		Repo: call(200, `{"default_branch":"main","pushed_at":"2026-11-20T00:00:00Z","license":{"spdx_id":"MIT"},
			"permissions":{"admin":true},"security_and_analysis":{"secret_scanning":{"status":"enabled"},"secret_scanning_push_protection":{"status":"enabled"}}}`),
		Tree: Tree{Status: 200, Paths: []string{".github/CODEOWNERS", ".github/SECURITY.md", ".github/dependabot.yaml",
			".github/workflows/ci.yaml", ".gitleaks.toml", ".pre-commit-config.yaml", "CONTRIBUTING.md", "LICENCE", "README.md", "go.mod"}}}
	for p, t := range files {
		ev.Files[p] = File{Path: p, Size: len(t), Text: t}
	}
	ev.Calls["codeowners-errors"] = call(200, `{"errors":[]}`)
	ev.Calls["branch"] = call(200, `{"name":"main","protected":true}`)
	ev.Calls["rules"] = call(200, `[]`)
	ev.Calls["commits"] = call(200, `[{"sha":"a","commit":{"verification":{"verified":true,"reason":"valid"}}}]`)
	ev.Calls["pvr"] = call(200, `{"enabled":true}`)
	ev.Calls["dependabot-alerts"] = call(200, `[]`)
	ev.Calls["code-scanning-alerts"] = call(200, `[]`)
	ev.Calls["protection"] = call(200, `{"required_status_checks":{"strict":true},"required_pull_request_reviews":{"dismiss_stale_reviews":true,
		"require_code_owner_reviews":true,"required_approving_review_count":1},"required_signatures":{"enabled":true},
		"enforce_admins":{"enabled":true},"allow_force_pushes":{"enabled":false},"allow_deletions":{"enabled":false}}`)
	return ev
}

func judge(ev Evidence) map[string]check.Finding {
	out := map[string]check.Finding{}
	for _, f := range evaluateRepo(check.In[Evidence]{Evidence: ev, CollectedAt: evalAt, Policy: check.DefaultPolicy()}) {
		out[f.CheckID] = f
	}
	return out
}

func TestAWellKeptRepositoryPassesEveryCheck(t *testing.T) {
	got := judge(goodRepo())
	for _, m := range repoRules {
		if f, ok := got[m.ID]; !ok || f.Outcome != check.Pass {
			t.Errorf("%s: %s (%s)", m.ID, f.Outcome, f.Message)
		}
	}
}

func TestRepoVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(ev *Evidence)
		id     string
		want   check.Outcome
		reason string
	}{
		{"no licence file", func(ev *Evidence) { ev.Tree.Paths = without(ev.Tree.Paths, "LICENCE") }, IDLicence, check.Fail, ""},
		{"a licence GitHub cannot identify", func(ev *Evidence) { setRepo(ev, "license", map[string]string{"spdx_id": "NOASSERTION"}) }, IDLicence, check.Fail, ""},
		{"OGL on code warns", func(ev *Evidence) { setRepo(ev, "license", map[string]string{"spdx_id": "OGL-UK-3.0"}) }, IDLicence, check.Warn, ""},
		{"Apache passes", func(ev *Evidence) { setRepo(ev, "license", map[string]string{"spdx_id": "Apache-2.0"}) }, IDLicence, check.Pass, ""},
		{"a short README", func(ev *Evidence) { ev.Files["README.md"] = File{Text: "# x\nMIT licence\n", Size: 16} }, IDReadme, check.Fail, ""},
		{"archived, README silent", func(ev *Evidence) { setRepo(ev, "archived", true) }, IDReadme, check.Fail, ""},
		{"archived: settings are n/a", func(ev *Evidence) { setRepo(ev, "archived", true) }, IDBranchProtect, check.NA, ""},
		{"archived is not stale", func(ev *Evidence) { setRepo(ev, "archived", true); setRepo(ev, "pushed_at", "2020-01-01T00:00:00Z") }, IDStale, check.Pass, ""},
		{"no push for 400 days", func(ev *Evidence) { setRepo(ev, "pushed_at", "2025-10-27T00:00:00Z") }, IDStale, check.Warn, ""},
		{"root SECURITY.md without a route wins over .github's", func(ev *Evidence) {
			ev.Tree.Paths = append(ev.Tree.Paths, "SECURITY.md")
			ev.Files["SECURITY.md"] = File{Text: "We care.\n"}
		}, IDSecurityPolicy, check.Fail, ""},
		{"SECURITY.md inherited from the organisation", func(ev *Evidence) {
			ev.Tree.Paths = without(ev.Tree.Paths, ".github/SECURITY.md")
			ev.OrgDotGitHub = &Inherited{Status: 200, Tree: Tree{Status: 200, Paths: []string{"docs/SECURITY.md"}},
				Files: map[string]File{"docs/SECURITY.md": {Text: "https://www.ncsc.gov.uk/information/vulnerability-reporting"}}}
		}, IDSecurityPolicy, check.Pass, ""},
		{"no SECURITY.md and no .github repository", func(ev *Evidence) {
			ev.Tree.Paths = without(ev.Tree.Paths, ".github/SECURITY.md")
			ev.OrgDotGitHub = &Inherited{Status: 404}
		}, IDSecurityPolicy, check.Fail, ""},
		{"pvr not readable without admin", func(ev *Evidence) { delete(ev.Calls, "pvr") }, IDPVR, check.Unknown, ReasonNeedsAdmin},
		{"pvr 404 is unknown, not fail", func(ev *Evidence) { ev.Calls["pvr"] = call(404, `{}`) }, IDPVR, check.Unknown, ReasonNeedsAdmin},
		{"pvr disabled", func(ev *Evidence) { ev.Calls["pvr"] = call(200, `{"enabled":false}`) }, IDPVR, check.Fail, ""},
		{"CODEOWNERS with an unknown team", func(ev *Evidence) {
			ev.Calls["codeowners-errors"] = call(200, `{"errors":[{"line":1,"kind":"Unknown owner","message":"Unknown owner on line 1\n..."}]}`)
		}, IDCodeowners, check.Fail, ""},
		{"no security_and_analysis without admin", func(ev *Evidence) { setRepo(ev, "security_and_analysis", nil) }, IDSecretScanning, check.Unknown, ReasonNeedsAdmin},
		{"push protection off", func(ev *Evidence) {
			setRepo(ev, "security_and_analysis", map[string]any{"secret_scanning": map[string]string{"status": "enabled"}})
		}, IDSecretScanning, check.Fail, ""},
		{"no gitleaks config", func(ev *Evidence) { ev.Tree.Paths = without(ev.Tree.Paths, ".gitleaks.toml") }, IDGitleaksConfig, check.Fail, ""},
		{"dependabot misses github-actions", func(ev *Evidence) {
			ev.Files[".github/dependabot.yaml"] = File{Text: "version: 2\nupdates:\n  - package-ecosystem: gomod\n"}
		}, IDDependabot, check.Fail, ""},
		{"alerts disabled", func(ev *Evidence) {
			ev.Calls["dependabot-alerts"] = call(403, `{}`)
			ev.Calls["vulnerability-alerts"] = call(404, `{}`)
		}, IDDependabot, check.Fail, ""},
		{"an old critical alert", func(ev *Evidence) {
			ev.Calls["dependabot-alerts"] = call(200, `[{"state":"open","created_at":"2026-09-01T00:00:00Z","security_advisory":{"severity":"critical"}}]`)
		}, IDVulnAlerts, check.Fail, ""},
		{"a young high alert", func(ev *Evidence) {
			ev.Calls["dependabot-alerts"] = call(200, `[{"state":"open","created_at":"2026-11-25T00:00:00Z","security_advisory":{"severity":"high"}}]`)
		}, IDVulnAlerts, check.Pass, ""},
		{"weak classic protection", func(ev *Evidence) {
			ev.Calls["protection"] = call(200, `{"required_pull_request_reviews":{"required_approving_review_count":1}}`)
		}, IDBranchProtect, check.Fail, ""},
		{"unprotected, said publicly, no admin", func(ev *Evidence) {
			delete(ev.Calls, "protection")
			ev.Calls["branch"] = call(200, `{"protected":false}`)
		}, IDBranchProtect, check.Fail, ""},
		{"protected, details need admin", func(ev *Evidence) { delete(ev.Calls, "protection") }, IDBranchProtect, check.Unknown, ReasonNeedsAdmin},
		{"rulesets alone, readable without admin", func(ev *Evidence) {
			delete(ev.Calls, "protection")
			ev.Calls["rules"] = call(200, `[{"type":"deletion"},{"type":"non_fast_forward"},{"type":"required_signatures"},
				{"type":"pull_request","parameters":{"required_approving_review_count":1,"require_code_owner_review":true,"dismiss_stale_reviews_on_push":true}},
				{"type":"required_status_checks","parameters":{"strict_required_status_checks_policy":true}}]`)
		}, IDBranchProtect, check.Pass, ""},
		{"an unsigned commit", func(ev *Evidence) {
			ev.Calls["commits"] = call(200, `[{"sha":"a","commit":{"verification":{"verified":false,"reason":"unsigned"}}}]`)
		}, IDSignedCommits, check.Fail, ""},
		{"an action by tag", func(ev *Evidence) {
			ev.Files[".github/workflows/ci.yaml"] = File{Text: "on: push\npermissions: {}\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n"}
		}, IDActionsPinning, check.Fail, ""},
		{"a workflow without permissions", func(ev *Evidence) {
			ev.Files[".github/workflows/ci.yaml"] = File{Text: "on: push\njobs: {}\n"}
		}, IDActionsPerms, check.Fail, ""},
		{"a workflow file that could not be read", func(ev *Evidence) {
			ev.Files[".github/workflows/ci.yaml"] = File{Error: "timeout", Class: "timeout"}
		}, IDActionsPerms, check.Unknown, "timeout"},
		{"the tree could not be read", func(ev *Evidence) { ev.Tree = Tree{Class: "rate-limited", Error: "limited"} }, IDReadme, check.Unknown, "rate-limited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := goodRepo()
			tc.change(&ev)
			f := judge(ev)[tc.id]
			if f.Outcome != tc.want || (tc.reason != "" && f.Reason != tc.reason) {
				t.Errorf("%s: %s (reason %q): %s; want %s %q", tc.id, f.Outcome, f.Reason, f.Message, tc.want, tc.reason)
			}
		})
	}
}

func without(ps []string, p string) []string {
	var out []string
	for _, x := range ps {
		if x != p {
			out = append(out, x)
		}
	}
	return out
}

func setRepo(ev *Evidence, key string, v any) {
	var m map[string]any
	json.Unmarshal(ev.Repo.Body, &m)
	if v == nil {
		delete(m, key)
	} else {
		m[key] = v
	}
	b, _ := json.Marshal(m)
	ev.Repo = &Call{Status: 200, Body: b}
}

func TestOrgSettingsTheTokenCannotSeeAreUnknown(t *testing.T) {
	for _, tc := range []struct {
		body       string
		twoFA, bp  check.Outcome
		openReason string
	}{
		{`{"login":"o","public_repos":3}`, check.Unknown, check.Unknown, ""},
		{`{"login":"o","public_repos":3,"total_private_repos":1,"two_factor_requirement_enabled":true,"default_repository_permission":"none","members_can_fork_private_repositories":false}`, check.Pass, check.Pass, ""},
		{`{"login":"o","public_repos":3,"total_private_repos":1,"two_factor_requirement_enabled":false,"default_repository_permission":"read","members_can_fork_private_repositories":false}`, check.Fail, check.Fail, ""},
	} {
		got := map[string]check.Finding{}
		for _, f := range evaluateOrg(check.In[OrgEvidence]{Evidence: OrgEvidence{Login: "o", Org: call(200, tc.body)}}) {
			got[f.CheckID] = f
		}
		if got[IDOrg2FA].Outcome != tc.twoFA || got[IDOrgBasePerms].Outcome != tc.bp || got[IDOrgOpen].Outcome != check.Pass {
			t.Errorf("%s: 2fa %s, base %s, open %s", tc.body, got[IDOrg2FA].Outcome, got[IDOrgBasePerms].Outcome, got[IDOrgOpen].Outcome)
		}
		if tc.twoFA == check.Unknown && got[IDOrg2FA].Reason != ReasonNeedsAdmin {
			t.Errorf("2fa reason %q", got[IDOrg2FA].Reason)
		}
	}
}

// FuzzEvaluateRepo: whatever GitHub answered (stored evidence is hostile
// input too), Evaluate returns one verdict per id and never panics.
func FuzzEvaluateRepo(f *testing.F) {
	good, _ := json.Marshal(goodRepo())
	f.Add(good)
	archived := goodRepo()
	setRepo(&archived, "archived", true)
	b, _ := json.Marshal(archived)
	f.Add(b)
	f.Add([]byte(`{"repo":{"status":200,"body":{"default_branch":7}},"tree":{"status":200,"paths":["README",".github/workflows/a.yml"]},"files":{".github/workflows/a.yml":{"text":"on: [\n"}},"calls":{"protection":{"status":200,"body":[1]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev Evidence
		if json.Unmarshal(data, &ev) != nil {
			return
		}
		fs := evaluateRepo(check.In[Evidence]{Evidence: ev, CollectedAt: evalAt, Policy: check.DefaultPolicy()})
		if len(fs) != len(repoRules) {
			t.Fatalf("%d findings, want %d", len(fs), len(repoRules))
		}
	})
}
