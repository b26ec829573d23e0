package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/nhsx/posture/checks/check"
)

// RepoCollector is the collector id of the repository checks: one job per
// repository reads its settings and files through the GitHub API, and
// Evaluate judges every repo.* id but repo.secrets.history from that.
const RepoCollector = "repo.github"

// Evidence is what the GitHub API said of one repository, raw: the
// repository's JSON, the default branch's file list (git trees API,
// recursive: one request), the files read (contents API), the
// organisation's .github repository where a community health file was
// missing, and the answers of the settings endpoints, each with its status.
type Evidence struct {
	Owner string `json:"owner"`
	Name  string `json:"name"`
	// Repo is GET /repos/{owner}/{repo}.
	Repo *Call `json:"repo"`
	// Tree is the default branch's files (blobs), from GET
	// /repos/{owner}/{repo}/git/trees/{branch}?recursive=1.
	Tree Tree `json:"tree"`
	// Files are the files read, by path.
	Files map[string]File `json:"files,omitempty"`
	// OrgDotGitHub is the organisation's .github repository, read when the
	// repository lacks a community health file it could inherit.
	OrgDotGitHub *Inherited `json:"org_dotgithub,omitempty"`
	// Calls are the settings endpoints' answers by name: pvr,
	// vulnerability-alerts, codeowners-errors, dependabot-alerts,
	// code-scanning-alerts, protection, rules, commits. An endpoint only
	// an administrator may read is not asked without admin permission.
	Calls map[string]*Call `json:"calls,omitempty"`
}

// Tree is a branch's file list.
type Tree struct {
	Status    int      `json:"status,omitempty"`
	Error     string   `json:"error,omitempty"`
	Class     string   `json:"class,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
	Paths     []string `json:"paths,omitempty"`
}

// Inherited is what the organisation's .github repository offers.
type Inherited struct {
	Status int             `json:"status,omitempty"` // of GET /repos/{org}/.github (404: none)
	Error  string          `json:"error,omitempty"`
	Tree   Tree            `json:"tree"`
	Files  map[string]File `json:"files,omitempty"`
}

// repoInfo is what Collect and Evaluate read of the repository JSON.
type repoInfo struct {
	DefaultBranch string     `json:"default_branch"`
	Archived      bool       `json:"archived"`
	Disabled      bool       `json:"disabled"`
	Private       bool       `json:"private"`
	PushedAt      *time.Time `json:"pushed_at"`
	License       *struct {
		SPDXID string `json:"spdx_id"`
		Key    string `json:"key"`
	} `json:"license"`
	Permissions *struct {
		Admin bool `json:"admin"`
	} `json:"permissions"`
	SecurityAndAnalysis map[string]struct {
		Status string `json:"status"`
	} `json:"security_and_analysis"`
}

func (e *Evidence) info() repoInfo {
	var ri repoInfo
	if e.Repo != nil && len(e.Repo.Body) > 0 {
		json.Unmarshal(e.Repo.Body, &ri)
	}
	if ri.DefaultBranch == "" {
		ri.DefaultBranch = "main"
	}
	return ri
}

func (ri repoInfo) admin() bool { return ri.Permissions != nil && ri.Permissions.Admin }

// Check is the repository collector.
func Check() check.Check {
	return check.New(check.Spec[Evidence]{
		ID: RepoCollector, Family: "repo", Targets: []check.Kind{check.KindRepo},
		Rules: repoRules, Collect: collectRepo, Evaluate: evaluateRepo, Version: 1, Policy: Settings,
		// A rate limit may be waited out (ghhttp.DefaultMaxWait).
		Timeout: 7 * time.Minute,
	})
}

func splitRepo(name string) (owner, repo string, ok bool) {
	owner, repo, ok = strings.Cut(name, "/")
	return owner, repo, ok && owner != "" && repo != "" && !strings.Contains(repo, "/")
}

// community health files (GitHub: root, .github/, docs/ of the repository,
// else the organisation's .github repository).
var (
	reReadme       = regexp.MustCompile(`(?i)^readme(\.[a-z0-9]+)?$`)
	reLicence      = regexp.MustCompile(`(?i)^(licen[cs]e|copying)([.-][a-z0-9.-]+)?$`)
	reSecurity     = regexp.MustCompile(`(?i)^security(\.(md|markdown|txt|rst))?$`)
	reContributing = regexp.MustCompile(`(?i)^contributing(\.(md|markdown|txt|rst))?$`)
	reCodeowners   = regexp.MustCompile(`^CODEOWNERS$`)
	reWorkflow     = regexp.MustCompile(`^\.github/workflows/[^/]+\.ya?ml$`)
	reAction       = regexp.MustCompile(`^action\.ya?ml$`)
)

var (
	healthDirs    = []string{"", ".github", "docs"}
	codeownerDirs = []string{".github", "", "docs"}
)

// findIn returns the first path matching re in dirs, in order ("" is the
// root).
func findIn(paths []string, dirs []string, re *regexp.Regexp) string {
	for _, d := range dirs {
		var hits []string
		for _, p := range paths {
			if path.Dir(p) == d || (d == "" && path.Dir(p) == ".") {
				if re.MatchString(path.Base(p)) {
					hits = append(hits, p)
				}
			}
		}
		if len(hits) > 0 {
			sort.Strings(hits)
			return hits[0]
		}
	}
	return ""
}

func hasPath(paths []string, ps ...string) string {
	for _, want := range ps {
		for _, p := range paths {
			if p == want {
				return p
			}
		}
	}
	return ""
}

var (
	gitleaksConfigs  = []string{".gitleaks.toml", "scripts/config/gitleaks.toml"}
	precommitConfigs = []string{".pre-commit-config.yaml", ".pre-commit-config.yml", "scripts/config/pre-commit.yaml"}
	dependabotFiles  = []string{".github/dependabot.yml", ".github/dependabot.yaml"}
)

func readTree(ctx context.Context, c *github.Client, owner, name, branch string) Tree {
	call := ghCall(ctx, c, "repos/"+ghPath(owner)+"/"+ghPath(name)+"/git/trees/"+ghFilePath(branch)+"?recursive=1")
	t := Tree{Status: call.Status, Error: call.Error, Class: call.Class}
	if !call.OK() {
		return t
	}
	var body struct {
		Tree []struct {
			Path string `json:"path"`
			Type string `json:"type"`
		} `json:"tree"`
		Truncated bool `json:"truncated"`
	}
	if call.Truncated || json.Unmarshal(call.Body, &body) != nil {
		t.Error, t.Class, t.Status = "the tree is too large or does not decode", string(check.ErrTooLarge), 0
		return t
	}
	t.Truncated = body.Truncated
	for _, e := range body.Tree {
		if e.Type != "blob" {
			continue
		}
		if len(t.Paths) >= ghMaxPaths {
			t.Truncated = true
			break
		}
		t.Paths = append(t.Paths, e.Path)
	}
	sort.Strings(t.Paths)
	return t
}

func collectRepo(ctx context.Context, env *check.Env, a check.Asset) (Evidence, error) {
	owner, name, ok := splitRepo(a.Name)
	if !ok {
		return Evidence{}, check.WithClass(check.ErrMalformed, fmt.Errorf("repository %q: want owner/name", a.Name))
	}
	c, err := ghClient(env)
	if err != nil {
		return Evidence{}, err
	}
	base := "repos/" + ghPath(owner) + "/" + ghPath(name)
	ev := Evidence{Owner: owner, Name: name, Files: map[string]File{}, Calls: map[string]*Call{}}
	ev.Repo = ghCall(ctx, c, base)
	if !ev.Repo.OK() {
		return ev, ev.Repo.failed("GET " + base)
	}
	ri := ev.info()
	ev.Tree = readTree(ctx, c, owner, name, ri.DefaultBranch)
	read := func(p string) {
		if p != "" && ctx.Err() == nil {
			ev.Files[p] = ghReadFile(ctx, c, owner, name, ri.DefaultBranch, p)
		}
	}
	paths := ev.Tree.Paths
	if ev.Tree.Status == 200 {
		read(findIn(paths, []string{""}, reReadme))
		read(findIn(paths, healthDirs, reSecurity))
		if !ri.Archived {
			read(hasPath(paths, dependabotFiles...))
			read(hasPath(paths, precommitConfigs...))
			n := 0
			for _, p := range paths {
				if (reWorkflow.MatchString(p) || reAction.MatchString(p)) && n < ghMaxWorkflows {
					read(p)
					n++
				}
			}
		}
		missingHealth := findIn(paths, healthDirs, reSecurity) == "" || findIn(paths, healthDirs, reContributing) == ""
		if missingHealth && !strings.EqualFold(name, ".github") {
			ev.OrgDotGitHub = inherited(ctx, c, owner)
		}
	}
	if ri.Archived {
		return ev, nil
	}
	get := func(key, p string) {
		if ctx.Err() == nil {
			ev.Calls[key] = ghCall(ctx, c, base+p)
		}
	}
	branch := ghFilePath(ri.DefaultBranch)
	if findIn(paths, codeownerDirs, reCodeowners) != "" {
		get("codeowners-errors", "/codeowners/errors")
	}
	get("branch", "/branches/"+branch)
	get("rules", "/rules/branches/"+branch)
	get("commits", "/commits?per_page=100&sha="+url.QueryEscape(ri.DefaultBranch))
	if ri.admin() {
		get("pvr", "/private-vulnerability-reporting")
		// The alert list answers 200 only when alerts are enabled (and
		// carries an ETag); the 204/404 of vulnerability-alerts does not,
		// so it is asked only when the list is refused.
		get("dependabot-alerts", "/dependabot/alerts?state=open&per_page=100")
		if !ev.Calls["dependabot-alerts"].OK() {
			get("vulnerability-alerts", "/vulnerability-alerts")
		}
		get("code-scanning-alerts", "/code-scanning/alerts?state=open&per_page=100")
		// An unprotected branch says so publicly (protected: false): no
		// 404 to spend rate limit on every night.
		if protected, ok := branchProtected(ev.Calls["branch"]); !ok || protected {
			get("protection", "/branches/"+branch+"/protection")
		}
	}
	if err := ctx.Err(); err != nil {
		return ev, fmt.Errorf("repository %s: %w", a.Name, err)
	}
	return ev, nil
}

// branchProtected reads GET /repos/{owner}/{repo}/branches/{branch}'s
// protected flag.
func branchProtected(c *Call) (protected, ok bool) {
	if !c.OK() {
		return false, false
	}
	var b struct {
		Protected *bool `json:"protected"`
	}
	if json.Unmarshal(c.Body, &b) != nil || b.Protected == nil {
		return false, false
	}
	return *b.Protected, true
}

// inherited reads the organisation's .github repository: its file list and
// its SECURITY.md (the transport's memo makes this one fetch per run, not
// one per repository).
func inherited(ctx context.Context, c *github.Client, owner string) *Inherited {
	base := "repos/" + ghPath(owner) + "/.github"
	call := ghCall(ctx, c, base)
	in := &Inherited{Status: call.Status, Error: call.Error, Files: map[string]File{}}
	if !call.OK() {
		return in
	}
	var ri repoInfo
	json.Unmarshal(call.Body, &ri)
	if ri.DefaultBranch == "" {
		ri.DefaultBranch = "main"
	}
	in.Tree = readTree(ctx, c, owner, ".github", ri.DefaultBranch)
	if p := findIn(in.Tree.Paths, healthDirs, reSecurity); p != "" {
		in.Files[p] = ghReadFile(ctx, c, owner, ".github", ri.DefaultBranch, p)
	}
	return in
}
