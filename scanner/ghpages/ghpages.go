// Package ghpages finds the custom domains of an organisation's GitHub
// Pages sites, for discovery (a discover.NameSource): for each repository
// of its GitHub organisations that has Pages (has_pages), the Pages site's
// publishing source (GET /repos/{owner}/{repo}/pages: branch and folder)
// and the CNAME file there, which is what GitHub serves the site under.
// Requests go through the run's GitHub client, so its ETag cache and
// rate-limit handling apply, and the repository list is the one
// discovery already fetched.
package ghpages

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/nhsx/posture/scanner/estate"
)

// Source is the Pages CNAME name source.
type Source struct {
	GitHub *github.Client
	// MaxRepos bounds the repositories listed per GitHub organisation
	// (0: 1000).
	MaxRepos int
}

// Name implements discover.NameSource.
func (Source) Name() string { return "pages" }

// maxCNAME bounds a CNAME file: one host name.
const maxCNAME = 1024

// Names implements discover.NameSource.
func (s Source) Names(ctx context.Context, org estate.Organisation) ([]string, error) {
	if s.GitHub == nil {
		return nil, nil
	}
	limit := s.MaxRepos
	if limit <= 0 {
		limit = 1000
	}
	var out []string
	var errs []error
	for _, login := range org.GitHub {
		opt := &github.RepositoryListByOrgOptions{Type: "public", ListOptions: github.ListOptions{PerPage: 100}}
		n := 0
	pages:
		for {
			repos, resp, err := s.GitHub.Repositories.ListByOrg(ctx, login, opt)
			if err != nil {
				errs = append(errs, fmt.Errorf("pages: list %s: %w", login, err))
				break
			}
			for _, r := range repos {
				if n++; n > limit {
					break pages
				}
				if !r.GetHasPages() || r.GetArchived() {
					continue
				}
				name, err := s.cname(ctx, r.GetOwner().GetLogin(), r.GetName(), r.GetDefaultBranch())
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if name != "" {
					out = append(out, name)
				}
			}
			if resp.NextPage == 0 {
				break
			}
			opt.Page = resp.NextPage
		}
	}
	return out, errors.Join(errs...)
}

// cname reads the CNAME file of a repository's Pages source ("" when there
// is none).
func (s Source) cname(ctx context.Context, owner, repo, branch string) (string, error) {
	dir := ""
	pages, resp, err := s.GitHub.Repositories.GetPagesInfo(ctx, owner, repo)
	switch {
	case err == nil && pages.GetSource() != nil:
		if b := pages.GetSource().GetBranch(); b != "" {
			branch = b
		}
		dir = strings.Trim(pages.GetSource().GetPath(), "/")
	case resp != nil && resp.StatusCode == http.StatusNotFound:
		// No Pages site after all (or the API hides it): the default
		// branch's root is where a CNAME file would be.
	case err != nil:
		return "", fmt.Errorf("pages: %s/%s: %w", owner, repo, err)
	}
	fc, _, resp, err := s.GitHub.Repositories.GetContents(ctx, owner, repo, path.Join(dir, "CNAME"),
		&github.RepositoryContentGetOptions{Ref: branch})
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("pages: %s/%s CNAME: %w", owner, repo, err)
	}
	if fc == nil || fc.GetSize() > maxCNAME {
		return "", nil
	}
	text, err := fc.GetContent()
	if err != nil {
		return "", fmt.Errorf("pages: %s/%s CNAME: %w", owner, repo, err)
	}
	// The file holds one host name (GitHub reads its first line).
	first, _, _ := strings.Cut(text, "\n")
	return strings.ToLower(strings.TrimSpace(first)), nil
}
