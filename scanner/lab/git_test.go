package lab

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

func gitLabCases() []Case {
	var cs []Case
	for _, c := range gitCases() {
		c.Family = secretsFamily.Name
		cs = append(cs, c)
	}
	return cs
}

// TestGitServerServesEveryLabRepositoryAsTheAPIDescribesIt clones every
// lab repository over smart HTTP (go-git's client, and git itself when it
// is installed): the default branch's tip holds the files the API serves,
// and the secrets cases have their history before it.
func TestGitServerServesEveryLabRepositoryAsTheAPIDescribesIt(t *testing.T) {
	l, err := Start(context.Background(), Config{cases: gitLabCases()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.serveGit(w, r) {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	trees := l.RepoTrees()
	if len(trees) == 0 {
		t.Fatal("the lab has no repositories")
	}
	histories := 0
	for _, rt := range trees {
		r, err := git.Clone(memory.NewStorage(), nil, &git.CloneOptions{URL: srv.URL + "/" + rt.Owner + "/" + rt.Name + ".git",
			ReferenceName: plumbing.NewBranchReferenceName(rt.DefaultBranch), SingleBranch: true})
		if err != nil {
			t.Fatalf("clone %s/%s: %v", rt.Owner, rt.Name, err)
		}
		head, err := r.Head()
		if err != nil {
			t.Fatal(err)
		}
		c, _ := r.CommitObject(head.Hash())
		tree, _ := c.Tree()
		for p, want := range rt.Files {
			f, err := tree.File(p)
			if err != nil {
				t.Errorf("%s/%s: %s is not at the tip", rt.Owner, rt.Name, p)
				continue
			}
			if got, _ := f.Contents(); got != string(want) {
				t.Errorf("%s/%s: %s differs from the API's", rt.Owner, rt.Name, p)
			}
		}
		n := 0
		it, _ := r.Log(&git.LogOptions{From: head.Hash()})
		it.ForEach(func(*object.Commit) error { n++; return nil })
		hist, _, _ := gitHistory(gitHistOf(rt.Name))
		if n != len(hist)+1 {
			t.Errorf("%s/%s: %d commits, want %d", rt.Owner, rt.Name, n, len(hist)+1)
		}
		if len(hist) > 0 {
			histories++
		}
	}
	if histories != len(gitCases()) {
		t.Errorf("%d repositories with a history, want one per secrets case (%d)", histories, len(gitCases()))
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Log("git is not installed: the lab's server is not checked against git's own client")
		return
	}
	for _, rt := range trees {
		if gitHistOf(rt.Name) != gitHistDecoys {
			continue
		}
		dir := filepath.Join(t.TempDir(), "c")
		cmd := exec.Command("git", "clone", "--quiet", srv.URL+"/"+rt.Owner+"/"+rt.Name+".git", dir)
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git clone: %v\n%s", err, out)
		}
		out, err := exec.Command("git", "-C", dir, "branch", "-a").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "wip/release-token") {
			t.Errorf("git sees branches %q (%v), want the side branch too", out, err)
		}
	}
}
