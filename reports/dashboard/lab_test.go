package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/scanner"
	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/lab"
	"github.com/nhsx/posture/scanner/store"
)

// labDomains are the lab domains the dashboard tests scan: the hostile web
// hosts (script in headers and titles), a repository with live secrets in
// its history, and a domain with mail findings. Their organisations and
// the organisations above them make a small estate (a tiny lab: seconds,
// not the minute of the full one).
var labDomains = []string{"lab-web-hostile.nhs.uk", "lab-secrets-live.nhs.uk", "lab-dmarc-none.nhs.uk"}

// fixture is one database filled by two real scans of the tiny lab, shared
// by the package's tests (the pages only read it).
type fixture struct {
	st     *store.Store
	db     string
	runs   []int64 // oldest first
	orgs   []string
	err    error
	failed string
}

var (
	fixOnce sync.Once
	fix     fixture
)

// labFixture scans the tiny lab twice (once, for the whole package) and
// returns the store. A risk acceptance is recorded on one failing finding
// between the runs.
func labFixture(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(fix.build)
	if fix.err != nil {
		t.Fatalf("lab fixture: %s: %v", fix.failed, fix.err)
	}
	return &fix
}

func (f *fixture) fail(what string, err error) { f.failed, f.err = what, err }

func (f *fixture) build() {
	ctx := context.Background()
	l, err := lab.Start(ctx, lab.Config{})
	if err != nil {
		f.fail("start lab", err)
		return
	}
	// The lab serves until the process ends: the tests read the store only.
	full, err := estate.Parse("lab-estate.yaml", l.EstateYAML())
	if err != nil {
		f.fail("parse lab estate", err)
		return
	}
	e := tinyEstate(full, labDomains)
	for _, o := range e.Organisations {
		f.orgs = append(f.orgs, o.Code)
	}
	f.db = filepath.Join(shared, "posture.db")
	if f.st, err = store.Open(ctx, f.db); err != nil {
		f.fail("open store", err)
		return
	}
	var cs []check.Check
	for _, c := range checks.All() {
		if c.ID() != "web.nuclei" { // its worker is a separate binary: not needed to show pages
			cs = append(cs, c)
		}
	}
	svc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: l.Dial}}
	gh := github.NewClient(l.GitHubClient(nil))
	gh.BaseURL, _ = url.Parse(l.GitHubURL)
	cfg := scanner.Config{
		Estate: e, Checks: cs,
		DNS:  &dnsq.Resolver{Servers: []string{l.DNSAddr}, Timeout: 300 * time.Millisecond, Retries: 1},
		Dial: l.Dial, AllowPrivate: true, Roots: l.Roots, CTURL: l.CTURL, RDAPURL: l.RDAPURL, GitHub: gh, ServiceHTTP: svc,
		Options: scanner.Options{Concurrency: 16, JobTimeout: 20 * time.Second, Policy: l.Policy()},
	}
	for night := 1; night <= 2; night++ {
		if _, err := scanner.Run(ctx, f.st, cfg); err != nil {
			f.fail("scan", err)
			return
		}
		run, err := f.st.LatestComplete(ctx)
		if err != nil {
			f.fail("latest run", err)
			return
		}
		f.runs = append(f.runs, run.ID)
		if night == 1 {
			if err := f.acceptOne(ctx, run.ID); err != nil {
				f.fail("accept", err)
				return
			}
		}
	}
}

// acceptOne records a risk acceptance of the first failing DMARC finding.
func (f *fixture) acceptOne(ctx context.Context, run int64) error {
	fs, err := f.st.Findings(ctx, run)
	if err != nil {
		return err
	}
	for _, x := range fs {
		if x.Outcome == check.Fail && strings.HasPrefix(x.CheckID, "email.dmarc") {
			return f.st.Accept(ctx, x.ID, acceptReason, time.Now().Add(90*24*time.Hour), "Board <b>risk</b> panel")
		}
	}
	return nil
}

const acceptReason = "Replacing the mail gateway in Q3 <script>alert('accept')</script>"

// shared is the package's directory for the fixture's database: testing
// removes a test's TempDir when that test ends, and the fixture outlives
// the first test that asks for it.
var shared string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "posture-dashboard-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = dir
	code := m.Run()
	if fix.st != nil {
		fix.st.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// tinyEstate keeps the organisations owning the domains, and those above
// them.
func tinyEstate(e *estate.Estate, domains []string) *estate.Estate {
	keep := map[string]bool{}
	by := map[string]estate.Organisation{}
	for _, o := range e.Organisations {
		by[o.Code] = o
	}
	for _, o := range e.Organisations {
		if slices.ContainsFunc(o.Domains, func(d string) bool { return slices.Contains(domains, d) }) {
			for c := o.Code; c != "" && !keep[c]; c = by[c].Parent {
				keep[c] = true
			}
		}
	}
	out := *e
	out.Organisations = nil
	for _, o := range e.Organisations {
		if keep[o.Code] {
			out.Organisations = append(out.Organisations, o)
		}
	}
	return &out
}
