package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/zricethezav/gitleaks/v8/detect"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/repo/secretsgit"
)

// Secrets in the formats gitleaks' default rules find, made here so that
// no scanner mistakes this file for a leak: none is a credential.
var (
	testAWS     = "AKIA" + strings.Repeat("Q3EGRHZ5", 2)[:8] + "LN2XK7VD"
	testGitHub  = "ghp_" + "R8sT2kLm9QwXv4ZpB7nYc3JdF6hG1aEu5oVi"
	testIgnored = "ghp_" + "Zx9Cv8Bn7Mq6Wl5Ek4Rj3Th2Yg1Uf0IdOsPa"
	testSide    = "ghp_" + "Pq1Wo2Ei3Ru4Ty5Ia6Us7Yd8Of9Gh0JkLzXc"
	testFixture = "AKIA" + "MZ7QK4WD2XH6TN3J"
	testPEM     = "-----BEGIN RSA PRIVATE" + " KEY-----\n" +
		strings.Repeat("MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n", 6) +
		"VjL2cE8yq2PNyvLXqY5oZ==\n-----END RSA PRIVATE" + " KEY-----\n"
)

func testSecrets() []string {
	return []string{testAWS, testGitHub, testIgnored, testSide, testFixture, testPEM}
}

// testHistory: an AWS key added then removed, a token and a private key
// still at the tip, and decoys (an allowlisted fixture, AWS's EXAMPLE key,
// placeholders, a token silenced by .gitleaksignore, a token on a side
// branch).
func testHistory() ([]secretsgit.Commit, map[string][]secretsgit.Commit) {
	return []secretsgit.Commit{
		{Msg: "Start", Set: map[string]string{"README.md": "# service\n",
			".gitleaks.toml": "[extend]\nuseDefault = true\n\n[allowlist]\npaths = ['''testdata/''']\n"}},
		{Msg: "Configure S3", Set: map[string]string{"app/settings.py": "BUCKET = \"leaflets\"\nAWS_ACCESS_KEY_ID = \"" + testAWS + "\"\n"}},
		{Msg: "Fixtures", Set: map[string]string{"testdata/creds.ini": "aws_access_key_id = " + testFixture + "\n",
			"docs/config.md": "Example: `AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE`\n\nGITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"}},
		{Msg: "Env credentials", Set: map[string]string{"app/settings.py": "import os\nBUCKET = \"leaflets\"\n"}},
		{Msg: "Deploy", Set: map[string]string{"scripts/deploy.sh": "#!/bin/sh\nexport GITHUB_TOKEN=" + testGitHub + "\n",
			"deploy/id_rsa": testPEM}},
		{Msg: "Notes", Set: map[string]string{"tools/notes.sh": "#!/bin/sh\n# notes\ncurl -H \"Authorization: token " + testIgnored + "\"\n"}},
		{Msg: "Ignore the revoked token", Set: map[string]string{".gitleaksignore": "# revoked\ntools/notes.sh:github-pat:3\ntools/notes.sh:curl-auth-header:3\n"}},
	}, map[string][]secretsgit.Commit{"wip": {{Msg: "wip", Set: map[string]string{"release.env": "GITHUB_TOKEN=" + testSide + "\n"}}}}
}

// fakeGitHub serves GET /api/v3/repos/{owner}/{repo} and the repositories
// over smart HTTP at /{owner}/{repo}.git.
type fakeGitHub struct {
	srv      *httptest.Server
	repos    map[string]*memory.Storage
	branch   map[string]string
	cloneURL func(full string) string // nil: on the server
	size     int64
	packs    atomic.Int64
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	f := &fakeGitHub{repos: map[string]*memory.Storage{}, branch: map[string]string{}, size: 120}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v3/repos/{owner}/{repo}", func(w http.ResponseWriter, r *http.Request) {
		full := r.PathValue("owner") + "/" + r.PathValue("repo")
		if f.repos[full] == nil {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		clone := f.srv.URL + "/" + full + ".git"
		if f.cloneURL != nil {
			clone = f.cloneURL(full)
		}
		json.NewEncoder(w).Encode(map[string]any{"full_name": full, "clone_url": clone,
			"default_branch": f.branch[full], "size": f.size})
	})
	mux.HandleFunc("/{owner}/{repo}/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		full := r.PathValue("owner") + "/" + strings.TrimSuffix(r.PathValue("repo"), ".git")
		st := f.repos[full]
		if st == nil {
			http.NotFound(w, r)
			return
		}
		if r.PathValue("rest") == "git-upload-pack" {
			f.packs.Add(1) // pack requests, served whole or not
		}
		secretsgit.Serve(w, r, st, r.PathValue("rest"))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHub) add(t *testing.T, full, branch string, commits []secretsgit.Commit, side map[string][]secretsgit.Commit) {
	t.Helper()
	st, err := secretsgit.Build(branch, commits, side)
	if err != nil {
		t.Fatal(err)
	}
	f.repos[full], f.branch[full] = st, branch
}

func (f *fakeGitHub) env() *check.Env {
	u, _ := url.Parse(f.srv.URL + "/api/v3/")
	return &check.Env{Services: map[string]check.Service{GitHubService: {URL: u, Client: f.srv.Client()}}}
}

func collectAndJudge(t *testing.T, env *check.Env, name string) (SecretsEvidence, check.Evidence, []check.Finding) {
	t.Helper()
	c := Secrets()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev, err := c.Collect(ctx, env, check.Asset{Kind: check.KindRepo, Name: name})
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	var e SecretsEvidence
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		t.Fatal(err)
	}
	return e, ev, c.Evaluate(ev, check.DefaultPolicy())
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range testSecrets() {
		if strings.Contains(s, sec) {
			t.Errorf("%s holds a full secret %.8s…", what, sec)
		}
		// Nor the PEM's body, nor a long run of a token.
		body := strings.TrimPrefix(sec, "ghp_")
		if len(body) > 20 && strings.Contains(s, body[4:20]) {
			t.Errorf("%s holds 16 characters of the secret %.8s…", what, sec)
		}
	}
}

func TestSecretsFindsPlantedSecretsAndIgnoresDecoys(t *testing.T) {
	gh := newFakeGitHub(t)
	commits, side := testHistory()
	gh.add(t, "lab-x/service", "trunk", commits, side)
	e, ev, fs := collectAndJudge(t, gh.env(), "lab-x/service")
	if e.Error != "" || e.Partial != "" {
		t.Fatalf("scan: %s %s %s", e.Error, e.Class, e.Partial)
	}
	got := map[string]Leak{}
	for _, l := range e.Leaks {
		got[l.Rule+" "+l.File] = l
	}
	want := map[string]bool{ // rule file → still at the tip
		"aws-access-token app/settings.py": false,
		"github-pat scripts/deploy.sh":     true,
		"private-key deploy/id_rsa":        true,
	}
	if len(got) != len(want) || e.LeaksTotal != len(want) {
		t.Errorf("leaks %v, want %v", keys(got), want)
	}
	for k, inHead := range want {
		l, ok := got[k]
		if !ok {
			t.Errorf("missing leak %s", k)
			continue
		}
		if l.InHead != inHead {
			t.Errorf("%s: in head %v, want %v", k, l.InHead, inHead)
		}
		if !strings.HasPrefix(l.Hash, secretsHashPrefix) || len(l.Hash) != len(secretsHashPrefix)+64 {
			t.Errorf("%s: hash %q", k, l.Hash)
		}
		if l.Fingerprint != fmt.Sprintf("%s:%s:%s:%d", l.Commit, l.File, l.Rule, l.Line) || len(l.Commit) != 40 {
			t.Errorf("%s: fingerprint %q", k, l.Fingerprint)
		}
		if !strings.Contains(l.Redacted, "redacted]") {
			t.Errorf("%s: redacted %q", k, l.Redacted)
		}
	}
	if l := got["aws-access-token app/settings.py"]; l.Line != 2 || !strings.HasPrefix(l.Redacted, `AWS_ACCESS_KEY_ID = "AKIA…[20 redacted]`) {
		t.Errorf("aws leak: line %d, redacted %q", l.Line, l.Redacted)
	}
	if e.Config.File != ".gitleaks.toml" || e.Config.Allowlists != 1 || e.Config.Ignores != 2 || e.Config.Ignored != 2 || e.Config.Error != "" {
		t.Errorf("config %+v", e.Config)
	}
	if e.DefaultBranch != "trunk" || e.Commits != len(commits) {
		t.Errorf("branch %q, %d commits; want trunk, %d (the side branch is not scanned)", e.DefaultBranch, e.Commits, len(commits))
	}
	if len(fs) != 1 || fs[0].Outcome != check.Fail || fs[0].Severity != check.Critical || fs[0].CheckID != SecretsHistory {
		t.Fatalf("findings %+v", fs)
	}
	if !strings.Contains(fs[0].Message, "3 secrets") || !strings.Contains(fs[0].Message, "2 still in its latest commit") {
		t.Errorf("message %q", fs[0].Message)
	}
	assertNoSecret(t, "evidence", string(ev.Data))
	assertNoSecret(t, "message", fs[0].Message)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSecretsCleanHistoryPasses(t *testing.T) {
	gh := newFakeGitHub(t)
	gh.add(t, "lab-x/clean", "main", []secretsgit.Commit{
		{Msg: "one", Set: map[string]string{"README.md": "# clean\n", "main.go": "package main\n"}},
		{Msg: "two", Set: map[string]string{"main.go": "package main\n\nfunc main() {}\n"}},
	}, nil)
	e, _, fs := collectAndJudge(t, gh.env(), "lab-x/clean")
	if fs[0].Outcome != check.Pass || e.Commits != 2 || e.Scanned != 3 || len(e.Leaks) != 0 {
		t.Fatalf("outcome %s, %d commits, %d scanned, leaks %v: %s", fs[0].Outcome, e.Commits, e.Scanned, e.Leaks, fs[0].Message)
	}
	if gh.packs.Load() != 1 {
		t.Errorf("%d packs fetched, want 1", gh.packs.Load())
	}
}

func TestSecretsAPIDefaultBranchMissingFallsBackToRemoteHEAD(t *testing.T) {
	gh := newFakeGitHub(t)
	gh.add(t, "lab-x/r", "develop", []secretsgit.Commit{{Msg: "one", Set: map[string]string{"k.sh": "export GITHUB_TOKEN=" + testGitHub + "\n"}}}, nil)
	gh.branch["lab-x/r"] = "" // the API names no default branch
	e, _, fs := collectAndJudge(t, gh.env(), "lab-x/r")
	if fs[0].Outcome != check.Fail || e.DefaultBranch != "develop" {
		t.Fatalf("outcome %s on branch %q: %s", fs[0].Outcome, e.DefaultBranch, fs[0].Message)
	}
}

func TestSecretsRepositoryConfigCannotSwitchRulesOff(t *testing.T) {
	gh := newFakeGitHub(t)
	gh.add(t, "lab-x/r", "main", []secretsgit.Commit{{Msg: "one", Set: map[string]string{
		".gitleaks.toml": "title = \"mine\"\n[extend]\ndisabledRules = [\"github-pat\"]\n\n[[rules]]\nid = \"mine\"\nregex = '''nothing-here'''\n",
		"k.sh":           "export GITHUB_TOKEN=" + testGitHub + "\n"}}}, nil)
	e, _, fs := collectAndJudge(t, gh.env(), "lab-x/r")
	if fs[0].Outcome != check.Fail || len(e.Leaks) != 1 || e.Leaks[0].Rule != "github-pat" {
		t.Fatalf("outcome %s, leaks %+v", fs[0].Outcome, e.Leaks)
	}
}

func TestSecretsBrokenRepositoryConfigIsSetAsideAndNamed(t *testing.T) {
	gh := newFakeGitHub(t)
	gh.add(t, "lab-x/r", "main", []secretsgit.Commit{{Msg: "one", Set: map[string]string{
		".gitleaks.toml": "[allowlist]\npaths = ['''(unclosed''']\n",
		"k.sh":           "export GITHUB_TOKEN=" + testGitHub + "\n"}}}, nil)
	e, _, fs := collectAndJudge(t, gh.env(), "lab-x/r")
	if fs[0].Outcome != check.Fail || e.Config.Error == "" || !strings.Contains(fs[0].Message, "was not applied") {
		t.Fatalf("outcome %s, config %+v: %s", fs[0].Outcome, e.Config, fs[0].Message)
	}
}

func TestSecretsEmptyRepositoryPasses(t *testing.T) {
	gh := newFakeGitHub(t)
	gh.repos["lab-x/empty"], gh.branch["lab-x/empty"] = memory.NewStorage(), "main"
	e, _, fs := collectAndJudge(t, gh.env(), "lab-x/empty")
	if fs[0].Outcome != check.Pass || !e.Empty {
		t.Fatalf("outcome %s, evidence %+v: %s", fs[0].Outcome, e, fs[0].Message)
	}
}

func TestSecretsUnknownWhenTheScanCannotBeMade(t *testing.T) {
	gh := newFakeGitHub(t)
	gh.add(t, "lab-x/r", "main", []secretsgit.Commit{{Msg: "one", Set: map[string]string{"a": "b\n"}}}, nil)
	for _, tc := range []struct {
		name   string
		setup  func(*fakeGitHub) *check.Env
		repo   string
		reason string
	}{
		{"no service", func(*fakeGitHub) *check.Env { return &check.Env{} }, "lab-x/r", SecretsNoService},
		{"no such repository", (*fakeGitHub).env, "lab-x/none", SecretsNotFound},
		{"clone URL on another host", func(f *fakeGitHub) *check.Env {
			f.cloneURL = func(full string) string { return "http://elsewhere.example/" + full + ".git" }
			return f.env()
		}, "lab-x/r", SecretsNoClone},
		{"clone URL with credentials", func(f *fakeGitHub) *check.Env {
			f.cloneURL = func(full string) string {
				return strings.Replace(f.srv.URL, "http://", "http://u:p@", 1) + "/" + full + ".git"
			}
			return f.env()
		}, "lab-x/r", SecretsNoClone},
		{"repository over the size cap", func(f *fakeGitHub) *check.Env {
			f.cloneURL, f.size = nil, 300<<10
			return f.env()
		}, "lab-x/r", string(check.ErrTooLarge)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh.cloneURL, gh.size = nil, 120
			env := tc.setup(gh)
			_, _, fs := collectAndJudge(t, env, tc.repo)
			if len(fs) != 1 || fs[0].Outcome != check.Unknown || fs[0].Reason != tc.reason {
				t.Fatalf("%+v, want unknown (%s)", fs, tc.reason)
			}
		})
	}
}

func TestSecretsPackOverTheCapIsTooLarge(t *testing.T) {
	gh := newFakeGitHub(t)
	var b strings.Builder
	for i := range 40000 {
		fmt.Fprintf(&b, "%08x %d\n", i*2654435761, i)
	}
	gh.add(t, "lab-x/big", "main", []secretsgit.Commit{{Msg: "big", Set: map[string]string{"b.txt": b.String(),
		"k.sh": "export GITHUB_TOKEN=" + testGitHub + "\n"}}}, nil)
	gh.size = 1 // the API says 1 KB: the pack's own size decides
	oldMax, oldMem := secretsMaxPack, secretsMemPack
	defer func() { secretsMaxPack, secretsMemPack = oldMax, oldMem }()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	// Over the memory cap: fetched again to disk, and judged.
	secretsMemPack = 16 << 10
	e, _, fs := collectAndJudge(t, gh.env(), "lab-x/big")
	if fs[0].Outcome != check.Fail || e.PackBytes <= secretsMemPack || gh.packs.Load() != 2 {
		t.Fatalf("%s (%s), %d pack bytes, %d fetches: %s", fs[0].Outcome, fs[0].Reason, e.PackBytes, gh.packs.Load(), fs[0].Message)
	}
	// Over the disk cap too: too large.
	secretsMaxPack = 64 << 10
	_, _, fs = collectAndJudge(t, gh.env(), "lab-x/big")
	if fs[0].Outcome != check.Unknown || fs[0].Reason != string(check.ErrTooLarge) {
		t.Fatalf("%s (%s): %s", fs[0].Outcome, fs[0].Reason, fs[0].Message)
	}
	// As the API says.
	gh.size = 300 << 10
	_, _, fs = collectAndJudge(t, gh.env(), "lab-x/big")
	if fs[0].Outcome != check.Unknown || fs[0].Reason != string(check.ErrTooLarge) || !strings.Contains(fs[0].Message, "over the 200 MB") {
		t.Fatalf("%s (%s): %s", fs[0].Outcome, fs[0].Reason, fs[0].Message)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("%d entries left in the temporary directory", len(left))
	}
}

func TestSecretsHashIsKeyedAndStable(t *testing.T) {
	k1, k2 := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	if secretsHash(k1, testAWS) != secretsHash(k1, testAWS) {
		t.Error("the same key and secret give different hashes")
	}
	if secretsHash(k1, testAWS) == secretsHash(k2, testAWS) {
		t.Error("two keys give the same hash")
	}
	if secretsHash(k1, testAWS) == secretsHash(k1, testFixture) {
		t.Error("two secrets give the same hash")
	}
	if strings.Contains(secretsHash(k1, testAWS), testAWS) {
		t.Error("the hash holds the secret")
	}
}

func TestSecretsRedactionNeverShowsTheSecret(t *testing.T) {
	for _, tc := range []struct {
		f    secretsFound
		want string
	}{
		{secretsFound{secret: testAWS, match: testAWS, line: `KEY = "` + testAWS + `"`}, `KEY = "AKIA…[20 redacted]`},
		{secretsFound{secret: "short-secret", match: "short-secret", line: "x=short-secret"}, "x=sho…[12 redacted]"},
		{secretsFound{secret: testGitHub, match: "token " + testGitHub, line: "curl -H 'Authorization: token " + testGitHub + "'"},
			"curl -H 'Authorization: token ghp_…[40 redacted]"},
		// Another secret before this one on the line is masked too.
		{secretsFound{secret: testGitHub, match: testGitHub, line: testAWS + " " + testGitHub}, "… ghp_…[40 redacted]"},
		// A secret found after decoding keeps no context.
		{secretsFound{secret: testGitHub, match: testGitHub, line: "token: Z2hwX1I4c1Qya0xt", coded: true}, "ghp_…[40 redacted]"},
		{secretsFound{secret: testPEM, match: testPEM, line: testPEM}, "----…[" + fmt.Sprint(len(testPEM)) + " redacted]"},
	} {
		got := secretsExcerpt(tc.f, []string{testAWS, testGitHub, testPEM, "short-secret"})
		if got != tc.want {
			t.Errorf("excerpt of %.12q: %q, want %q", tc.f.line, got, tc.want)
		}
		assertNoSecret(t, "excerpt", got)
	}
}

func TestSecretsAddedLinesNumberAsGitDoes(t *testing.T) {
	from := "a\nb\nc\n"
	to := "a\nX\nb\nc\nY\nZ\n"
	got := secretsAdded(from, to)
	if len(got) != 2 || got[0] != (secretsFragment{"X\n", 2}) || got[1] != (secretsFragment{"Y\nZ\n", 5}) {
		t.Fatalf("%+v", got)
	}
	if got := secretsAdded("", "p\nq"); len(got) != 1 || got[0].startLine != 1 || got[0].raw != "p\nq" {
		t.Fatalf("new file: %+v", got)
	}
}

func TestSecretsIgnoreFileParsesAsGitleaksDoes(t *testing.T) {
	got := secretsIgnores("# c\n\nsrc\\a.go:rule:3\nabc:src\\b.go:rule:4\nbad\n  x.go:r:1  \n")
	for _, k := range []string{"src/a.go:rule:3", "abc:src/b.go:rule:4", "x.go:r:1"} {
		if !got[k] {
			t.Errorf("missing %q in %v", k, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("%v", got)
	}
}

func TestSecretsCloneURLMustBeOnTheAPIHost(t *testing.T) {
	api := func(s string) *url.URL { u, _ := url.Parse(s); return u }
	for _, tc := range []struct {
		api, clone string
		ok         bool
	}{
		{"https://api.github.com/", "https://github.com/nhsx/posture.git", true},
		{"https://ghe.nhs.uk/api/v3/", "https://ghe.nhs.uk/nhsx/posture.git", true},
		{"http://127.0.0.1:5000/api/v3/", "http://127.0.0.1:5000/o/r.git", true},
		{"https://api.github.com/", "http://github.com/o/r.git", false},
		{"https://api.github.com/", "https://evil.example/o/r.git", false},
		{"https://api.github.com/", "https://x:y@github.com/o/r.git", false},
		{"https://api.github.com/", "file:///etc/passwd", false},
		{"https://api.github.com/", "", false},
		{"https://ghe.nhs.uk/api/v3/", "https://api.ghe.nhs.uk/o/r.git", false},
	} {
		_, err := secretsCloneURL(api(tc.api), tc.clone)
		if (err == nil) != tc.ok {
			t.Errorf("api %s, clone %q: err %v, want ok=%v", tc.api, tc.clone, err, tc.ok)
		}
	}
}

func TestSecretsConcurrentScansShareNothing(t *testing.T) {
	gh := newFakeGitHub(t)
	commits, side := testHistory()
	for i := range 4 {
		gh.add(t, fmt.Sprintf("lab-x/r%d", i), "main", commits, side)
	}
	env := gh.env()
	done := make(chan int, 4)
	for i := range 4 {
		go func() {
			ev, _ := Secrets().Collect(context.Background(), env, check.Asset{Kind: check.KindRepo, Name: fmt.Sprintf("lab-x/r%d", i)})
			var e SecretsEvidence
			json.Unmarshal(ev.Data, &e)
			done <- e.LeaksTotal
		}()
	}
	for range 4 {
		if n := <-done; n != 3 {
			t.Errorf("a concurrent scan found %d leaks, want 3", n)
		}
	}
}

func TestSecretsRepositoryAllowlistsApplyAsGitleaksAppliesThem(t *testing.T) {
	line := "export GITHUB_TOKEN=" + testGitHub + "\n"
	for _, tc := range []struct {
		name, toml, path string
		silenced         bool
	}{
		{"global path", "[allowlist]\npaths = ['''^fixtures/''']\n", "fixtures/a.sh", true},
		{"global path elsewhere", "[allowlist]\npaths = ['''^fixtures/''']\n", "src/a.sh", false},
		{"allowlists with targetRules", "[[allowlists]]\ntargetRules = [\"github-pat\"]\nregexes = ['''^ghp_R8s''']\n", "a.sh", true},
		{"targetRules of another rule", "[[allowlists]]\ntargetRules = [\"aws-access-token\"]\nregexes = ['''^ghp_R8s''']\n", "a.sh", false},
		{"targetRules of the repository's own rule only", "[[allowlists]]\ntargetRules = [\"mine\"]\nregexes = ['''.''']\n", "a.sh", false},
		{"a default rule's allowlist", "[[rules]]\nid = \"github-pat\"\n[[rules.allowlists]]\nstopwords = [\"r8st2klm\"]\n", "a.sh", true},
		{"stopwords", "[allowlist]\nstopwords = [\"r8st2klm\"]\n", "a.sh", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, n, err := secretsMergedConfig(tc.toml)
			if err != nil || n == 0 && tc.silenced {
				t.Fatalf("merge: %v (%d taken)", err, n)
			}
			d := detect.NewDetector(cfg)
			got := d.DetectContext(context.Background(), detect.Fragment{Raw: line, FilePath: tc.path, CommitSHA: "0123456789abcdef0123456789abcdef01234567", StartLine: 1})
			pat := 0
			for _, f := range got {
				if f.RuleID == "github-pat" {
					pat++
				}
			}
			if (pat == 0) != tc.silenced {
				t.Errorf("github-pat findings %d, silenced want %v", pat, tc.silenced)
			}
		})
	}
}

func TestSecretsKeyFileIsMadeOnceAndKeptPrivate(t *testing.T) {
	path := SecretKeyPath(t.TempDir() + "/posture.db")
	k1, err := LoadSecretKey(path)
	if err != nil || len(k1) != secretKeyBytes {
		t.Fatalf("%d bytes, %v", len(k1), err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	k2, err := LoadSecretKey(path)
	if err != nil || string(k1) != string(k2) {
		t.Fatal("the key changed on reload")
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := LoadSecretKey(path); err == nil {
		t.Error("a 5-byte key is accepted")
	}
	if err := SetSecretKey([]byte("short")); err == nil {
		t.Error("SetSecretKey accepts a 5-byte key")
	}
}

func TestSecretsCloneLeavesNoTemporaryFiles(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	gh := newFakeGitHub(t)
	commits, side := testHistory()
	gh.add(t, "lab-x/r", "main", commits, side)
	if e, _, _ := collectAndJudge(t, gh.env(), "lab-x/r"); e.LeaksTotal != 3 || e.PackBytes == 0 {
		t.Fatalf("%d leaks, %d pack bytes", e.LeaksTotal, e.PackBytes)
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("the scan left %d entries in the temporary directory", len(left))
	}
}

type testBearer struct{ rt http.RoundTripper }

func (b testBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer api-token")
	return b.rt.RoundTrip(r)
}

func TestSecretsClonesWithoutTheAPITokenThroughTheGitService(t *testing.T) {
	gh := newFakeGitHub(t)
	gh.add(t, "lab-x/r", "main", []secretsgit.Commit{{Msg: "one", Set: map[string]string{"a": "b\n"}}}, nil)
	var gitAuth, apiAuth atomic.Int64
	inner := gh.srv.Config.Handler
	gh.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			if strings.HasPrefix(r.URL.Path, "/api/") {
				apiAuth.Add(1)
			} else {
				gitAuth.Add(1)
			}
		}
		inner.ServeHTTP(w, r)
	})
	env := gh.env()
	api := env.Services[GitHubService]
	env.Services[GitService] = check.Service{URL: api.URL, Client: gh.srv.Client()}
	api.Client = &http.Client{Transport: testBearer{gh.srv.Client().Transport}}
	env.Services[GitHubService] = api
	if _, _, fs := collectAndJudge(t, env, "lab-x/r"); fs[0].Outcome != check.Pass {
		t.Fatalf("%s: %s", fs[0].Outcome, fs[0].Message)
	}
	if apiAuth.Load() == 0 || gitAuth.Load() != 0 {
		t.Errorf("API requests with a token %d (want some), git requests with one %d (want none)", apiAuth.Load(), gitAuth.Load())
	}
}

func TestSecretsScanCutShortFailsOnWhatItFoundAndIsOtherwiseUnknown(t *testing.T) {
	gh := newFakeGitHub(t)
	// Newest first: the walk meets the tip's token before the cut.
	gh.add(t, "lab-x/leaky", "main", []secretsgit.Commit{
		{Msg: "1", Set: map[string]string{"a": "1\n"}}, {Msg: "2", Set: map[string]string{"a": "2\n"}},
		{Msg: "3", Set: map[string]string{"k.sh": "export GITHUB_TOKEN=" + testGitHub + "\n"}}}, nil)
	gh.add(t, "lab-x/clean", "main", []secretsgit.Commit{
		{Msg: "1", Set: map[string]string{"a": "1\n"}}, {Msg: "2", Set: map[string]string{"a": "2\n"}},
		{Msg: "3", Set: map[string]string{"a": "3\n"}}}, nil)
	old := secretsMaxCommits
	secretsMaxCommits = 2
	defer func() { secretsMaxCommits = old }()
	e, _, fs := collectAndJudge(t, gh.env(), "lab-x/leaky")
	if fs[0].Outcome != check.Fail || e.Partial == "" || !strings.Contains(fs[0].Message, "stopped early") {
		t.Errorf("leaky: %s, partial %q: %s", fs[0].Outcome, e.Partial, fs[0].Message)
	}
	e, _, fs = collectAndJudge(t, gh.env(), "lab-x/clean")
	if fs[0].Outcome != check.Unknown || fs[0].Reason != string(check.ErrTooLarge) || e.Commits != 2 {
		t.Errorf("clean: %s (%s) after %d commits: %s", fs[0].Outcome, fs[0].Reason, e.Commits, fs[0].Message)
	}
}

func TestSecretsGitServerThatAnswersGarbageIsUnknown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reason  string
		handler http.HandlerFunc
	}{
		{"refs that are not pkt-lines", string(check.ErrMalformed), func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
			io.WriteString(w, "<html>not git</html>")
		}},
		{"a pack that is not a pack", string(check.ErrMalformed), func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "info/refs") {
				st, _ := secretsgit.Build("main", []secretsgit.Commit{{Msg: "1", Set: map[string]string{"a": "1\n"}}}, nil)
				secretsgit.Serve(w, r, st, "info/refs")
				return
			}
			w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
			io.WriteString(w, "0008NAK\nPACK\x00\x00\x00\x02\x00\x00\x00\x05garbage")
		}},
		{"a server error", string(check.ErrOther), func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh := newFakeGitHub(t)
			gh.add(t, "lab-x/r", "main", []secretsgit.Commit{{Msg: "1", Set: map[string]string{"a": "1\n"}}}, nil)
			git := httptest.NewServer(tc.handler)
			defer git.Close()
			gh.cloneURL = func(full string) string { return git.URL + "/" + full + ".git" }
			_, _, fs := collectAndJudge(t, gh.env(), "lab-x/r")
			t.Logf("%s: %s", fs[0].Reason, fs[0].Message)
			if fs[0].Outcome != check.Unknown || fs[0].Reason != tc.reason {
				t.Fatalf("%s (%s): %s", fs[0].Outcome, fs[0].Reason, fs[0].Message)
			}
		})
	}
}

func TestSecretsStallingGitServerIsATimeout(t *testing.T) {
	gh := newFakeGitHub(t)
	gh.add(t, "lab-x/r", "main", []secretsgit.Commit{{Msg: "1", Set: map[string]string{"a": "1\n"}}}, nil)
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer stall.Close()
	gh.cloneURL = func(full string) string { return stall.URL + "/" + full + ".git" }
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	c := Secrets()
	ev, _ := c.Collect(ctx, gh.env(), check.Asset{Kind: check.KindRepo, Name: "lab-x/r"})
	fs := c.Evaluate(ev, check.DefaultPolicy())
	if fs[0].Outcome != check.Unknown || fs[0].Reason != string(check.ErrTimeout) || time.Since(start) > 5*time.Second {
		t.Fatalf("%s (%s) after %v: %s", fs[0].Outcome, fs[0].Reason, time.Since(start), fs[0].Message)
	}
}

func TestSecretsCloneURLMessagesNeverQuoteCredentials(t *testing.T) {
	api, _ := url.Parse("https://api.github.com/")
	for _, raw := range []string{"ftp://u:hunter2hunter2@github.com/o/r.git", "https://u:hunter2hunter2@github.com/o/r.git",
		"https://evil.example/o/r.git?token=hunter2hunter2", "https://github.com/o/r.git#hunter2hunter2", "http://[::1%hunter2hunter2/"} {
		_, err := secretsCloneURL(api, raw)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: %v", raw, err)
		}
	}
}
