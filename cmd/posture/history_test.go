package main

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/email"
	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/scanner"
	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/lab"
	"github.com/nhsx/posture/scanner/store"
)

// The small lab of the history: five domains, one trust each.
const (
	hA = "lab-spf-plus-all.nhs.uk"        // SPF +all: fixed, broken again, fixed, broken again
	hB = "lab-dmarc-reject.nhs.uk"        // flaps for a week, then fails for good
	hC = "lab-dmarc-p-none.nhs.uk"        // p=none, accepted for a while, lapses, fixed
	hD = "lab-email-good.nhs.uk"          // breaks before a night of unknowns
	hE = "mail.lab-dmarc-psd-only.nhs.uk" // broken DMARC, accepted by a pattern that lapses
)

var (
	spfA      = map[bool]string{true: "v=spf1 ip4:192.0.2.10 -all", false: "v=spf1 ip4:192.0.2.10 +all"}
	dmarcGood = func(d string) string { return "v=DMARC1; p=reject; sp=reject; rua=mailto:dmarc@" + d }
	dmarcNone = func(d string) string { return "v=DMARC1; p=none; sp=reject; rua=mailto:dmarc@" + d }
)

// historyNight is what happens on one night: lab changes before the scan,
// acceptances after it, and what the night must announce.
type historyNight struct {
	before   func(t *testing.T, l *lab.Lab)
	unknown  bool // the scanner's resolver is dead: every verdict unknown
	after    func(t *testing.T, st *store.Store, now time.Time)
	announce map[string]string // "check@asset" → new | regressed | resolved | reopened
	pending  []string          // failing but not yet held: no change, no status
	accepted int               // failing findings under an acceptance
	// fields: what the exports show of one finding that night.
	fields map[string]lifeFields
}

// lifeFields are a finding's lifecycle fields in the exports.
type lifeFields struct {
	daysOpen, regressions int
	firstSeen             int    // the night it first failed
	acceptance            string // the reason, "" for none
}

func setSPF(fix bool) func(t *testing.T, l *lab.Lab) {
	return func(t *testing.T, l *lab.Lab) {
		t.Helper()
		o := map[bool]check.Outcome{true: check.Pass, false: check.Fail}[fix]
		if err := l.SetTXT(hA, hA, []string{spfA[fix], "lab-verification=lab-spf-plus-all-nhs-uk"},
			map[string]check.Outcome{"email.spf.all": o}); err != nil {
			t.Fatal(err)
		}
	}
}

func setDMARC(d string, good bool) func(t *testing.T, l *lab.Lab) {
	return func(t *testing.T, l *lab.Lab) {
		t.Helper()
		rec, o := dmarcNone(d), check.Fail
		if good {
			rec, o = dmarcGood(d), check.Pass
		}
		if err := l.SetTXT(d, "_dmarc."+d, []string{rec}, map[string]check.Outcome{"email.dmarc.policy": o}); err != nil {
			t.Fatal(err)
		}
	}
}

func both(fs ...func(t *testing.T, l *lab.Lab)) func(t *testing.T, l *lab.Lab) {
	return func(t *testing.T, l *lab.Lab) {
		for _, f := range fs {
			f(t, l)
		}
	}
}

// history is 30 nights with a hold of 2. Night n runs at day n; an
// acceptance recorded after night n is recorded an hour after it.
func history() map[int]historyNight {
	day := func(n int) time.Time { return historyStart.Add(time.Duration(n) * 24 * time.Hour) }
	const (
		spfAllA   = "email.spf.all@" + hA
		policyB   = "email.dmarc.policy@" + hB
		policyC   = "email.dmarc.policy@" + hC
		policyD   = "email.dmarc.policy@" + hD
		eRecord   = "email.dmarc.record@" + hE
		eReport   = "email.dmarc.reporting@" + hE
		ePolicy   = "email.dmarc.policy@" + hE
		eAllThree = 3
	)
	h := map[int]historyNight{
		// The baseline: everything failing is open, nothing announced.
		1: {after: func(t *testing.T, st *store.Store, now time.Time) {
			// Every DMARC finding below lab-dmarc-psd-only, until day 25 (noon).
			if _, n, err := st.AcceptPattern(context.Background(), "email.dmarc.*", "*.lab-dmarc-psd-only.nhs.uk",
				"suffix operator's record, being replaced", day(25).Add(12*time.Hour), "ciso"); err != nil || n != eAllThree {
				t.Fatalf("pattern acceptance: %d findings, %v", n, err)
			}
		}},
		2: {accepted: eAllThree, after: func(t *testing.T, st *store.Store, now time.Time) {
			lives, err := st.Lifecycle(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lives {
				if l.CheckID == "email.dmarc.policy" && l.Asset.Name == hC {
					if _, err := st.AcceptFinding(context.Background(), l.FindingID, "DMARC rollout in progress", day(8).Add(12*time.Hour), "ciso"); err != nil {
						t.Fatal(err)
					}
				}
			}
		}},
		// B flaps for a week: never announced.
		3: {before: setDMARC(hB, false), pending: []string{policyB}, accepted: eAllThree + 1},
		4: {before: setDMARC(hB, true), accepted: eAllThree + 1},
		5: {before: both(setDMARC(hB, false), setSPF(true)), pending: []string{policyB}, accepted: eAllThree + 1},
		6: {before: setDMARC(hB, true), announce: map[string]string{spfAllA: "resolved"}, accepted: eAllThree + 1},
		7: {before: setDMARC(hB, false), pending: []string{policyB}, accepted: eAllThree + 1},
		8: {before: setDMARC(hB, true), accepted: eAllThree + 1},
		9: {announce: map[string]string{policyC: "reopened"}, accepted: eAllThree,
			fields: map[string]lifeFields{policyC: {daysOpen: 8, firstSeen: 1, acceptance: "DMARC rollout in progress"}}},
		10: {accepted: eAllThree, fields: map[string]lifeFields{policyC: {daysOpen: 9, firstSeen: 1},
			eRecord: {daysOpen: 9, firstSeen: 1, acceptance: "suffix operator's record, being replaced"}}},
		11: {before: setSPF(false), pending: []string{spfAllA}, accepted: eAllThree},
		12: {announce: map[string]string{spfAllA: "regressed"}, accepted: eAllThree,
			fields: map[string]lifeFields{spfAllA: {daysOpen: 1, regressions: 1, firstSeen: 1}}},
		13: {accepted: eAllThree},
		14: {before: setDMARC(hC, true), accepted: eAllThree},
		15: {announce: map[string]string{policyC: "resolved"}, accepted: eAllThree},
		16: {before: setDMARC(hD, false), pending: []string{policyD}, accepted: eAllThree},
		// An outage night: unknown neither resolves, nor counts, nor breaks
		// D's streak.
		17: {unknown: true},
		18: {announce: map[string]string{policyD: "new"}, accepted: eAllThree,
			fields: map[string]lifeFields{policyD: {daysOpen: 2, firstSeen: 16}}},
		19: {accepted: eAllThree},
		20: {before: setSPF(true), accepted: eAllThree},
		21: {announce: map[string]string{spfAllA: "resolved"}, accepted: eAllThree},
		22: {accepted: eAllThree}, 23: {accepted: eAllThree}, 24: {accepted: eAllThree}, 25: {accepted: eAllThree},
		26: {announce: map[string]string{eRecord: "reopened", eReport: "reopened", ePolicy: "reopened"}},
		27: {before: setDMARC(hB, false), pending: []string{policyB}},
		28: {before: setSPF(false), announce: map[string]string{policyB: "new"}, pending: []string{spfAllA}},
		29: {announce: map[string]string{spfAllA: "regressed"},
			fields: map[string]lifeFields{spfAllA: {daysOpen: 1, regressions: 2, firstSeen: 1}}},
		30: {before: setDMARC(hB, true)},
	}
	return h
}

var historyStart = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

// TestThirtyNightsOfLabHistory scans a small lab 30 nights running, with
// the lab's operators fixing, breaking and flapping, acceptances (one
// finding; a pattern) that lapse, and a night when the resolver is down,
// and checks each night's summary and emails against what must be
// announced: nothing on the baseline night, nothing for a host that
// flaps, nothing on the outage night, each change once it held two
// nights, accepted findings counted apart and re-opened when their
// acceptance lapses. Then it rebuilds the lifecycle and gets the same 30
// nights back.
func TestThirtyNightsOfLabHistory(t *testing.T) {
	ctx := context.Background()
	l, err := lab.StartCases(ctx, lab.Config{}, "email-good", "spf-plus-all", "dmarc-reject", "dmarc-p-none", "dmarc-psd-only")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, err := estate.Parse("lab.yaml", l.EstateYAML())
	if err != nil {
		t.Fatal(err)
	}
	orgOf := map[string]string{}
	for _, o := range e.Organisations {
		for _, d := range o.Domains {
			orgOf[d] = o.Code
		}
	}
	st, err := store.Open(ctx, t.TempDir()+"/posture.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	now := historyStart
	st.SetClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	})
	setNow := func(t time.Time) {
		mu.Lock()
		now = t
		mu.Unlock()
	}
	// An outage: a resolver that never answers.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	resolver := func(addr string, timeout time.Duration) *dnsq.Resolver {
		return &dnsq.Resolver{Servers: []string{addr}, Timeout: timeout, Retries: 1}
	}
	cfg := scanner.Config{
		Estate: e, Checks: []check.Check{email.SPF(), email.DMARC()},
		Dial: l.Dial, AllowPrivate: true, Roots: l.Roots, CAPEM: l.CAPEM, NoAXFR: true,
		Options: scanner.Options{Concurrency: 16, JobTimeout: 10 * time.Second, Policy: l.Policy()},
	}

	script := history()
	var runs []int64
	for n := 1; n <= 30; n++ {
		night := script[n]
		setNow(historyStart.Add(time.Duration(n) * 24 * time.Hour))
		if night.before != nil {
			night.before(t, l)
		}
		cfg.DNS = resolver(l.DNSAddr, 500*time.Millisecond)
		if night.unknown {
			cfg.DNS = resolver(dead.LocalAddr().String(), 100*time.Millisecond)
		}
		stats, err := scanner.Run(ctx, st, cfg)
		if err != nil || stats.Status != string(store.Complete) {
			t.Fatalf("night %d: scan: %v (%+v)", n, err, stats)
		}
		runs = append(runs, stats.RunID)
		checkNight(t, n, st, stats.RunID, night, orgOf)
		if night.after != nil {
			setNow(historyStart.Add(time.Duration(n)*24*time.Hour + time.Hour))
			night.after(t, st, now)
		}
		if t.Failed() {
			t.FailNow() // later nights would only repeat the first divergence
		}
	}

	// reeval's rebuild gives what the 30 nights gave.
	before := allChanges(t, st, runs)
	if err := st.RebuildLifecycle(ctx); err != nil {
		t.Fatal(err)
	}
	if after := allChanges(t, st, runs); !reflect.DeepEqual(before, after) {
		for i := range before {
			if !reflect.DeepEqual(before[i], after[i]) {
				t.Errorf("night %d after the rebuild:\n%v\nwas\n%v", i+1, after[i], before[i])
			}
		}
	}
}

// checkNight checks one night's findings, summary and emails.
func checkNight(t *testing.T, n int, st *store.Store, runID int64, night historyNight, orgOf map[string]string) {
	t.Helper()
	ctx := context.Background()
	src := storeSource{Store: st}
	fs, err := src.Findings(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	key := func(f reports.Finding) string { return f.CheckID + "@" + f.Asset.Name }
	unknown, failing := 0, 0
	for _, f := range fs {
		if f.Outcome == check.Unknown {
			unknown++
		}
		if f.Outcome.Counts() {
			failing++
		}
		if f.Status == reports.StatusAccepted && (f.Acceptance == nil || f.Acceptance.Reason == "") {
			t.Errorf("night %d: %s is accepted with no acceptance", n, key(f))
		}
	}
	for _, p := range night.pending {
		for _, f := range fs {
			if key(f) == p && (!f.Outcome.Counts() || f.Change != "" || f.Status != "") {
				t.Errorf("night %d: pending %s: outcome %s, change %q, status %q; want failing, no change, no status",
					n, p, f.Outcome, f.Change, f.Status)
			}
		}
	}
	for k, want := range night.fields {
		found := false
		for _, f := range fs {
			if key(f) != k {
				continue
			}
			found = true
			got := lifeFields{daysOpen: f.DaysOpen, regressions: f.Regressions,
				firstSeen: int(f.FirstSeen.Sub(historyStart) / (24 * time.Hour))}
			if f.Acceptance != nil {
				got.acceptance = f.Acceptance.Reason
			}
			if got != want || !f.LastSeen.Equal(historyStart.Add(time.Duration(n)*24*time.Hour)) {
				t.Errorf("night %d: %s: %+v, last seen %s; want %+v, last seen tonight", n, k, got, f.LastSeen, want)
			}
		}
		if !found {
			t.Errorf("night %d: no finding %s", n, k)
		}
	}
	if night.unknown && (failing > 0 || unknown == 0) {
		t.Errorf("night %d (resolver down): %d failing, %d unknown; want only unknown", n, failing, unknown)
	}

	s, err := reports.BuildSummary(ctx, src, checks.Catalogue(), runID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range s.Findings {
		switch f.Change {
		case reports.ChangeNew, reports.ChangeRegressed, reports.ChangeReopened:
			got[key(f)] = f.Change
		}
	}
	for _, f := range s.Resolved {
		got[key(f)] = reports.ChangeResolved
	}
	want := night.announce
	if want == nil {
		want = map[string]string{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("night %d announces %v, want %v", n, got, want)
	}
	c := s.Estate.Changes
	var wn, wr, wf int
	for _, k := range want {
		switch k {
		case reports.ChangeNew:
			wn++
		case reports.ChangeRegressed:
			wr++
		case reports.ChangeResolved:
			wf++
		}
	}
	if c.New != wn || c.Regressed != wr || c.Resolved != wf || c.Accepted != night.accepted {
		t.Errorf("night %d: summary counts %d new, %d regressed, %d fixed, %d accepted; want %d, %d, %d, %d",
			n, c.New, c.Regressed, c.Resolved, c.Accepted, wn, wr, wf, night.accepted)
	}
	if n == 1 && (c.StillOpen == 0 || c.StillOpen+night.accepted != failing) {
		t.Errorf("night 1 (baseline): %d still open of %d failing; want every failure open, announced as nothing", c.StillOpen, failing)
	}

	// Emails go to the organisations with something announced, and name
	// the assets concerned.
	mails, err := reports.EmailOptions{From: "posture@nhs.net"}.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	wantOrgs := map[string][]string{}
	for k := range want {
		asset := k[strings.IndexByte(k, '@')+1:]
		wantOrgs[orgOf[asset]] = append(wantOrgs[orgOf[asset]], asset)
	}
	gotOrgs := map[string]bool{}
	for _, m := range mails {
		gotOrgs[m.Org] = true
		for _, a := range wantOrgs[m.Org] {
			if !strings.Contains(m.Text, a) || !strings.Contains(m.HTML, a) {
				t.Errorf("night %d: the email to %s does not name %s", n, m.Org, a)
			}
		}
	}
	if len(gotOrgs) != len(wantOrgs) {
		t.Errorf("night %d: emails to %v, want to %v", n, keys(gotOrgs), wantOrgs)
	}
	for o := range wantOrgs {
		if !gotOrgs[o] {
			t.Errorf("night %d: no email to %s", n, o)
		}
	}
	t.Logf("night %2d: %d findings (%d failing, %d unknown), %d emails, announced %v", n, len(fs), failing, unknown, len(mails), got)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// allChanges renders every run's changes for comparison.
func allChanges(t *testing.T, st *store.Store, runs []int64) []string {
	t.Helper()
	var out []string
	for _, r := range runs {
		cs, err := st.Changes(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, c := range cs {
			fmt.Fprintf(&b, "%s %s %s accepted=%v regressions=%d opened=%s\n", c.Kind, c.Finding.CheckID,
				c.Finding.Asset.Name, c.Accepted, c.Regressions, c.OpenedAt.Format(time.RFC3339))
		}
		out = append(out, b.String())
	}
	return out
}
