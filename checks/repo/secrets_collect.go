package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// secretsRepoInfo is the part of GET /repos/{owner}/{repo} the scan reads.
type secretsRepoInfo struct {
	FullName      string `json:"full_name"`
	CloneURL      string `json:"clone_url"`
	DefaultBranch string `json:"default_branch"`
	Size          int64  `json:"size"` // KB
}

func collectSecrets(ctx context.Context, env *check.Env, a check.Asset) (out SecretsEvidence, _ error) {
	start := time.Now()
	key := secretsKey()
	ev := SecretsEvidence{Repo: a.Name, Scanner: secretsScannerName, KeyID: secretsKeyID(key)}
	defer func() { out.Took = time.Since(start).Milliseconds() }()
	fail := func(class check.ErrClass, format string, args ...any) (SecretsEvidence, error) {
		ev.Error, ev.Class = fmt.Sprintf(format, args...), string(class)
		return ev, nil
	}
	svc, ok := env.Service(GitHubService)
	if !ok {
		return fail(SecretsNoService, "no GitHub service is configured (--github-api)")
	}
	owner, name, ok := strings.Cut(a.Name, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return fail(check.ErrInternal, "%q is not owner/name", a.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, secretsMaxTime)
	defer cancel()

	info, status, err := secretsRepoAPI(ctx, svc, owner, name)
	switch {
	case err != nil:
		return fail(check.Classify(err), "github: GET repos/%s: %v", a.Name, err)
	case status == http.StatusNotFound:
		return fail(SecretsNotFound, "github: repos/%s: not found", a.Name)
	case status != http.StatusOK:
		return fail(check.ErrOther, "github: repos/%s: HTTP %d", a.Name, status)
	}
	ev.DefaultBranch, ev.SizeKB = info.DefaultBranch, info.Size
	clone, err := secretsCloneURL(svc.URL, info.CloneURL)
	if err != nil {
		return fail(SecretsNoClone, "github: repos/%s: %v", a.Name, err)
	}
	ev.CloneURL = clone.String()
	if info.Size*1024 > secretsMaxPack {
		return fail(check.ErrTooLarge, "%s is %d MB, over the %d MB the scanner clones", a.Name, info.Size/1024, secretsMaxPackMB)
	}

	gitSvc, ok := env.Service(GitService)
	if !ok {
		gitSvc = svc
	}
	// A small repository is fetched into memory; a larger one (or one whose
	// pack turns out larger than the API said) into a temporary directory,
	// removed after.
	var repo *secretsRepo
	if info.Size*1024 <= secretsMemPack {
		repo, err = secretsFetch(ctx, secretsGitClient(gitSvc.Client, clone, secretsMemPack), clone, info.DefaultBranch, "")
	}
	if info.Size*1024 > secretsMemPack || errors.Is(err, errSecretsTooLarge) {
		dir, derr := os.MkdirTemp("", "posture-secrets-*")
		if derr != nil {
			return fail(check.ErrInternal, "temporary directory: %v", derr)
		}
		defer os.RemoveAll(dir)
		repo, err = secretsFetch(ctx, secretsGitClient(gitSvc.Client, clone, secretsMaxPack), clone, info.DefaultBranch, dir)
	}
	if repo != nil {
		ev.PackBytes, ev.Head = repo.packBytes, repo.head.String()
		if ev.DefaultBranch == "" {
			ev.DefaultBranch = repo.branch
		}
	}
	switch {
	case errors.Is(err, errSecretsEmpty):
		ev.Empty = true
		return ev, nil
	case err != nil:
		return fail(check.Classify(err), "clone %s: %v", ev.CloneURL, err)
	}
	secretsScan(ctx, repo, key, &ev)
	return ev, nil
}

// secretsRepoAPI asks the API for the repository.
func secretsRepoAPI(ctx context.Context, svc check.Service, owner, name string) (secretsRepoInfo, int, error) {
	var info secretsRepoInfo
	u := svc.URL.JoinPath("repos", owner, name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return info, 0, err
	}
	req.Header.Set("Accept", secretsAPIAccept)
	req.Header.Set("X-GitHub-Api-Version", secretsAPIVersion)
	req.Header.Set("User-Agent", secretsUserAgent) // GitHub's API refuses requests without one
	resp, err := svc.Client.Do(req)
	if err != nil {
		return info, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, secretsMaxAPIBody+1))
	if err != nil {
		return info, resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return info, resp.StatusCode, nil
	}
	if len(body) > secretsMaxAPIBody {
		return info, resp.StatusCode, check.WithClass(check.ErrTooLarge, fmt.Errorf("the answer is over %d bytes", secretsMaxAPIBody))
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return info, resp.StatusCode, check.WithClass(check.ErrMalformed, fmt.Errorf("the answer is not a repository: %w", err))
	}
	return info, resp.StatusCode, nil
}

// secretsCloneURL checks the API's clone_url: http(s) with no credentials,
// on the API's own host (GitHub Enterprise, a test server) or, for an API
// at api.<host> (GitHub.com, GHE.com), on <host>. The port may differ. The
// clone goes through the GitHub service's client, not the scan's scope
// guard: the API is a configured service, and its host is where its
// repositories live; anything else is refused (the token would follow).
func secretsCloneURL(api *url.URL, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("no clone_url")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("clone_url does not parse as a URL")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && api.Scheme == "http") {
		return nil, fmt.Errorf("clone_url %q: want https", secretsShowURL(u))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("clone_url %q: credentials, a query or a fragment", secretsShowURL(u))
	}
	ch, ah := strings.ToLower(u.Hostname()), strings.ToLower(api.Hostname())
	if ch == "" || (ch != ah && "api."+ch != ah) {
		return nil, fmt.Errorf("clone_url %q is not on the API's host %s", secretsShowURL(u), ah)
	}
	return u, nil
}

// secretsShowURL is a URL as messages show it: no credentials, query or
// fragment (a hostile API could put a token there).
func secretsShowURL(u *url.URL) string {
	return secretsClip(u.Scheme + "://" + u.Host + u.EscapedPath())
}

func secretsClip(s string) string {
	if len(s) > 200 {
		return strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
