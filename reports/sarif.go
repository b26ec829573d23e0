package reports

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/nhsx/posture/checks/check"
)

// SARIF 2.1.0 (OASIS, errata 01) export of repository findings, so that
// GitHub code scanning can show them: one run per repository (its
// automationDetails.id is the repository, so each run is its own code
// scanning category), the catalogue's repository entries as the rules,
// and one result per failing or warning finding, or one per location the
// caller places it at (a secret in the history: file, line, commit).
// Passes, unknowns and n/a are not results: code scanning shows problems.
//
// GitHub needs a location on every result; a repository-wide finding is
// placed on the file it is about (README.md for repo.readme, …, see
// sarifFileOf), or on README.md's first line.

// SARIFSchema is the schema URI written into the log.
const SARIFSchema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

// SARIFLocation is one place in a repository a finding is about.
type SARIFLocation struct {
	File string // path in the repository, slash-separated
	// Line, EndLine, Column, EndColumn: 1-based; 0 when unknown.
	Line, EndLine, Column, EndColumn int
	// Fingerprint identifies the result across runs (GitHub's
	// partialFingerprints); "" : the finding id and file.
	Fingerprint string
	// Message is the result's text at this location ("" : the
	// finding's message).
	Message string
	// Properties are extra facts kept on the result (commit, rule …).
	Properties map[string]any
}

// SARIFRepo is what the export knows of a repository's revision.
type SARIFRepo struct {
	URI      string // https://github.com/<owner>/<name>
	Revision string // the commit scanned
	Branch   string // the branch scanned, e.g. main
}

// SARIFOptions shape the export.
type SARIFOptions struct {
	// Rules are the catalogue entries (every entry that targets
	// repositories becomes a rule, in this order).
	Rules []check.Meta
	// Version is posture's version ("" : none written).
	Version string
	// Locations places a finding ([] : sarifFileOf).
	Locations func(f Finding) []SARIFLocation
	// Repo describes a repository (zero: the URI is made from
	// RepoBaseURL and the name).
	Repo func(name string) SARIFRepo
	// RepoBaseURL is the web address repositories live under
	// ("" : https://github.com/).
	RepoBaseURL string
}

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool              sarifTool             `json:"tool"`
	AutomationDetails *sarifAutomation      `json:"automationDetails,omitempty"`
	VersionControl    []sarifVersionControl `json:"versionControlProvenance,omitempty"`
	Results           []sarifResult         `json:"results"`
	ColumnKind        string                `json:"columnKind,omitempty"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	FullName       string      `json:"fullName,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Version        string      `json:"version,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name,omitempty"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      sarifText      `json:"fullDescription"`
	Help                 *sarifText     `json:"help,omitempty"`
	HelpURI              string         `json:"helpUri,omitempty"`
	DefaultConfiguration sarifRuleConf  `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties,omitempty"`
}

type sarifRuleConf struct {
	Level string `json:"level"`
}

type sarifAutomation struct {
	ID string `json:"id"`
}

type sarifVersionControl struct {
	RepositoryURI string `json:"repositoryUri"`
	RevisionID    string `json:"revisionId,omitempty"`
	Branch        string `json:"branch,omitempty"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type sarifLocation struct {
	Physical sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	Artifact sarifArtLoc  `json:"artifactLocation"`
	Region   *sarifRegion `json:"region,omitempty"`
}

type sarifArtLoc struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId,omitempty"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine,omitempty"`
	EndLine     int `json:"endLine,omitempty"`
	StartColumn int `json:"startColumn,omitempty"`
	EndColumn   int `json:"endColumn,omitempty"`
}

// sarifMaxText bounds a result's message (the text came from a scanned
// repository or server).
const sarifMaxText = 4000

// WriteSARIF writes the repository findings of fs as a SARIF 2.1.0 log.
func WriteSARIF(w io.Writer, fs []Finding, o SARIFOptions) error {
	var rules []sarifRule
	index := map[string]int{}
	for _, m := range o.Rules {
		if !slices.Contains(m.Targets, check.KindRepo) {
			continue
		}
		index[m.ID] = len(rules)
		rules = append(rules, sarifRuleOf(m))
	}
	byRepo := map[string][]Finding{}
	for _, f := range fs {
		if f.Asset.Kind != check.KindRepo || !f.Outcome.Counts() {
			continue
		}
		byRepo[f.Asset.Name] = append(byRepo[f.Asset.Name], f)
	}
	log := sarifLog{Schema: SARIFSchema, Version: "2.1.0", Runs: []sarifRun{}}
	base := cmp.Or(o.RepoBaseURL, "https://github.com/")
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	for _, name := range slices.Sorted(maps.Keys(byRepo)) {
		run := sarifRun{
			Tool: sarifTool{Driver: sarifDriver{Name: "posture", FullName: "posture: NHS security posture scanner",
				InformationURI: "https://github.com/nhsx/posture", Version: o.Version, Rules: rules}},
			AutomationDetails: &sarifAutomation{ID: "posture/" + name + "/"},
			ColumnKind:        "unicodeCodePoints",
			Results:           []sarifResult{},
		}
		repo := SARIFRepo{}
		if o.Repo != nil {
			repo = o.Repo(name)
		}
		if repo.URI == "" {
			repo.URI = base + name
		}
		vc := sarifVersionControl{RepositoryURI: repo.URI, RevisionID: repo.Revision}
		if repo.Branch != "" {
			vc.Branch = "refs/heads/" + repo.Branch
		}
		run.VersionControl = []sarifVersionControl{vc}
		fsr := byRepo[name]
		slices.SortFunc(fsr, func(a, b Finding) int { return cmp.Compare(a.CheckID+a.Rule, b.CheckID+b.Rule) })
		for _, f := range fsr {
			i, ok := index[f.CheckID]
			if !ok {
				index[f.CheckID] = len(run.Tool.Driver.Rules)
				i = index[f.CheckID]
				// An id the catalogue given does not list still gets a rule.
				run.Tool.Driver.Rules = append(slices.Clip(run.Tool.Driver.Rules),
					sarifRuleOf(check.Meta{ID: f.CheckID, Title: f.CheckID, Description: f.CheckID, Severity: f.Severity}))
			}
			run.Results = append(run.Results, sarifResults(f, i, o)...)
		}
		log.Runs = append(log.Runs, run)
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(log); err != nil {
		return fmt.Errorf("reports: sarif: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("reports: sarif: %w", err)
	}
	return nil
}

// sarifLevel maps a severity and outcome to a SARIF level: a warn outcome
// is a warning at most.
func sarifLevel(s check.Severity, o check.Outcome) string {
	l := "note"
	switch s {
	case check.Critical, check.High:
		l = "error"
	case check.Medium:
		l = "warning"
	}
	if o == check.Warn && l == "error" {
		l = "warning"
	}
	return l
}

// sarifSecuritySeverity is GitHub's security-severity (critical over 9.0,
// high 7.0–8.9, medium 4.0–6.9, low 0.1–3.9).
func sarifSecuritySeverity(s check.Severity) string {
	switch s {
	case check.Critical:
		return "9.5"
	case check.High:
		return "8.0"
	case check.Medium:
		return "5.5"
	case check.Low:
		return "3.0"
	}
	return "0.0"
}

func sarifRuleOf(m check.Meta) sarifRule {
	r := sarifRule{ID: m.ID, Name: sarifName(m.ID), ShortDescription: sarifText{Text: cmp.Or(m.Title, m.ID)},
		FullDescription:      sarifText{Text: cmp.Or(m.Description, m.Title, m.ID)},
		DefaultConfiguration: sarifRuleConf{Level: sarifLevel(m.Severity, check.Fail)},
		Properties: map[string]any{"tags": []string{"security", "posture", m.Family}, "precision": "high",
			"security-severity": sarifSecuritySeverity(m.Severity), "problem.severity": sarifProblem(m.Severity)}}
	var refs []string
	for _, s := range m.Standards {
		if l := refLabel(s); l != "" {
			refs = append(refs, l)
		}
		if r.HelpURI == "" && s.URL != "" {
			r.HelpURI = s.URL
		}
	}
	help := m.Remediation
	if len(refs) > 0 {
		help = strings.TrimSpace(help + "\n\nStandards: " + strings.Join(refs, "; "))
	}
	if help != "" {
		r.Help = &sarifText{Text: help}
	}
	if m.Family == "" {
		r.Properties["tags"] = []string{"security", "posture"}
	}
	return r
}

func sarifProblem(s check.Severity) string {
	switch s {
	case check.Critical, check.High:
		return "error"
	case check.Medium:
		return "warning"
	}
	return "recommendation"
}

// sarifName is the rule's PascalCase name: repo.secrets.history →
// RepoSecretsHistory.
func sarifName(id string) string {
	var b strings.Builder
	up := true
	for _, r := range id {
		switch {
		case r == '.' || r == '-' || r == '_':
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(r)))
			up = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// sarifFileOf is the file a repository-wide finding is about (GitHub
// shows an alert on a file).
func sarifFileOf(checkID string) string {
	switch {
	case checkID == "repo.licence":
		return "LICENCE"
	case checkID == "repo.security-policy":
		return "SECURITY.md"
	case checkID == "repo.codeowners":
		return ".github/CODEOWNERS"
	case checkID == "repo.contributing":
		return "CONTRIBUTING.md"
	case checkID == "repo.dependabot":
		return ".github/dependabot.yml"
	case checkID == "repo.gitleaks-config":
		return ".gitleaks.toml"
	case strings.HasPrefix(checkID, "repo.actions."):
		return ".github/workflows"
	}
	return "README.md"
}

func sarifResults(f Finding, ruleIndex int, o SARIFOptions) []sarifResult {
	id := f.ID
	if id == "" {
		id = f.Finding.ID()
	}
	var locs []SARIFLocation
	if o.Locations != nil {
		locs = o.Locations(f)
	}
	if len(locs) == 0 {
		locs = []SARIFLocation{{File: sarifFileOf(f.CheckID), Line: 1}}
	}
	level := sarifLevel(f.Severity, f.Outcome)
	var out []sarifResult
	for _, l := range locs {
		msg := cmp.Or(l.Message, f.Message, f.CheckID)
		if f.Remediation != "" && l.Message == "" {
			msg += "\n\n" + f.Remediation
		}
		if len(msg) > sarifMaxText {
			msg = strings.ToValidUTF8(msg[:sarifMaxText], "") + "…"
		}
		fp := l.Fingerprint
		if fp == "" {
			fp = id + "|" + l.File
		}
		sum := sha256.Sum256([]byte(fp))
		props := map[string]any{"outcome": string(f.Outcome), "severity": string(f.Severity), "finding": id}
		if f.Asset.Org != "" {
			props["organisation"] = f.Asset.Org
		}
		if f.Status != "" {
			props["status"] = f.Status
		}
		for k, v := range l.Properties {
			props[k] = v
		}
		r := sarifResult{RuleID: f.CheckID, RuleIndex: ruleIndex, Level: level, Message: sarifText{Text: msg},
			Locations: []sarifLocation{{Physical: sarifPhysical{Artifact: sarifArtLoc{URI: sarifURI(l.File)}}}},
			PartialFingerprints: map[string]string{
				"primaryLocationLineHash": hex.EncodeToString(sum[:16]) + ":1",
				"postureFinding/v1":       id,
			},
			Properties: props}
		if l.Line > 0 {
			reg := &sarifRegion{StartLine: l.Line}
			if l.EndLine >= l.Line {
				reg.EndLine = l.EndLine
			}
			if l.Column > 0 {
				reg.StartColumn = l.Column
				if l.EndColumn > l.Column || (l.EndColumn > 0 && reg.EndLine > reg.StartLine) {
					reg.EndColumn = l.EndColumn + 1 // SARIF's end column is exclusive
				}
			}
			r.Locations[0].Physical.Region = reg
		}
		out = append(out, r)
	}
	return out
}

// sarifURI escapes a repository path as a relative URI reference.
func sarifURI(p string) string {
	p = strings.TrimPrefix(strings.ReplaceAll(p, "\\", "/"), "/")
	var b strings.Builder
	for _, c := range []byte(p) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("-._~/!$&'()*+,;=@", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() == 0 {
		return "README.md"
	}
	return b.String()
}
