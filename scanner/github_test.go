package scanner_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/scanner"
	"github.com/nhsx/posture/scanner/lab"
)

// TestSecondNightOnUnchangedGitHubSpendsNoRateLimit runs the repository and
// organisation families twice through the whole pipeline (discovery's
// repository listing included) with the ETag cache in the database: the
// second run is charged nothing for a resource the lab GitHub still holds
// unchanged (counted at the lab server), and judges the same.
func TestSecondNightOnUnchangedGitHubSpendsNoRateLimit(t *testing.T) {
	t.Parallel()
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st := openDB(t, filepath.Join(t.TempDir(), "p.db"))
	run := func() map[string]check.Outcome {
		cfg := labConfig(t, l)
		gh := github.NewClient(l.GitHubClient(st)) // the cache is the database
		gh.BaseURL = mustURL(t, l.GitHubURL)
		cfg.GitHub, cfg.Families = gh, []string{"repo", "org"}
		stats, err := scanner.Run(context.Background(), st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return worst(t, st, stats.RunID)
	}
	first := run()
	_, spent1, ok1 := l.GitHubRequests()
	second := run()
	total2, spent2, ok2 := l.GitHubRequests()
	t.Logf("requests %d; first run charged %d; second run charged %d, %d of them for a resource", total2, spent1, spent2-spent1, ok2-ok1)
	if ok2 != ok1 {
		t.Errorf("the second run was charged %d requests for unchanged resources, want 0", ok2-ok1)
	}
	repos := 0
	for k, o := range first {
		if second[k] != o {
			t.Errorf("%s: %s, then %s", k, o, second[k])
		}
		if len(k) > 5 && k[:5] == "repo:" {
			repos++
		}
	}
	if repos == 0 {
		t.Fatal("no repository was judged")
	}
}
