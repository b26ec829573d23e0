package lab

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/scanner/ghhttp"
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
	// Only for an owner of the organisation.
	TotalPrivateRepos                   *int    `json:"total_private_repos,omitempty"`
	OwnedPrivateRepos                   *int    `json:"owned_private_repos,omitempty"`
	PrivateGists                        *int    `json:"private_gists,omitempty"`
	DiskUsage                           *int    `json:"disk_usage,omitempty"`
	Collaborators                       *int    `json:"collaborators,omitempty"`
	BillingEmail                        *string `json:"billing_email,omitempty"`
	DefaultRepositoryPermission         *string `json:"default_repository_permission,omitempty"`
	MembersCanCreateRepositories        *bool   `json:"members_can_create_repositories,omitempty"`
	TwoFactorRequirementEnabled         *bool   `json:"two_factor_requirement_enabled,omitempty"`
	MembersAllowedRepositoryCreation    *string `json:"members_allowed_repository_creation_type,omitempty"`
	MembersCanCreatePublicRepositories  *bool   `json:"members_can_create_public_repositories,omitempty"`
	MembersCanCreatePrivateRepositories *bool   `json:"members_can_create_private_repositories,omitempty"`
	MembersCanForkPrivateRepositories   *bool   `json:"members_can_fork_private_repositories,omitempty"`
	WebCommitSignoffRequired            *bool   `json:"web_commit_signoff_required,omitempty"`
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
	// Only when authenticated.
	Permissions *ghPermissions `json:"permissions,omitempty"`
	// Only on GET /repos/{owner}/{repo}.
	Organization     *ghOwner `json:"organization,omitempty"`
	NetworkCount     *int     `json:"network_count,omitempty"`
	SubscribersCount *int     `json:"subscribers_count,omitempty"`
	// Only on GET /repos/{owner}/{repo}, for an admin.
	SecurityAndAnalysis map[string]ghStatus `json:"security_and_analysis,omitempty"`
}

type ghPermissions struct {
	Admin    bool `json:"admin"`
	Maintain bool `json:"maintain"`
	Push     bool `json:"push"`
	Triage   bool `json:"triage"`
	Pull     bool `json:"pull"`
}

type ghStatus struct {
	Status string `json:"status"`
}

var licenseNames = map[string]string{"MIT": "MIT License", "Apache-2.0": "Apache License 2.0",
	"OGL-UK-3.0": "Open Government Licence v3.0", "GPL-3.0": "GNU General Public License v3.0", "NOASSERTION": "Other"}

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
	gh := &ghServer{l: l, byLogin: map[string]*labOrg{}, repos: map[string]ghRef{}, fired: map[string]bool{},
		files: map[string]map[string][]byte{}}
	for i := range l.orgs {
		if o := &l.orgs[i]; o.GitHub != "" {
			gh.byLogin[strings.ToLower(o.GitHub)] = o
			for j := range o.Repos {
				gh.repos[strings.ToLower(o.GitHub+"/"+o.Repos[j].Name)] = ghRef{o, j}
			}
		}
	}
	l.gh = gh
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orgs/{org}", func(w http.ResponseWriter, r *http.Request) {
		o := gh.byLogin[strings.ToLower(r.PathValue("org"))]
		if o == nil {
			ghNotFound(w, "orgs/orgs#get-an-organization")
			return
		}
		ghJSON(w, http.StatusOK, l.ghOrg(o, ghAuthed(r)))
	})
	mux.HandleFunc("GET /orgs/{org}/repos", func(w http.ResponseWriter, r *http.Request) {
		o := gh.byLogin[strings.ToLower(r.PathValue("org"))]
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
			out = append(out, l.ghRepo(o, j, false, ghAuthed(r)))
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
		if ref, ok := gh.repo(r); ok {
			ghJSON(w, http.StatusOK, l.ghRepo(ref.o, ref.j, true, ghAuthed(r)))
			return
		}
		ghNotFound(w, "repos/repos#get-a-repository")
	})
	gh.routes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { ghNotFound(w, "rest") })
	// Git's smart HTTP at the clone URLs (git.go), beside the API.
	api := gh.wrap(mux)
	l.serve(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.serveGit(w, r) {
			api.ServeHTTP(w, r)
		}
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

func (l *Lab) ghOrg(o *labOrg, authed bool) ghOrg {
	base := l.GitHubURL + "orgs/" + o.GitHub
	blog, email := "", ""
	if len(o.Domains) > 0 {
		blog, email = "https://www."+o.Domains[0], "domainmanagement@"+o.Domains[0]
	}
	out := ghOrg{Login: o.GitHub, ID: o.ghID, NodeID: nodeID("O_", o.ghID), URL: base,
		ReposURL: base + "/repos", EventsURL: base + "/events", HooksURL: base + "/hooks",
		IssuesURL: base + "/issues", MembersURL: base + "/members{/member}",
		PublicMembersURL: base + "/public_members{/member}",
		AvatarURL:        fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", o.ghID),
		Description:      "Open source from " + o.Name, Name: o.Name, Blog: blog, Location: "England",
		Email: email, HasOrganizationProjects: true, HasRepositoryProjects: true,
		PublicRepos: len(o.Repos), HTMLURL: "https://github.com/" + o.GitHub,
		CreatedAt: ghEpoch, UpdatedAt: l.pki.now.Add(-48 * time.Hour).Format(time.RFC3339), Type: "Organization"}
	if authed && o.mode() != orgHidden {
		// What an owner sees (GET /orgs/{org} for an owner).
		zero, usage, perm, weak := 0, 10240, "none", o.mode() == orgWeak
		if weak {
			perm = "write"
		}
		yes, no, all := true, false, "all"
		twoFA, fork := !weak, weak
		out.TotalPrivateRepos, out.OwnedPrivateRepos, out.PrivateGists, out.DiskUsage, out.Collaborators = &zero, &zero, &zero, &usage, &zero
		out.BillingEmail = &email
		out.DefaultRepositoryPermission, out.TwoFactorRequirementEnabled, out.MembersCanForkPrivateRepositories = &perm, &twoFA, &fork
		out.MembersCanCreateRepositories, out.MembersAllowedRepositoryCreation = &yes, &all
		out.MembersCanCreatePublicRepositories, out.MembersCanCreatePrivateRepositories = &yes, &yes
		out.WebCommitSignoffRequired = &no
	}
	return out
}

func (l *Lab) ghRepo(o *labOrg, j int, full, authed bool) ghRepo {
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
		CloneURL: l.cloneURL(fullName), SvnURL: "https://github.com/" + fullName,
		Homepage: str(rp.Homepage), Size: 100 + 37*j, Language: str(rp.Language),
		HasIssues: true, HasProjects: true, HasDownloads: true, HasWiki: false, HasPages: rp.HasPages,
		Archived: rp.Archived, License: lic, AllowForking: true, Topics: topics, Visibility: "public",
		DefaultBranch: branch}
	if rp.License == "NOASSERTION" {
		out.License = &ghLicense{Key: "other", Name: "Other", SPDXID: "NOASSERTION", NodeID: "MDc6TGljZW5zZTA="}
	}
	admin := authed && o.repoAdmin(rp)
	if authed {
		out.Permissions = &ghPermissions{Admin: admin, Maintain: admin, Push: admin, Triage: admin, Pull: true}
	}
	if full {
		org := l.ghOwner(o)
		zero := 0
		out.Organization, out.NetworkCount, out.SubscribersCount = &org, &zero, &zero
		if admin {
			on := func(b bool) ghStatus {
				if b {
					return ghStatus{"enabled"}
				}
				return ghStatus{"disabled"}
			}
			out.SecurityAndAnalysis = map[string]ghStatus{
				"secret_scanning":                       on(!rp.Spec.NoSecretScanning),
				"secret_scanning_push_protection":       on(!rp.Spec.NoSecretScanning),
				"dependabot_security_updates":           on(!rp.Spec.NoDependabotAlerts),
				"secret_scanning_non_provider_patterns": on(false),
				"secret_scanning_validity_checks":       on(false),
			}
		}
	}
	return out
}

// cloneURL is a lab repository's clone_url: on the API's own host, as on
// GitHub Enterprise (the secrets family's git server serves it).
func (l *Lab) cloneURL(fullName string) string {
	return strings.TrimSuffix(l.GitHubURL, "api/v3/") + fullName + ".git"
}

// GitHubClient is an HTTP client for the lab GitHub as a scan reaches it:
// through the GitHub transport (ETags, rate limits: the lab scripts some)
// with the lab's token, over dial.
func (l *Lab) GitHubClient(cache ghhttp.Cache) *http.Client {
	base := &http.Transport{DialContext: l.Dial, MaxIdleConnsPerHost: 8, IdleConnTimeout: 5 * time.Second}
	return &http.Client{Transport: ghToken{&ghhttp.Transport{Base: base, Cache: cache, MaxWait: time.Minute}}}
}

// ghToken adds the lab token to every request.
type ghToken struct{ rt http.RoundTripper }

func (t ghToken) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+GitHubToken)
	return t.rt.RoundTrip(r)
}

// withGitHub adds the lab GitHub, as the "github" service, to services.
func (l *Lab) withGitHub(services map[string]check.Service) map[string]check.Service {
	u, err := url.Parse(l.GitHubURL)
	if err != nil || l.GitHubURL == "" {
		return services
	}
	if services == nil {
		services = map[string]check.Service{}
	}
	services["github"] = check.Service{URL: u, Client: l.GitHubClient(nil)}
	return services
}
