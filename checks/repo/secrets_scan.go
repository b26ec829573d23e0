package repo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/utils/diff"
	"github.com/go-git/go-git/v5/utils/merkletrie"
	"github.com/rs/zerolog"
	"github.com/sergi/go-diff/diffmatchpatch"
	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"
	"github.com/zricethezav/gitleaks/v8/report"

	"github.com/nhsx/posture/checks/check"
)

// The scan is gitleaks' own git mode (`gitleaks git`: `git log -p -U0
// --full-history` over the history, each hunk's added lines one fragment,
// merges not diffed, renames detected, binary files skipped) done with
// go-git instead of the git binary, over the default branch only. Each
// fragment goes through gitleaks' Detector with its default rules, the
// repository's allowlists merged in, decoding depth 5 as the CLI's
// default; .gitleaksignore fingerprints are applied as gitleaks'
// AddFinding applies them.

const (
	secretsScannerName = "gitleaks v8.30.1 default rules"
	secretsDecodeDepth = 5 // gitleaks' --max-decode-depth default
	secretsDiffTimeout = 2 * time.Second
)

var secretsQuiet sync.Once

// secretsSilence turns gitleaks' global logger off: it logs findings
// (with their secrets) at debug and trace level, and warnings to stderr.
func secretsSilence() {
	secretsQuiet.Do(func() { logging.Logger = zerolog.Nop() })
}

// secretsParseTOML reads a gitleaks configuration into viper's form with a
// private viper (gitleaks' own loader uses the global one, which is not
// safe for concurrent scans).
func secretsParseTOML(src string) (vc config.ViperConfig, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(src)); err != nil {
		return vc, err
	}
	if err := v.Unmarshal(&vc); err != nil {
		return vc, err
	}
	return vc, nil
}

// secretsTranslate compiles a configuration; a bad regular expression
// (gitleaks compiles with MustCompile) is an error, not a panic.
func secretsTranslate(vc config.ViperConfig) (cfg config.Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return vc.Translate()
}

var (
	secretsDefaultOnce sync.Once
	secretsDefault     config.Config
	secretsDefaultErr  error
)

func secretsDefaultConfig() (config.Config, error) {
	secretsDefaultOnce.Do(func() {
		secretsSilence()
		vc, err := secretsParseTOML(config.DefaultConfig)
		if err != nil {
			secretsDefaultErr = fmt.Errorf("gitleaks default config: %w", err)
			return
		}
		secretsDefault, secretsDefaultErr = secretsTranslate(vc)
	})
	return secretsDefault, secretsDefaultErr
}

// secretsMergedConfig is the default configuration with the allowlists of
// the repository's .gitleaks.toml added: its global allowlists ([allowlist]
// and [[allowlists]], those with targetRules for default rules only) and
// the allowlists of its rules whose id is a default rule's. Its own rules,
// [extend] and disabled rules are not taken: a repository may silence a
// finding, not switch a rule off (checks.md: default rules + repo
// allowlist). It returns how many allowlists were taken.
func secretsMergedConfig(repoTOML string) (config.Config, int, error) {
	def, err := secretsDefaultConfig()
	if err != nil {
		return config.Config{}, 0, err
	}
	repoVC, err := secretsParseTOML(repoTOML)
	if err != nil {
		return config.Config{}, 0, fmt.Errorf("parse: %w", err)
	}
	// The repository's allowlists are compiled by gitleaks' Translate in a
	// config of their own, a rule's on a stand-in of the default rule (a
	// pattern that matches nothing), then added to a copy of the default
	// config, which is compiled once.
	var extra config.ViperConfig
	stand := map[string]int{} // default rule id → index in extra.Rules
	standIn := func(id string) int {
		if i, ok := stand[id]; ok {
			return i
		}
		extra.Rules = secretsGrow(extra.Rules)
		i := len(extra.Rules) - 1
		extra.Rules[i].ID, extra.Rules[i].Regex = id, "a^"
		stand[id] = i
		return i
	}
	lists := repoVC.Allowlists
	if repoVC.AllowList != nil {
		lists = append(lists, repoVC.AllowList)
	}
	taken := 0
	for _, a := range lists {
		if a == nil {
			continue
		}
		if len(a.TargetRules) > 0 {
			a.TargetRules = slices.DeleteFunc(slices.Clone(a.TargetRules), func(id string) bool { _, ok := def.Rules[id]; return !ok })
			if len(a.TargetRules) == 0 {
				continue // names only rules of the repository's own
			}
			for _, id := range a.TargetRules {
				standIn(id)
			}
		}
		extra.Allowlists = append(extra.Allowlists, a)
		taken++
	}
	for _, rr := range repoVC.Rules {
		if _, ok := def.Rules[rr.ID]; !ok {
			continue
		}
		for _, a := range append(slices.Clip(rr.Allowlists), rr.AllowList) {
			if a != nil {
				i := standIn(rr.ID)
				extra.Rules[i].Allowlists = append(extra.Rules[i].Allowlists, a)
				taken++
			}
		}
	}
	if taken == 0 {
		return def, 0, nil
	}
	cfg, err := secretsTranslate(extra)
	if err != nil {
		return config.Config{}, 0, err
	}
	out := def
	out.Rules = maps.Clone(def.Rules)
	out.Allowlists = append(slices.Clip(def.Allowlists), cfg.Allowlists...)
	for id := range stand {
		r := out.Rules[id]
		r.Allowlists = append(slices.Clip(r.Allowlists), cfg.Rules[id].Allowlists...)
		out.Rules[id] = r
	}
	return out, taken, nil
}

// secretsGrow appends a zero element (the element type of ViperConfig's
// rules has no name).
func secretsGrow[S ~[]E, E any](s S) S {
	var e E
	return append(s, e)
}

// secretsIgnores parses a .gitleaksignore as gitleaks' AddGitleaksIgnore
// does: file:rule:line (any commit) or commit:file:rule:line, comments and
// blank lines skipped, backslashes in the path made slashes.
func secretsIgnores(src string) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(src))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := strings.Split(line, ":")
		switch len(s) {
		case 3:
			s[0] = strings.ReplaceAll(s[0], `\`, "/")
		case 4:
			s[1] = strings.ReplaceAll(s[1], `\`, "/")
		default:
			continue
		}
		out[strings.Join(s, ":")] = true
	}
	return out
}

// secretsTipFile reads a file of the tip's tree (at most secretsMaxConfig
// bytes; "" when absent).
func secretsTipFile(tree *object.Tree, path string) (string, bool) {
	f, err := tree.File(path)
	if err != nil {
		return "", false
	}
	if f.Size > secretsMaxConfig {
		return "", false
	}
	s, err := f.Contents()
	if err != nil {
		return "", false
	}
	return s, true
}

// secretsFragment is the added text of one hunk.
type secretsFragment struct {
	raw       string
	startLine int
}

// secretsAdded returns the runs of added lines that turn from into to,
// each with the line number (from 1) of its first line in to.
func secretsAdded(from, to string) []secretsFragment {
	if from == "" {
		return []secretsFragment{{raw: to, startLine: 1}}
	}
	var out []secretsFragment
	line := 1
	for _, d := range diff.DoWithTimeout(from, to, secretsDiffTimeout) {
		n := strings.Count(d.Text, "\n")
		if d.Text != "" && !strings.HasSuffix(d.Text, "\n") {
			n++
		}
		switch d.Type {
		case diffmatchpatch.DiffInsert:
			if len(out) > 0 && out[len(out)-1].startLine+secretsLines(out[len(out)-1].raw) == line {
				out[len(out)-1].raw += d.Text // adjacent runs: one hunk
			} else {
				out = append(out, secretsFragment{raw: d.Text, startLine: line})
			}
			line += n
		case diffmatchpatch.DiffEqual:
			line += n
		}
	}
	return out
}

func secretsLines(s string) int {
	n := strings.Count(s, "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}

// secretsBlob reads a blob for scanning: false when it is binary (a NUL
// in its first 8000 bytes, as git decides) or over the per-file cap.
func secretsBlob(r *git.Repository, h plumbing.Hash) (string, bool, error) {
	b, err := r.BlobObject(h)
	if err != nil {
		return "", false, err
	}
	if b.Size > secretsMaxBlob {
		return "", false, nil
	}
	rc, err := b.Reader()
	if err != nil {
		return "", false, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, secretsMaxBlob+1))
	if err != nil {
		return "", false, err
	}
	if bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0 {
		return "", false, nil
	}
	return string(data), true, nil
}

type secretsFound struct {
	leak   Leak
	secret string
	line   string // the whole line (in memory only)
	match  string
	coded  bool // found after decoding: the line holds an encoded form
}

// secretsScan walks the history from the tip and fills ev.
func secretsScan(ctx context.Context, sr *secretsRepo, key []byte, ev *SecretsEvidence) {
	r := sr.repo
	tip, err := r.CommitObject(sr.head)
	if err != nil {
		ev.Error, ev.Class = "read the tip: "+err.Error(), string(check.ErrMalformed)
		return
	}
	tipTree, err := tip.Tree()
	if err != nil {
		ev.Error, ev.Class = "read the tip's tree: "+err.Error(), string(check.ErrMalformed)
		return
	}
	cfg, err := secretsDefaultConfig()
	if err != nil {
		ev.Error, ev.Class = err.Error(), string(check.ErrInternal)
		return
	}
	if src, ok := secretsTipFile(tipTree, ".gitleaks.toml"); ok {
		ev.Config.File = ".gitleaks.toml"
		if merged, n, err := secretsMergedConfig(src); err != nil {
			ev.Config.Error = secretsClip(err.Error())
		} else {
			cfg, ev.Config.Allowlists = merged, n
		}
	}
	ignores := map[string]bool{}
	if src, ok := secretsTipFile(tipTree, ".gitleaksignore"); ok {
		ignores = secretsIgnores(src)
		ev.Config.Ignores = len(ignores)
	}
	d := detect.NewDetectorContext(ctx, cfg)
	d.MaxDecodeDepth = secretsDecodeDepth

	var found []secretsFound
	seen := map[string]bool{} // gitleaks fingerprints already found
	iter, err := r.Log(&git.LogOptions{From: sr.head})
	if err != nil {
		ev.Error, ev.Class = "walk the history: "+err.Error(), string(check.ErrMalformed)
		return
	}
	defer iter.Close()
	stop := errors.New("stop")
	err = iter.ForEach(func(c *object.Commit) error {
		if err := ctx.Err(); err != nil {
			ev.Partial, ev.PartialClass = fmt.Sprintf("the time limit (%s) was reached", secretsMaxTime), string(check.ErrTimeout)
			return stop
		}
		if ev.Commits >= secretsMaxCommits {
			ev.Partial, ev.PartialClass = fmt.Sprintf("the history has more than %d commits", secretsMaxCommits), string(check.ErrTooLarge)
			return stop
		}
		ev.Commits++
		if c.NumParents() > 1 {
			return nil // `git log -p` shows no diff for a merge
		}
		to, err := c.Tree()
		if err != nil {
			return err
		}
		var from *object.Tree // a root commit adds every file
		if c.NumParents() == 1 {
			p, err := c.Parent(0)
			if err != nil {
				return err
			}
			if from, err = p.Tree(); err != nil {
				return err
			}
		}
		changes, err := object.DiffTreeWithOptions(ctx, from, to, &object.DiffTreeOptions{DetectRenames: true, RenameScore: 60, RenameLimit: 500})
		if err != nil {
			if ctx.Err() != nil {
				return nil // reported at the next commit
			}
			return err
		}
		date := c.Author.When.UTC().Format(time.RFC3339)
		for _, ch := range changes {
			act, err := ch.Action()
			if err != nil || act == merkletrie.Delete {
				continue
			}
			if ch.To.TreeEntry.Mode == filemode.Submodule || ch.To.TreeEntry.Mode == filemode.Symlink {
				continue
			}
			path := ch.To.Name
			toText, ok, err := secretsBlob(r, ch.To.TreeEntry.Hash)
			if err != nil {
				return err
			}
			if !ok {
				ev.Skipped++
				continue
			}
			fromText := ""
			if act == merkletrie.Modify || ch.From.Name != "" {
				if ft, ok, err := secretsBlob(r, ch.From.TreeEntry.Hash); err == nil && ok {
					fromText = ft
				}
			}
			ev.Scanned++
			for _, fr := range secretsAdded(fromText, toText) {
				frag := detect.Fragment{Raw: fr.raw, FilePath: path, CommitSHA: c.Hash.String(), StartLine: fr.startLine}
				for _, gf := range d.DetectContext(ctx, frag) {
					secretsAddFinding(gf, date, key, ignores, seen, ev, &found)
				}
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		if ctx.Err() != nil {
			ev.Partial, ev.PartialClass = fmt.Sprintf("the time limit (%s) was reached", secretsMaxTime), string(check.ErrTimeout)
		} else {
			ev.Partial, ev.PartialClass = "the history could not be read: "+secretsClip(err.Error()), string(check.ErrMalformed)
		}
	}
	secretsFinish(tipTree, found, ev)
}

// secretsAddFinding applies .gitleaksignore as gitleaks' AddFinding does
// and keeps the finding.
func secretsAddFinding(gf report.Finding, date string, key []byte, ignores, seen map[string]bool, ev *SecretsEvidence, found *[]secretsFound) {
	global := fmt.Sprintf("%s:%s:%d", gf.File, gf.RuleID, gf.StartLine)
	fp := fmt.Sprintf("%s:%s:%s:%d", gf.Commit, gf.File, gf.RuleID, gf.StartLine)
	if ignores[global] || ignores[fp] {
		ev.Config.Ignored++
		return
	}
	if seen[fp] {
		return
	}
	seen[fp] = true
	coded := slices.ContainsFunc(gf.Tags, func(t string) bool { return strings.HasPrefix(t, secretsDecodedTag) })
	*found = append(*found, secretsFound{
		leak: Leak{Rule: gf.RuleID, File: gf.File, Commit: gf.Commit, Date: date, Line: gf.StartLine,
			EndLine: gf.EndLine, Column: gf.StartColumn, EndColumn: gf.EndColumn, Fingerprint: fp,
			Hash: secretsHash(key, gf.Secret)},
		secret: gf.Secret, line: gf.Line, match: gf.Match, coded: coded,
	})
}

// secretsFinish marks the leaks still at the tip, redacts their excerpts
// against every secret found, orders them oldest first and bounds them.
func secretsFinish(tipTree *object.Tree, found []secretsFound, ev *SecretsEvidence) {
	secrets := make([]string, 0, len(found))
	for _, f := range found {
		secrets = append(secrets, f.secret, f.match)
	}
	tipText := map[string]string{}
	for i := range found {
		f := &found[i]
		text, ok := tipText[f.leak.File]
		if !ok {
			if tf, err := tipTree.File(f.leak.File); err == nil && tf.Size <= secretsMaxBlob {
				text, _ = tf.Contents()
			}
			tipText[f.leak.File] = text
		}
		f.leak.InHead = f.secret != "" && strings.Contains(text, f.secret)
		f.leak.Redacted = secretsExcerpt(*f, secrets)
	}
	slices.SortStableFunc(found, func(a, b secretsFound) int {
		return strings.Compare(a.leak.Date+a.leak.Fingerprint, b.leak.Date+b.leak.Fingerprint)
	})
	ev.LeaksTotal = len(found)
	for i, f := range found {
		if i == secretsMaxLeaks {
			break
		}
		ev.Leaks = append(ev.Leaks, f.leak)
	}
}

// secretsRedact masks a secret: its first few characters (at most a
// quarter of it, none of a short one) and its length.
func secretsRedact(s string) string {
	keep := min(secretsRedactKeep, len(s)/4)
	if len(s)-keep < secretsMinHidden {
		keep = 0
	}
	prefix := strings.ToValidUTF8(s[:keep], "")
	prefix = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, prefix)
	return fmt.Sprintf("%s…[%d redacted]", prefix, len(s))
}

// secretsExcerpt is the start of the line up to the match (at most
// secretsMaxExcerpt bytes) and the redacted secret. A secret found after
// decoding keeps no context (the line holds its encoded form); any other
// secret found in the repository is masked out of the context too.
func secretsExcerpt(f secretsFound, secrets []string) string {
	red := secretsRedact(f.secret)
	if f.coded || f.line == "" {
		return red
	}
	var ctx string
	if i := strings.Index(f.line, f.match); i >= 0 && f.match != "" {
		ctx = f.line[:i]
		// The part of the match before the secret (a key name).
		if j := strings.Index(f.match, f.secret); j > 0 {
			ctx += f.match[:j]
		}
	} else if i := strings.Index(f.line, f.secret); i >= 0 && f.secret != "" {
		ctx = f.line[:i]
	} else {
		return red
	}
	// From the start of the secret's line only.
	if j := strings.LastIndexByte(ctx, '\n'); j >= 0 {
		ctx = ctx[j+1:]
	}
	for _, s := range secrets {
		if len(s) >= secretsMinHidden {
			ctx = strings.ReplaceAll(ctx, s, "…")
		}
	}
	ctx = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(ctx, ""))
	if len(ctx) > secretsMaxExcerpt {
		ctx = "…" + strings.ToValidUTF8(ctx[len(ctx)-secretsMaxExcerpt:], "")
	}
	out := strings.TrimLeft(ctx, " \t") + red
	for _, s := range secrets {
		if len(s) >= secretsMinHidden && strings.Contains(out, s) {
			return red
		}
	}
	return out
}
