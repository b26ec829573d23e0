package lab

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/repo/secretsgit"
)

// The lab's git server: every lab repository, clone-able over git's smart
// HTTP protocol (upload-pack, protocol v0, go-git's server side) at its
// API clone_url, https://<API host>/<owner>/<repo>.git as GitHub
// Enterprise serves it. Each repository's history ends in a commit whose
// tree is the files the API serves (RepoTrees); the secrets family's
// repositories have more history before that: secrets planted in earlier
// commits (some removed again), and decoys gitleaks must ignore.
//
// The secrets are made at start-up from a fixed seed in the formats
// gitleaks' default rules look for (an AWS access key id, a GitHub
// personal access token, an RSA private key); none is written in this
// source, so that no scanner of this repository mistakes the lab for a
// leak, and none is a credential anywhere.

// secretsFamily is the repo.secrets.history part of the lab: its cases
// are repositories with history, and it states the id's truth on every lab
// repository (startGit).
var secretsFamily = Family{Name: "secrets", Cases: gitCases}

// History names of the secrets family's repositories. A lab repository
// whose name ends in "-" + one of them gets that history.
const (
	gitHistAWSRemoved = "aws-rotated"   // an AWS key added, removed two commits later (fail)
	gitHistLive       = "deploy-keys"   // a GitHub token and a private key still at the tip (fail)
	gitHistDecoys     = "fixtures"      // only decoys, and a side branch with a token (pass)
	gitHistIgnored    = "rotated-token" // a token silenced by .gitleaksignore (pass)
)

func gitCases() []Case {
	one := func(name, hist, branch, desc string) Case {
		return Case{Name: name, Build: func(d string) Domain {
			return Domain{Name: d, Repos: []Repo{{Name: repoLabel(d) + "-" + hist, Description: desc,
				Language: "Python", License: "MIT", DefaultBranch: branch}}}
		}}
	}
	return []Case{
		one("secrets-removed", gitHistAWSRemoved, "trunk", "An AWS key committed and removed again"),
		one("secrets-live", gitHistLive, "", "Deployment scripts with a token and a private key"),
		one("secrets-decoys", gitHistDecoys, "", "Test fixtures and placeholders that look like secrets"),
		one("secrets-ignored", gitHistIgnored, "", "A revoked token silenced in .gitleaksignore"),
	}
}

// gitHistOf returns the history name of a lab repository ("" : none).
func gitHistOf(repo string) string {
	for _, h := range []string{gitHistAWSRemoved, gitHistLive, gitHistDecoys, gitHistIgnored} {
		if strings.HasSuffix(repo, "-"+h) {
			return h
		}
	}
	return ""
}

// gitSecrets are the lab's planted secrets, made from a fixed seed.
type gitSecrets struct {
	AWSKeyID    string // AKIA + 16 base32 characters
	GitHubToken string // ghp_ + 36 alphanumerics
	Ignored     string // another ghp_ token, the one .gitleaksignore silences
	SideBranch  string // a ghp_ token on a branch that is not the default
	Fixture     string // an AWS key id under testdata/ (allowlisted path)
	PrivateKey  string // a PEM block, RSA PRIVATE KEY
}

var (
	gitSecretsOnce sync.Once
	gitSecretsVal  gitSecrets
)

// GitSecrets returns the secrets the lab plants (tests search every output
// of a scan for them).
func GitSecrets() gitSecrets {
	gitSecretsOnce.Do(func() {
		r := rand.New(rand.NewPCG(0x9057, 0x5ec7))
		pick := func(alpha string, n int) string {
			b := make([]byte, n)
			for i := range b {
				b[i] = alpha[r.IntN(len(alpha))]
			}
			return string(b)
		}
		const b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
		const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
		s := &gitSecretsVal
		s.AWSKeyID = "AKIA" + pick(b32, 16)
		s.GitHubToken = "ghp_" + pick(alnum, 36)
		s.Ignored = "ghp_" + pick(alnum, 36)
		s.SideBranch = "ghp_" + pick(alnum, 36)
		s.Fixture = "AKIA" + pick(b32, 16)
		var pem strings.Builder
		pem.WriteString("-----BEGIN RSA PRIVATE" + " KEY-----\n")
		for range 12 {
			pem.WriteString(pick(b64, 64) + "\n")
		}
		pem.WriteString(pick(b64, 40) + "==\n-----END RSA PRIVATE" + " KEY-----\n")
		s.PrivateKey = pem.String()
	})
	return gitSecretsVal
}

// All returns every planted secret that must never appear in full in what
// the scanner stores, logs, reports or exports.
func (s gitSecrets) All() []string {
	return []string{s.AWSKeyID, s.GitHubToken, s.Ignored, s.SideBranch, s.Fixture, s.PrivateKey}
}

// gitHistory is what a secrets-family repository holds before its final
// commit (the API's files), the side branches it has, and the truth.
func gitHistory(hist string) (commits []secretsgit.Commit, side map[string][]secretsgit.Commit, truth check.Outcome) {
	s := GitSecrets()
	switch hist {
	case gitHistAWSRemoved:
		return []secretsgit.Commit{
			{Msg: "Add the upload service", Set: map[string]string{"app/upload.py": "import boto3\n\n\ndef client():\n    return boto3.client(\"s3\")\n"}},
			{Msg: "Configure S3 access", Set: map[string]string{"app/settings.py": "# S3 bucket for patient leaflets\n" +
				"BUCKET = \"leaflets\"\n" + "AWS_ACCESS_KEY_ID = \"" + s.AWSKeyID + "\"\n" + "AWS_REGION = \"eu-west-2\"\n"}},
			{Msg: "Tidy the upload service", Set: map[string]string{"app/upload.py": "import boto3\n\n\ndef client():\n    \"\"\"An S3 client.\"\"\"\n    return boto3.client(\"s3\")\n"}},
			{Msg: "Read AWS credentials from the environment", Set: map[string]string{"app/settings.py": "import os\n\n# S3 bucket for patient leaflets\n" +
				"BUCKET = \"leaflets\"\nAWS_REGION = os.environ.get(\"AWS_REGION\", \"eu-west-2\")\n"}},
		}, nil, check.Fail
	case gitHistLive:
		return []secretsgit.Commit{
			{Msg: "Add the deployment script", Set: map[string]string{"scripts/deploy.sh": "#!/bin/sh\nset -eu\n\n" +
				"# Token for the release API\nexport GITHUB_TOKEN=" + s.GitHubToken + "\n\n./scripts/release.sh \"$@\"\n"}},
			{Msg: "Add the deploy key", Set: map[string]string{"deploy/id_rsa": s.PrivateKey}},
		}, nil, check.Fail
	case gitHistDecoys:
		return []secretsgit.Commit{
				{Msg: "Add test fixtures", Set: map[string]string{
					"testdata/aws-credentials.ini": "[default]\naws_access_key_id = " + s.Fixture + "\nregion = eu-west-2\n",
				}},
				{Msg: "Document the configuration", Set: map[string]string{"docs/configuration.md": "# Configuration\n\n" +
					"Set your AWS key id, for example `AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE` (AWS's documentation key).\n\n" +
					"Set `GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx` to your own token; never commit it.\n\n" +
					"```\npassword = \"<YOUR-PASSWORD-HERE>\"\napi_key = \"${API_KEY}\"\n```\n"}},
			}, map[string][]secretsgit.Commit{"wip/release-token": {{Msg: "WIP: release token (not merged)", Set: map[string]string{
				"release.env": "GITHUB_TOKEN=" + s.SideBranch + "\n"}}}}, check.Pass
	case gitHistIgnored:
		return []secretsgit.Commit{
			{Msg: "Add the release notes helper", Set: map[string]string{"tools/notes.sh": "#!/bin/sh\n# Posts release notes\n" +
				"curl -H \"Authorization: token " + s.Ignored + "\" https://api.github.com/\n"}},
			{Msg: "Silence the revoked token (rotated on 2024-03-01)", Set: map[string]string{
				".gitleaksignore": "# Revoked 2024-03-01, see the incident record\n" +
					"tools/notes.sh:github-pat:3\ntools/notes.sh:curl-auth-header:3\n"}},
		}, nil, check.Pass
	}
	return nil, nil, check.Pass
}

// gitLab is the git server's state: repositories, built on first use.
type gitLab struct {
	once  sync.Once
	repos map[string]*memory.Storage // lower-case owner/name
	err   error
	mu    sync.Mutex
	hits  map[string]int // upload-pack requests per repository
}

// gitBuild makes every lab repository's git history.
func (l *Lab) gitBuild() {
	g := &l.git
	g.repos = map[string]*memory.Storage{}
	g.hits = map[string]int{}
	for _, rt := range l.RepoTrees() {
		files := map[string]string{}
		for p, b := range rt.Files {
			files[p] = string(b)
		}
		hist, side, _ := gitHistory(gitHistOf(rt.Name))
		commits := append(slices.Clip(hist), secretsgit.Commit{Msg: "Publish " + rt.Name, Set: files})
		st, err := secretsgit.Build(rt.DefaultBranch, commits, side)
		if err != nil {
			g.err = fmt.Errorf("lab: git %s/%s: %w", rt.Owner, rt.Name, err)
			return
		}
		g.repos[strings.ToLower(rt.Owner+"/"+rt.Name)] = st
	}
}

// serveGit answers git's smart HTTP requests for a lab repository (GET
// <owner>/<repo>.git/info/refs?service=git-upload-pack, POST
// <owner>/<repo>.git/git-upload-pack). It reports false for any other
// path, which the GitHub API then answers.
func (l *Lab) serveGit(w http.ResponseWriter, r *http.Request) bool {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) < 3 || !strings.HasSuffix(parts[1], ".git") {
		return false
	}
	rest := strings.Join(parts[2:], "/")
	if rest != "info/refs" && rest != "git-upload-pack" {
		return false
	}
	g := &l.git
	g.once.Do(l.gitBuild)
	if g.err != nil {
		http.Error(w, g.err.Error(), http.StatusInternalServerError)
		return true
	}
	name := strings.ToLower(parts[0] + "/" + strings.TrimSuffix(parts[1], ".git"))
	st := g.repos[name]
	if st == nil {
		http.Error(w, "Repository not found.", http.StatusNotFound)
		return true
	}
	if secretsgit.Serve(w, r, st, rest) && rest == "git-upload-pack" {
		g.mu.Lock()
		g.hits[name]++
		g.mu.Unlock()
	}
	return true
}

// GitClones is how many times the lab's git server has sent a pack of the
// repository owner/name.
func (l *Lab) GitClones(fullName string) int {
	l.git.mu.Lock()
	defer l.git.mu.Unlock()
	return l.git.hits[strings.ToLower(fullName)]
}

// startGit states the truth of repo.secrets.history on every lab
// repository, on the first domain of the organisation that publishes it
// (the lab knows the owners once the organisations are assigned). As every
// family, only when the lab has its cases: a test lab of other families'
// cases asks nothing of the secret scanner.
func (l *Lab) startGit() {
	if !slices.ContainsFunc(l.cases, func(c Case) bool { return c.Family == secretsFamily.Name }) {
		return
	}
	for i := range l.orgs {
		o := &l.orgs[i]
		if o.GitHub == "" || len(o.Domains) == 0 {
			continue
		}
		d := &l.domains[l.byDomain[o.Domains[0]]]
		for _, rp := range o.Repos {
			_, _, truth := gitHistory(gitHistOf(rp.Name))
			d.Expect = append(d.Expect, Expect{Kind: check.KindRepo, Name: o.GitHub + "/" + rp.Name,
				CheckID: "repo.secrets.history", Outcome: truth})
		}
	}
}
