package reports

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

func TestSummaryCountsWorstOutcomePerAssetAndCheck(t *testing.T) {
	s := mustSummary(t, fixture())
	tests := []struct {
		org    string
		own    bool
		want   Counts
		assets int
	}{
		// portal's two tls.cert.expiry findings (pass, fail) count once, as fail.
		{"RJ7", true, Counts{Pass: 2, Fail: 3, Unknown: 1}, 3},
		{"RVR", true, Counts{Pass: 1, Fail: 2, NA: 1, Accepted: 1}, 2},
		{"RAX", true, Counts{Pass: 2, Warn: 1}, 2},
		{"RYJ", true, Counts{Pass: 1, Fail: 1}, 1},
		{UnassignedCode, true, Counts{Fail: 1}, 1},
		// Roll-up: trust → ICB → region.
		{"QWE", false, Counts{Pass: 3, Fail: 5, Unknown: 1, NA: 1, Accepted: 1}, 5},
		{"QKK", false, Counts{Pass: 2, Warn: 1}, 2},
		{"Y56", false, Counts{Pass: 5, Warn: 1, Fail: 5, Unknown: 1, NA: 1, Accepted: 1}, 7},
		{"QRV", false, Counts{Pass: 1, Fail: 1}, 1},
	}
	for _, tt := range tests {
		o := s.Org(tt.org)
		if o == nil {
			t.Fatalf("%s: missing from the summary", tt.org)
		}
		got := o.Total
		if tt.own {
			got = o.Own
			if o.Total != o.Own {
				t.Errorf("%s: leaf total %+v differs from own %+v", tt.org, o.Total, o.Own)
			}
		}
		if got != tt.want {
			t.Errorf("%s: counts %+v, want %+v", tt.org, got, tt.want)
		}
		if o.Assets != tt.assets {
			t.Errorf("%s: %d assets, want %d", tt.org, o.Assets, tt.assets)
		}
	}
	want := Counts{Pass: 6, Warn: 1, Fail: 7, Unknown: 1, NA: 1, Accepted: 1}
	if s.Estate.Total != want {
		t.Errorf("estate %+v, want %+v", s.Estate.Total, want)
	}
	if got := s.Org("QWE").ByCheck["tls.cert.expiry"]; got != (Counts{Fail: 1, Unknown: 1}) {
		t.Errorf("QWE tls.cert.expiry %+v, want 1 fail (portal) and 1 unknown (www)", got)
	}
}

func TestSummaryUnknownIsNeverCountedAsFail(t *testing.T) {
	src := &memSource{
		runs: []Run{{ID: 1, Started: day1, Finished: day1}},
		findings: map[int64][]Finding{1: {
			fd("RJ7", check.KindHost, "a.nhs.uk", "tls.min-version", check.Unknown, "", time.Time{}, "timeout"),
			fd("RJ7", check.KindHost, "b.nhs.uk", "tls.min-version", check.Pass, "", time.Time{}, "ok"),
			// An outcome the contract does not know is unknown, not fail.
			fd("RJ7", check.KindHost, "c.nhs.uk", "tls.min-version", check.Outcome("FAILED?"), "", time.Time{}, "?"),
		}},
	}
	s := mustSummary(t, src)
	if got := s.Org("RJ7").Own; got != (Counts{Pass: 1, Unknown: 2}) {
		t.Fatalf("counts %+v, want 1 pass and 2 unknown", got)
	}
	if sc := s.Org("RJ7").Score; !sc.Valid || sc.Value != 100 {
		t.Errorf("score %v, want 100%%: unknown is left out of the score", sc)
	}
	if len(s.Risks) != 0 {
		t.Errorf("risks %d, want none", len(s.Risks))
	}
}

func TestSummaryInfoFindingsAreRecordedNotCounted(t *testing.T) {
	info := fd("RJ7", check.KindHost, "a.nhs.uk", "tls.min-version", check.Warn, ChangeNew, day1, "TLS 1.3 not offered")
	info.Severity = check.Info
	src := &memSource{
		runs: []Run{{ID: 1, Started: day1, Finished: day1}},
		findings: map[int64][]Finding{1: {
			info,
			fd("RJ7", check.KindHost, "b.nhs.uk", "tls.min-version", check.Pass, "", time.Time{}, "ok"),
		}},
	}
	s := mustSummary(t, src)
	if sc := s.Org("RJ7").Score; !sc.Valid || sc.Value != 100 {
		t.Errorf("score %v, want 100%%: an info finding never counts against posture", sc)
	}
	found := false
	for _, f := range s.Findings {
		found = found || f.Message == "TLS 1.3 not offered"
	}
	if !found {
		t.Error("the info finding is not in the summary's findings: it must still be recorded")
	}
}

func TestSummaryHierarchyOrderAndImplicitParents(t *testing.T) {
	s := mustSummary(t, fixture())
	var got []string
	for _, o := range s.Orgs {
		got = append(got, o.Code)
	}
	want := []string{"Y56", "QKK", "RAX", "QWE", "RVR", "RJ7", "QRV", "RYJ", UnassignedCode}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v (by name under each parent, unassigned last)", got, want)
	}
	if o := s.Org("QRV"); o == nil || !o.Implicit || o.Depth != 0 || !slices.Equal(o.Children, []string{"RYJ"}) {
		t.Errorf("QRV: %+v, want an implicit root with child RYJ", o)
	}
	if s.Org("RJ7").Depth != 2 {
		t.Errorf("RJ7 depth %d, want 2", s.Org("RJ7").Depth)
	}
	if !s.Within("RJ7", "Y56") || s.Within("RYJ", "Y56") {
		t.Error("Within does not follow the parents")
	}
}

func TestSummaryParentCycleIsCut(t *testing.T) {
	src := &memSource{
		runs: []Run{{ID: 1, Started: day1, Finished: day1}},
		orgs: []Org{{Code: "A", Parent: "B"}, {Code: "B", Parent: "C"}, {Code: "C", Parent: "A"}},
		findings: map[int64][]Finding{1: {
			fd("A", check.KindDomain, "a.nhs.uk", "email.dmarc.record", check.Fail, "", time.Time{}, "x"),
		}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := BuildSummary(ctx, src, testCatalogue(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Orgs) != 3 {
		t.Fatalf("%d organisations, want 3", len(s.Orgs))
	}
	if s.Estate.Total.Fail != 1 {
		t.Errorf("estate fail %d, want 1: counted once despite the cycle", s.Estate.Total.Fail)
	}
}

func TestSummaryChangesFromTheSource(t *testing.T) {
	s := mustSummary(t, fixture())
	want := ChangeCounts{New: 4, Regressed: 1, Resolved: 2, StillOpen: 2, Accepted: 1}
	if s.Estate.Changes != want {
		t.Errorf("estate changes %+v, want %+v", s.Estate.Changes, want)
	}
	if got := s.Org("RJ7").Changes; got != (ChangeCounts{New: 2, StillOpen: 1, Resolved: 1}) {
		t.Errorf("RJ7 changes %+v", got)
	}
	if got := s.Org("QWE").Changes; got != (ChangeCounts{New: 2, Regressed: 1, StillOpen: 1, Resolved: 2, Accepted: 1}) {
		t.Errorf("QWE changes %+v", got)
	}
	// The fixed TLS finding comes both from Resolved and from the run: once.
	if len(s.Resolved) != 2 {
		t.Errorf("%d resolved, want 2", len(s.Resolved))
	}
	// New lists new and regressed, worst first: critical before high.
	if len(s.New) != 5 || s.New[0].Severity != check.Critical {
		t.Errorf("new: %d, first %s; want 5, critical first", len(s.New), s.New[0].Severity)
	}
}

func TestSummaryDerivesChangesWhenTheSourceHasNoLifecycle(t *testing.T) {
	h := check.KindHost
	prev := []Finding{
		fd("RJ7", h, "a.nhs.uk", "tls.min-version", check.Fail, "", time.Time{}, "still failing"),
		fd("RJ7", h, "b.nhs.uk", "tls.min-version", check.Fail, "", time.Time{}, "fixed"),
		fd("RJ7", h, "c.nhs.uk", "tls.min-version", check.Fail, "", time.Time{}, "now unknown"),
		fd("RJ7", h, "d.nhs.uk", "tls.min-version", check.Pass, "", time.Time{}, "breaks"),
	}
	cur := []Finding{
		fd("RJ7", h, "a.nhs.uk", "tls.min-version", check.Fail, "", time.Time{}, ""),
		fd("RJ7", h, "b.nhs.uk", "tls.min-version", check.Pass, "", time.Time{}, ""),
		fd("RJ7", h, "c.nhs.uk", "tls.min-version", check.Unknown, "", time.Time{}, ""),
		fd("RJ7", h, "d.nhs.uk", "tls.min-version", check.Warn, "", time.Time{}, ""),
		fd("RJ7", h, "e.nhs.uk", "tls.min-version", check.Fail, "", time.Time{}, "first seen"),
	}
	src := &memSource{
		runs:     []Run{{ID: 2, Started: day2, Finished: day2}, {ID: 1, Started: day1, Finished: day1}},
		findings: map[int64][]Finding{1: prev, 2: cur},
	}
	s := mustSummary(t, src)
	want := map[string]string{
		"a.nhs.uk": ChangeStillOpen, "b.nhs.uk": ChangeResolved, "c.nhs.uk": "",
		"d.nhs.uk": ChangeNew, "e.nhs.uk": ChangeNew,
	}
	for _, f := range s.Findings {
		if f.Change != want[f.Asset.Name] {
			t.Errorf("%s: change %q, want %q", f.Asset.Name, f.Change, want[f.Asset.Name])
		}
	}
	if len(s.Resolved) != 1 || s.Resolved[0].Asset.Name != "b.nhs.uk" {
		t.Errorf("resolved %v, want b.nhs.uk only", s.Resolved)
	}
	if s.Org("RJ7").Changes != (ChangeCounts{New: 2, StillOpen: 1, Resolved: 1}) {
		t.Errorf("changes %+v", s.Org("RJ7").Changes)
	}
}

func TestSummaryFirstRunCallsEverythingFailingNew(t *testing.T) {
	src := &memSource{
		runs: []Run{{ID: 1, Started: day1}},
		findings: map[int64][]Finding{1: {
			fd("RJ7", check.KindDomain, "a.nhs.uk", "email.dmarc.record", check.Fail, "", time.Time{}, "x"),
			fd("RJ7", check.KindDomain, "a.nhs.uk", "email.dmarc.policy", check.Pass, "", time.Time{}, "x"),
		}},
	}
	s := mustSummary(t, src)
	if s.Previous != nil {
		t.Errorf("previous run %v on the first run", s.Previous)
	}
	if s.Estate.Changes != (ChangeCounts{New: 1}) {
		t.Errorf("changes %+v, want 1 new", s.Estate.Changes)
	}
	if f := s.New[0]; !f.FirstSeen.Equal(day1) {
		t.Errorf("first seen %v, want the run's start", f.FirstSeen)
	}
}

func TestSummaryTrendAndScores(t *testing.T) {
	s := mustSummary(t, fixture())
	if len(s.Trend) != 3 {
		t.Fatalf("%d trend points, want 3", len(s.Trend))
	}
	wantRuns := []int64{1, 2, 3}
	wantScores := []float64{40, 50, 100 * 6.0 / 14}
	for i, p := range s.Trend {
		if p.Run.ID != wantRuns[i] || math.Abs(p.Score.Value-wantScores[i]) > 0.01 {
			t.Errorf("trend[%d]: run %d score %v, want run %d %.2f", i, p.Run.ID, p.Score, wantRuns[i], wantScores[i])
		}
	}
	rj7 := s.Org("RJ7")
	if math.Abs(rj7.Previous.Value-100.0/3) > 0.01 || math.Abs(rj7.Score.Value-40) > 0.01 {
		t.Errorf("RJ7 previous %v score %v, want 33%% then 40%%", rj7.Previous, rj7.Score)
	}
	if d, ok := rj7.Delta(); !ok || d <= 0 {
		t.Errorf("RJ7 delta %v %v, want an improvement", d, ok)
	}
	if s.Previous == nil || s.Previous.ID != 2 {
		t.Errorf("previous %v, want run 2", s.Previous)
	}
}

func TestSummaryTrendSkipsUnfinishedRunsAndIsBounded(t *testing.T) {
	src := fixture()
	src.runs[1].Finished = time.Time{} // run 2 was interrupted
	s, err := Options{TrendRuns: 2}.Build(context.Background(), src, testCatalogue(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Trend) != 2 || s.Trend[0].Run.ID != 1 || s.Previous.ID != 1 {
		t.Errorf("trend %v previous %v: want runs 1 and 3, previous 1", s.Trend, s.Previous)
	}
}

func TestSummaryOfAnOlderRun(t *testing.T) {
	s, err := BuildSummary(context.Background(), fixture(), testCatalogue(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if s.Run.ID != 2 || s.Previous.ID != 1 || len(s.Trend) != 2 {
		t.Errorf("run %d previous %v trend %d: want 2, 1, 2 points", s.Run.ID, s.Previous, len(s.Trend))
	}
	if _, err := BuildSummary(context.Background(), fixture(), testCatalogue(), 99); err == nil {
		t.Error("no error for a run that does not exist")
	}
	if _, err := BuildSummary(context.Background(), &memSource{}, nil, 0); !errors.Is(err, ErrNoRuns) {
		t.Errorf("empty store: %v, want ErrNoRuns", err)
	}
}

func TestSummaryWorstRisksAreOpenFailuresBySeverity(t *testing.T) {
	s, err := Options{MaxRisks: 3}.Build(context.Background(), fixture(), testCatalogue(), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Open fails: RJ7 policy, RJ7 hsts, portal expiry, RVR record, RYJ policy,
	// orphan record. The accepted RVR TLS finding is left out.
	if s.RiskTotal != 6 || len(s.Risks) != 3 {
		t.Fatalf("risks %d of %d, want 3 of 6", len(s.Risks), s.RiskTotal)
	}
	// Critical first; among them the oldest (RVR, open since day 1) first.
	if r := s.Risks[0]; r.Severity != check.Critical || r.Asset.Org != "RVR" {
		t.Errorf("first risk %s %s, want RVR's critical DMARC record", r.Severity, r.Asset.Org)
	}
	for _, r := range s.Risks {
		if r.Outcome != check.Fail || r.Status == StatusAccepted {
			t.Errorf("risk %s/%s: outcome %s status %s", r.Asset.Name, r.CheckID, r.Outcome, r.Status)
		}
	}
}

func TestSummaryComplianceByStandard(t *testing.T) {
	s := mustSummary(t, fixture())
	find := func(std, sec string) Compliance {
		for _, c := range s.Standards {
			if c.Standard == std && sec == "" {
				return c
			}
			for _, x := range c.Sections {
				if c.Standard == std && x.Section == sec {
					return x
				}
			}
		}
		t.Fatalf("no compliance row for %s %s", std, sec)
		return Compliance{}
	}
	// CAF B3.b: tls.min-version and web.hsts.max-age. Hosts:
	// www.stgeorges (hsts fail, tls pass) → failing; www.epsom (hsts pass,
	// tls fail accepted) → failing; www.kingston (hsts warn) → failing.
	b3b := find("CAF", "B3.b")
	if b3b.Passing != 0 || b3b.Failing != 3 || b3b.Unknown != 0 {
		t.Errorf("CAF B3.b %+v, want 3 failing", b3b)
	}
	// CAF B4.d: tls.cert.expiry. www.stgeorges unknown; portal failing.
	b4d := find("CAF", "B4.d")
	if b4d.Passing != 0 || b4d.Failing != 1 || b4d.Unknown != 1 || b4d.Share.Value != 0 {
		t.Errorf("CAF B4.d %+v, want 1 failing, 1 unknown", b4d)
	}
	// The whole of CAF: 4 hosts (www.stgeorges, portal, www.epsom, www.kingston).
	if caf := find("CAF", ""); caf.Failing != 4 || len(caf.Sections) != 2 {
		t.Errorf("CAF %+v, want 4 failing hosts, 2 sections", caf)
	}
	// GOV.UK email security: 5 domains; passing: kingston only
	// (epsom fails its record; its n/a policy does not help it).
	ess := find("GOV.UK email security standard", "")
	if ess.Passing != 1 || ess.Failing != 4 || math.Abs(ess.Share.Value-20) > 0.01 {
		t.Errorf("GOV.UK email security %+v, want 1 of 5 passing", ess)
	}
	if !find("NCSC TLS guidance", "").Unverified {
		t.Error("an unverified citation is not marked")
	}
}

func TestSummaryChecksFollowTheCatalogue(t *testing.T) {
	src := fixture()
	src.findings[3] = append(src.findings[3], fd("RJ7", check.KindHost, "x.nhs.uk", "zz.not-in-catalogue", check.Pass, "", time.Time{}, ""))
	s := mustSummary(t, src)
	var ids []string
	for _, m := range s.Checks {
		ids = append(ids, m.ID)
	}
	want := []string{"email.dmarc.policy", "email.dmarc.record", "tls.cert.expiry", "tls.min-version", "web.hsts.max-age", "zz.not-in-catalogue"}
	if !slices.Equal(ids, want) {
		t.Errorf("checks %v, want %v", ids, want)
	}
	if s.Title("zz.not-in-catalogue") != "zz.not-in-catalogue" || s.Title("tls.min-version") != "Only TLS 1.2 or later" {
		t.Error("titles do not come from the catalogue")
	}
}

func TestSummaryFillsStableIDs(t *testing.T) {
	s := mustSummary(t, fixture())
	for _, f := range s.Findings {
		if f.ID != check.FindingID(f.CheckID, f.Rule, f.Asset.Key()) {
			t.Fatalf("%s/%s: id %q", f.Asset.Name, f.CheckID, f.ID)
		}
	}
}

func TestSummaryKeepsTheSourceLifecycleEvenWithNoChanges(t *testing.T) {
	h := check.KindHost
	// The store re-tested before calling it new: the previous run could not
	// tell, and its lifecycle says the finding has been failing since day 1.
	prev := []Finding{fd("RJ7", h, "a.nhs.uk", "tls.min-version", check.Unknown, "", time.Time{}, "timeout")}
	cur := []Finding{fd("RJ7", h, "a.nhs.uk", "tls.min-version", check.Fail, "", day1, "TLS 1.0")}
	src := &memSource{
		runs:     []Run{{ID: 2, Started: day2, Finished: day2}, {ID: 1, Started: day1, Finished: day1}},
		findings: map[int64][]Finding{1: prev, 2: cur},
	}
	s := mustSummary(t, src)
	if c := s.Findings[0].Change; c != "" {
		t.Errorf("change %q: the summary overrode a source that keeps lifecycles", c)
	}
}
