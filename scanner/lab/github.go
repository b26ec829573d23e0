package lab

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The fake GitHub REST API: enough of api.github.com for go-github to list
// an organisation's repositories (with Link pagination) and read each one.
// GitHubURL ends in /api/v3/ so that go-github's WithEnterpriseURLs keeps it
// as it is; the same routes are served without the prefix too.

const ghEpoch = "2021-03-01T10:00:00Z" // creation time of every lab org and repo

type ghOwner struct {
	Login      string `json:"login"`
	ID         int64  `json:"id"`
	NodeID     string `json:"node_id"`
	AvatarURL  string `json:"avatar_url"`
	GravatarID string `json:"gravatar_id"`
	URL        string `json:"url"`
	HTMLURL    string `json:"html_url"`
	ReposURL   string `json:"repos_url"`
	Type       string `json:"type"`
	SiteAdmin  bool   `json:"site_admin"`
}

type ghOrg struct {
	Login                   string  `json:"login"`
	ID                      int64   `json:"id"`
	NodeID                  string  `json:"node_id"`
	URL                     string  `json:"url"`
	ReposURL                string  `json:"repos_url"`
	EventsURL               string  `json:"events_url"`
	HooksURL                string  `json:"hooks_url"`
	IssuesURL               string  `json:"issues_url"`
	MembersURL              string  `json:"members_url"`
	PublicMembersURL        string  `json:"public_members_url"`
	AvatarURL               string  `json:"avatar_url"`
	Description             string  `json:"description"`
	Name                    string  `json:"name"`
	Company                 *string `json:"company"`
	Blog                    string  `json:"blog"`
	Location                string  `json:"location"`
	Email                   string  `json:"email"`
	TwitterUsername         *string `json:"twitter_username"`
	IsVerified              bool    `json:"is_verified"`
	HasOrganizationProjects bool    `json:"has_organization_projects"`
	HasRepositoryProjects   bool    `json:"has_repository_projects"`
	PublicRepos             int     `json:"public_repos"`
	PublicGists             int     `json:"public_gists"`
	Followers               int     `json:"followers"`
	Following               int     `json:"following"`
	HTMLURL                 string  `json:"html_url"`
	CreatedAt               string  `json:"created_at"`
	UpdatedAt               string  `json:"updated_at"`
	ArchivedAt              *string `json:"archived_at"`
	Type                    string  `json:"type"`
}

type ghLicense struct {
	Key    string `json:"key"`
	Name   string `json:"name"`
	SPDXID string `json:"spdx_id"`
	URL    string `json:"url"`
	NodeID string `json:"node_id"`
}

type ghRepo struct {
	ID                       int64      `json:"id"`
	NodeID                   string     `json:"node_id"`
	Name                     string     `json:"name"`
	FullName                 string     `json:"full_name"`
	Private                  bool       `json:"private"`
	Owner                    ghOwner    `json:"owner"`
	HTMLURL                  string     `json:"html_url"`
	Description              *string    `json:"description"`
	Fork                     bool       `json:"fork"`
	URL                      string     `json:"url"`
	CreatedAt                string     `json:"created_at"`
	UpdatedAt                string     `json:"updated_at"`
	PushedAt                 string     `json:"pushed_at"`
	GitURL                   string     `json:"git_url"`
	SSHURL                   string     `json:"ssh_url"`
	CloneURL                 string     `json:"clone_url"`
	SvnURL                   string     `json:"svn_url"`
	Homepage                 *string    `json:"homepage"`
	Size                     int        `json:"size"`
	StargazersCount          int        `json:"stargazers_count"`
	WatchersCount            int        `json:"watchers_count"`
	Language                 *string    `json:"language"`
	HasIssues                bool       `json:"has_issues"`
	HasProjects              bool       `json:"has_projects"`
	HasDownloads             bool       `json:"has_downloads"`
	HasWiki                  bool       `json:"has_wiki"`
	HasPages                 bool       `json:"has_pages"`
	HasDiscussions           bool       `json:"has_discussions"`
	ForksCount               int        `json:"forks_count"`
	MirrorURL                *string    `json:"mirror_url"`
	Archived                 bool       `json:"archived"`
	Disabled                 bool       `json:"disabled"`
	OpenIssuesCount          int        `json:"open_issues_count"`
	License                  *ghLicense `json:"license"`
	AllowForking             bool       `json:"allow_forking"`
	IsTemplate               bool       `json:"is_template"`
	WebCommitSignoffRequired bool       `json:"web_commit_signoff_required"`
	Topics                   []string   `json:"topics"`
	Visibility               string     `json:"visibility"`
	Forks                    int        `json:"forks"`
	OpenIssues               int        `json:"open_issues"`
	Watchers                 int        `json:"watchers"`
	DefaultBranch            string     `json:"default_branch"`
	// Only on GET /repos/{owner}/{repo}.
	Organization     *ghOwner `json:"organization,omitempty"`
	NetworkCount     *int     `json:"network_count,omitempty"`
	SubscribersCount *int     `json:"subscribers_count,omitempty"`
}

var licenseNames = map[string]string{"MIT": "MIT License", "Apache-2.0": "Apache License 2.0",
	"OGL-UK-3.0": "Open Government Licence v3.0", "GPL-3.0": "GNU General Public License v3.0"}

func nodeID(prefix string, id int64) string {
	return prefix + base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id, 10)))
}

func (l *Lab) startGitHub() error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("lab: listen github: %w", err)
	}
	l.GitHubURL = "http://" + ln.Addr().String() + "/api/v3/"
	l.infra[portOf(ln.Addr().String())] = true
	byLogin := map[string]*labOrg{}
	for i := range l.orgs {
		if o := &l.orgs[i]; o.GitHub != "" {
			byLogin[strings.ToLower(o.GitHub)] = o
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orgs/{org}", func(w http.ResponseWriter, r *http.Request) {
		o := byLogin[strings.ToLower(r.PathValue("org"))]
		if o == nil {
			ghNotFound(w, "orgs/orgs#get-an-organization")
			return
		}
		ghJSON(w, http.StatusOK, l.ghOrg(o))
	})
	mux.HandleFunc("GET /orgs/{org}/repos", func(w http.ResponseWriter, r *http.Request) {
		o := byLogin[strings.ToLower(r.PathValue("org"))]
		if o == nil {
			ghNotFound(w, "repos/repos#list-organization-repositories")
			return
		}
		perPage, page := pageArgs(r)
		n := len(o.Repos)
		last := max(1, (n+perPage-1)/perPage)
		from, to := min(n, (page-1)*perPage), min(n, page*perPage)
		out := make([]ghRepo, 0, to-from)
		for j := from; j < to; j++ {
			out = append(out, l.ghRepo(o, j, false))
		}
		link := func(p int, rel string) string {
			return fmt.Sprintf(`<%sorgs/%s/repos?per_page=%d&page=%d>; rel="%s"`, l.GitHubURL, o.GitHub, perPage, p, rel)
		}
		var links []string
		if page > 1 {
			links = append(links, link(min(page-1, last), "prev"))
		}
		if page < last {
			links = append(links, link(page+1, "next"), link(last, "last"))
		}
		if page > 1 {
			links = append(links, link(1, "first"))
		}
		if len(links) > 0 {
			w.Header().Set("Link", strings.Join(links, ", "))
		}
		ghJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /repos/{owner}/{repo}", func(w http.ResponseWriter, r *http.Request) {
		o := byLogin[strings.ToLower(r.PathValue("owner"))]
		if o != nil {
			for j := range o.Repos {
				if strings.EqualFold(o.Repos[j].Name, r.PathValue("repo")) {
					ghJSON(w, http.StatusOK, l.ghRepo(o, j, true))
					return
				}
			}
		}
		ghNotFound(w, "repos/repos#get-a-repository")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { ghNotFound(w, "rest") })
	reset := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	l.serve(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-GitHub-Media-Type", "github.v3; format=json")
		h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", "4999")
		h.Set("X-RateLimit-Reset", reset)
		h.Set("X-RateLimit-Used", "1")
		h.Set("X-RateLimit-Resource", "core")
		if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok {
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = p, ""
			r = r2
		}
		mux.ServeHTTP(w, r)
	})}, ln)
	return nil
}

// pageArgs reads per_page (default 30, at most 100) and page (from 1).
func pageArgs(r *http.Request) (perPage, page int) {
	perPage, page = 30, 1
	if v, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 0 {
		page = v
	}
	return perPage, page
}

func ghJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b)
}

func ghNotFound(w http.ResponseWriter, doc string) {
	ghJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found",
		"documentation_url": "https://docs.github.com/rest/" + doc, "status": "404"})
}

func (l *Lab) ghOwner(o *labOrg) ghOwner {
	return ghOwner{Login: o.GitHub, ID: o.ghID, NodeID: nodeID("O_", o.ghID),
		AvatarURL: fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", o.ghID),
		URL:       l.GitHubURL + "users/" + o.GitHub, HTMLURL: "https://github.com/" + o.GitHub,
		ReposURL: l.GitHubURL + "users/" + o.GitHub + "/repos", Type: "Organization"}
}

func (l *Lab) ghOrg(o *labOrg) ghOrg {
	base := l.GitHubURL + "orgs/" + o.GitHub
	blog, email := "", ""
	if len(o.Domains) > 0 {
		blog, email = "https://www."+o.Domains[0], "domainmanagement@"+o.Domains[0]
	}
	return ghOrg{Login: o.GitHub, ID: o.ghID, NodeID: nodeID("O_", o.ghID), URL: base,
		ReposURL: base + "/repos", EventsURL: base + "/events", HooksURL: base + "/hooks",
		IssuesURL: base + "/issues", MembersURL: base + "/members{/member}",
		PublicMembersURL: base + "/public_members{/member}",
		AvatarURL:        fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", o.ghID),
		Description:      "Open source from " + o.Name, Name: o.Name, Blog: blog, Location: "England",
		Email: email, HasOrganizationProjects: true, HasRepositoryProjects: true,
		PublicRepos: len(o.Repos), HTMLURL: "https://github.com/" + o.GitHub,
		CreatedAt: ghEpoch, UpdatedAt: l.pki.now.Add(-48 * time.Hour).Format(time.RFC3339), Type: "Organization"}
}

func (l *Lab) ghRepo(o *labOrg, j int, full bool) ghRepo {
	rp := o.Repos[j]
	id := o.ghID*1000 + int64(j) + 1
	fullName := o.GitHub + "/" + rp.Name
	api := l.GitHubURL + "repos/" + fullName
	ago := rp.PushedAgo
	if ago == 0 {
		ago = 24 * time.Hour
	}
	pushed := l.pki.now.Add(-ago).Truncate(time.Second).Format(time.RFC3339)
	branch := rp.DefaultBranch
	if branch == "" {
		branch = "main"
	}
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	var lic *ghLicense
	if rp.License != "" {
		name := licenseNames[rp.License]
		if name == "" {
			name = rp.License
		}
		key := strings.ToLower(rp.License)
		lic = &ghLicense{Key: key, Name: name, SPDXID: rp.License,
			URL: l.GitHubURL + "licenses/" + key, NodeID: "L_" + key}
	}
	topics := rp.Topics
	if topics == nil {
		topics = []string{}
	}
	out := ghRepo{ID: id, NodeID: nodeID("R_", id), Name: rp.Name, FullName: fullName,
		Owner: l.ghOwner(o), HTMLURL: "https://github.com/" + fullName, Description: str(rp.Description),
		Fork: rp.Fork, URL: api, CreatedAt: ghEpoch, UpdatedAt: pushed, PushedAt: pushed,
		GitURL: "git://github.com/" + fullName + ".git", SSHURL: "git@github.com:" + fullName + ".git",
		CloneURL: "https://github.com/" + fullName + ".git", SvnURL: "https://github.com/" + fullName,
		Homepage: str(rp.Homepage), Size: 100 + 37*j, Language: str(rp.Language),
		HasIssues: true, HasProjects: true, HasDownloads: true, HasWiki: false, HasPages: rp.HasPages,
		Archived: rp.Archived, License: lic, AllowForking: true, Topics: topics, Visibility: "public",
		DefaultBranch: branch}
	if full {
		org := l.ghOwner(o)
		zero := 0
		out.Organization, out.NetworkCount, out.SubscribersCount = &org, &zero, &zero
	}
	return out
}
