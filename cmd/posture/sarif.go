package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/repo"
	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/scanner/store"
)

// sarifWriter is `posture export --format sarif`: the run's repository
// findings as SARIF 2.1.0, each secret found in a repository's history its
// own result at its file and line (from the stored evidence of
// repo.secrets: the secret itself was never stored), and each run of the
// log one repository (--repo keeps one, for an upload to its code
// scanning).
func sarifWriter(ctx context.Context, st *store.Store, runID int64, only string) (func(io.Writer, []reports.Finding) error, error) {
	scans := map[string]repo.SecretsEvidence{}
	err := st.EachEvidence(ctx, runID, func(ev check.Evidence) error {
		if e, ok := repo.DecodeSecrets(ev); ok {
			scans[strings.ToLower(ev.Asset.Name)] = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	opts := reports.SARIFOptions{
		Rules: checks.Catalogue(),
		Locations: func(f reports.Finding) []reports.SARIFLocation {
			if f.CheckID != repo.SecretsHistory {
				return nil
			}
			return sarifLeaks(scans[strings.ToLower(f.Asset.Name)])
		},
		Repo: func(name string) reports.SARIFRepo {
			e, ok := scans[strings.ToLower(name)]
			if !ok {
				return reports.SARIFRepo{}
			}
			return reports.SARIFRepo{URI: strings.TrimSuffix(e.CloneURL, ".git"), Revision: e.Head, Branch: e.DefaultBranch}
		},
	}
	return func(w io.Writer, fs []reports.Finding) error {
		if only != "" {
			kept := fs[:0:0]
			for _, f := range fs {
				if f.Asset.Kind == check.KindRepo && strings.EqualFold(f.Asset.Name, only) {
					kept = append(kept, f)
				}
			}
			fs = kept
		}
		return reports.WriteSARIF(w, fs, opts)
	}, nil
}

// sarifLeaks places each secret found: where gitleaks saw it added.
func sarifLeaks(e repo.SecretsEvidence) []reports.SARIFLocation {
	var out []reports.SARIFLocation
	for _, l := range e.Leaks {
		where := "in history only: it was removed later, but clones and forks keep it"
		if l.InHead {
			where = "still in the latest commit"
		}
		commit := l.Commit
		if len(commit) > 10 {
			commit = commit[:10]
		}
		msg := fmt.Sprintf("%s found by gitleaks in %s line %d, added in commit %s", l.Rule, l.File, l.Line, commit)
		if l.Date != "" {
			msg += " (" + strings.SplitN(l.Date, "T", 2)[0] + ")"
		}
		msg += ", " + where + ": " + l.Redacted + ". Revoke or rotate it at its issuer, then remove it from the history " +
			"or add its fingerprint (" + l.Fingerprint + ") to .gitleaksignore."
		out = append(out, reports.SARIFLocation{File: l.File, Line: l.Line, EndLine: l.EndLine, Column: l.Column,
			EndColumn: l.EndColumn, Fingerprint: l.ID(), Message: msg,
			Properties: map[string]any{"gitleaksRule": l.Rule, "commit": l.Commit, "gitleaksFingerprint": l.Fingerprint,
				"secretHash": l.Hash, "inLatestCommit": l.InHead}})
	}
	return out
}
