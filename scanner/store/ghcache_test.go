package store

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
)

func TestGitHubCacheKeepsTheLatestResponse(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, _, ok, err := s.GitHubCacheGet(ctx, "k"); ok || err != nil {
		t.Fatalf("empty cache: ok %v, err %v", ok, err)
	}
	for _, body := range []string{`{"a":1}`, `{"a":2}`} {
		h := http.Header{"Link": {`<x>; rel="next"`}}
		if err := s.GitHubCachePut(ctx, "k", `W/"`+body+`"`, h, []byte(body)); err != nil {
			t.Fatal(err)
		}
		etag, gh, b, ok, err := s.GitHubCacheGet(ctx, "k")
		if err != nil || !ok || string(b) != body || etag != `W/"`+body+`"` || gh.Get("Link") != `<x>; rel="next"` {
			t.Fatalf("got %q %v %q %v %v", etag, gh, b, ok, err)
		}
	}
}
