package repo

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/nhsx/posture/checks/check"
)

func ruleOf(id string) string {
	for _, m := range repoRules {
		if m.ID == id {
			return m.Rule
		}
	}
	for _, m := range orgRules {
		if m.ID == id {
			return m.Rule
		}
	}
	return id
}

func finding(id string, o check.Outcome, format string, args ...any) check.Finding {
	return check.Finding{CheckID: id, Rule: ruleOf(id), Outcome: o, Message: fmt.Sprintf(format, args...)}
}

func unknownf(id, reason, format string, args ...any) check.Finding {
	f := finding(id, check.Unknown, format, args...)
	f.Reason = reason
	return f
}

func needsAdmin(id, what string) check.Finding {
	return unknownf(id, ReasonNeedsAdmin, "%s: %s", what, needsAdminText)
}

func passFail(id string, bad bool, format string, args ...any) check.Finding {
	if bad {
		return finding(id, check.Fail, format, args...)
	}
	return finding(id, check.Pass, format, args...)
}

// callUnknown is the unknown verdict of an endpoint that gave no usable
// answer.
func callUnknown(id, what string, c *Call) check.Finding {
	if c == nil {
		return unknownf(id, string(check.ErrOther), "%s was not read", what)
	}
	if !c.answered() {
		class := c.Class
		if class == "" {
			class = string(check.ErrOther)
		}
		return unknownf(id, class, "%s: %s", what, c.Error)
	}
	return unknownf(id, fmt.Sprintf("http-%d", c.Status), "%s: GitHub answered %d", what, c.Status)
}

// archivedNA are the ids that do not apply to an archived (read-only)
// repository: nothing is pushed, no workflow runs, Dependabot stops.
var archivedNA = []string{IDPVR, IDCodeowners, IDContributing, IDSecretScanning, IDGitleaksConfig, IDDependabot,
	IDVulnAlerts, IDBranchProtect, IDSignedCommits, IDActionsPinning, IDActionsPerms, IDActionsTriggers}

func evaluateRepo(in check.In[Evidence]) []check.Finding {
	ev := in.Evidence
	ri := ev.info()
	pol := Settings.Get(in.Policy)
	out := []check.Finding{
		evalLicence(ev, ri), evalReadme(ev, ri), evalSecurity(ev), evalStale(ri, in.CollectedAt, pol.StaleDays),
	}
	if ri.Archived {
		for _, id := range archivedNA {
			out = append(out, finding(id, check.NA, "archived: the repository is read-only"))
		}
		return out
	}
	wfs, wfErr := workflows(ev)
	return append(out,
		evalPVR(ev), evalCodeowners(ev), evalContributing(ev), evalSecretScanning(ri), evalGitleaks(ev, wfs),
		evalDependabot(ev), evalVulnAlerts(ev, in.CollectedAt, pol.AlertSLADays), evalProtection(ev, ri),
		evalSigned(ev), evalPinning(ev, wfs, wfErr), evalPermissions(ev, wfs, wfErr), evalTriggers(ev, wfs, wfErr))
}

// treeUnknown says why the file list could not be read ("" when it was):
// an empty repository (409) has an empty list.
func treeUnknown(t Tree) (reason, msg string) {
	switch {
	case t.Status == 200 || t.Status == 409:
		return "", ""
	case t.Status != 0:
		return fmt.Sprintf("http-%d", t.Status), fmt.Sprintf("the default branch's file list: GitHub answered %d", t.Status)
	case t.Class != "":
		return t.Class, "the default branch's file list: " + t.Error
	}
	return string(check.ErrOther), "the default branch's file list was not read"
}

// absentOrUnknown is the verdict on a file that is not in the list: fail,
// or unknown when the list was truncated.
func absentOrUnknown(id string, t Tree, format string, args ...any) check.Finding {
	if t.Truncated {
		return unknownf(id, string(check.ErrTooLarge), "the file list GitHub returned is truncated: "+format, args...)
	}
	return finding(id, check.Fail, format, args...)
}

// osiLicences are SPDX ids (as GitHub reports them) of OSI-approved
// licences; docLicences are for documentation (NHS-OSP: OGL v3 for docs).
var (
	osiLicences = []string{"MIT", "MIT-0", "Apache-2.0", "GPL-2.0", "GPL-3.0", "GPL-2.0-only", "GPL-3.0-only", "GPL-2.0-or-later",
		"GPL-3.0-or-later", "LGPL-2.1", "LGPL-3.0", "AGPL-3.0", "MPL-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "EPL-1.0",
		"EPL-2.0", "EUPL-1.1", "EUPL-1.2", "0BSD", "Unlicense", "Zlib", "BSL-1.0", "OSL-3.0", "Artistic-2.0", "UPL-1.0",
		"MS-PL", "ECL-2.0", "AFL-3.0", "NCSA", "PostgreSQL", "MulanPSL-2.0"}
	docLicences = []string{"OGL-UK-3.0", "CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0"}
)

func evalLicence(ev Evidence, ri repoInfo) check.Finding {
	if r, m := treeUnknown(ev.Tree); r != "" {
		return unknownf(IDLicence, r, "%s", m)
	}
	p := findIn(ev.Tree.Paths, []string{""}, reLicence)
	if p == "" {
		return absentOrUnknown(IDLicence, ev.Tree, "no LICENCE, LICENSE or COPYING file at the root")
	}
	spdx := ""
	if ri.License != nil {
		spdx = ri.License.SPDXID
	}
	switch {
	case slices.Contains(osiLicences, spdx):
		note := ""
		if spdx != "MIT" {
			note = " (MIT is the NHS default; another OSI licence is acceptable)"
		}
		return finding(IDLicence, check.Pass, "%s: %s%s", p, spdx, note)
	case slices.Contains(docLicences, spdx):
		return finding(IDLicence, check.Warn, "%s: %s is a licence for documentation and data, not an OSI licence for code", p, spdx)
	case spdx == "" || spdx == "NOASSERTION":
		return finding(IDLicence, check.Fail, "%s: GitHub does not recognise the licence (NOASSERTION): not an open source licence text it knows", p)
	}
	return finding(IDLicence, check.Fail, "%s: %s is not an OSI-approved licence", p, spdx)
}

var (
	reMentionsLicence = regexp.MustCompile(`(?i)licen[cs]e`)
	reSaysArchived    = regexp.MustCompile(`(?i)archived|no longer (actively )?maintained|unmaintained|not (actively )?maintained|deprecated|no longer (in use|used|supported)`)
)

func evalReadme(ev Evidence, ri repoInfo) check.Finding {
	if r, m := treeUnknown(ev.Tree); r != "" {
		return unknownf(IDReadme, r, "%s", m)
	}
	p := findIn(ev.Tree.Paths, []string{""}, reReadme)
	if p == "" {
		return absentOrUnknown(IDReadme, ev.Tree, "no README at the root")
	}
	f, ok := ev.Files[p]
	if !ok || f.Error != "" {
		return unknownf(IDReadme, cmpOr(f.Class, string(check.ErrOther)), "%s could not be read: %s", p, f.Error)
	}
	size := max(len(f.Text), f.Size)
	var bad []string
	if size <= 300 {
		bad = append(bad, fmt.Sprintf("it is %d bytes (more than 300 expected)", size))
	}
	if !reMentionsLicence.MatchString(f.Text) {
		bad = append(bad, "it does not mention the licence")
	}
	if ri.Archived && !reSaysArchived.MatchString(f.Text) {
		bad = append(bad, "the repository is archived and the README does not say so")
	}
	if len(bad) > 0 {
		return finding(IDReadme, check.Fail, "%s: %s", p, strings.Join(bad, "; "))
	}
	return finding(IDReadme, check.Pass, "%s: %d bytes, mentions the licence", p, size)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// reRoute is a way to report a vulnerability: an email address, a web
// address, or the NCSC's reporting service.
var reRoute = regexp.MustCompile(`(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}|https?://[^\s)>\]]+|\bncsc\b`)

func evalSecurity(ev Evidence) check.Finding {
	if r, m := treeUnknown(ev.Tree); r != "" {
		return unknownf(IDSecurityPolicy, r, "%s", m)
	}
	judge := func(where string, f File, ok bool) check.Finding {
		if !ok || f.Error != "" {
			return unknownf(IDSecurityPolicy, cmpOr(f.Class, string(check.ErrOther)), "%s could not be read: %s", where, f.Error)
		}
		if m := reRoute.FindString(f.Text); m != "" {
			return finding(IDSecurityPolicy, check.Pass, "%s names a reporting route (%s)", where, m)
		}
		return finding(IDSecurityPolicy, check.Fail, "%s names no way to report a vulnerability (no email address, web address or NCSC link)", where)
	}
	if p := findIn(ev.Tree.Paths, healthDirs, reSecurity); p != "" {
		f, ok := ev.Files[p]
		return judge(p, f, ok)
	}
	if ev.Tree.Truncated {
		return unknownf(IDSecurityPolicy, string(check.ErrTooLarge), "the file list GitHub returned is truncated and holds no SECURITY.md")
	}
	in := ev.OrgDotGitHub
	switch {
	case strings.EqualFold(ev.Name, ".github") || in == nil:
		return finding(IDSecurityPolicy, check.Fail, "no SECURITY.md in the root, .github/ or docs/")
	case in.Status == 404:
		return finding(IDSecurityPolicy, check.Fail, "no SECURITY.md in the repository, and the organisation has no .github repository to inherit one from")
	case in.Status != 200:
		return unknownf(IDSecurityPolicy, cmpOr(in.Error, fmt.Sprintf("http-%d", in.Status)), "no SECURITY.md in the repository, and the organisation's .github repository could not be read")
	}
	if r, m := treeUnknown(in.Tree); r != "" {
		return unknownf(IDSecurityPolicy, r, "the organisation's .github repository: %s", m)
	}
	p := findIn(in.Tree.Paths, healthDirs, reSecurity)
	if p == "" {
		return finding(IDSecurityPolicy, check.Fail, "no SECURITY.md in the repository or in the organisation's .github repository")
	}
	f, ok := in.Files[p]
	return judge(ev.Owner+"/.github: "+p+" (inherited)", f, ok)
}

func evalStale(ri repoInfo, at time.Time, days int) check.Finding {
	switch {
	case ri.Archived:
		return finding(IDStale, check.Pass, "archived")
	case ri.PushedAt == nil:
		return unknownf(IDStale, string(check.ErrMalformed), "the repository has no pushed_at")
	}
	age := at.Sub(*ri.PushedAt)
	d := int(age.Hours() / 24)
	if age > time.Duration(days)*24*time.Hour {
		return finding(IDStale, check.Warn, "last push %d days ago (%s), not archived; stale after %d days", d, ri.PushedAt.UTC().Format(time.DateOnly), days)
	}
	return finding(IDStale, check.Pass, "last push %d days ago (%s)", d, ri.PushedAt.UTC().Format(time.DateOnly))
}

func evalPVR(ev Evidence) check.Finding {
	c := ev.Calls["pvr"]
	switch {
	case c == nil:
		return needsAdmin(IDPVR, "private vulnerability reporting")
	case c.Status == 404 || c.Status == 403:
		// GitHub answers 404 to a token that may not read the setting.
		return needsAdmin(IDPVR, fmt.Sprintf("private vulnerability reporting (GitHub answered %d)", c.Status))
	case !c.OK():
		return callUnknown(IDPVR, "private vulnerability reporting", c)
	}
	var b struct {
		Enabled *bool `json:"enabled"`
	}
	if json.Unmarshal(c.Body, &b) != nil || b.Enabled == nil {
		return unknownf(IDPVR, string(check.ErrMalformed), "private vulnerability reporting: the answer has no enabled field")
	}
	return passFail(IDPVR, !*b.Enabled, "private vulnerability reporting enabled: %v", *b.Enabled)
}

func evalCodeowners(ev Evidence) check.Finding {
	if r, m := treeUnknown(ev.Tree); r != "" {
		return unknownf(IDCodeowners, r, "%s", m)
	}
	p := findIn(ev.Tree.Paths, codeownerDirs, reCodeowners)
	if p == "" {
		return absentOrUnknown(IDCodeowners, ev.Tree, "no CODEOWNERS in .github/, the root or docs/")
	}
	c := ev.Calls["codeowners-errors"]
	if !c.OK() {
		return callUnknown(IDCodeowners, p+": GitHub's CODEOWNERS errors", c)
	}
	var b struct {
		Errors []struct {
			Line    int    `json:"line"`
			Kind    string `json:"kind"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(c.Body, &b) != nil {
		return unknownf(IDCodeowners, string(check.ErrMalformed), "%s: GitHub's CODEOWNERS errors do not decode", p)
	}
	if len(b.Errors) == 0 {
		return finding(IDCodeowners, check.Pass, "%s: GitHub reports no errors", p)
	}
	var es []string
	for i, e := range b.Errors {
		if i == 3 {
			es = append(es, fmt.Sprintf("and %d more", len(b.Errors)-3))
			break
		}
		msg, _, _ := strings.Cut(e.Message, "\n")
		es = append(es, fmt.Sprintf("line %d: %s (%s)", e.Line, e.Kind, strings.TrimSpace(msg)))
	}
	return finding(IDCodeowners, check.Fail, "%s: GitHub reports %d error(s): %s", p, len(b.Errors), strings.Join(es, "; "))
}

func evalContributing(ev Evidence) check.Finding {
	if r, m := treeUnknown(ev.Tree); r != "" {
		return unknownf(IDContributing, r, "%s", m)
	}
	if p := findIn(ev.Tree.Paths, healthDirs, reContributing); p != "" {
		return finding(IDContributing, check.Pass, "%s", p)
	}
	if in := ev.OrgDotGitHub; in != nil && in.Status == 200 && in.Tree.Status == 200 {
		if p := findIn(in.Tree.Paths, healthDirs, reContributing); p != "" {
			return finding(IDContributing, check.Pass, "%s/.github: %s (inherited)", ev.Owner, p)
		}
	} else if in != nil && in.Status != 404 && !strings.EqualFold(ev.Name, ".github") {
		return unknownf(IDContributing, cmpOr(in.Error, fmt.Sprintf("http-%d", in.Status)), "no CONTRIBUTING in the repository, and the organisation's .github repository could not be read")
	}
	return absentOrUnknown(IDContributing, ev.Tree, "no CONTRIBUTING in the root, .github/ or docs/, nor in the organisation's .github repository")
}

func evalSecretScanning(ri repoInfo) check.Finding {
	sa := ri.SecurityAndAnalysis
	if sa == nil {
		return needsAdmin(IDSecretScanning, "security_and_analysis")
	}
	ss, pp := sa["secret_scanning"].Status, sa["secret_scanning_push_protection"].Status
	return passFail(IDSecretScanning, ss != "enabled" || pp != "enabled",
		"secret scanning %s, push protection %s", cmpOr(ss, "absent"), cmpOr(pp, "absent"))
}

// workflows parses the workflow files read ("" error: all read).
func workflows(ev Evidence) ([]Workflow, string) {
	if r, m := treeUnknown(ev.Tree); r != "" {
		return nil, r + "\x00" + m
	}
	var out []Workflow
	var unread []string
	class := ""
	n := 0
	for _, p := range ev.Tree.Paths {
		action := reAction.MatchString(p)
		if !reWorkflow.MatchString(p) && !action {
			continue
		}
		n++
		f, ok := ev.Files[p]
		if !ok || f.Error != "" || f.Truncated {
			unread = append(unread, p)
			if class == "" {
				class = cmpOr(f.Class, string(check.ErrTooLarge))
			}
			continue
		}
		out = append(out, parseWorkflow(p, f.Text, action))
	}
	if len(unread) > 0 {
		return out, class + "\x00" + fmt.Sprintf("%d of %d workflow files could not be read (%s)", len(unread), n, strings.Join(unread, ", "))
	}
	return out, ""
}

func wfUnknown(id, wfErr string) check.Finding {
	r, m, _ := strings.Cut(wfErr, "\x00")
	return unknownf(id, r, "%s", m)
}

func evalGitleaks(ev Evidence, wfs []Workflow) check.Finding {
	if r, m := treeUnknown(ev.Tree); r != "" {
		return unknownf(IDGitleaksConfig, r, "%s", m)
	}
	var have, missing []string
	if p := hasPath(ev.Tree.Paths, gitleaksConfigs...); p != "" {
		have = append(have, p)
	} else {
		missing = append(missing, "a gitleaks configuration (.gitleaks.toml or scripts/config/gitleaks.toml)")
	}
	hook := ""
	if p := hasPath(ev.Tree.Paths, precommitConfigs...); p != "" {
		t := strings.ToLower(ev.Files[p].Text)
		if strings.Contains(t, "gitleaks") || strings.Contains(t, "scan-secrets") {
			hook = p
		}
	}
	if hook != "" {
		have = append(have, hook+" (secret-scan hook)")
	} else {
		missing = append(missing, "a pre-commit hook that runs gitleaks")
	}
	ci := ""
	for _, w := range wfs {
		if runsGitleaks(w) {
			ci = w.Path
			break
		}
	}
	if ci != "" {
		have = append(have, ci+" (CI scan)")
	} else {
		missing = append(missing, "a workflow that runs gitleaks")
	}
	if len(missing) > 0 {
		return finding(IDGitleaksConfig, check.Fail, "missing %s", strings.Join(missing, "; "))
	}
	return finding(IDGitleaksConfig, check.Pass, "%s", strings.Join(have, "; "))
}

// ecosystemOf maps a manifest to its Dependabot package-ecosystem.
func ecosystemOf(p string) string {
	for _, d := range strings.Split(path.Dir(p), "/") {
		if d == "node_modules" || d == "vendor" || d == "testdata" || d == "third_party" {
			return ""
		}
	}
	b := path.Base(p)
	switch {
	case reWorkflow.MatchString(p) || reAction.MatchString(p):
		return "github-actions"
	case b == "package.json":
		return "npm"
	case b == "requirements.txt" || b == "pyproject.toml" || b == "Pipfile" || b == "setup.py" || (strings.HasPrefix(b, "requirements") && strings.HasSuffix(b, ".txt")):
		return "pip"
	case b == "go.mod":
		return "gomod"
	case b == "Dockerfile" || strings.HasSuffix(b, ".Dockerfile") || strings.HasPrefix(b, "Dockerfile."):
		return "docker"
	case strings.HasSuffix(b, ".tf"):
		return "terraform"
	case b == "pom.xml":
		return "maven"
	case b == "build.gradle" || b == "build.gradle.kts":
		return "gradle"
	case b == "Gemfile":
		return "bundler"
	case b == "Cargo.toml":
		return "cargo"
	case b == "composer.json":
		return "composer"
	case strings.HasSuffix(b, ".csproj") || b == "packages.config":
		return "nuget"
	}
	return ""
}

// ecosystemAliases: configured ecosystems that cover another's manifests.
var ecosystemAliases = map[string]string{"uv": "pip", "docker-compose": "docker", "yarn": "npm", "pnpm": "npm"}

// parseDependabot returns the configured package ecosystems.
func parseDependabot(text string) ([]string, error) {
	var cfg struct {
		Updates []struct {
			Ecosystem string `yaml:"package-ecosystem"`
		} `yaml:"updates"`
	}
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		return nil, err
	}
	var out []string
	for _, u := range cfg.Updates {
		e := strings.ToLower(strings.TrimSpace(u.Ecosystem))
		if a, ok := ecosystemAliases[e]; ok {
			e = a
		}
		if e != "" && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out, nil
}

func evalDependabot(ev Evidence) check.Finding {
	if r, m := treeUnknown(ev.Tree); r != "" {
		return unknownf(IDDependabot, r, "%s", m)
	}
	var detected []string
	for _, p := range ev.Tree.Paths {
		if e := ecosystemOf(p); e != "" && !slices.Contains(detected, e) {
			detected = append(detected, e)
		}
	}
	sort.Strings(detected)
	cfgNote := ""
	if p := hasPath(ev.Tree.Paths, dependabotFiles...); p != "" {
		f := ev.Files[p]
		if f.Error != "" {
			return unknownf(IDDependabot, cmpOr(f.Class, string(check.ErrOther)), "%s could not be read: %s", p, f.Error)
		}
		have, err := parseDependabot(f.Text)
		if err != nil {
			return finding(IDDependabot, check.Fail, "%s does not parse: %v", p, err)
		}
		var miss []string
		for _, e := range detected {
			if !slices.Contains(have, e) {
				miss = append(miss, e)
			}
		}
		if len(miss) > 0 {
			return finding(IDDependabot, check.Fail, "%s has no update entry for %s (the repository has their manifests)", p, strings.Join(miss, ", "))
		}
		cfgNote = fmt.Sprintf("%s covers %s", p, strings.Join(detected, ", "))
	} else if len(detected) > 0 {
		return absentOrUnknown(IDDependabot, ev.Tree, "no .github/dependabot.y[a]ml, and the repository has %s manifests", strings.Join(detected, ", "))
	} else {
		cfgNote = "no manifests Dependabot updates"
	}
	list, c := ev.Calls["dependabot-alerts"], ev.Calls["vulnerability-alerts"]
	switch {
	case list.OK():
		return finding(IDDependabot, check.Pass, "Dependabot alerts enabled (their list is readable); %s", cfgNote)
	case c == nil && list == nil:
		return needsAdmin(IDDependabot, "Dependabot alerts ("+cfgNote+")")
	case c == nil:
		return callUnknown(IDDependabot, "Dependabot alerts", list)
	case c.Status == 204:
		return finding(IDDependabot, check.Pass, "Dependabot alerts enabled; %s", cfgNote)
	case c.Status == 404:
		return finding(IDDependabot, check.Fail, "Dependabot alerts are disabled; %s", cfgNote)
	}
	return callUnknown(IDDependabot, "Dependabot alerts", c)
}

type alertView struct {
	Severity string
	Created  time.Time
	What     string
}

func evalVulnAlerts(ev Evidence, at time.Time, slaDays int) check.Finding {
	dc := ev.Calls["dependabot-alerts"]
	switch {
	case dc == nil:
		return needsAdmin(IDVulnAlerts, "Dependabot alerts")
	case dc.Status == 403 || dc.Status == 404:
		return unknownf(IDVulnAlerts, fmt.Sprintf("http-%d", dc.Status), "Dependabot alerts cannot be listed (GitHub answered %d: alerts disabled, or the token lacks the security_events scope)", dc.Status)
	case !dc.OK():
		return callUnknown(IDVulnAlerts, "Dependabot alerts", dc)
	}
	var alerts []alertView
	var dep []struct {
		State    string    `json:"state"`
		Created  time.Time `json:"created_at"`
		HTMLURL  string    `json:"html_url"`
		Advisory struct {
			Severity string `json:"severity"`
			GHSA     string `json:"ghsa_id"`
		} `json:"security_advisory"`
		Dependency struct {
			Package struct {
				Name string `json:"name"`
			} `json:"package"`
		} `json:"dependency"`
	}
	if json.Unmarshal(dc.Body, &dep) != nil {
		return unknownf(IDVulnAlerts, string(check.ErrMalformed), "Dependabot alerts do not decode")
	}
	for _, a := range dep {
		if a.State == "open" {
			alerts = append(alerts, alertView{strings.ToLower(a.Advisory.Severity), a.Created, a.Dependency.Package.Name + " " + a.Advisory.GHSA})
		}
	}
	note := ""
	if cc := ev.Calls["code-scanning-alerts"]; cc.OK() {
		var cs []struct {
			State   string    `json:"state"`
			Created time.Time `json:"created_at"`
			Rule    struct {
				ID       string `json:"id"`
				Severity string `json:"security_severity_level"`
			} `json:"rule"`
		}
		if json.Unmarshal(cc.Body, &cs) == nil {
			for _, a := range cs {
				if a.State == "open" {
					alerts = append(alerts, alertView{strings.ToLower(a.Rule.Severity), a.Created, "code scanning " + a.Rule.ID})
				}
			}
		}
	} else {
		note = "; code scanning alerts not available"
	}
	var old, young []string
	for _, a := range alerts {
		if a.Severity != "critical" && a.Severity != "high" {
			continue
		}
		d := int(at.Sub(a.Created).Hours() / 24)
		s := fmt.Sprintf("%s %s (%d days)", a.Severity, a.What, d)
		if at.Sub(a.Created) > time.Duration(slaDays)*24*time.Hour {
			old = append(old, s)
		} else {
			young = append(young, s)
		}
	}
	if len(old) > 0 {
		return finding(IDVulnAlerts, check.Fail, "%d open critical/high alert(s) older than %d days: %s%s", len(old), slaDays, strings.Join(first(old, 5), "; "), note)
	}
	if len(young) > 0 {
		return finding(IDVulnAlerts, check.Pass, "%d open critical/high alert(s), all within %d days: %s%s", len(young), slaDays, strings.Join(first(young, 5), "; "), note)
	}
	return finding(IDVulnAlerts, check.Pass, "no open critical or high alerts%s", note)
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

// protection is what the default branch requires, from classic protection
// and rulesets together.
type protection struct {
	review, codeOwner, stale, strictChecks, signed, noForcePush, noDelete, admins bool
}

func (p protection) missing() []string {
	var m []string
	for _, x := range []struct {
		ok   bool
		what string
	}{{p.review, "a pull request with an approval"}, {p.codeOwner, "code-owner review"}, {p.stale, "dismissal of stale approvals"},
		{p.strictChecks, "status checks on an up-to-date branch"}, {p.signed, "signed commits"},
		{p.noForcePush, "force pushes blocked"}, {p.noDelete, "deletion blocked"}, {p.admins, "administrators included"}} {
		if !x.ok {
			m = append(m, x.what)
		}
	}
	return m
}

func (p *protection) addRules(body json.RawMessage) int {
	var rules []struct {
		Type       string `json:"type"`
		Parameters struct {
			Count     int  `json:"required_approving_review_count"`
			CodeOwner bool `json:"require_code_owner_review"`
			Stale     bool `json:"dismiss_stale_reviews_on_push"`
			Strict    bool `json:"strict_required_status_checks_policy"`
		} `json:"parameters"`
	}
	if json.Unmarshal(body, &rules) != nil {
		return 0
	}
	for _, r := range rules {
		switch r.Type {
		case "pull_request":
			p.review = p.review || r.Parameters.Count >= 1
			p.codeOwner = p.codeOwner || r.Parameters.CodeOwner
			p.stale = p.stale || r.Parameters.Stale
		case "required_status_checks":
			p.strictChecks = p.strictChecks || r.Parameters.Strict
		case "required_signatures":
			p.signed = true
		case "non_fast_forward":
			p.noForcePush = true
		case "deletion":
			p.noDelete = true
		}
	}
	if len(rules) > 0 {
		// Who may bypass a ruleset is shown to administrators only.
		p.admins = true
	}
	return len(rules)
}

func (p *protection) addClassic(body json.RawMessage) bool {
	var c struct {
		Checks *struct {
			Strict bool `json:"strict"`
		} `json:"required_status_checks"`
		Reviews *struct {
			Count     int  `json:"required_approving_review_count"`
			CodeOwner bool `json:"require_code_owner_reviews"`
			Stale     bool `json:"dismiss_stale_reviews"`
		} `json:"required_pull_request_reviews"`
		Signed *struct {
			Enabled bool `json:"enabled"`
		} `json:"required_signatures"`
		Admins *struct {
			Enabled bool `json:"enabled"`
		} `json:"enforce_admins"`
		Force *struct {
			Enabled bool `json:"enabled"`
		} `json:"allow_force_pushes"`
		Delete *struct {
			Enabled bool `json:"enabled"`
		} `json:"allow_deletions"`
	}
	if json.Unmarshal(body, &c) != nil {
		return false
	}
	if c.Reviews != nil {
		p.review = p.review || c.Reviews.Count >= 1
		p.codeOwner = p.codeOwner || c.Reviews.CodeOwner
		p.stale = p.stale || c.Reviews.Stale
	}
	p.strictChecks = p.strictChecks || (c.Checks != nil && c.Checks.Strict)
	p.signed = p.signed || (c.Signed != nil && c.Signed.Enabled)
	p.admins = p.admins || (c.Admins != nil && c.Admins.Enabled)
	p.noForcePush = p.noForcePush || c.Force == nil || !c.Force.Enabled
	p.noDelete = p.noDelete || c.Delete == nil || !c.Delete.Enabled
	return true
}

func evalProtection(ev Evidence, ri repoInfo) check.Finding {
	var p protection
	src := []string{}
	rules := ev.Calls["rules"]
	if rules.OK() {
		if n := p.addRules(rules.Body); n > 0 {
			src = append(src, fmt.Sprintf("%d ruleset rule(s)", n))
		}
	}
	classic := ev.Calls["protection"]
	protected, branchKnown := branchProtected(ev.Calls["branch"])
	known := false // whether classic protection's state is known
	switch {
	case classic.OK():
		if !p.addClassic(classic.Body) {
			return unknownf(IDBranchProtect, string(check.ErrMalformed), "branch protection does not decode")
		}
		src = append(src, "classic protection")
		known = true
	case classic != nil && classic.Status == 404 && ri.admin():
		// An administrator is told 404 "Branch not protected".
		known = true
	case classic != nil:
		return callUnknown(IDBranchProtect, "branch protection", classic)
	case branchKnown && !protected:
		// The branch says publicly that it is not protected.
		known = true
	}
	missing := p.missing()
	b := ri.DefaultBranch
	if len(missing) == 0 {
		return finding(IDBranchProtect, check.Pass, "%s: protected by %s with every required rule", b, strings.Join(src, " and "))
	}
	if !known {
		switch {
		case rules != nil && !rules.OK():
			return callUnknown(IDBranchProtect, "branch rules", rules)
		case !branchKnown:
			return callUnknown(IDBranchProtect, "the default branch", ev.Calls["branch"])
		}
		return needsAdmin(IDBranchProtect, fmt.Sprintf("%s is protected: classic branch protection (rulesets alone lack %s)", b, strings.Join(missing, ", ")))
	}
	if len(src) == 0 {
		return finding(IDBranchProtect, check.Fail, "%s is not protected", b)
	}
	return finding(IDBranchProtect, check.Fail, "%s (%s) lacks %s", b, strings.Join(src, " and "), strings.Join(missing, ", "))
}

func evalSigned(ev Evidence) check.Finding {
	c := ev.Calls["commits"]
	if c != nil && c.Status == 409 {
		return finding(IDSignedCommits, check.NA, "the repository is empty")
	}
	if !c.OK() {
		return callUnknown(IDSignedCommits, "the default branch's commits", c)
	}
	var cs []struct {
		SHA    string `json:"sha"`
		Commit struct {
			Verification struct {
				Verified bool   `json:"verified"`
				Reason   string `json:"reason"`
			} `json:"verification"`
		} `json:"commit"`
	}
	if json.Unmarshal(c.Body, &cs) != nil {
		return unknownf(IDSignedCommits, string(check.ErrMalformed), "the commit list does not decode")
	}
	if len(cs) == 0 {
		return finding(IDSignedCommits, check.NA, "no commits on the default branch")
	}
	var bad []string
	for _, x := range cs {
		if !x.Commit.Verification.Verified {
			sha := x.SHA
			if len(sha) > 12 {
				sha = sha[:12]
			}
			bad = append(bad, sha+" ("+cmpOr(x.Commit.Verification.Reason, "unverified")+")")
		}
	}
	if len(bad) > 0 {
		return finding(IDSignedCommits, check.Fail, "%d of the last %d commits are not verified: %s", len(bad), len(cs), strings.Join(first(bad, 5), ", "))
	}
	return finding(IDSignedCommits, check.Pass, "the last %d commits are verified", len(cs))
}

func evalPinning(ev Evidence, wfs []Workflow, wfErr string) check.Finding {
	if wfErr != "" {
		return wfUnknown(IDActionsPinning, wfErr)
	}
	if len(wfs) == 0 {
		return finding(IDActionsPinning, check.NA, "no workflows")
	}
	var bad []string
	n := 0
	for _, w := range wfs {
		for _, u := range w.Uses {
			n++
			if !pinned(u.Ref) {
				bad = append(bad, w.Path+": "+u.Ref)
			}
		}
	}
	if len(bad) > 0 {
		return finding(IDActionsPinning, check.Fail, "%d of %d uses: not pinned to a full commit SHA: %s", len(bad), n, strings.Join(first(bad, 5), "; "))
	}
	return finding(IDActionsPinning, check.Pass, "%d uses: in %d files, all pinned to a commit SHA", n, len(wfs))
}

func evalPermissions(ev Evidence, wfs []Workflow, wfErr string) check.Finding {
	if wfErr != "" {
		return wfUnknown(IDActionsPerms, wfErr)
	}
	var bad []string
	n := 0
	for _, w := range wfs {
		if reAction.MatchString(w.Path) || w.Error != "" {
			continue
		}
		n++
		switch {
		case !w.HasPermissions:
			bad = append(bad, w.Path+": no top-level permissions:")
		case w.Permissions == "write-all":
			bad = append(bad, w.Path+": permissions: write-all")
		}
		for _, j := range w.JobWriteAll {
			bad = append(bad, w.Path+": job "+j+" has permissions: write-all")
		}
	}
	if n == 0 {
		return finding(IDActionsPerms, check.NA, "no workflows")
	}
	if len(bad) > 0 {
		return finding(IDActionsPerms, check.Fail, "%s", strings.Join(first(bad, 5), "; "))
	}
	return finding(IDActionsPerms, check.Pass, "%d workflow(s) declare least-privilege permissions", n)
}

func evalTriggers(ev Evidence, wfs []Workflow, wfErr string) check.Finding {
	if wfErr != "" {
		return wfUnknown(IDActionsTriggers, wfErr)
	}
	if len(wfs) == 0 {
		return finding(IDActionsTriggers, check.NA, "no workflows")
	}
	var bad []string
	for _, w := range wfs {
		if why := riskyTrigger(w); why != "" {
			bad = append(bad, why)
		}
	}
	if len(bad) > 0 {
		return finding(IDActionsTriggers, check.Fail, "%s", strings.Join(first(bad, 3), "; "))
	}
	return finding(IDActionsTriggers, check.Pass, "no pull_request_target or workflow_run workflow runs the pull request's code")
}
