package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/scanner/lab"
)

// TestNoFullSecretInTheDatabaseLogsReportsOrExports: the lab plants
// secrets in its repositories' histories (an AWS key id, GitHub tokens, a
// private key; some of them decoys the scan must ignore). The demo finds
// the planted ones (repo.secrets.history fails on exactly the lab's leaky
// repositories, and the SARIF export places each at its file and line) and
// no full secret, nor a long piece of one, is anywhere a scan leaves
// text: the database files, the demo's output and logs, the board report
// (HTML and Markdown), the organisation reports, the emails, and the JSON
// Lines, CSV and SARIF exports.
func TestNoFullSecretInTheDatabaseLogsReportsOrExports(t *testing.T) {
	t.Parallel() // waits for the one shared demo run
	dir, db := demoCopy(t)
	var texts []string // what the CLI printed
	texts = append(texts, demoOnce.out, demoOnce.logs)
	cli := func(args ...string) {
		t.Helper()
		code, out, errs := runCLI(t, append([]string{"--verbose"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
		}
		texts = append(texts, out, errs)
	}
	cli("export", "--format", "jsonl", "--db", db, "-o", filepath.Join(dir, "f.jsonl"))
	cli("export", "--format", "csv", "--db", db, "-o", filepath.Join(dir, "f.csv"))
	cli("export", "--format", "sarif", "--db", db, "-o", filepath.Join(dir, "f.sarif"))
	cli("report", "board", "--db", db, "-o", filepath.Join(dir, "b.html"))
	cli("report", "board", "--markdown", "--db", db, "-o", filepath.Join(dir, "b.md"))
	cli("notify", "--db", db, "--digest", "--dry-run", filepath.Join(dir, "mail"))

	// The positive control: the scan found the planted secrets.
	jsonl, err := os.ReadFile(filepath.Join(dir, "f.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]string{} // repository → outcome of repo.secrets.history
	orgs := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(jsonl), []byte("\n")) {
		var f reports.Finding
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatal(err)
		}
		if f.CheckID == "repo.secrets.history" {
			outcomes[f.Asset.Name] = string(f.Outcome)
			if f.Outcome == "fail" {
				orgs[f.Asset.Org] = true
			}
		}
	}
	failing := 0
	for repo, o := range outcomes {
		leaky := strings.HasSuffix(repo, "-aws-rotated") || strings.HasSuffix(repo, "-deploy-keys")
		if (o == "fail") != leaky || (o != "fail" && o != "pass") {
			t.Errorf("repo.secrets.history on %s: %s", repo, o)
		}
		if o == "fail" {
			failing++
		}
	}
	if failing < 2 {
		t.Fatalf("repo.secrets.history fails on %d repositories (of %d judged), want the lab's 2 leaky ones", failing, len(outcomes))
	}
	for org := range orgs {
		cli("report", "org", org, "--db", db, "-o", filepath.Join(dir, "org-"+org+".html"))
	}
	sarif, err := os.ReadFile(filepath.Join(dir, "f.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	sarifValid(t, sarif)
	for _, want := range []string{`"ruleId": "repo.secrets.history"`, `"uri": "app/settings.py"`, `"uri": "scripts/deploy.sh"`,
		`"uri": "deploy/id_rsa"`, `"gitleaksRule": "aws-access-token"`, `"gitleaksRule": "private-key"`, `"gitleaksRule": "github-pat"`} {
		if !bytes.Contains(sarif, []byte(want)) {
			t.Errorf("the SARIF export lacks %s", want)
		}
	}
	// --repo: one repository's log, for an upload to its code scanning.
	var leakyRepo string
	for repo, o := range outcomes {
		if o == "fail" && strings.HasSuffix(repo, "-deploy-keys") {
			leakyRepo = repo
		}
	}
	cli("export", "--format", "sarif", "--repo", leakyRepo, "--db", db, "-o", filepath.Join(dir, "one.sarif"))
	one, err := os.ReadFile(filepath.Join(dir, "one.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	sarifValid(t, one)
	var log struct {
		Runs []struct {
			AutomationDetails struct{ ID string } `json:"automationDetails"`
			Results           []json.RawMessage   `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(one, &log); err != nil {
		t.Fatal(err)
	}
	if len(log.Runs) != 1 || log.Runs[0].AutomationDetails.ID != "posture/"+leakyRepo+"/" || len(log.Runs[0].Results) < 2 {
		t.Errorf("--repo %s: %d runs (want 1 with its 2 leaks)", leakyRepo, len(log.Runs))
	}
	for _, decoy := range []string{"testdata/aws-credentials.ini", "docs/configuration.md", "release.env", "tools/notes.sh"} {
		if bytes.Contains(sarif, []byte(`"uri": "`+decoy+`"`)) {
			t.Errorf("the SARIF export has a result in the decoy %s", decoy)
		}
	}

	// No secret anywhere.
	files := 0
	for _, root := range []string{demoOnce.dir, dir} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files++
			secretsAbsent(t, p, b)
			return nil
		})
	}
	for i, s := range texts {
		secretsAbsent(t, fmt.Sprintf("CLI output %d", i), []byte(s))
	}
	if files < 8 {
		t.Errorf("searched %d files, want the database, reports, emails and exports", files)
	}
}

// secretsAbsent fails if b holds a planted secret or 16 characters of one
// (a PEM block: any of its base64 lines).
func secretsAbsent(t *testing.T, where string, b []byte) {
	t.Helper()
	for _, s := range lab.GitSecrets().All() {
		pieces := []string{s}
		if strings.Contains(s, "PRIVATE") {
			for _, line := range strings.Split(s, "\n") {
				if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
					pieces = append(pieces, line)
				}
			}
		} else if len(s) >= 20 {
			pieces = append(pieces, s[4:20])
		}
		for _, p := range pieces {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("%s holds a planted secret (%.6s…)", where, p)
				break
			}
		}
	}
}

func sarifValid(t *testing.T, out []byte) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "reports", "testdata", "sarif-schema-2.1.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(reports.SARIFSchema, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(reports.SARIFSchema)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("the SARIF export is not JSON: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("the SARIF export does not validate against the SARIF 2.1.0 schema: %v", err)
	}
}
