package lab

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The lab GitHub's repository endpoints (trees, contents, settings, branch
// protection, rulesets, alerts, commits), its ETags and 304s, its rate-limit
// accounting and its scripted rate limits. Shapes follow the REST API's
// documented responses (2022-11-28).

type ghRef struct {
	o *labOrg
	j int
}

type ghServer struct {
	l       *Lab
	byLogin map[string]*labOrg
	repos   map[string]ghRef // lower-case full name

	mu    sync.Mutex
	fired map[string]bool // scripted rate limits already served
	files map[string]map[string][]byte

	requests atomic.Int64 // every API request
	spent    atomic.Int64 // requests that cost rate limit (a 304 with a token does not)
	spentOK  atomic.Int64 // of those, the ones answered 200 (with an ETag)
	used     [2]atomic.Int64
}

// GitHubRequests reports the lab GitHub's API requests since the lab
// started: all of them, those that cost rate limit as GitHub counts it (a
// conditional request answered 304 with a token is free), and of those the
// ones answered 200 with an ETag (a resource a cache could have kept; the
// rest are errors, 204s and rate limits, which carry no ETag).
func (l *Lab) GitHubRequests() (total, spent, spentOK int64) {
	if l.gh == nil {
		return 0, 0, 0
	}
	return l.gh.requests.Load(), l.gh.spent.Load(), l.gh.spentOK.Load()
}

func ghAuthed(r *http.Request) bool {
	a := r.Header.Get("Authorization")
	for _, p := range []string{"Bearer ", "token ", "bearer "} {
		if t, ok := strings.CutPrefix(a, p); ok && t == GitHubToken {
			return true
		}
	}
	return false
}

func (g *ghServer) repo(r *http.Request) (ghRef, bool) {
	ref, ok := g.repos[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo"))]
	return ref, ok
}

func (g *ghServer) filesOf(ref ghRef) map[string][]byte {
	key := ref.o.GitHub + "/" + ref.o.Repos[ref.j].Name
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.files[key]
	if !ok {
		f = repoFiles(ref.o, ref.o.Repos[ref.j])
		g.files[key] = f
	}
	return f
}

// fire reports whether a scripted response for key has yet to be served,
// and marks it served.
func (g *ghServer) fire(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fired[key] {
		return false
	}
	g.fired[key] = true
	return true
}

// recorder buffers a response so that wrap can give it an ETag.
type recorder struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(c int) {
	if r.code == 0 {
		r.code = c
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.buf.Write(b)
}

// wrap serves every request: the /api/v3 prefix, the scripted rate limits,
// rate-limit headers, ETags and conditional requests (304), and the
// accounting.
func (g *ghServer) wrap(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok {
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = p, ""
			r = r2
		}
		g.requests.Add(1)
		authed := ghAuthed(r)
		who, limit := 0, 60
		if authed {
			who, limit = 1, 5000
		}
		h := w.Header()
		h.Set("X-GitHub-Media-Type", "github.v3; format=json")
		h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Resource", "core")
		reset := time.Now().Truncate(time.Hour).Add(time.Hour)
		setUsed := func(used int64) {
			// The lab never runs out on its own: only the scripted limits
			// say 0 remaining.
			n := int(used)%(limit-1) + 1
			h.Set("X-RateLimit-Remaining", strconv.Itoa(limit-n))
			h.Set("X-RateLimit-Used", strconv.Itoa(n))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		}
		if g.scripted(w, r, limit) {
			g.spent.Add(1)
			return
		}
		rec := &recorder{h: http.Header{}}
		g.route(mux, rec, r)
		for k, v := range rec.h {
			h[k] = v
		}
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		if code == http.StatusOK && r.Method == http.MethodGet {
			sum := sha256.Sum256(rec.buf.Bytes())
			etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
			h.Set("ETag", etag)
			h.Set("Cache-Control", "private, max-age=60, s-maxage=60")
			h.Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
			if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, strings.TrimPrefix(etag, "W/")) {
				// GitHub: a 304 to a request with an Authorization header
				// does not count against the primary rate limit.
				if authed {
					setUsed(g.used[who].Load())
				} else {
					g.spent.Add(1)
					setUsed(g.used[who].Add(1))
				}
				h.Del("Content-Type")
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		g.spent.Add(1)
		if code == http.StatusOK && r.Method == http.MethodGet {
			g.spentOK.Add(1)
		}
		setUsed(g.used[who].Add(1))
		w.WriteHeader(code)
		w.Write(rec.buf.Bytes())
	})
}

func (g *ghServer) route(mux http.Handler, w http.ResponseWriter, r *http.Request) {
	mux.ServeHTTP(w, r)
}

// scripted serves the cases' rate limits: once per lab, the first GET of a
// SecondaryLimit repository is a secondary rate limit (403, Retry-After),
// and the first GET of a PrimaryLimit repository's tree exhausts the
// primary limit until a second later.
func (g *ghServer) scripted(w http.ResponseWriter, r *http.Request, limit int) bool {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "repos" {
		return false
	}
	ref, ok := g.repos[strings.ToLower(parts[1]+"/"+parts[2])]
	if !ok {
		return false
	}
	s := ref.o.Repos[ref.j].Spec
	switch {
	case len(parts) == 3 && s.SecondaryLimit && g.fire("secondary "+r.URL.Path):
		w.Header().Set("Retry-After", "1")
		ghJSON(w, http.StatusForbidden, map[string]string{
			"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. " +
				"If you reach out to GitHub Support for help, please include the request ID 0401:2F0C:1B2A3C:1C3D4E:65A1B2C3.",
			"documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
			"status":            "403"})
		return true
	case len(parts) >= 5 && parts[3] == "git" && parts[4] == "trees" && s.PrimaryLimit && g.fire("primary "+r.URL.Path):
		h := w.Header()
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", strconv.Itoa(limit))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
		ghJSON(w, http.StatusForbidden, map[string]string{
			"message":           "API rate limit exceeded for user ID 90000001. If you reach out to GitHub Support for help, please include the request ID 0401:2F0C:1B2A3C:1C3D4E:65A1B2C4 and timestamp 2026-01-01 00:00:00 UTC.",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-rate-limit",
			"status":            "403"})
		return true
	}
	return false
}

func ghError(w http.ResponseWriter, code int, msg, doc string) {
	ghJSON(w, code, map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest/" + doc,
		"status": strconv.Itoa(code)})
}

// fakeSHA is a stable 40-hex id for lab objects that are not blobs.
func fakeSHA(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:20])
}

type ghTreeEntry struct {
	Path string `json:"path"`
	Mode string `json:"mode"`
	Type string `json:"type"`
	SHA  string `json:"sha"`
	Size *int   `json:"size,omitempty"`
	URL  string `json:"url"`
}

func (g *ghServer) routes(mux *http.ServeMux) {
	l := g.l
	api := func(ref ghRef) string { return l.GitHubURL + "repos/" + ref.o.GitHub + "/" + ref.o.Repos[ref.j].Name }
	mux.HandleFunc("GET /repos/{owner}/{repo}/git/trees/{sha}", func(w http.ResponseWriter, r *http.Request) {
		ref, ok := g.repo(r)
		if !ok || (r.PathValue("sha") != repoBranch(ref.o.Repos[ref.j]) && r.PathValue("sha") != g.treeSHA(ref)) {
			ghNotFound(w, "git/trees#get-a-tree")
			return
		}
		files := g.filesOf(ref)
		var entries []ghTreeEntry
		dirs := map[string]bool{}
		recursive := r.URL.Query().Get("recursive") != ""
		for _, p := range sortedPaths(files) {
			for d := path.Dir(p); d != "."; d = path.Dir(d) {
				dirs[d] = true
			}
			if !recursive && strings.Contains(p, "/") {
				continue
			}
			n := len(files[p])
			sha := gitBlobSHA(files[p])
			entries = append(entries, ghTreeEntry{Path: p, Mode: "100644", Type: "blob", SHA: sha, Size: &n,
				URL: api(ref) + "/git/blobs/" + sha})
		}
		for d := range dirs {
			if !recursive && strings.Contains(d, "/") {
				continue
			}
			sha := fakeSHA(ref.o.GitHub, ref.o.Repos[ref.j].Name, d)
			entries = append(entries, ghTreeEntry{Path: d, Mode: "040000", Type: "tree", SHA: sha, URL: api(ref) + "/git/trees/" + sha})
		}
		sortTree(entries)
		sha := g.treeSHA(ref)
		ghJSON(w, http.StatusOK, map[string]any{"sha": sha, "url": api(ref) + "/git/trees/" + sha, "tree": entries, "truncated": false})
	})
	mux.HandleFunc("GET /repos/{owner}/{repo}/contents/{path...}", func(w http.ResponseWriter, r *http.Request) {
		ref, ok := g.repo(r)
		if !ok {
			ghNotFound(w, "repos/contents#get-repository-content")
			return
		}
		p := r.PathValue("path")
		b, ok := g.filesOf(ref)[p]
		if !ok {
			ghNotFound(w, "repos/contents#get-repository-content")
			return
		}
		rp := ref.o.Repos[ref.j]
		sha := gitBlobSHA(b)
		self := api(ref) + "/contents/" + p + "?ref=" + repoBranch(rp)
		html := "https://github.com/" + ref.o.GitHub + "/" + rp.Name + "/blob/" + repoBranch(rp) + "/" + p
		git := api(ref) + "/git/blobs/" + sha
		ghJSON(w, http.StatusOK, map[string]any{"type": "file", "encoding": "base64", "size": len(b), "name": path.Base(p),
			"path": p, "content": wrapBase64(b), "sha": sha, "url": self, "git_url": git, "html_url": html,
			"download_url": "https://raw.githubusercontent.com/" + ref.o.GitHub + "/" + rp.Name + "/" + repoBranch(rp) + "/" + p,
			"_links":       map[string]string{"self": self, "git": git, "html": html}})
	})
	admin := func(w http.ResponseWriter, r *http.Request, doc string) (ghRef, bool) {
		ref, ok := g.repo(r)
		if !ok || !ghAuthed(r) || !ref.o.repoAdmin(ref.o.Repos[ref.j]) {
			ghNotFound(w, doc)
			return ref, false
		}
		return ref, true
	}
	mux.HandleFunc("GET /repos/{owner}/{repo}/private-vulnerability-reporting", func(w http.ResponseWriter, r *http.Request) {
		if ref, ok := admin(w, r, "repos/repos#check-if-private-vulnerability-reporting-is-enabled-for-a-repository"); ok {
			ghJSON(w, http.StatusOK, map[string]bool{"enabled": !ref.o.Repos[ref.j].Spec.NoPVR})
		}
	})
	mux.HandleFunc("GET /repos/{owner}/{repo}/vulnerability-alerts", func(w http.ResponseWriter, r *http.Request) {
		if ref, ok := admin(w, r, "repos/repos#check-if-vulnerability-alerts-are-enabled-for-a-repository"); ok {
			if ref.o.Repos[ref.j].Spec.NoDependabotAlerts {
				ghNotFound(w, "repos/repos#check-if-vulnerability-alerts-are-enabled-for-a-repository")
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("GET /repos/{owner}/{repo}/codeowners/errors", func(w http.ResponseWriter, r *http.Request) {
		ref, ok := g.repo(r)
		if !ok {
			ghNotFound(w, "repos/repos#list-codeowners-errors")
			return
		}
		rp := ref.o.Repos[ref.j]
		co, ok := g.filesOf(ref)[".github/CODEOWNERS"]
		if !ok {
			ghNotFound(w, "repos/repos#list-codeowners-errors")
			return
		}
		errs := []map[string]any{}
		if rp.Spec.CodeownersErrors {
			team := "@" + ref.o.GitHub + "/secret-reviewers"
			errs = append(errs, map[string]any{"line": 2, "column": 3, "kind": "Unknown owner", "source": "* " + team + "\n",
				"suggestion": nil, "path": ".github/CODEOWNERS",
				"message": "Unknown owner on line 2: make sure the team " + team + " exists, is publicly visible, and has write access to the repository\n\n  * " + team + "\n    ^"})
		}
		_ = co
		ghJSON(w, http.StatusOK, map[string]any{"errors": errs})
	})
	mux.HandleFunc("GET /repos/{owner}/{repo}/dependabot/alerts", func(w http.ResponseWriter, r *http.Request) {
		ref, ok := g.repo(r)
		if !ok || !ghAuthed(r) || !ref.o.repoAdmin(ref.o.Repos[ref.j]) {
			ghError(w, http.StatusForbidden, "Resource not accessible by integration", "dependabot/alerts#list-dependabot-alerts-for-a-repository")
			return
		}
		if ref.o.Repos[ref.j].Spec.NoDependabotAlerts {
			ghError(w, http.StatusForbidden, "Dependabot alerts are disabled for this repository.", "dependabot/alerts#list-dependabot-alerts-for-a-repository")
			return
		}
		out := []map[string]any{}
		if ref.o.Repos[ref.j].Spec.OpenCritical && r.URL.Query().Get("state") != "dismissed" {
			created := l.pki.now.Add(-60 * 24 * time.Hour).UTC().Format(time.RFC3339)
			adv := map[string]any{"ghsa_id": "GHSA-9wx4-h78v-vm56", "cve_id": "CVE-2024-35195", "severity": "critical",
				"summary":     "Requests Session object does not verify requests after making first request with verify=False",
				"identifiers": []map[string]string{{"type": "GHSA", "value": "GHSA-9wx4-h78v-vm56"}, {"type": "CVE", "value": "CVE-2024-35195"}}}
			vuln := map[string]any{"package": map[string]string{"ecosystem": "pip", "name": "requests"}, "severity": "critical",
				"vulnerable_version_range": "< 2.32.0", "first_patched_version": map[string]string{"identifier": "2.32.0"}}
			out = append(out, map[string]any{"number": 1, "state": "open",
				"dependency":        map[string]any{"package": map[string]string{"ecosystem": "pip", "name": "requests"}, "manifest_path": "requirements.txt", "scope": "runtime"},
				"security_advisory": adv, "security_vulnerability": vuln,
				"url": api(ref) + "/dependabot/alerts/1", "html_url": "https://github.com/" + ref.o.GitHub + "/" + ref.o.Repos[ref.j].Name + "/security/dependabot/1",
				"created_at": created, "updated_at": created, "dismissed_at": nil, "dismissed_by": nil, "dismissed_reason": nil,
				"dismissed_comment": nil, "fixed_at": nil, "auto_dismissed_at": nil})
		}
		ghJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /repos/{owner}/{repo}/code-scanning/alerts", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := admin(w, r, "code-scanning/code-scanning#list-code-scanning-alerts-for-a-repository"); ok {
			ghJSON(w, http.StatusOK, []any{})
		}
	})
	mux.HandleFunc("GET /repos/{owner}/{repo}/branches/{branch}/protection", func(w http.ResponseWriter, r *http.Request) {
		ref, ok := admin(w, r, "branches/branch-protection#get-branch-protection")
		if !ok {
			return
		}
		rp := ref.o.Repos[ref.j]
		s := rp.Spec
		if r.PathValue("branch") != repoBranch(rp) || s.NoProtection || s.RulesetProtection {
			ghError(w, http.StatusNotFound, "Branch not protected", "branches/branch-protection#get-branch-protection")
			return
		}
		u := api(ref) + "/branches/" + repoBranch(rp) + "/protection"
		en := func(sub string, b bool) map[string]any { return map[string]any{"url": u + "/" + sub, "enabled": b} }
		ghJSON(w, http.StatusOK, map[string]any{"url": u,
			"required_status_checks": map[string]any{"url": u + "/required_status_checks", "strict": true, "contexts": []string{"test"},
				"contexts_url": u + "/required_status_checks/contexts", "checks": []map[string]any{{"context": "test", "app_id": nil}}},
			"required_pull_request_reviews": map[string]any{"url": u + "/required_pull_request_reviews", "dismiss_stale_reviews": true,
				"require_code_owner_reviews": !s.WeakProtection, "require_last_push_approval": false, "required_approving_review_count": 1},
			"required_signatures": en("required_signatures", true), "enforce_admins": en("enforce_admins", !s.WeakProtection),
			"required_linear_history": map[string]bool{"enabled": false}, "allow_force_pushes": map[string]bool{"enabled": false},
			"allow_deletions": map[string]bool{"enabled": false}, "block_creations": map[string]bool{"enabled": false},
			"required_conversation_resolution": map[string]bool{"enabled": false}, "lock_branch": map[string]bool{"enabled": false},
			"allow_fork_syncing": map[string]bool{"enabled": false}})
	})
	mux.HandleFunc("GET /repos/{owner}/{repo}/pages", func(w http.ResponseWriter, r *http.Request) {
		ref, ok := g.repo(r)
		if !ok || !ref.o.Repos[ref.j].HasPages {
			ghNotFound(w, "pages/pages#get-a-apiname-pages-site")
			return
		}
		rp := ref.o.Repos[ref.j]
		var cname any
		html := "https://" + strings.ToLower(ref.o.GitHub) + ".github.io/" + rp.Name + "/"
		if c := rp.Spec.PagesCNAME; c != "" {
			cname, html = c, "https://"+c+"/"
		}
		ghJSON(w, http.StatusOK, map[string]any{"url": api(ref) + "/pages", "status": "built", "cname": cname,
			"custom_404": false, "html_url": html, "build_type": "legacy",
			"source": map[string]string{"branch": repoBranch(rp), "path": "/"}, "public": true, "https_enforced": true})
	})
	mux.HandleFunc("GET /repos/{owner}/{repo}/branches/{branch}", func(w http.ResponseWriter, r *http.Request) {
		ref, ok := g.repo(r)
		if !ok || r.PathValue("branch") != repoBranch(ref.o.Repos[ref.j]) {
			ghError(w, http.StatusNotFound, "Branch not found", "branches/branches#get-a-branch")
			return
		}
		rp := ref.o.Repos[ref.j]
		b := repoBranch(rp)
		sha := fakeSHA(ref.o.GitHub, rp.Name, "commit", "0")
		protected := !rp.Spec.NoProtection
		out := map[string]any{"name": b, "protected": protected,
			"commit":         map[string]any{"sha": sha, "url": api(ref) + "/commits/" + sha},
			"_links":         map[string]string{"self": api(ref) + "/branches/" + b, "html": "https://github.com/" + ref.o.GitHub + "/" + rp.Name + "/tree/" + b},
			"protection":     map[string]any{"enabled": protected && !rp.Spec.RulesetProtection, "required_status_checks": map[string]any{"enforcement_level": "off", "contexts": []string{}, "checks": []any{}}},
			"protection_url": api(ref) + "/branches/" + b + "/protection"}
		ghJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /repos/{owner}/{repo}/rules/branches/{branch}", func(w http.ResponseWriter, r *http.Request) {
		ref, ok := g.repo(r)
		if !ok {
			ghNotFound(w, "repos/rules#get-rules-for-a-branch")
			return
		}
		rp := ref.o.Repos[ref.j]
		out := []map[string]any{}
		if rp.Spec.RulesetProtection && r.PathValue("branch") == repoBranch(rp) {
			src := map[string]any{"ruleset_source_type": "Repository", "ruleset_source": ref.o.GitHub + "/" + rp.Name, "ruleset_id": 4242}
			rule := func(typ string, params map[string]any) map[string]any {
				m := map[string]any{"type": typ}
				for k, v := range src {
					m[k] = v
				}
				if params != nil {
					m["parameters"] = params
				}
				return m
			}
			out = append(out, rule("deletion", nil), rule("non_fast_forward", nil), rule("required_signatures", nil),
				rule("pull_request", map[string]any{"dismiss_stale_reviews_on_push": true, "require_code_owner_review": true,
					"require_last_push_approval": false, "required_approving_review_count": 1, "required_review_thread_resolution": false}),
				rule("required_status_checks", map[string]any{"strict_required_status_checks_policy": true,
					"required_status_checks": []map[string]any{{"context": "test"}}}))
		}
		ghJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /repos/{owner}/{repo}/commits", func(w http.ResponseWriter, r *http.Request) {
		ref, ok := g.repo(r)
		if !ok {
			ghNotFound(w, "commits/commits#list-commits")
			return
		}
		rp := ref.o.Repos[ref.j]
		ago := rp.PushedAgo
		if ago == 0 {
			ago = 24 * time.Hour
		}
		out := []map[string]any{}
		tree := g.treeSHA(ref)
		for i := range 5 {
			sha := fakeSHA(ref.o.GitHub, rp.Name, "commit", strconv.Itoa(i))
			when := l.pki.now.Add(-ago - time.Duration(i)*24*time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
			ver := map[string]any{"verified": true, "reason": "valid",
				"signature": "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----\n", "payload": "tree " + tree + "\n"}
			if rp.Spec.UnsignedCommits && i%2 == 1 {
				ver = map[string]any{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil}
			}
			who := map[string]string{"name": "Lab Developer", "email": "developer@" + ref.o.Domains[0], "date": when}
			var parents []map[string]string
			if i < 4 {
				p := fakeSHA(ref.o.GitHub, rp.Name, "commit", strconv.Itoa(i+1))
				parents = append(parents, map[string]string{"sha": p, "url": api(ref) + "/commits/" + p})
			}
			out = append(out, map[string]any{"sha": sha, "node_id": "C_" + sha[:20],
				"commit": map[string]any{"author": who, "committer": who, "message": fmt.Sprintf("Change %d", 5-i),
					"tree": map[string]string{"sha": tree, "url": api(ref) + "/git/trees/" + tree},
					"url":  api(ref) + "/git/commits/" + sha, "comment_count": 0, "verification": ver},
				"url": api(ref) + "/commits/" + sha, "html_url": "https://github.com/" + ref.o.GitHub + "/" + rp.Name + "/commit/" + sha,
				"author": nil, "committer": nil, "parents": parents})
		}
		ghJSON(w, http.StatusOK, out)
	})
}

func (g *ghServer) treeSHA(ref ghRef) string {
	return fakeSHA(ref.o.GitHub, ref.o.Repos[ref.j].Name, "tree")
}

func sortTree(e []ghTreeEntry) {
	for i := 1; i < len(e); i++ {
		for j := i; j > 0 && e[j].Path < e[j-1].Path; j-- {
			e[j], e[j-1] = e[j-1], e[j]
		}
	}
}

// wrapBase64 encodes as the contents API does: base64 in lines of 60.
func wrapBase64(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 60 {
		out.WriteString(s[:60] + "\n")
		s = s[60:]
	}
	out.WriteString(s + "\n")
	return out.String()
}
