package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

const (
	F = check.Fail
	W = check.Warn
	P = check.Pass
	U = check.Unknown
	N = check.NA
	X = check.Outcome("") // not evaluated in the run
)

// TestHoldAnnouncesAChangeOnlyOnceItHeld: with the default hold of 2, each
// sequence of nightly outcomes of one finding gives these changes (""
// none: pending or never failed) and this final status.
func TestHoldAnnouncesAChangeOnlyOnceItHeld(t *testing.T) {
	const id = "email.dmarc.policy"
	tests := []struct {
		name   string
		nights []check.Outcome
		want   []ChangeKind
		status LifeStatus
		regr   int
	}{
		{"the first run is a baseline: open, announced as nothing new",
			[]check.Outcome{F, F}, []ChangeKind{ChangeStillOpen, ChangeStillOpen}, StatusOpen, 0},
		{"a new failure is announced on its second night",
			[]check.Outcome{P, F, F, F}, []ChangeKind{"", "", ChangeNew, ChangeStillOpen}, StatusOpen, 0},
		{"a warning counts as a failure",
			[]check.Outcome{P, W, F}, []ChangeKind{"", "", ChangeNew}, StatusOpen, 0},
		{"a fix is announced on its second night",
			[]check.Outcome{F, P, P, P}, []ChangeKind{ChangeStillOpen, ChangeStillOpen, ChangeResolved, ""}, StatusResolved, 0},
		{"n/a counts as a pass",
			[]check.Outcome{F, N, P}, []ChangeKind{ChangeStillOpen, ChangeStillOpen, ChangeResolved}, StatusResolved, 0},
		{"a regression is announced on its second night",
			[]check.Outcome{F, P, P, F, F}, []ChangeKind{ChangeStillOpen, ChangeStillOpen, ChangeResolved, "", ChangeRegressed}, StatusOpen, 1},
		{"a host that flaps never emails anyone (never announced)",
			[]check.Outcome{P, F, P, F, P, F, P}, []ChangeKind{"", "", "", "", "", "", ""}, StatusPending, 0},
		{"an open finding that flaps is never announced fixed",
			[]check.Outcome{F, P, F, P, F}, []ChangeKind{ChangeStillOpen, ChangeStillOpen, ChangeStillOpen, ChangeStillOpen, ChangeStillOpen}, StatusOpen, 0},
		{"a resolved finding that flaps never regresses",
			[]check.Outcome{F, P, P, F, P, F, P}, []ChangeKind{ChangeStillOpen, ChangeStillOpen, ChangeResolved, "", "", "", ""}, StatusResolved, 0},
		// unknown (or not evaluated) neither counts toward a streak nor
		// breaks it: an outage night between two failures is no pause.
		{"unknown does not break a fail streak",
			[]check.Outcome{P, F, U, F}, []ChangeKind{"", "", "", ChangeNew}, StatusOpen, 0},
		{"unknown does not count toward a fail streak",
			[]check.Outcome{P, F, U, U}, []ChangeKind{"", "", "", ""}, StatusPending, 0},
		{"not evaluated does not count toward a fail streak",
			[]check.Outcome{P, F, X, X}, []ChangeKind{"", "", "", ""}, StatusPending, 0},
		{"unknown never resolves a failure",
			[]check.Outcome{F, U, U, U}, []ChangeKind{ChangeStillOpen, ChangeStillOpen, ChangeStillOpen, ChangeStillOpen}, StatusOpen, 0},
		{"unknown does not break a pass streak",
			[]check.Outcome{F, P, U, P}, []ChangeKind{ChangeStillOpen, ChangeStillOpen, ChangeStillOpen, ChangeResolved}, StatusResolved, 0},
		{"unknown does not count toward a pass streak",
			[]check.Outcome{F, P, U, X}, []ChangeKind{ChangeStillOpen, ChangeStillOpen, ChangeStillOpen, ChangeStillOpen}, StatusOpen, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := openTemp(t)
			for i, o := range tc.nights {
				outcomes := map[string]check.Outcome{"email.dmarc.rua": P}
				if o != X {
					outcomes[id] = o
				}
				r := completeRun(t, s, c, outcomes)
				if got := kinds(t, s, r.ID)[id]; got != tc.want[i] {
					t.Errorf("night %d (%s): change %q, want %q", i+1, o, got, tc.want[i])
				}
			}
			if l := lifeOf(t, s, id); l.Status != tc.status || l.Regressions != tc.regr {
				t.Errorf("status %s with %d regressions, want %s with %d", l.Status, l.Regressions, tc.status, tc.regr)
			}
		})
	}
}

func TestHoldOfThreeAndOfOne(t *testing.T) {
	const id = "email.dmarc.policy"
	for _, tc := range []struct {
		hold int
		want []ChangeKind
	}{
		{1, []ChangeKind{"", ChangeNew, ChangeResolved, ChangeRegressed}},
		{3, []ChangeKind{"", "", "", ""}},
	} {
		s, c := openTemp(t)
		if err := s.SetHold(tc.hold); err != nil {
			t.Fatal(err)
		}
		for i, o := range []check.Outcome{P, F, P, F} {
			r := completeRun(t, s, c, map[string]check.Outcome{id: o})
			if got := kinds(t, s, r.ID)[id]; got != tc.want[i] {
				t.Errorf("hold %d, night %d (%s): change %q, want %q", tc.hold, i+1, o, got, tc.want[i])
			}
		}
	}
	s, _ := openTemp(t)
	if err := s.SetHold(0); err == nil {
		t.Error("SetHold(0) succeeded")
	}
}

// runFindings completes a run with the given findings (each its own job).
func runFindings(t *testing.T, s *Store, c *clock, fs ...check.Finding) Run {
	t.Helper()
	ctx := context.Background()
	c.advance(24 * time.Hour)
	r := mustBegin(t, s, "nightly")
	for i, f := range fs {
		ev := evidence("job"+string(rune('a'+i)), f.Asset, c.now())
		if err := s.PutResult(ctx, r.ID, ev, []check.Finding{f}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishRun(ctx, r.ID, Complete); err != nil {
		t.Fatal(err)
	}
	return r
}

func byID(t *testing.T, s *Store, runID int64) map[string]Change {
	t.Helper()
	cs, err := s.Changes(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Change{}
	for _, c := range cs {
		m[c.ID] = c
	}
	return m
}

// TestPatternAcceptanceCoversMatchingFindingsAndReopensWhenItLapses: a
// check glob on *.legacy.example.nhs.uk accepts the findings of matching
// checks on hosts below it (not the zone itself, not other checks), shows
// at once, and re-opens them with a 'reopened' change when it lapses.
func TestPatternAcceptanceCoversMatchingFindingsAndReopensWhenItLapses(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	legacy := check.Asset{Kind: check.KindHost, Name: "old.Legacy.example.nhs.uk", Org: "RXX", Domain: "example.nhs.uk"}
	zone := check.Asset{Kind: check.KindHost, Name: "legacy.example.nhs.uk", Org: "RXX", Domain: "example.nhs.uk"}
	hdr := finding("web.hdr.csp", legacy, F)
	other := finding("tls.cert.expiry", legacy, F)
	zoneHdr := finding("web.hdr.csp", zone, F)
	all := []check.Finding{hdr, other, zoneHdr}
	runFindings(t, s, c, all...) // baseline: all open

	until := c.now().Add(60 * time.Hour) // in force for the next two nights
	id, matched, err := s.AcceptPattern(ctx, "web.hdr.*", "*.legacy.example.nhs.uk", "retiring in June", until, "ciso")
	if err != nil || matched != 1 {
		t.Fatalf("AcceptPattern: %d matched, %v; want 1", matched, err)
	}
	status := func() map[string]LifeStatus {
		m := map[string]LifeStatus{}
		lives, err := s.Lifecycle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lives {
			m[l.FindingID] = l.Status
		}
		return m
	}
	want := map[string]LifeStatus{hdr.ID(): StatusAccepted, other.ID(): StatusOpen, zoneHdr.ID(): StatusOpen}
	if got := status(); !reflect.DeepEqual(got, want) {
		t.Errorf("at once: %v, want %v", got, want)
	}
	if a, err := s.AcceptanceOf(ctx, hdr.ID()); err != nil || a == nil || a.ID != id {
		t.Errorf("AcceptanceOf the matching finding: %+v, %v", a, err)
	}
	if a, err := s.AcceptanceOf(ctx, other.ID()); err != nil || a != nil {
		t.Errorf("AcceptanceOf another check's finding: %+v, %v", a, err)
	}
	for night := 2; night <= 3; night++ {
		r := runFindings(t, s, c, all...)
		ch := byID(t, s, r.ID)
		if a := ch[hdr.ID()]; !a.Accepted || a.Acceptance == nil || a.Acceptance.ID != id || a.Kind != ChangeStillOpen {
			t.Errorf("night %d: the matching finding: %+v", night, a)
		}
		if ch[other.ID()].Accepted || ch[zoneHdr.ID()].Accepted {
			t.Errorf("night %d: a finding the pattern does not match is accepted", night)
		}
	}
	r := runFindings(t, s, c, all...) // lapsed
	ch := byID(t, s, r.ID)
	if a := ch[hdr.ID()]; a.Kind != ChangeReopened || a.Accepted || a.Acceptance == nil || a.Acceptance.Reason != "retiring in June" {
		t.Errorf("after it lapsed: %+v, want reopened with the lapsed acceptance", a)
	}
	if got := status()[hdr.ID()]; got != StatusOpen {
		t.Errorf("after it lapsed: status %s, want open", got)
	}
	r = runFindings(t, s, c, all...)
	if k := byID(t, s, r.ID)[hdr.ID()].Kind; k != ChangeStillOpen {
		t.Errorf("the night after: %s, want still-open", k)
	}
}

func TestRevokedAcceptanceReopensAtTheNextRun(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	f := finding("email.dmarc.policy", domain, F)
	runFindings(t, s, c, f)
	id, err := s.AcceptFinding(ctx, f.ID(), "r", c.now().Add(100*24*time.Hour), "me")
	if err != nil {
		t.Fatal(err)
	}
	r := runFindings(t, s, c, f)
	if ch := byID(t, s, r.ID)[f.ID()]; !ch.Accepted {
		t.Fatalf("before the revocation: %+v", ch)
	}
	if err := s.Revoke(ctx, id, "me"); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, id, "me"); err == nil {
		t.Error("revoking twice succeeded")
	}
	if err := s.Revoke(ctx, 999, "me"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking an unknown id: %v", err)
	}
	r = runFindings(t, s, c, f)
	if ch := byID(t, s, r.ID)[f.ID()]; ch.Kind != ChangeReopened || ch.Accepted {
		t.Errorf("after the revocation: %+v, want reopened", ch)
	}
	as, err := s.Acceptances(ctx)
	if err != nil || len(as) != 1 || as[0].RevokedAt.IsZero() || as[0].RevokedBy != "me" {
		t.Errorf("Acceptances: %+v, %v", as, err)
	}
}

func TestAcceptPatternRefusesBadPatterns(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	until := c.now().Add(time.Hour)
	for _, p := range [][2]string{
		{"", "x.nhs.uk"}, {"web.hdr.[", "x.nhs.uk"}, {"web hdr", "x.nhs.uk"}, {"web.*", ""},
		{"web.*", "a*.nhs.uk"}, {"web.*", "*."}, {"web.*", "x..nhs.uk"}, {"web.*", "*.*.nhs.uk"},
	} {
		if _, _, err := s.AcceptPattern(ctx, p[0], p[1], "r", until, "me"); err == nil {
			t.Errorf("AcceptPattern(%q, %q) succeeded", p[0], p[1])
		}
	}
	if _, _, err := s.AcceptPattern(ctx, "web.*", "*", "r", until, "me"); err != nil {
		t.Errorf("a check glob on every asset: %v", err)
	}
}

func TestMatchAssetAndCheck(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"*.legacy.example.nhs.uk", "www.legacy.example.nhs.uk", true},
		{"*.legacy.example.nhs.uk", "a.b.LEGACY.example.nhs.uk.", true},
		{"*.legacy.example.nhs.uk", "legacy.example.nhs.uk", false},
		{"*.legacy.example.nhs.uk", "notlegacy.example.nhs.uk", false},
		{"legacy.example.nhs.uk", "Legacy.Example.nhs.uk", true},
		{"legacy.example.nhs.uk", "www.legacy.example.nhs.uk", false},
		{"*", "anything", true},
		{"nhsx/posture", "NHSX/posture", true},
	} {
		if got := MatchAsset(tc.pattern, tc.name); got != tc.want {
			t.Errorf("MatchAsset(%q, %q) = %v", tc.pattern, tc.name, got)
		}
	}
	for _, tc := range []struct {
		pattern, id string
		want        bool
	}{
		{"web.hdr.*", "web.hdr.csp", true},
		{"web.hdr.*", "web.hdrs", false},
		{"WEB.HDR.CSP", "web.hdr.csp", true},
		{"email.dmarc.policy", "email.dmarc.policy", true},
		{"email.dmarc.policy", "email.dmarc.policy2", false},
		{"email.?pf.all", "email.spf.all", true},
	} {
		if got := MatchCheck(tc.pattern, tc.id); got != tc.want {
			t.Errorf("MatchCheck(%q, %q) = %v", tc.pattern, tc.id, got)
		}
	}
}

// TestRebuildGivesExactlyWhatTheRunsGave: a history of fixes, regressions,
// flapping, unknowns, acceptances that lapse or are revoked, a pattern,
// and runs completed with different holds, rebuilt, gives the same
// lifecycle and the same changes for every run.
func TestRebuildGivesExactlyWhatTheRunsGave(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	assets := []check.Asset{
		{Kind: check.KindDomain, Name: "a.nhs.uk", Org: "RA"},
		{Kind: check.KindDomain, Name: "b.nhs.uk", Org: "RB"},
		{Kind: check.KindHost, Name: "www.old.c.nhs.uk", Org: "RC"},
	}
	ids := []string{"email.dmarc.policy", "email.spf.all", "web.hdr.csp"}
	outcomes := []check.Outcome{F, P, U, W, N}
	var runs []Run
	for night := range 24 {
		if night == 12 {
			s.SetHold(1)
		}
		if night == 16 {
			s.SetHold(3)
		}
		var fs []check.Finding
		for i, a := range assets {
			for j, id := range ids {
				// A deterministic mixture: some steady, some flapping.
				k := (night*(i+1) + j*j + night/(j+2)) % len(outcomes)
				if (i+j)%3 == 0 {
					k = (night / 5) % 2 // fails five nights, passes five
				}
				if night == 9 || (night%7 == 3 && i == 1) {
					k = 2 // an outage night
				}
				fs = append(fs, finding(id, a, outcomes[k]))
			}
		}
		runs = append(runs, runFindings(t, s, c, fs...))
		switch night {
		case 2:
			if _, _, err := s.AcceptPattern(ctx, "web.*", "*.c.nhs.uk", "retiring", c.now().Add(5*24*time.Hour), "ciso"); err != nil {
				t.Fatal(err)
			}
		case 4:
			lives, _ := s.Lifecycle(ctx)
			for _, l := range lives {
				if l.Status == StatusOpen {
					if _, err := s.AcceptFinding(ctx, l.FindingID, "one", c.now().Add(30*24*time.Hour), "me"); err != nil {
						t.Fatal(err)
					}
				}
			}
		case 10:
			as, _ := s.Acceptances(ctx)
			if err := s.Revoke(ctx, as[len(as)-1].ID, "me"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An acceptance recorded after the newest run shows at once.
	c.advance(time.Hour)
	lives, _ := s.Lifecycle(ctx)
	late := 0
	for _, l := range lives {
		if l.Status == StatusOpen && late == 0 {
			if _, _, err := s.AcceptPattern(ctx, l.CheckID, l.Asset.Name, "late", c.now().Add(24*time.Hour), "me"); err != nil {
				t.Fatal(err)
			}
			late++
		}
	}
	if late == 0 {
		t.Fatal("no open finding after the history")
	}
	var changes [][]Change
	snapshot := func() ([]Life, [][]Change) {
		lives, err := s.Lifecycle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var cs [][]Change
		for _, r := range runs {
			ch, err := s.Changes(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, ch)
		}
		return lives, cs
	}
	lives, changes = snapshot()
	events := map[ChangeKind]int{}
	for _, cs := range changes {
		for _, c := range cs {
			events[c.Kind]++
		}
	}
	for _, k := range []ChangeKind{ChangeNew, ChangeRegressed, ChangeResolved, ChangeReopened, ChangeStillOpen} {
		if events[k] == 0 {
			t.Errorf("the history has no %s change: it tests less than it says (%v)", k, events)
		}
	}
	t.Logf("changes over %d runs: %v", len(runs), events)

	fresh, err := Open(ctx, s.path(t))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	fresh.now = c.now
	if err := fresh.RebuildLifecycle(ctx); err != nil { // each run's own hold
		t.Fatal(err)
	}
	lives2, changes2 := snapshot()
	if !reflect.DeepEqual(lives, lives2) {
		t.Errorf("rebuild changed the lifecycle")
		for i := range min(len(lives), len(lives2)) {
			if !reflect.DeepEqual(lives[i], lives2[i]) {
				t.Errorf("  %+v\n→ %+v", lives[i], lives2[i])
			}
		}
	}
	for i := range changes {
		if !reflect.DeepEqual(changes[i], changes2[i]) {
			t.Errorf("rebuild changed the changes of night %d:\n%+v\n→ %+v", i+1, changes[i], changes2[i])
		}
	}
}

// path is the file the test store was opened at.
func (s *Store) path(t *testing.T) string {
	t.Helper()
	var file string
	if err := s.r.QueryRow("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(file)
}

// TestRebuildWithAHoldReplaysEveryRunWithIt: reeval --hold 1 on runs
// completed with the default announces at once what held once.
func TestRebuildWithAHoldReplaysEveryRunWithIt(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	const id = "email.dmarc.policy"
	var last Run
	for _, o := range []check.Outcome{P, F} {
		last = completeRun(t, s, c, map[string]check.Outcome{id: o})
	}
	if k := kinds(t, s, last.ID)[id]; k != "" {
		t.Fatalf("hold 2, one failure: %q, want pending", k)
	}
	s.SetHold(1)
	if err := s.RebuildLifecycle(ctx); err != nil {
		t.Fatal(err)
	}
	if k := kinds(t, s, last.ID)[id]; k != ChangeNew {
		t.Errorf("rebuilt with hold 1: %q, want new", k)
	}
	if n := count(t, s, "SELECT COUNT(*) FROM runs WHERE hold = 1"); n != 2 {
		t.Errorf("%d runs record hold 1, want 2", n)
	}
}

// BenchmarkFinishRunWithAcceptances is BenchmarkFinishRun's 100,000
// findings (20,000 failing, shifting each run) with 50 single-finding
// acceptances and 3 patterns, one of them matching every host.
func BenchmarkFinishRunWithAcceptances(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir()+"/posture.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fill := func(runID int64, shift int) { fillHosts(b, s, runID, shift) }
	for i := range b.N + 1 {
		r, _, err := s.BeginRun(ctx, fmt.Sprint(i), "")
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		fill(r.ID, 0) // the same failures every run: 20,000 open
		if i == 0 {
			until := s.now().Add(365 * 24 * time.Hour)
			for _, p := range [][2]string{{"tls.rule1", "*.example.nhs.uk"}, {"web.*", "*"}, {"tls.rule?", "h7.example.nhs.uk"}} {
				if _, err := s.db().ExecContext(ctx, `INSERT INTO risk_acceptances (check_pattern, asset_pattern, reason,
					until, accepted_by, accepted_at) VALUES (?, ?, 'r', ?, 'me', '')`, p[0], p[1], fmtTime(until)); err != nil {
					b.Fatal(err)
				}
			}
			for j := range 50 {
				f := finding("tls.rule0", check.Asset{Kind: check.KindHost, Name: fmt.Sprintf("h%d.example.nhs.uk", j*5)}, check.Fail)
				if _, err := s.db().ExecContext(ctx, `INSERT INTO risk_acceptances (finding_id, reason, until, accepted_by,
					accepted_at) VALUES (?, 'r', ?, 'me', '')`, f.ID(), fmtTime(until)); err != nil {
					b.Fatal(err)
				}
			}
		} else {
			b.StartTimer()
		}
		if err := s.FinishRun(ctx, r.ID, Complete); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	lives, _ := s.Lifecycle(ctx)
	accepted := 0
	for _, l := range lives {
		if l.Status == StatusAccepted {
			accepted++
		}
	}
	b.ReportMetric(float64(accepted), "accepted")
}

// db is the writer, for benchmarks that set up rows directly.
func (s *Store) db() *sql.DB { return s.w }
