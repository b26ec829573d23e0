package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/nhsx/posture/checks/check"
)

// The fetch is git's smart HTTP protocol (upload-pack) spoken by go-git's
// client over the GitHub service's HTTP client, asking for the default
// branch's tip only, with its whole history (no depth: the scan needs every
// commit), into a packfile in a temporary directory (not memory: objects
// are read from the pack as the scan walks). The body is counted: past
// secretsMaxPack bytes the fetch fails (too-large).

var errSecretsEmpty = errors.New("the repository has no commits")

// errSecretsTooLarge is returned once the packfile passes its cap.
var errSecretsTooLarge = check.WithClass(check.ErrTooLarge, fmt.Errorf("the packfile is over %d MB", secretsMaxPackMB))

type secretsRepo struct {
	repo      *git.Repository
	head      plumbing.Hash
	branch    string
	packBytes int64
}

// secretsGitClient is the service's client for git requests: redirects may
// only stay on the clone URL's host, and every body is counted against the
// pack cap.
func secretsGitClient(c *http.Client, clone *url.URL, limit int64) *secretsCounting {
	cc := *c
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	sc := &secretsCounting{rt: rt, left: limit}
	cc.Transport = sc
	host := strings.ToLower(clone.Host)
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if strings.ToLower(req.URL.Host) != host || (req.URL.Scheme != clone.Scheme && req.URL.Scheme != "https") {
			return fmt.Errorf("redirect to %s leaves the clone host", secretsClip(req.URL.Redacted()))
		}
		return nil
	}
	sc.client = &cc
	return sc
}

// secretsCounting is a RoundTripper that counts response bytes against a
// shared budget.
type secretsCounting struct {
	rt     http.RoundTripper
	left   int64 // atomic
	read   atomic.Int64
	client *http.Client
}

// RoundTrip keeps go-git's own User-Agent (git/… servers know it).
func (s *secretsCounting) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &secretsCountedBody{rc: resp.Body, s: s}
	return resp, nil
}

type secretsCountedBody struct {
	rc io.ReadCloser
	s  *secretsCounting
}

func (b *secretsCountedBody) Read(p []byte) (int, error) {
	if b.s.read.Load() >= b.s.left {
		return 0, errSecretsTooLarge
	}
	if rest := b.s.left - b.s.read.Load(); int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.rc.Read(p)
	b.s.read.Add(int64(n))
	return n, err
}

func (b *secretsCountedBody) Close() error { return b.rc.Close() }

// secretsFetch fetches branch ("" : the remote HEAD) of the repository at
// u, with its full history, into dir ("" : memory).
func secretsFetch(ctx context.Context, hc *secretsCounting, u *url.URL, branch, dir string) (*secretsRepo, error) {
	ep, err := transport.NewEndpoint(u.String())
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	tr := githttp.NewClientWithOptions(hc.client, &githttp.ClientOptions{RedirectPolicy: githttp.FollowInitialRedirects})
	sess, err := tr.NewUploadPackSession(ep, nil)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return &secretsRepo{branch: branch}, errSecretsEmpty
		}
		return nil, secretsTransportErr(err)
	}
	out := &secretsRepo{branch: branch}
	ref := plumbing.NewBranchReferenceName(branch)
	tip, ok := ar.References[ref.String()]
	if branch == "" || !ok {
		// The API's default branch is not advertised (or not named):
		// take what HEAD points at, as `git clone` does.
		name, h, found := secretsRemoteHead(ar)
		if !found {
			if len(ar.References) == 0 {
				return out, errSecretsEmpty
			}
			return out, check.WithClass(check.ErrMalformed, fmt.Errorf("the server advertises no branch %q and no HEAD", branch))
		}
		ref, tip = name, h
		out.branch = name.Short()
	}
	out.head = tip
	req := packp.NewUploadPackRequestFromCapabilities(ar.Capabilities)
	req.Wants = []plumbing.Hash{tip}
	if ar.Capabilities.Supports(capability.NoProgress) {
		req.Capabilities.Set(capability.NoProgress)
	}
	resp, err := sess.UploadPack(ctx, req)
	if err != nil {
		return out, secretsTransportErr(err)
	}
	defer resp.Close()
	var st storage.Storer = memory.NewStorage()
	if dir != "" {
		st = filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(8<<20), filesystem.Options{ExclusiveAccess: true})
	}
	var pack io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	if err := packfile.UpdateObjectStorage(st, pack); err != nil {
		if errors.Is(err, errSecretsTooLarge) || hc.read.Load() >= hc.left {
			return out, errSecretsTooLarge
		}
		return out, secretsTransportErr(err)
	}
	out.packBytes = hc.read.Load()
	if err := st.SetReference(plumbing.NewHashReference(ref, tip)); err != nil {
		return out, fmt.Errorf("store: %w", err)
	}
	if err := st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, ref)); err != nil {
		return out, fmt.Errorf("store: %w", err)
	}
	r, err := git.Open(st, nil)
	if err != nil {
		return out, fmt.Errorf("open: %w", err)
	}
	if _, err := r.CommitObject(tip); err != nil {
		return out, check.WithClass(check.ErrMalformed, fmt.Errorf("the tip %s is not in the pack: %w", tip, err))
	}
	out.repo = r
	return out, nil
}

// secretsRemoteHead is the branch the remote HEAD names (the symref
// capability), or the branch whose tip is HEAD's.
func secretsRemoteHead(ar *packp.AdvRefs) (plumbing.ReferenceName, plumbing.Hash, bool) {
	for _, v := range ar.Capabilities.Get(capability.SymRef) {
		if from, to, ok := strings.Cut(v, ":"); ok && from == "HEAD" && strings.HasPrefix(to, "refs/heads/") {
			if h, ok := ar.References[to]; ok {
				return plumbing.ReferenceName(to), h, true
			}
		}
	}
	if ar.Head != nil {
		for _, name := range []string{"refs/heads/main", "refs/heads/master"} {
			if h, ok := ar.References[name]; ok && h == *ar.Head {
				return plumbing.ReferenceName(name), h, true
			}
		}
		for name, h := range ar.References {
			if h == *ar.Head && strings.HasPrefix(name, "refs/heads/") {
				return plumbing.ReferenceName(name), h, true
			}
		}
	}
	return "", plumbing.ZeroHash, false
}

// secretsTransportErr classifies go-git's transport errors.
func secretsTransportErr(err error) error {
	switch {
	case errors.Is(err, errSecretsTooLarge):
		return errSecretsTooLarge
	case errors.Is(err, transport.ErrRepositoryNotFound), errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed):
		return check.WithClass(SecretsNotFound, err)
	}
	var he *githttp.Err
	if errors.As(err, &he) && he.Response != nil && he.Response.StatusCode == http.StatusNotFound {
		return check.WithClass(SecretsNotFound, err)
	}
	// The server answered something that is not git: its references or
	// its pack do not decode.
	var pe *packfile.Error
	for _, m := range []error{pktline.ErrInvalidPktLen, packp.ErrEmptyAdvRefs, packp.ErrEmptyInput,
		packfile.ErrMalformedPackFile, packfile.ErrLengthOverflow, packfile.ErrInvalidDelta, packfile.ErrDeltaCmd,
		packfile.ErrReferenceDeltaNotFound} {
		if errors.Is(err, m) {
			return check.WithClass(check.ErrMalformed, err)
		}
	}
	if errors.As(err, &pe) {
		return check.WithClass(check.ErrMalformed, err)
	}
	return err
}
