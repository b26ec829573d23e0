package lab

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// The repository family: what the lab's GitHub repositories hold (their
// files, as the git trees and contents APIs serve them and as H7's git
// server serves them for cloning), how they are set up (settings, branch
// protection, alerts), and the ground truth of the repo.* and org.* checks
// on every lab repository and organisation.
//
// Truth is stated from the specs here, not by running the checks: a
// RepoSpec says "no SECURITY.md", and the truth says repo.security-policy
// fails (or passes, when the organisation's .github repository supplies
// one).

var repoFamily = Family{Name: "repo", Cases: repoCases}

// orgFamily registers the org.* ids with the truth tests (they compare
// every id whose prefix is a family name). Its truth is stated with the
// repositories' (ghTruth), so it has no cases of its own.
var orgFamily = Family{Name: "org", Cases: func() []Case { return nil }}

// GitHubToken is the token the lab's GitHub knows: requests that carry it
// are answered as GitHub answers an owner of the lab organisations (admin
// settings visible), except organisations a case hides (OrgHidden).
// Requests without it are anonymous: public data only.
const GitHubToken = "lab-github-token"

// RepoSpec is how a lab repository departs from a well-kept one. Its zero
// value passes every repo.* check.
type RepoSpec struct {
	NoReadme, ShortReadme bool
	NoSecurity            bool   // no SECURITY.md in the repository
	SecurityNoRoute       bool   // SECURITY.md that names no way to report
	SecurityAt            string // directory of SECURITY.md: "" (.github), "root", "docs"
	NoPVR                 bool   // private vulnerability reporting off
	NoCodeowners          bool
	CodeownersErrors      bool // CODEOWNERS naming a team GitHub cannot resolve
	NoContributing        bool
	NoSecretScanning      bool // push protection off
	NoGitleaks            bool // no gitleaks config, pre-commit hook or CI scan
	NoDependabotConfig    bool
	DependabotNoActions   bool // dependabot.yml without the github-actions ecosystem
	NoDependabotAlerts    bool
	OpenCritical          bool // an open critical Dependabot alert, 60 days old
	NoProtection          bool // default branch unprotected
	WeakProtection        bool // protected, without code-owner review or admin enforcement
	RulesetProtection     bool // protected by a ruleset (readable without admin), not classic protection
	UnsignedCommits       bool
	UnpinnedAction        bool // uses: actions/checkout@v4
	NoPermissions         bool // a workflow without top-level permissions:
	WriteAll              bool // permissions: write-all
	RiskyTrigger          bool // pull_request_target that checks out the PR head
	SafePRTarget          bool // pull_request_target that only labels (passes)
	NoAdmin               bool // the lab token is not an admin of this repository
	PagesCNAME            string
	// SecondaryLimit: the first GET of the repository is answered 403
	// with Retry-After: 1 (a secondary rate limit); PrimaryLimit: the first
	// GET of its tree is answered 403 with X-RateLimit-Remaining: 0 and a
	// reset a second ahead. The scanner must wait and carry on.
	SecondaryLimit, PrimaryLimit bool
	// OrgHidden: the token is not an owner of the organisation that
	// publishes this repository (its admin settings are unknown);
	// OrgWeak: the organisation does not require 2FA and gives members
	// write access by default.
	OrgHidden, OrgWeak bool
}

func repoLabel(zone string) string {
	return strings.TrimSuffix(strings.TrimPrefix(zone, "lab-"), ".nhs.uk")
}

func repoCases() []Case {
	one := func(name string, r func(label string) []Repo) Case {
		return Case{Name: name, Build: func(d string) Domain { return Domain{Name: d, Repos: r(repoLabel(d))} }}
	}
	return []Case{
		one("repo-kept", func(l string) []Repo {
			return []Repo{{Name: l + "-service", Description: "A well-kept service", Language: "Go", License: "Apache-2.0"}}
		}),
		one("repo-neglected", func(l string) []Repo {
			return []Repo{{Name: l + "-tool", Description: "An old tool", Language: "Python", PushedAgo: 500 * 24 * time.Hour,
				Spec: RepoSpec{ShortReadme: true, NoSecurity: true, NoPVR: true, NoCodeowners: true, NoContributing: true,
					NoSecretScanning: true, NoGitleaks: true, NoDependabotConfig: true, NoDependabotAlerts: true,
					NoProtection: true, UnsignedCommits: true, UnpinnedAction: true, NoPermissions: true}}}
		}),
		one("repo-partial", func(l string) []Repo {
			return []Repo{{Name: l + "-app", Description: "An app half set up", Language: "JavaScript", License: "NOASSERTION",
				Spec: RepoSpec{SecurityNoRoute: true, SecurityAt: "root", CodeownersErrors: true, DependabotNoActions: true, OpenCritical: true,
					WeakProtection: true, WriteAll: true, RiskyTrigger: true}}}
		}),
		one("repo-ruleset", func(l string) []Repo {
			return []Repo{{Name: l + "-api", Description: "Protected by a ruleset", Language: "Go", License: "MIT",
				Spec: RepoSpec{RulesetProtection: true, NoAdmin: true, SafePRTarget: true, SecurityAt: "docs"}}}
		}),
		one("repo-inherited", func(l string) []Repo {
			return []Repo{
				{Name: ".github", Description: "Community health files", License: "MIT", Spec: RepoSpec{SecurityAt: "root"}},
				{Name: l + "-portal", Description: "Relies on the organisation's SECURITY.md", Language: "TypeScript", License: "MIT",
					Spec: RepoSpec{NoSecurity: true}}}
		}),
		one("repo-rate-limited", func(l string) []Repo {
			return []Repo{{Name: l + "-busy", Description: "Behind GitHub's rate limits", Language: "Go", License: "MIT",
				Spec: RepoSpec{SecondaryLimit: true, PrimaryLimit: true}}}
		}),
		one("repo-org-hidden", func(l string) []Repo {
			return []Repo{{Name: l + "-data", Description: "In an organisation the token does not own", Language: "Python", License: "MIT",
				Spec: RepoSpec{OrgHidden: true}}}
		}),
		one("repo-org-weak", func(l string) []Repo {
			return []Repo{{Name: l + "-site", Description: "In an organisation with weak settings", Language: "HTML", License: "MIT",
				HasPages: true, Spec: RepoSpec{OrgWeak: true, PagesCNAME: "docs." + "lab-" + l + ".nhs.uk"}}}
		}),
		one("repo-many", func(l string) []Repo {
			// More than a page of 100: discovery must follow the Link header.
			var out []Repo
			for i := range 101 {
				out = append(out, Repo{Name: fmt.Sprintf("%s-archive-%03d", l, i+1), Description: "Archived project",
					Language: "Python", License: "MIT", Archived: true, PushedAgo: 3 * 365 * 24 * time.Hour})
			}
			return out
		}),
	}
}

// RepoTree is one lab repository's content as git holds it: the files of
// its default branch.
type RepoTree struct {
	Owner, Name   string // the organisation's login and the repository's name
	DefaultBranch string
	Files         map[string][]byte
}

// RepoTrees returns every lab repository's files (the git server serves
// them for cloning; the API's trees and contents serve the same).
func (l *Lab) RepoTrees() []RepoTree {
	var out []RepoTree
	for i := range l.orgs {
		o := &l.orgs[i]
		if o.GitHub == "" {
			continue
		}
		for _, rp := range o.Repos {
			out = append(out, RepoTree{Owner: o.GitHub, Name: rp.Name, DefaultBranch: repoBranch(rp), Files: repoFiles(o, rp)})
		}
	}
	return out
}

func repoBranch(rp Repo) string {
	if rp.DefaultBranch == "" {
		return "main"
	}
	return rp.DefaultBranch
}

// Pinned action versions, as the NHS repository template pins them.
const (
	pinCheckout = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"
	pinGitleaks = "gitleaks/gitleaks-action@ff98106e4c7b2bc287b24eaf42907196329070c7 # v2.3.9"
	pinLabeler  = "actions/labeler@8558fd74291d67161a8a78ce36a881fa63b766a9 # v5.0.0"
)

var mitText = `MIT License

Copyright (c) 2021 %s

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.
`

// repoEcosystem is the Dependabot ecosystem of a language's manifest.
func repoManifest(lang string) (path, body, ecosystem string) {
	switch lang {
	case "Go":
		return "go.mod", "module example.org/lab\n\ngo 1.22\n", "gomod"
	case "Python":
		return "requirements.txt", "requests==2.32.3\n", "pip"
	case "JavaScript", "TypeScript", "HTML":
		return "package.json", "{\n  \"name\": \"lab\",\n  \"private\": true\n}\n", "npm"
	case "HCL":
		return "main.tf", "terraform {\n  required_version = \">= 1.5\"\n}\n", "terraform"
	}
	return "", "", ""
}

// repoFiles is the default branch's content of a lab repository.
func repoFiles(o *labOrg, rp Repo) map[string][]byte {
	s := rp.Spec
	f := map[string]string{}
	licence := "the MIT licence"
	if rp.License != "" && rp.License != "MIT" {
		licence = "the " + rp.License + " licence"
	}
	switch {
	case s.NoReadme:
	case s.ShortReadme:
		f["README.md"] = "# " + rp.Name + "\n\nTODO\n"
	default:
		readme := "# " + rp.Name + "\n\n" + rp.Description + ".\n\n" +
			"This repository is published by " + o.Name + " as part of the NHS's commitment to coding in the open. " +
			"It holds the source code, the tests and the documentation a team needs to build, run and change the service. " +
			"Questions and contributions are welcome: see CONTRIBUTING.md.\n\n"
		if rp.Archived {
			readme += "## Status\n\nThis repository is archived and no longer maintained.\n\n"
		}
		readme += "## Licence\n\nUnless stated otherwise, the codebase is released under " + licence + ".\n"
		f["README.md"] = readme
	}
	switch rp.License {
	case "":
	case "MIT":
		f["LICENCE.md"] = fmt.Sprintf(mitText, o.Name)
	case "NOASSERTION":
		f["LICENCE"] = "All rights reserved, except as agreed in writing with " + o.Name + ".\n"
	default:
		f["LICENCE"] = licenseNames[rp.License] + "\n\nThe full text of the " + rp.License + " licence applies to this repository.\n"
	}
	if !s.NoSecurity {
		dir := ".github/"
		switch s.SecurityAt {
		case "root":
			dir = ""
		case "docs":
			dir = "docs/"
		}
		body := "# Security\n\nWe take security seriously.\n"
		if !s.SecurityNoRoute {
			body = "# Security\n\nIf you believe you have found a vulnerability, email cybersecurity@nhs.net " +
				"or use the NCSC's vulnerability reporting service, https://www.ncsc.gov.uk/information/vulnerability-reporting.\n"
		}
		f[dir+"SECURITY.md"] = body
	}
	if !s.NoContributing {
		f["CONTRIBUTING.md"] = "# Contributing\n\nOpen a pull request; a code owner reviews it.\n"
	}
	if !s.NoCodeowners {
		team := "@" + o.GitHub + "/maintainers"
		if s.CodeownersErrors {
			team = "@" + o.GitHub + "/secret-reviewers"
		}
		f[".github/CODEOWNERS"] = "# Every change needs a maintainer's review\n* " + team + "\n"
	}
	if rp.Archived {
		return bytesMap(f)
	}
	manifest, mbody, eco := repoManifest(rp.Language)
	if manifest != "" {
		f[manifest] = mbody
	}
	if !s.NoGitleaks {
		f[".gitleaks.toml"] = "[extend]\nuseDefault = true\n\n[allowlist]\npaths = ['''testdata/''']\n"
		f[".pre-commit-config.yaml"] = "repos:\n  - repo: https://github.com/gitleaks/gitleaks\n    rev: v8.30.1\n    hooks:\n      - id: gitleaks\n"
	}
	if !s.NoDependabotConfig {
		dep := "version: 2\nupdates:\n"
		if !s.DependabotNoActions {
			dep += "  - package-ecosystem: \"github-actions\"\n    directory: \"/\"\n    schedule:\n      interval: \"daily\"\n"
		}
		if eco != "" {
			dep += "  - package-ecosystem: \"" + eco + "\"\n    directory: \"/\"\n    schedule:\n      interval: \"daily\"\n"
		}
		f[".github/dependabot.yaml"] = dep
	}
	checkout := pinCheckout
	if s.UnpinnedAction {
		checkout = "actions/checkout@v4"
	}
	perms := "permissions:\n  contents: read\n\n"
	switch {
	case s.NoPermissions:
		perms = ""
	case s.WriteAll:
		perms = "permissions: write-all\n\n"
	}
	ci := "name: CI\n\non:\n  push:\n    branches: [" + repoBranch(rp) + "]\n  pull_request:\n\n" + perms +
		"jobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: " + checkout + "\n        with:\n          fetch-depth: 0\n"
	if !s.NoGitleaks {
		ci += "      - name: Scan for secrets\n        uses: " + pinGitleaks + "\n        env:\n          GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}\n"
	}
	ci += "      - run: make test\n"
	f[".github/workflows/ci.yaml"] = ci
	if s.RiskyTrigger {
		f[".github/workflows/preview.yml"] = "name: Preview\n\"on\":\n  pull_request_target:\n    types: [opened, synchronize]\n" +
			"permissions:\n  contents: read\n  pull-requests: write\n\njobs:\n  preview:\n    runs-on: ubuntu-latest\n    steps:\n" +
			"      - uses: " + pinCheckout + "\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n" +
			"      - run: npm ci && npm run build\n"
	}
	if s.SafePRTarget {
		f[".github/workflows/label.yml"] = "name: Label\non: pull_request_target\npermissions:\n  contents: read\n  pull-requests: write\n" +
			"jobs:\n  label:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: " + pinLabeler + "\n"
	}
	if s.PagesCNAME != "" {
		f["CNAME"] = s.PagesCNAME + "\n"
	}
	return bytesMap(f)
}

func bytesMap(f map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(f))
	for k, v := range f {
		out[k] = []byte(v)
	}
	return out
}

// gitBlobSHA is the git object id of a blob with content b.
func gitBlobSHA(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sortedPaths(files map[string][]byte) []string {
	out := make([]string, 0, len(files))
	for p := range files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// orgMode is what the lab token sees of an organisation.
type orgMode int

const (
	orgOwned  orgMode = iota // owner: every setting visible, all good
	orgWeak                  // owner: 2FA not required, members get write
	orgHidden                // not an owner: admin settings unknown
)

func (o *labOrg) mode() orgMode {
	m := orgOwned
	for _, rp := range o.Repos {
		if rp.Spec.OrgHidden {
			return orgHidden
		}
		if rp.Spec.OrgWeak {
			m = orgWeak
		}
	}
	return m
}

// repoAdmin: the token administers the repository.
func (o *labOrg) repoAdmin(rp Repo) bool { return o.mode() != orgHidden && !rp.Spec.NoAdmin }

// orgSecurity reports whether the organisation's .github repository has a
// SECURITY.md at one of the places GitHub looks, and whether it names a
// route.
func (o *labOrg) orgSecurity() (found, route bool) {
	for _, rp := range o.Repos {
		if rp.Name == ".github" && !rp.Spec.NoSecurity {
			return true, !rp.Spec.SecurityNoRoute
		}
	}
	return false, false
}

// orgContributing reports whether the organisation's .github repository
// has a CONTRIBUTING file to inherit.
func (o *labOrg) orgContributing() bool {
	for _, rp := range o.Repos {
		if rp.Name == ".github" && !rp.Spec.NoContributing {
			return true
		}
	}
	return false
}

// ghTruth is the ground truth of the repo.* and org.* checks on every lab
// repository and organisation (repo.secrets.history is the secrets
// family's).
func (l *Lab) ghTruth() []Expect {
	// As every family, only when the lab has its cases (a test lab of
	// other families' cases asks nothing of the repository checks).
	if !slices.ContainsFunc(l.cases, func(c Case) bool { return c.Family == repoFamily.Name }) {
		return nil
	}
	var out []Expect
	for i := range l.orgs {
		o := &l.orgs[i]
		if o.GitHub == "" {
			continue
		}
		out = append(out, orgTruth(o)...)
		for _, rp := range o.Repos {
			out = append(out, l.repoTruth(o, rp)...)
		}
	}
	return out
}

func orgTruth(o *labOrg) []Expect {
	e := func(id string, oc check.Outcome) Expect {
		return Expect{Kind: check.KindOrg, Name: o.GitHub, CheckID: id, Outcome: oc}
	}
	switch o.mode() {
	case orgHidden:
		return []Expect{e("org.2fa", check.Unknown), e("org.base-permissions", check.Unknown), e("org.open-by-default", check.Pass)}
	case orgWeak:
		return []Expect{e("org.2fa", check.Fail), e("org.base-permissions", check.Fail), e("org.open-by-default", check.Pass)}
	}
	return []Expect{e("org.2fa", check.Pass), e("org.base-permissions", check.Pass), e("org.open-by-default", check.Pass)}
}

// RepoIDs are the repo.* ids this family states (repo.secrets.history is
// the secrets family's).
var RepoIDs = []string{"repo.licence", "repo.readme", "repo.security-policy", "repo.pvr", "repo.codeowners",
	"repo.contributing", "repo.secret-scanning", "repo.gitleaks-config", "repo.dependabot", "repo.vuln-alerts.open",
	"repo.branch-protection", "repo.signed-commits", "repo.actions.pinning", "repo.actions.permissions",
	"repo.actions.triggers", "repo.stale"}

func (l *Lab) repoTruth(o *labOrg, rp Repo) []Expect {
	s := rp.Spec
	admin := o.repoAdmin(rp)
	t := map[string]check.Outcome{}
	pf := func(bad bool) check.Outcome {
		if bad {
			return check.Fail
		}
		return check.Pass
	}
	switch rp.License {
	case "", "NOASSERTION":
		t["repo.licence"] = check.Fail
	case "OGL-UK-3.0":
		t["repo.licence"] = check.Warn // a documentation licence, not an OSI one
	default:
		t["repo.licence"] = check.Pass
	}
	t["repo.readme"] = pf(s.NoReadme || s.ShortReadme)
	if s.NoSecurity {
		found, route := o.orgSecurity()
		t["repo.security-policy"] = pf(!found || !route)
	} else {
		t["repo.security-policy"] = pf(s.SecurityNoRoute)
	}
	ago := rp.PushedAgo
	if ago == 0 {
		ago = 24 * time.Hour
	}
	t["repo.stale"] = check.Pass
	if !rp.Archived && ago > 365*24*time.Hour {
		t["repo.stale"] = check.Warn
	}
	rest := []string{"repo.pvr", "repo.codeowners", "repo.contributing", "repo.secret-scanning", "repo.gitleaks-config",
		"repo.dependabot", "repo.vuln-alerts.open", "repo.branch-protection", "repo.signed-commits",
		"repo.actions.pinning", "repo.actions.permissions", "repo.actions.triggers"}
	switch {
	case rp.Archived:
		// Read-only: no pushes, no workflow runs, no Dependabot.
		for _, id := range rest {
			t[id] = check.NA
		}
	default:
		adminOnly := func(bad bool) check.Outcome {
			if !admin {
				return check.Unknown
			}
			return pf(bad)
		}
		t["repo.pvr"] = adminOnly(s.NoPVR)
		t["repo.codeowners"] = pf(s.NoCodeowners || s.CodeownersErrors)
		t["repo.contributing"] = pf(s.NoContributing && !o.orgContributing())
		t["repo.secret-scanning"] = adminOnly(s.NoSecretScanning)
		t["repo.gitleaks-config"] = pf(s.NoGitleaks)
		if s.NoDependabotConfig || s.DependabotNoActions {
			t["repo.dependabot"] = check.Fail // the config is public
		} else {
			t["repo.dependabot"] = adminOnly(s.NoDependabotAlerts)
		}
		t["repo.vuln-alerts.open"] = adminOnly(s.OpenCritical)
		if admin && s.NoDependabotAlerts {
			t["repo.vuln-alerts.open"] = check.Unknown // alerts disabled: none to list
		}
		if s.RulesetProtection {
			t["repo.branch-protection"] = check.Pass // rulesets are readable without admin
		} else {
			t["repo.branch-protection"] = adminOnly(s.NoProtection || s.WeakProtection)
		}
		t["repo.signed-commits"] = pf(s.UnsignedCommits)
		t["repo.actions.pinning"] = pf(s.UnpinnedAction)
		t["repo.actions.permissions"] = pf(s.NoPermissions || s.WriteAll)
		t["repo.actions.triggers"] = pf(s.RiskyTrigger)
	}
	name := o.GitHub + "/" + rp.Name
	out := make([]Expect, 0, len(t))
	for _, id := range RepoIDs {
		out = append(out, Expect{Kind: check.KindRepo, Name: name, CheckID: id, Outcome: t[id]})
	}
	if len(out) != len(t) || slices.ContainsFunc(out, func(e Expect) bool { return e.Outcome == "" }) {
		panic("lab: repo truth incomplete for " + name)
	}
	return out
}

// PagesNames are the custom domains of the lab's GitHub Pages sites (the
// CNAME files of repositories with Pages), by the organisation's GitHub
// login: what Pages discovery (scanner/ghpages) must find.
func (l *Lab) PagesNames() map[string][]string {
	out := map[string][]string{}
	for i := range l.orgs {
		o := &l.orgs[i]
		for _, rp := range o.Repos {
			if o.GitHub != "" && rp.HasPages && !rp.Archived && rp.Spec.PagesCNAME != "" {
				out[o.GitHub] = append(out[o.GitHub], rp.Spec.PagesCNAME)
			}
		}
	}
	return out
}
