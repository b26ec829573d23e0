package scanner_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/crl"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/nuclei"
	"github.com/nhsx/posture/scanner"
	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/lab"
	"github.com/nhsx/posture/scanner/store"
)

// labConfig is a scan of the lab as `posture demo` runs it.
func labConfig(t testing.TB, l *lab.Lab) scanner.Config {
	t.Helper()
	e, err := estate.Parse("lab-estate.yaml", l.EstateYAML())
	if err != nil {
		t.Fatal(err)
	}
	svc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: l.Dial}}
	gh := github.NewClient(l.GitHubClient(nil)) // the lab's token, through the GitHub transport
	gh.BaseURL = mustURL(t, l.GitHubURL)
	return scanner.Config{
		Estate: e, Checks: checks.All(),
		DNS:  &dnsq.Resolver{Servers: []string{l.DNSAddr}, Timeout: 300 * time.Millisecond, Retries: 1},
		Dial: l.Dial, AllowPrivate: true, Roots: l.Roots, CTURL: l.CTURL, RDAPURL: l.RDAPURL, GitHub: gh, ServiceHTTP: svc,
		Options: scanner.Options{Concurrency: 16, JobTimeout: 20 * time.Second, Policy: l.Policy()},
	}
}

func openDB(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// worst is the worst outcome per "kind:name check-id" of a run.
func worst(t testing.TB, st *store.Store, run int64) map[string]check.Outcome {
	t.Helper()
	fs, err := st.Findings(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]check.Outcome{}
	for _, f := range fs {
		k := f.Asset.Key() + " " + f.CheckID
		m[k] = check.Worst(m[k], f.Outcome)
	}
	return m
}

// TestLabScanMatchesGroundTruth scans the whole lab through the real
// pipeline (discovery, scope guard, store) and compares every verdict the
// lab knows with what the scanner stored — in both directions, on every
// asset, for the families the lab registers.
func TestLabScanMatchesGroundTruth(t *testing.T) {
	t.Parallel()
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st := openDB(t, filepath.Join(t.TempDir(), "p.db"))
	stats, err := scanner.Run(context.Background(), st, labConfig(t, l))
	if err != nil {
		t.Fatal(err)
	}
	got := worst(t, st, stats.RunID)
	truth := l.Truth()
	if len(truth) == 0 {
		t.Fatal("the lab has no ground truth")
	}
	want := map[string]check.Outcome{}
	for _, e := range truth {
		k := string(e.Kind) + ":" + e.Name + " " + e.CheckID
		want[k] = e.Outcome
	}
	var diffs []string
	for k, w := range want {
		if got[k] != w {
			diffs = append(diffs, fmt.Sprintf("%s: scanner %q, truth %q", k, got[k], w))
		}
	}
	fams := lab.FamilyNames()
	for k, g := range got {
		id := k[strings.LastIndexByte(k, ' ')+1:]
		fam, _, _ := strings.Cut(id, ".")
		if _, ok := want[k]; !ok && slices.Contains(fams, fam) {
			diffs = append(diffs, fmt.Sprintf("%s: scanner %q, not in the truth", k, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d of %d verdicts differ from the lab's ground truth:\n%s", len(diffs), len(want), strings.Join(diffs, "\n"))
	}
}

// TestScopeGuardMakesNoConnectionOutside: an in-scope CNAME to an outside
// name, an HTTP redirect to an outside host, a name resolving to the cloud
// metadata address and an excluded host get zero connections, whether a
// check dials them or fetches them over HTTP(S), and after a full lab scan.
func TestScopeGuardMakesNoConnectionOutside(t *testing.T) {
	t.Parallel()
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := labConfig(t, l)
	fx := l.Scope()
	// The excluded mail host is given as an MX of the estate, as discovery
	// would find it: the exclusion must still win.
	env := cfg.NewEnv(map[string]bool{fx.ExcludedMX: true})
	ctx := context.Background()

	// The redirect host itself is in scope and must be reachable: the guard
	// is not simply refusing everything.
	resp, err := env.HTTP.Get("http://" + fx.Redirect + "/")
	if err != nil {
		t.Fatalf("fetch of the in-scope redirecting host: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 {
		t.Fatalf("redirect host answered %d, want a redirect", resp.StatusCode)
	}
	for _, name := range []string{fx.CNAME, fx.Metadata, fx.Excluded, fx.ExcludedMX} {
		for _, port := range []string{"80", "443", "25"} {
			if c, err := env.DialContext(ctx, "tcp", name+":"+port); err == nil {
				c.Close()
				t.Errorf("dial %s:%s succeeded, want a scope refusal", name, port)
			} else if check.Classify(err) != check.ErrScope {
				t.Errorf("dial %s:%s: %v (class %s), want a scope refusal", name, port, err, check.Classify(err))
			}
		}
		for _, scheme := range []string{"http", "https"} {
			if resp, err := env.HTTP.Get(scheme + "://" + name + "/"); err == nil {
				resp.Body.Close()
				t.Errorf("GET %s://%s/ succeeded, want a scope refusal", scheme, name)
			}
		}
	}
	for _, scheme := range []string{"http", "https"} {
		if resp, err := env.HTTP.Get(scheme + "://" + fx.Redirect + "/"); err == nil {
			resp.Body.Close()
		}
	}
	// CRL URLs come from scanned certificates: the CA client reaches the
	// lab CA but never a metadata or excluded address.
	ca := env.CRLs.(crl.Source).Client
	if resp, err := ca.Get(lab.CRLURL); err != nil {
		t.Fatalf("fetch of the lab CA's CRL: %v", err)
	} else {
		resp.Body.Close()
	}
	for _, u := range []string{"http://" + fx.MetadataIP + "/x.crl", "http://" + fx.Metadata + "/x.crl", "http://" + fx.ExcludedMX + "/x.crl"} {
		if resp, err := ca.Get(u); err == nil {
			resp.Body.Close()
			t.Errorf("CRL fetch of %s succeeded, want it refused", u)
		}
	}
	st := openDB(t, filepath.Join(t.TempDir(), "p.db"))
	stats, err := scanner.Run(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for what, ip := range map[string]string{"outside": fx.OutsideIP, "metadata": fx.MetadataIP,
		"excluded": fx.ExcludedIP, "excluded MX": fx.ExcludedMXIP} {
		if n := l.Conns(ip); n != 0 {
			t.Errorf("%d connections reached the %s address %s, want 0", n, what, ip)
		}
	}
	fs, err := st.Findings(ctx, stats.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Asset.Name == fx.ExcludedMX || f.Asset.Name == fx.Excluded {
			t.Errorf("finding %s %s on the excluded %s", f.CheckID, f.Outcome, f.Asset.Name)
		}
	}
	if stats.Excluded[fx.ExcludedMX] == 0 {
		t.Errorf("the run does not say it skipped the excluded MX %s (skipped: %v)", fx.ExcludedMX, stats.Excluded)
	}
}

// The kill test runs a scan in a child process (this test binary again),
// SIGKILLs it midway, re-runs the same scan, and compares the result with an
// uninterrupted scan of the same lab.
const childEnv = "POSTURE_TEST_KILL_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childScan())
	}
	if err := nuclei.WaitForTestWorker(); err != nil {
		fmt.Fprintln(os.Stderr, err) // the web.nuclei verdicts will say unknown
	}
	os.Exit(m.Run())
}

// emailOnly: the checks the kill test runs (DNS only, so the child needs no
// in-process lab network, just the lab's DNS address).
func emailOnly(e *estate.Estate, dnsAddr string) scanner.Config {
	var cs []check.Check
	for _, c := range checks.All() {
		if strings.HasPrefix(c.ID(), "email.spf") || strings.HasPrefix(c.ID(), "email.dmarc") {
			cs = append(cs, c)
		}
	}
	return scanner.Config{
		Estate: e, Checks: cs, Families: []string{"email"},
		DNS:     &dnsq.Resolver{Servers: []string{dnsAddr}, Timeout: 300 * time.Millisecond, Retries: 1},
		Options: scanner.Options{Concurrency: 2, PerDomain: 1, JobTimeout: 20 * time.Second},
	}
}

func childScan() int {
	e, err := estate.Load(os.Getenv("POSTURE_TEST_ESTATE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	st, err := store.Open(context.Background(), os.Getenv("POSTURE_TEST_DB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	if _, err := scanner.Run(context.Background(), st, emailOnly(e, os.Getenv("POSTURE_TEST_DNS"))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestKilledScanResumesToTheSameFindings(t *testing.T) {
	// Latency on every DNS answer makes the child's scan take long enough
	// to be killed in the middle.
	l, err := lab.Start(context.Background(), lab.Config{Domains: 60, Latency: 15 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	estatePath := filepath.Join(dir, "estate.yaml")
	if err := os.WriteFile(estatePath, l.EstateYAML(), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := estate.Load(estatePath)
	if err != nil {
		t.Fatal(err)
	}
	killedDB := filepath.Join(dir, "killed.db")

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=1", "POSTURE_TEST_ESTATE="+estatePath,
		"POSTURE_TEST_DB="+killedDB, "POSTURE_TEST_DNS="+l.DNSAddr)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until some jobs are stored, then kill without warning.
	deadline := time.Now().Add(60 * time.Second)
	stored := 0
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if stored = countEvidence(t, killedDB); stored >= 5 {
			break
		}
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if stored < 5 {
		t.Fatalf("the child stored %d jobs in 60 s; cannot test a kill midway", stored)
	}

	st := openDB(t, killedDB)
	runs, _ := st.Runs(context.Background())
	if len(runs) != 1 || runs[0].Status != store.Running {
		t.Fatalf("after the kill: runs %+v, want one run left running", runs)
	}
	// The same run (workers are not part of what makes a run the same),
	// with more of them so the rest goes quickly.
	fast := emailOnly(e, l.DNSAddr)
	fast.Concurrency, fast.PerDomain = 16, 4
	resumed, err := scanner.Run(context.Background(), st, fast)
	if err != nil {
		t.Fatal(err)
	}
	if !resumed.Resumed || resumed.RunID != runs[0].ID || resumed.Skipped == 0 {
		t.Fatalf("re-run: %+v, want it to resume run %d and skip the stored jobs", resumed, runs[0].ID)
	}
	if resumed.Skipped >= resumed.Jobs {
		t.Fatalf("the child finished every job before the kill (%d of %d); the test proved nothing", resumed.Skipped, resumed.Jobs)
	}

	clean := openDB(t, filepath.Join(dir, "clean.db"))
	whole, err := scanner.Run(context.Background(), clean, fast)
	if err != nil {
		t.Fatal(err)
	}
	a, b := findingSet(t, st, resumed.RunID), findingSet(t, clean, whole.RunID)
	if len(a) != len(b) {
		t.Fatalf("killed+resumed run has %d findings, uninterrupted %d", len(a), len(b))
	}
	for k, v := range b {
		if a[k] != v {
			t.Errorf("finding %s: resumed %q, uninterrupted %q", k, a[k], v)
		}
	}
	fs, _ := st.Findings(context.Background(), resumed.RunID)
	if len(fs) != len(a) {
		t.Fatalf("%d finding rows for %d distinct findings: duplicates", len(fs), len(a))
	}
	if n := countEvidence(t, killedDB); n != resumed.Jobs {
		t.Fatalf("%d evidence rows for %d jobs: duplicates or gaps", n, resumed.Jobs)
	}
	if err := st.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func findingSet(t *testing.T, st *store.Store, run int64) map[string]check.Outcome {
	fs, err := st.Findings(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]check.Outcome{}
	for _, f := range fs {
		m[f.ID] = f.Outcome
	}
	return m
}

// countEvidence counts stored jobs of the newest run (0 before it exists).
func countEvidence(t *testing.T, path string) int {
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	st, err := store.Open(context.Background(), path)
	if err != nil {
		return 0 // the child may be mid-migration
	}
	defer st.Close()
	runs, err := st.Runs(context.Background())
	if err != nil || len(runs) == 0 {
		return 0
	}
	done, err := st.DoneJobs(context.Background(), runs[0].ID)
	if err != nil {
		return 0
	}
	return len(done)
}

// TestOnlyTLSJudgesMailHostsToo: `--only tls` keeps every tls.* id,
// including those the SMTP collector emits for MX hosts after STARTTLS
// (tls.no-ssl, tls.tls13), and no id of another family.
func TestOnlyTLSJudgesMailHostsToo(t *testing.T) {
	t.Parallel()
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := labConfig(t, l)
	cfg.Families = []string{"tls"}
	st := openDB(t, filepath.Join(t.TempDir(), "p.db"))
	stats, err := scanner.Run(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := st.Findings(context.Background(), stats.RunID)
	if err != nil {
		t.Fatal(err)
	}
	mailNoSSL := map[string]check.Outcome{}
	for _, f := range fs {
		if !strings.HasPrefix(f.CheckID, "tls.") {
			t.Errorf("%s on %s in a --only tls run", f.CheckID, f.Asset.Key())
		}
		if f.Asset.Kind == check.KindMail && f.CheckID == "tls.no-ssl" {
			mailNoSSL[f.Asset.Name] = f.Outcome
		}
	}
	if mailNoSSL[lab.MX1] != check.Pass || mailNoSSL[lab.MX2] != check.Pass {
		t.Errorf("tls.no-ssl on the lab's MX hosts: %v, want pass on %s and %s", mailNoSSL, lab.MX1, lab.MX2)
	}
}

// TestSharedSPFIncludeIsLookedUpOncePerRun: a thousand lab domains whose
// SPF records include the same sender policy (as NHS domains include
// NHSmail's) cost one lookup of it in a run, counted at the lab's DNS
// server: the resolver's per-run cache shares it, in-flight lookups too.
func TestSharedSPFIncludeIsLookedUpOncePerRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a 1,000-domain scan")
	}
	l, err := lab.Start(context.Background(), lab.Config{Domains: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := labConfig(t, l)
	cfg.Families = []string{"email"}
	cfg.Checks = nil
	for _, c := range checks.All() {
		if c.ID() == "email.spf" {
			cfg.Checks = append(cfg.Checks, c)
		}
	}
	st := openDB(t, filepath.Join(t.TempDir(), "p.db"))
	stats, err := scanner.Run(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	includers := 0
	for _, d := range l.Domains() {
		for _, r := range d.Records {
			if strings.Contains(r, "include:"+lab.SharedSPF) {
				includers++
				break
			}
		}
	}
	if includers < 500 {
		t.Fatalf("only %d lab domains include %s; the test proves little", includers, lab.SharedSPF)
	}
	if n := l.DNSQueriesFor(lab.SharedSPF); n != 1 {
		t.Errorf("%s asked %d times in a run over %d domains (%d include it, %d jobs), want once", lab.SharedSPF, n, len(l.Domains()), includers, stats.Jobs)
	}
}
