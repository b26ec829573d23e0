package repo

import "github.com/nhsx/posture/checks/check"

// Catalogue ids of the repository and organisation checks (docs/checks.md
// §1.7; repo.secrets.history is the secrets collector's).
const (
	IDLicence         = "repo.licence"
	IDReadme          = "repo.readme"
	IDSecurityPolicy  = "repo.security-policy"
	IDPVR             = "repo.pvr"
	IDCodeowners      = "repo.codeowners"
	IDContributing    = "repo.contributing"
	IDSecretScanning  = "repo.secret-scanning"
	IDGitleaksConfig  = "repo.gitleaks-config"
	IDDependabot      = "repo.dependabot"
	IDVulnAlerts      = "repo.vuln-alerts.open"
	IDBranchProtect   = "repo.branch-protection"
	IDSignedCommits   = "repo.signed-commits"
	IDActionsPinning  = "repo.actions.pinning"
	IDActionsPerms    = "repo.actions.permissions"
	IDActionsTriggers = "repo.actions.triggers"
	IDStale           = "repo.stale"
	IDOrg2FA          = "org.2fa"
	IDOrgBasePerms    = "org.base-permissions"
	IDOrgOpen         = "org.open-by-default"
)

var (
	refSvcStd12 = check.Ref{Standard: "GOV.UK Service Standard", Section: "point 12 Make new source code open", URL: "https://www.gov.uk/service-manual/service-standard/point-12-make-new-source-code-open"}
	refTCoP3    = check.Ref{Standard: "Technology Code of Practice", Section: "point 3 Be open and use open source", URL: "https://www.gov.uk/guidance/be-open-and-use-open-source"}
	refOSPLic   = check.Ref{Standard: "NHS (nhsx) Open Source Policy", Section: "§4c a licence, full text, in a top level LICENCE file; MIT default; OGL v3 for documentation", URL: "https://github.com/nhsx/open-source-policy"}
	refOSPRead  = check.Ref{Standard: "NHS (nhsx) Open Source Policy", Section: "§4b an informative README; §4i maintenance note", URL: "https://github.com/nhsx/open-source-policy"}
	refOSPContr = check.Ref{Standard: "NHS (nhsx) Open Source Policy", Section: "§4d contributing guidelines", URL: "https://github.com/nhsx/open-source-policy"}
	refOSPKeys  = check.Ref{Standard: "NHS (nhsx) Open Source Policy", Section: "§4i maintenance: archive what is not maintained", URL: "https://github.com/nhsx/open-source-policy"}
	refSEQFOS   = check.Ref{Standard: "NHS England Software Engineering Quality Framework", Section: "practices/open-source.md §2 first choice should be the MIT Licence", URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/practices/open-source.md"}
	refSEQFSec  = check.Ref{Standard: "NHS England Software Engineering Quality Framework", Section: "practices/securing-repositories.md", URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/practices/securing-repositories.md"}
	refSEQFVis  = check.Ref{Standard: "NHS England Software Engineering Quality Framework", Section: "practices/baseline-visibility.md", URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/practices/baseline-visibility.md"}
	refSEQFQC   = check.Ref{Standard: "NHS England Software Engineering Quality Framework", Section: "quality-checks.md: Secret scan; Dependency scan", URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/quality-checks.md"}
	refSEQFGL   = check.Ref{Standard: "NHS England Software Engineering Quality Framework", Section: "tools/gitleaks.md Minimum expectations", URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/tools/gitleaks.md"}
	refSEQFAct  = check.Ref{Standard: "NHS England Software Engineering Quality Framework", Section: "practices/actions-best-practices.md", URL: "https://github.com/NHSDigital/software-engineering-quality-framework/blob/main/practices/actions-best-practices.md"}
	refTPL      = check.Ref{Standard: "nhs-england-tools/repository-template", Section: "scripts/config/gitleaks.toml, scripts/config/pre-commit.yaml, .github/workflows/stage-1-commit.yaml (scan-secrets), .github/dependabot.yaml", URL: "https://github.com/nhs-england-tools/repository-template"}
	refGDSGH    = check.Ref{Standard: "GDS Way", Section: "Use GitHub: archive repositories no longer used; two-factor authentication", URL: "https://gds-way.digital.cabinet-office.gov.uk/standards/source-code/use-github.html"}
	refGDSAct   = check.Ref{Standard: "GDS Way", Section: "Using GitHub Actions: pin third-party actions to a full-length commit SHA; set permissions:; risky triggers", URL: "https://gds-way.digital.cabinet-office.gov.uk/standards/source-code/use-github-actions.html"}
	refCAFB2a   = check.Ref{Standard: "NCSC CAF v3.2", Section: "B2.a Identity verification, authentication and authorisation (evidence only)"}
	refCAFB4d   = check.Ref{Standard: "NCSC CAF v3.2", Section: "B4.d Vulnerability management (evidence only)"}
	refGHComm   = check.Ref{Standard: "GitHub Docs", Section: "Creating a default community health file (SECURITY.md and CONTRIBUTING.md from the organisation's .github repository; root, .github or docs)", URL: "https://docs.github.com/en/communities/setting-up-your-project-for-healthy-contributions/creating-a-default-community-health-file"}
	refGHCodeow = check.Ref{Standard: "GitHub Docs", Section: "About code owners: CODEOWNERS in .github/, the root or docs/ (the first found is used)", URL: "https://docs.github.com/en/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners"}
)

const needsAdminText = "needs a token with admin scope"

var repoRules = []check.Meta{
	{ID: IDLicence, Severity: check.High, Rule: "licence-present",
		Title:       "Repository licence",
		Description: "A LICENCE, LICENSE or COPYING file at the root that GitHub recognises as an OSI-approved licence (its SPDX id from the repository API). No file, or a licence GitHub cannot identify (NOASSERTION), fails; a documentation licence (OGL-UK-3.0, CC-BY-4.0) on a code repository warns. A licence other than MIT is noted, not judged.",
		Remediation: "Add the full text of an open source licence in a top-level LICENCE file: MIT is the NHS default (Apache-2.0 when legal notices are needed, GPL-3.0 to prevent closed reuse).",
		Standards:   []check.Ref{refSvcStd12, refTCoP3, refOSPLic, refSEQFOS}},
	{ID: IDReadme, Severity: check.Medium, Rule: "readme-informative",
		Title:       "README",
		Description: "A README at the root, more than 300 bytes, that mentions the licence; on an archived repository it says the repository is archived or no longer maintained.",
		Remediation: "Write a README that says what the code is for, how to run it, and under which licence it is published; say so in it when the repository is archived.",
		Standards:   []check.Ref{refOSPRead, refGDSGH}},
	{ID: IDSecurityPolicy, Severity: check.High, Rule: "security-policy-present",
		Title:       "Security policy (SECURITY.md)",
		Description: "SECURITY.md in the repository (root, .github/ or docs/, the order GitHub looks in), or inherited from the organisation's .github repository, naming a way to report a vulnerability: an email address, a web address, or the NCSC's reporting service.",
		Remediation: "Add a SECURITY.md (in the organisation's .github repository to cover every repository) that says how to report a vulnerability, e.g. cybersecurity@nhs.net.",
		Standards:   []check.Ref{refSEQFSec, refTPL, refGHComm}},
	{ID: IDPVR, Severity: check.Medium, Rule: "private-vulnerability-reporting-enabled",
		Title:       "Private vulnerability reporting",
		Description: "GET /repos/{owner}/{repo}/private-vulnerability-reporting says enabled. Only an administrator can read it: without one, unknown (needs a token with admin scope).",
		Remediation: "Enable private vulnerability reporting in the repository's security settings (or for every repository from the organisation's settings).",
		Standards:   []check.Ref{refSEQFSec}},
	{ID: IDCodeowners, Severity: check.Medium, Rule: "codeowners-valid",
		Title:       "CODEOWNERS",
		Description: "A CODEOWNERS file where GitHub looks for one (.github/, the root, docs/; the first found is used), which GitHub reports no errors in (GET /repos/{owner}/{repo}/codeowners/errors: unknown owners, such as secret teams, and syntax errors).",
		Remediation: "Add .github/CODEOWNERS naming visible teams with write access; fix the lines GitHub flags on the file's page.",
		Standards:   []check.Ref{refSEQFVis, refSEQFSec, refGHCodeow}},
	{ID: IDContributing, Severity: check.Low, Rule: "contributing-present",
		Title:       "CONTRIBUTING.md",
		Description: "CONTRIBUTING (.md, .rst, .txt) in the root, .github/ or docs/, or inherited from the organisation's .github repository.",
		Remediation: "Add a CONTRIBUTING.md saying how to propose a change.",
		Standards:   []check.Ref{refSEQFVis, refOSPContr, refGHComm}},
	{ID: IDSecretScanning, Severity: check.High, Rule: "secret-scanning-enabled",
		Title:       "Secret scanning and push protection",
		Description: "The repository's security_and_analysis: secret_scanning and secret_scanning_push_protection both enabled. GitHub shows them to administrators only: without one, unknown (needs a token with admin scope).",
		Remediation: "Enable secret scanning and push protection in the repository's (or organisation's) code security settings.",
		Standards:   []check.Ref{refSEQFQC}},
	{ID: IDGitleaksConfig, Severity: check.Medium, Rule: "gitleaks-configured",
		Title:       "gitleaks in the repository",
		Description: "All three: a gitleaks configuration (.gitleaks.toml or the repository template's scripts/config/gitleaks.toml), a pre-commit configuration (.pre-commit-config.yaml or scripts/config/pre-commit.yaml) with a gitleaks or scan-secrets hook, and a workflow that runs gitleaks (the gitleaks action, a gitleaks command, or the template's scan-secrets action).",
		Remediation: "Adopt the repository template's secret scanning: scripts/config/gitleaks.toml, the scan-secrets pre-commit hook and the scan-secrets job in the commit stage workflow.",
		Standards:   []check.Ref{refSEQFGL, refTPL}},
	{ID: IDDependabot, Severity: check.Medium, Rule: "dependabot-configured",
		Title:       "Dependabot",
		Description: "Dependabot alerts enabled (GET /repos/{owner}/{repo}/vulnerability-alerts answers 204; administrators only) and .github/dependabot.y[a]ml with an update entry for every ecosystem whose manifests the repository holds, github-actions included when it has workflows. A missing or incomplete configuration fails whoever reads it; alerts the token cannot see are unknown.",
		Remediation: "Enable Dependabot alerts, and add .github/dependabot.yaml with a package-ecosystem entry for each ecosystem (github-actions, npm, pip, docker, terraform, …).",
		Standards:   []check.Ref{refSEQFSec, refTPL, refSEQFAct}},
	{ID: IDVulnAlerts, Severity: check.High, Rule: "no-old-critical-alerts",
		Title:       "Open critical and high alerts",
		Description: "Open Dependabot and code scanning alerts of critical or high severity: none older than the policy's alert_sla_days (default 30) passes; younger ones are noted. Administrators (security managers) only: without one, unknown.",
		Remediation: "Fix or dismiss, with a reason, every open critical and high alert within the agreed time.",
		Standards:   []check.Ref{refSEQFQC, refCAFB4d}},
	{ID: IDBranchProtect, Severity: check.High, Rule: "default-branch-protected",
		Title:       "Default branch protection",
		Description: "The default branch, by classic protection (administrators only) or rulesets (GET /repos/{owner}/{repo}/rules/branches/{branch}, readable by anyone), requires a pull request with at least one approval and code-owner review, dismisses stale approvals, requires status checks on an up-to-date branch and signed commits, blocks force pushes and deletion, and binds administrators (rulesets are taken to: who may bypass one is visible to administrators only). What rulesets alone do not show is unknown without admin scope.",
		Remediation: "Protect the default branch with a ruleset (or classic protection) that includes administrators and sets each of these rules.",
		Standards:   []check.Ref{refSEQFSec}},
	{ID: IDSignedCommits, Severity: check.Medium, Rule: "commits-signed",
		Title:       "Signed commits",
		Description: "The last 100 commits of the default branch all carry a signature GitHub verified (commit.verification.verified). GitHub does not say when signing became required, so every listed commit counts.",
		Remediation: "Require signed commits on the default branch, and ask contributors to sign with SSH or GPG keys registered on GitHub.",
		Standards:   []check.Ref{refSEQFSec, refTPL}},
	{ID: IDActionsPinning, Severity: check.Medium, Rule: "actions-pinned",
		Title:       "Actions pinned to a commit",
		Description: "Every uses: in .github/workflows/*.y[a]ml and a root action.y[a]ml names a full 40-hex commit SHA; local actions (./) and docker images by digest are exempt. GitHub-authored actions count too (SEQF).",
		Remediation: "Pin each action to the full commit SHA of a release, with the version in a comment (uses: actions/checkout@<sha> # v4.2.2), and let Dependabot update the pins.",
		Standards:   []check.Ref{refSEQFAct, refGDSAct}},
	{ID: IDActionsPerms, Severity: check.Medium, Rule: "workflow-permissions-declared",
		Title:       "Workflow permissions",
		Description: "Every workflow declares permissions: at the top level, and neither it nor a job uses write-all.",
		Remediation: "Add a top-level permissions: block to each workflow granting only what it needs (contents: read), and widen it per job where required.",
		Standards:   []check.Ref{refSEQFAct, refGDSAct}},
	{ID: IDActionsTriggers, Severity: check.High, Rule: "no-risky-triggers",
		Title:       "Risky workflow triggers",
		Description: "No workflow triggered by pull_request_target or workflow_run checks out or runs the pull request's code (a checkout whose ref is github.event.pull_request.head.*, github.event.workflow_run.head_*, github.head_ref or refs/pull/*): such a workflow runs untrusted code with the repository's secrets and a write token.",
		Remediation: "Build pull requests with the pull_request trigger; keep pull_request_target and workflow_run for jobs that never run the pull request's code.",
		Standards:   []check.Ref{refGDSAct}},
	{ID: IDStale, Severity: check.Low, Rule: "repository-maintained",
		Title:       "Stale repository",
		Description: "The last push is within the policy's stale_days (default 365), or the repository is archived. An unarchived repository with no push for longer warns.",
		Remediation: "Archive a repository that is no longer maintained, and say so in its README.",
		Standards:   []check.Ref{refGDSGH, refOSPKeys}},
}

var orgRules = []check.Meta{
	{ID: IDOrg2FA, Severity: check.High, Rule: "two-factor-required",
		Title:       "Two-factor authentication required",
		Description: "The organisation's two_factor_requirement_enabled is true. GitHub shows it to owners only: without an owner's token, unknown (needs a token with admin scope).",
		Remediation: "Require two-factor authentication for everyone in the organisation (Settings → Authentication security).",
		Standards:   []check.Ref{refSEQFSec, refGDSGH, refCAFB2a}},
	{ID: IDOrgBasePerms, Severity: check.Medium, Rule: "base-permissions-restricted",
		Title:       "Organisation base permissions",
		Description: "default_repository_permission is none and members_can_fork_private_repositories is false (owners only: otherwise unknown). Who may change a repository's visibility is not exposed by the REST API, so it is not judged.",
		Remediation: "Set the base permission to No permission and disable forking of private repositories; reserve visibility changes to owners.",
		Standards:   []check.Ref{refSEQFSec, refSEQFVis}},
	{ID: IDOrgOpen, Severity: check.Info, Rule: "open-by-default",
		Title:       "Open by default",
		Description: "Recorded, never judged: the organisation's public repositories, and its private ones when an owner's token can see them.",
		Standards: []check.Ref{refSEQFSec, refSvcStd12,
			{Standard: "NHS (nhsx) Open Source Policy", Section: "§3 cooling off period no greater than six months", URL: "https://github.com/nhsx/open-source-policy"}}},
}
