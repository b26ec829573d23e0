package scanner_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnscheck"
	"github.com/nhsx/posture/scanner"
	"github.com/nhsx/posture/scanner/lab"
	"github.com/nhsx/posture/scanner/store"
)

// stopAfterDiscovery stops the run (as Ctrl-C would) as soon as discovery
// has stored the assets, before any job.
type stopAfterDiscovery struct {
	*store.Store
	cancel context.CancelFunc
}

func (s stopAfterDiscovery) PutAssets(ctx context.Context, runID int64, as []check.Asset) error {
	defer s.cancel()
	return s.Store.PutAssets(ctx, runID, as)
}

// TestResumedRunKeepsTheDiscoveredNames: the domain's dns.dangling-cname
// follows the names CT lists, kept as hosts or not (a CT-only alias of an
// unclaimed Azure name fails); a run stopped after discovery and resumed
// with no CT search (the resume does not discover again) follows the same
// names, read back from the store, and judges the zones discovery found
// delegated below the domains (dept.<d>, open to zone transfer, fails).
func TestResumedRunKeepsTheDiscoveredNames(t *testing.T) {
	t.Parallel()
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var target, zone string
	for _, d := range l.Domains() {
		if strings.HasPrefix(d.Name, "lab-dns-cname-ct-takeover") {
			target = d.Name
		}
		if strings.HasPrefix(d.Name, "lab-dns-zone-axfr-open") {
			zone = "dept." + d.Name
		}
	}
	if target == "" || zone == "" {
		t.Fatal("no lab-dns-cname-ct-takeover or lab-dns-zone-axfr-open domain in the lab")
	}
	cfg := labConfig(t, l)
	cfg.Families = []string{"dns"}
	st := openDB(t, filepath.Join(t.TempDir(), "p.db"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := scanner.Run(ctx, stopAfterDiscovery{st, cancel}, cfg); err == nil {
		t.Fatal("the first run was not interrupted")
	}
	cfg.CTURL = "" // were discovery run again, it would see no CT name
	stats, err := scanner.Run(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !stats.Resumed {
		t.Fatal("the second run did not resume the first")
	}
	fs, err := st.Findings(context.Background(), stats.RunID)
	if err != nil {
		t.Fatal(err)
	}
	axfr := false
	for _, f := range fs {
		if f.CheckID == dnscheck.AXFROpen && f.Asset.Kind == check.KindZone && f.Asset.Name == zone {
			axfr = f.Outcome == check.Fail
		}
	}
	if !axfr {
		t.Errorf("no failing %s finding on the zone %s after the resume", dnscheck.AXFROpen, zone)
	}
	for _, f := range fs {
		if f.CheckID == dnscheck.DanglingCNAME && f.Asset.Name == target {
			if f.Outcome != check.Fail || !strings.Contains(f.Message, "legacy-app."+target) {
				t.Fatalf("%s on %s: %s (%s), want fail naming legacy-app.%s", f.CheckID, target, f.Outcome, f.Message, target)
			}
			return
		}
	}
	t.Fatalf("no %s finding on %s", dnscheck.DanglingCNAME, target)
}
