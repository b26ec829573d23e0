package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nhsx/posture/checks/check"
)

// The SARIF 2.1.0 schema (OASIS, errata 01, as oasis-tcs/sarif-spec
// publishes it at sarif-2.1/schema/sarif-schema-2.1.0.json), committed as
// test data.
const sarifSchemaFile = "testdata/sarif-schema-2.1.0.json"

func sarifValidate(t *testing.T, out []byte) {
	t.Helper()
	if err := sarifSchemaCheck(out); err != nil {
		t.Fatal(err)
	}
}

func sarifSchemaCheck(out []byte) error {
	f, err := os.Open(sarifSchemaFile)
	if err != nil {
		return err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SARIFSchema, doc); err != nil {
		return err
	}
	sch, err := c.Compile(SARIFSchema)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
	if err != nil {
		return fmt.Errorf("the export is not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("the export does not validate against the SARIF 2.1.0 schema: %w", err)
	}
	return nil
}

var sarifRules = []check.Meta{
	{ID: "repo.secrets.history", Family: "repo", Title: "No secrets in the repository's history", Description: "gitleaks over the history",
		Severity: check.Critical, Targets: []check.Kind{check.KindRepo}, Remediation: "Revoke the secret.",
		Standards: []check.Ref{{Standard: "GOV.UK Service Standard", Section: "point 12", URL: "https://www.gov.uk/service-manual/service-standard/point-12-make-new-source-code-open"}}},
	{ID: "repo.readme", Family: "repo", Title: "README", Description: "A README at the root", Severity: check.Medium, Targets: []check.Kind{check.KindRepo}},
	{ID: "repo.actions.pinning", Family: "repo", Title: "Actions pinned", Description: "SHA pins", Severity: check.Medium, Targets: []check.Kind{check.KindRepo}},
	{ID: "email.dmarc.policy", Family: "email", Title: "DMARC", Description: "p=reject", Severity: check.High, Targets: []check.Kind{check.KindDomain}},
}

func sarifFindings() []Finding {
	repo := check.Asset{Kind: check.KindRepo, Name: "lab-rx1/service", Org: "RX1"}
	other := check.Asset{Kind: check.KindRepo, Name: "lab-rx1/tool", Org: "RX1"}
	return []Finding{
		{Finding: check.Finding{CheckID: "repo.secrets.history", Rule: "no-secrets-in-history", Asset: repo, Outcome: check.Fail,
			Severity: check.Critical, Message: "2 secrets in the history", Remediation: "Revoke them."}, Status: StatusOpen},
		{Finding: check.Finding{CheckID: "repo.readme", Rule: "repo.readme", Asset: repo, Outcome: check.Pass, Severity: check.Medium}},
		{Finding: check.Finding{CheckID: "repo.actions.pinning", Rule: "repo.actions.pinning", Asset: other, Outcome: check.Warn,
			Severity: check.Medium, Message: "actions/checkout@v4 is not pinned"}},
		{Finding: check.Finding{CheckID: "repo.readme", Rule: "repo.readme", Asset: other, Outcome: check.Unknown, Severity: check.Medium}},
		{Finding: check.Finding{CheckID: "email.dmarc.policy", Rule: "p", Asset: check.Asset{Kind: check.KindDomain, Name: "x.nhs.uk"},
			Outcome: check.Fail, Severity: check.High}},
	}
}

func sarifLeakLocations(f Finding) []SARIFLocation {
	if f.CheckID != "repo.secrets.history" {
		return nil
	}
	return []SARIFLocation{
		{File: "app/settings.py", Line: 2, Column: 22, EndColumn: 41, Fingerprint: "hmac-sha256:ab|c1:app/settings.py:aws-access-token:2",
			Message: "aws-access-token added in commit c1: AKIA…[20 redacted]", Properties: map[string]any{"commit": "c1"}},
		{File: "deploy/id rsa", Line: 1, EndLine: 14, Fingerprint: "hmac-sha256:cd|c2:deploy/id rsa:private-key:1",
			Message: "private-key added in commit c2: ----…[475 redacted]"},
	}
}

func TestSARIFExportValidatesAgainstTheSchema(t *testing.T) {
	var b bytes.Buffer
	err := WriteSARIF(&b, sarifFindings(), SARIFOptions{Rules: sarifRules, Version: "1.2.3", Locations: sarifLeakLocations,
		Repo: func(name string) SARIFRepo {
			return SARIFRepo{URI: "https://github.com/" + name, Revision: "0123456789abcdef0123456789abcdef01234567", Branch: "main"}
		}})
	if err != nil {
		t.Fatal(err)
	}
	sarifValidate(t, b.Bytes())

	var log sarifLog
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if len(log.Runs) != 2 {
		t.Fatalf("%d runs, want one per repository with a problem (2)", len(log.Runs))
	}
	run := log.Runs[0] // lab-rx1/service
	if run.AutomationDetails.ID != "posture/lab-rx1/service/" || run.VersionControl[0].Branch != "refs/heads/main" {
		t.Errorf("run %+v %+v", run.AutomationDetails, run.VersionControl)
	}
	if n := len(run.Tool.Driver.Rules); n != 3 {
		t.Errorf("%d rules, want the catalogue's 3 repository entries", n)
	}
	if len(run.Results) != 2 {
		t.Fatalf("%d results, want one per leak (2): a pass is not a result", len(run.Results))
	}
	r := run.Results[0]
	if r.RuleID != "repo.secrets.history" || run.Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID || r.Level != "error" {
		t.Errorf("result %+v", r)
	}
	loc := r.Locations[0].Physical
	if loc.Artifact.URI != "app/settings.py" || loc.Region == nil || loc.Region.StartLine != 2 || loc.Region.StartColumn != 22 || loc.Region.EndColumn != 42 {
		t.Errorf("location %+v %+v", loc.Artifact, loc.Region)
	}
	if run.Results[1].Locations[0].Physical.Artifact.URI != "deploy/id%20rsa" {
		t.Errorf("uri %q", run.Results[1].Locations[0].Physical.Artifact.URI)
	}
	if r.PartialFingerprints["primaryLocationLineHash"] == run.Results[1].PartialFingerprints["primaryLocationLineHash"] ||
		r.PartialFingerprints["postureFinding/v1"] == "" {
		t.Errorf("fingerprints %v %v", r.PartialFingerprints, run.Results[1].PartialFingerprints)
	}
	// The repository-wide warning is placed on the file it is about.
	w := log.Runs[1].Results
	if len(w) != 1 || w[0].Level != "warning" || w[0].Locations[0].Physical.Artifact.URI != ".github/workflows" {
		t.Errorf("pinning result %+v", w)
	}
}

func TestSARIFExportOfNoProblemsIsAValidEmptyLog(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSARIF(&b, nil, SARIFOptions{Rules: sarifRules}); err != nil {
		t.Fatal(err)
	}
	sarifValidate(t, b.Bytes())
	if !strings.Contains(b.String(), `"runs": []`) {
		t.Errorf("%s", b.String())
	}
}

func TestSARIFExportEscapesHostileText(t *testing.T) {
	fs := sarifFindings()
	fs[0].Message = "<script>alert(1)</script>\x00\u2028" + strings.Repeat("x", 10000)
	var b bytes.Buffer
	if err := WriteSARIF(&b, fs, SARIFOptions{Rules: sarifRules, Locations: func(Finding) []SARIFLocation {
		return []SARIFLocation{{File: "../../etc/passwd:x?y#z", Line: -3}}
	}}); err != nil {
		t.Fatal(err)
	}
	sarifValidate(t, b.Bytes())
	if strings.Contains(b.String(), "<script>") {
		t.Error("HTML is not escaped")
	}
	if strings.Contains(b.String(), "passwd:x?y#z") {
		t.Error("the path is not escaped as a relative URI")
	}
}

func TestSARIFSchemaTestRejectsAnInvalidLog(t *testing.T) {
	bad := []byte(`{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "posture"}}, "results": [{"message": {}, "level": "fatal"}]}]}`)
	if sarifSchemaCheck(bad) == nil {
		t.Fatal("the schema check accepts a log with an unknown level and a message without text")
	}
}
