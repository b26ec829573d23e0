// Package secretsgit builds small git repositories in memory and serves
// them over git's smart HTTP protocol (upload-pack, protocol v0, with
// go-git's server side): the lab's git server and the secret scanner's
// tests clone them.
package secretsgit

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Commit is one commit: the files it sets (path → content) and deletes.
type Commit struct {
	Msg string
	Set map[string]string
	Del []string
}

// epoch is the time of the first commit of every repository Build makes.
var epoch = time.Date(2021, 3, 1, 10, 0, 0, 0, time.UTC)

// Build builds a repository in memory: commits on branch (each on
// the previous; commit times a day apart from 2021-03-01, one author, so
// the same commits give the same hashes), then each side branch's commits
// on the first commit.
func Build(branch string, commits []Commit, side map[string][]Commit) (*memory.Storage, error) {
	st := memory.NewStorage()
	files := map[string]string{}
	var parent plumbing.Hash
	var first plumbing.Hash
	when := epoch
	apply := func(c Commit, parent plumbing.Hash, files map[string]string) (plumbing.Hash, error) {
		for p, b := range c.Set {
			files[p] = b
		}
		for _, p := range c.Del {
			delete(files, p)
		}
		tree, err := gitTree(st, files)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		when = when.Add(26 * time.Hour)
		sig := object.Signature{Name: "Lab Developer", Email: "developer@lab.nhs.uk", When: when}
		cm := &object.Commit{Author: sig, Committer: sig, Message: c.Msg + "\n", TreeHash: tree}
		if !parent.IsZero() {
			cm.ParentHashes = []plumbing.Hash{parent}
		}
		return gitStore(st, cm)
	}
	for _, c := range commits {
		h, err := apply(c, parent, files)
		if err != nil {
			return nil, err
		}
		if first.IsZero() {
			first = h
		}
		parent = h
	}
	if err := st.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(branch), parent)); err != nil {
		return nil, err
	}
	if err := st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(branch))); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(side))
	for n := range side {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		// A side branch grows from the first commit's files.
		fs := map[string]string{}
		for p, b := range commits[0].Set {
			fs[p] = b
		}
		tip := first
		for _, c := range side[n] {
			h, err := apply(c, tip, fs)
			if err != nil {
				return nil, err
			}
			tip = h
		}
		if err := st.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(n), tip)); err != nil {
			return nil, err
		}
	}
	return st, nil
}

type gitEncoder interface {
	Encode(plumbing.EncodedObject) error
}

func gitStore(st *memory.Storage, o gitEncoder) (plumbing.Hash, error) {
	eo := st.NewEncodedObject()
	if err := o.Encode(eo); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(eo)
}

// gitTree stores the tree (and sub-trees and blobs) of files.
func gitTree(st *memory.Storage, files map[string]string) (plumbing.Hash, error) {
	type dir struct {
		files map[string]string
		dirs  map[string]*dir
	}
	root := &dir{files: map[string]string{}, dirs: map[string]*dir{}}
	for p, b := range files {
		d := root
		parts := strings.Split(p, "/")
		for _, seg := range parts[:len(parts)-1] {
			if d.dirs[seg] == nil {
				d.dirs[seg] = &dir{files: map[string]string{}, dirs: map[string]*dir{}}
			}
			d = d.dirs[seg]
		}
		d.files[parts[len(parts)-1]] = b
	}
	var write func(d *dir) (plumbing.Hash, error)
	write = func(d *dir) (plumbing.Hash, error) {
		var entries []object.TreeEntry
		for name, b := range d.files {
			blob := st.NewEncodedObject()
			blob.SetType(plumbing.BlobObject)
			w, err := blob.Writer()
			if err != nil {
				return plumbing.ZeroHash, err
			}
			io.WriteString(w, b)
			w.Close()
			h, err := st.SetEncodedObject(blob)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			mode := filemode.Regular
			if strings.HasSuffix(name, ".sh") {
				mode = filemode.Executable
			}
			entries = append(entries, object.TreeEntry{Name: name, Mode: mode, Hash: h})
		}
		for name, sub := range d.dirs {
			h, err := write(sub)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
		}
		// Git orders entries by name, a directory's as if it ended in "/".
		key := func(e object.TreeEntry) string {
			if e.Mode == filemode.Dir {
				return e.Name + "/"
			}
			return e.Name
		}
		sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
		return gitStore(st, &object.Tree{Entries: entries})
	}
	return write(root)
}

// Serve answers one smart HTTP request (rest is "info/refs" or
// "git-upload-pack", what follows <repo>.git/) from st; it reports whether
// a pack was sent (or the references advertised).
func Serve(w http.ResponseWriter, r *http.Request, st *memory.Storage, rest string) bool {
	ep, err := transport.NewEndpoint("/lab.git")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	sess, err := server.NewServer(server.MapLoader{ep.String(): st}).NewUploadPackSession(ep, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return false
	}
	defer sess.Close()
	switch {
	case rest == "info/refs" && r.Method == http.MethodGet:
		if r.URL.Query().Get("service") != transport.UploadPackServiceName {
			http.Error(w, "only the smart protocol's git-upload-pack is served", http.StatusForbidden)
			return false
		}
		ar, err := sess.AdvertisedReferencesContext(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return false
		}
		var b bytes.Buffer
		e := pktline.NewEncoder(&b)
		e.EncodeString("# service=" + transport.UploadPackServiceName + "\n")
		e.Flush()
		if err := ar.Encode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return false
		}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b.Bytes())
		return true
	case rest == "git-upload-pack" && r.Method == http.MethodPost:
		req := packp.NewUploadPackRequest()
		if err := req.Decode(io.LimitReader(r.Body, 1<<20)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		resp, err := sess.UploadPack(r.Context(), req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		defer resp.Close()
		w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
		w.Header().Set("Cache-Control", "no-cache")
		return resp.Encode(w) == nil
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
	return false
}
