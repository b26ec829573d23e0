package ghpages_test

import (
	"context"
	"net/url"
	"slices"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/ghpages"
	"github.com/nhsx/posture/scanner/lab"
)

// TestPagesSourceFindsTheLabsCustomDomains: every CNAME of a lab Pages
// site, under the organisation that publishes it, and nothing else.
func TestPagesSourceFindsTheLabsCustomDomains(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, err := estate.Parse("lab.yaml", l.EstateYAML())
	if err != nil {
		t.Fatal(err)
	}
	gh := github.NewClient(l.GitHubClient(nil))
	gh.BaseURL, _ = url.Parse(l.GitHubURL)
	src := ghpages.Source{GitHub: gh}
	want := l.PagesNames()
	if len(want) == 0 {
		t.Fatal("the lab has no Pages site with a custom domain")
	}
	found := 0
	for _, o := range e.Organisations {
		names, err := src.Names(context.Background(), o)
		if err != nil {
			t.Fatalf("%s: %v", o.Code, err)
		}
		var w []string
		for _, login := range o.GitHub {
			w = append(w, want[login]...)
		}
		slices.Sort(names)
		slices.Sort(w)
		if !slices.Equal(names, w) {
			t.Errorf("%s (%v): found %v, want %v", o.Code, o.GitHub, names, w)
		}
		found += len(names)
	}
	if found == 0 {
		t.Error("no names found")
	}
}
