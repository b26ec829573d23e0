package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// clock is a settable time source for the store under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openAt(t *testing.T, path string) (*Store, *clock) {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := &clock{t: time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)}
	s.now = c.now
	return s, c
}

func openTemp(t *testing.T) (*Store, *clock) {
	return openAt(t, filepath.Join(t.TempDir(), "posture.db"))
}

var (
	domain = check.Asset{Kind: check.KindDomain, Name: "example.nhs.uk", Org: "RXX", Source: "estate"}
	host   = check.Asset{Kind: check.KindHost, Name: "www.example.nhs.uk", Org: "RXX", Domain: "example.nhs.uk"}
)

func evidence(collector string, a check.Asset, at time.Time) check.Evidence {
	return check.Evidence{CheckID: collector, Asset: a, CollectedAt: at, Data: json.RawMessage(`{"txt":["v=spf1 -all"]}`)}
}

func finding(id string, a check.Asset, o check.Outcome) check.Finding {
	return check.Finding{
		CheckID: id, Rule: id, Asset: a, Outcome: o, Severity: check.High,
		Message: id + " is " + string(o), Remediation: "fix " + id,
		Standards: []check.Ref{{Standard: "GOV.UK email security standard", Section: "DMARC"}},
	}
}

func mustBegin(t *testing.T, s *Store, key string) Run {
	t.Helper()
	r, _, err := s.BeginRun(context.Background(), key, "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// completeRun runs one complete run in which the collector email.dmarc on
// domain gives the outcomes listed (by catalogue id); a nil map evaluates
// nothing.
func completeRun(t *testing.T, s *Store, c *clock, outcomes map[string]check.Outcome) Run {
	t.Helper()
	ctx := context.Background()
	c.advance(24 * time.Hour)
	r := mustBegin(t, s, "nightly")
	if outcomes != nil {
		var fs []check.Finding
		for id, o := range outcomes {
			fs = append(fs, finding(id, domain, o))
		}
		if err := s.PutResult(ctx, r.ID, evidence("email.dmarc", domain, c.now()), fs); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishRun(ctx, r.ID, Complete); err != nil {
		t.Fatal(err)
	}
	return r
}

func count(t *testing.T, s *Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := s.r.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMigrationsAreIdempotentOnReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "posture.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if i == 0 {
			if err := s.PutOrganisations(ctx, []Org{{Code: "RXX", Name: "Example"}}); err != nil {
				t.Fatal(err)
			}
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := ms[len(ms)-1].version; v != want {
			t.Errorf("open %d: schema version %d, want %d", i, v, want)
		}
		if n := count(t, s, "SELECT COUNT(*) FROM schema_version"); n != len(ms) {
			t.Errorf("open %d: %d schema_version rows, want %d", i, n, len(ms))
		}
		orgs, err := s.Organisations(ctx)
		if err != nil || len(orgs) != 1 {
			t.Errorf("open %d: organisations %v, %v; want the one put before", i, orgs, err)
		}
		s.Close()
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "posture.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec("INSERT INTO schema_version VALUES (9999, 'future', 'x')"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(ctx, path); err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

func TestOpenSetsPragmasOnEveryConnection(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	// Hold several read connections at once so that they are distinct
	// pooled connections, not one reused.
	var conns []*sql.Conn
	for range 3 {
		c, err := s.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	w, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	conns = append(conns, w)
	want := map[string]string{"journal_mode": "wal", "busy_timeout": "10000", "synchronous": "2", "foreign_keys": "1"}
	for i, c := range conns {
		for p, v := range want {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+p).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != v {
				t.Errorf("connection %d: %s = %s, want %s", i, p, got, v)
			}
		}
	}
}

func TestWriterIsASingleConnection(t *testing.T) {
	s, _ := openTemp(t)
	if n := s.w.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("writer MaxOpenConnections = %d, want 1", n)
	}
	if _, err := s.r.Exec("CREATE TABLE x (a)"); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestIntegrityCheckIsOK(t *testing.T) {
	s, c := openTemp(t)
	completeRun(t, s, c, map[string]check.Outcome{"email.dmarc.policy": check.Fail})
	if err := s.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBeginRunResumesAnUnfinishedRunWithTheSameKey(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	first, resumed, err := s.BeginRun(ctx, "A", "--only email")
	if err != nil || resumed {
		t.Fatalf("first BeginRun: resumed %v, err %v; want a new run", resumed, err)
	}
	steps := []struct {
		name        string
		before      func(Run) error // what happened to the previous run
		key         string
		wantResumed bool
	}{
		{"killed (left running) is resumed", nil, "A", true},
		{"interrupted is resumed", func(r Run) error { return s.FinishRun(ctx, r.ID, Interrupted) }, "A", true},
		{"another key is a new run", nil, "B", false},
		{"the first key is still resumable", nil, "A", true},
		{"complete is not resumed", func(r Run) error { return s.FinishRun(ctx, r.ID, Complete) }, "A", false},
		{"failed is not resumed", func(r Run) error { return s.FinishRun(ctx, r.ID, Failed) }, "A", false},
	}
	prev := first
	for _, st := range steps {
		if st.before != nil {
			if err := st.before(prev); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		r, resumed, err := s.BeginRun(ctx, st.key, "--only email")
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if resumed != st.wantResumed {
			t.Errorf("%s: resumed = %v", st.name, resumed)
		}
		if st.wantResumed && r.ID != prev.ID {
			t.Errorf("%s: resumed run %d, want %d", st.name, r.ID, prev.ID)
		}
		if !st.wantResumed && r.ID == prev.ID {
			t.Errorf("%s: got the previous run %d back", st.name, r.ID)
		}
		if r.Status != Running {
			t.Errorf("%s: status %s, want running", st.name, r.Status)
		}
		stored, err := s.Run(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored != r {
			t.Errorf("%s: BeginRun returned %+v, stored %+v", st.name, r, stored)
		}
		if st.key == "A" {
			prev = r
		}
	}
	runs, err := s.Runs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 4 || runs[0].ID < runs[len(runs)-1].ID {
		t.Errorf("Runs: %d runs, first id %d; want 4 newest first", len(runs), runs[0].ID)
	}
}

func TestFinishRunRefusesToCompleteTwice(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	r := completeRun(t, s, c, map[string]check.Outcome{"email.dmarc.policy": check.Fail})
	if err := s.FinishRun(ctx, r.ID, Complete); !errors.Is(err, ErrRunComplete) {
		t.Errorf("second complete: %v, want ErrRunComplete", err)
	}
	if err := s.FinishRun(ctx, 999, Complete); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown run: %v, want ErrNotFound", err)
	}
	if err := s.PutResult(ctx, r.ID, evidence("email.dmarc", domain, c.now()), nil); !errors.Is(err, ErrRunComplete) {
		t.Errorf("PutResult on a complete run: %v, want ErrRunComplete", err)
	}
	lives, _ := s.Lifecycle(ctx)
	if len(lives) != 1 || lives[0].Regressions != 0 {
		t.Errorf("lifecycle after refused re-completion: %+v", lives)
	}
}

func TestLatestAndPreviousComplete(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	if _, err := s.LatestComplete(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("LatestComplete on an empty store: %v, want ErrNotFound", err)
	}
	r1 := completeRun(t, s, c, nil)
	r2 := completeRun(t, s, c, nil)
	mustBegin(t, s, "other") // running: not complete
	latest, err := s.LatestComplete(ctx)
	if err != nil || latest.ID != r2.ID || latest.Seq != 2 {
		t.Errorf("LatestComplete = %+v, %v; want run %d seq 2", latest, err, r2.ID)
	}
	prev, err := s.PreviousComplete(ctx, r2.ID)
	if err != nil || prev.ID != r1.ID {
		t.Errorf("PreviousComplete(%d) = %+v, %v; want run %d", r2.ID, prev, err, r1.ID)
	}
	if _, err := s.PreviousComplete(ctx, r1.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("PreviousComplete of the first run: %v, want ErrNotFound", err)
	}
}

func TestPutResultTwiceKeepsOneRow(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	r := mustBegin(t, s, "nightly")
	first := []check.Finding{finding("email.dmarc.policy", domain, check.Fail), finding("email.dmarc.rua", domain, check.Pass)}
	if err := s.PutResult(ctx, r.ID, evidence("email.dmarc", domain, c.now()), first); err != nil {
		t.Fatal(err)
	}
	again := evidence("email.dmarc", domain, c.now().Add(time.Minute))
	again.Data = json.RawMessage(`{"txt":["v=DMARC1; p=reject"]}`)
	second := []check.Finding{finding("email.dmarc.policy", domain, check.Pass)}
	if err := s.PutResult(ctx, r.ID, again, second); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Evidence(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || string(evs[0].Data) != string(again.Data) || !evs[0].CollectedAt.Equal(again.CollectedAt) {
		t.Errorf("evidence after two puts: %+v; want only the second", evs)
	}
	fs, err := s.Findings(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Outcome != check.Pass {
		t.Fatalf("findings after two puts: %+v; want only the second put's one", fs)
	}
	want := Finding{Finding: second[0], ID: second[0].ID(), RunID: r.ID}
	if !reflect.DeepEqual(fs[0], want) {
		t.Errorf("stored finding\n%+v\nwant\n%+v", fs[0], want)
	}
}

func TestPutResultRoundTripsEvidenceVerbatim(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	r := mustBegin(t, s, "nightly")
	cases := []check.Evidence{
		{CheckID: "email.spf", Asset: domain, CollectedAt: c.now(), Data: json.RawMessage(`{ "b":1,  "a":[2] }`)},
		{CheckID: "tls.cert", Asset: host, CollectedAt: c.now(), Error: "dial: i/o timeout", ErrorClass: check.ErrTimeout},
	}
	for _, ev := range cases {
		if err := s.PutResult(ctx, r.ID, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Evidence(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cases) {
		t.Errorf("evidence\n%+v\nwant\n%+v", got, cases)
	}
}

func TestPutResultTruncatesOversizedEvidenceWithAMarker(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	r := mustBegin(t, s, "nightly")
	big, _ := json.Marshal(map[string]string{"body": strings.Repeat("\"<x>é", MaxEvidenceBytes/2)})
	ev := check.Evidence{CheckID: "web.headers", Asset: host, CollectedAt: c.now(), Data: big}
	fs := []check.Finding{finding("web.hsts", host, check.Fail)}
	if err := s.PutResult(ctx, r.ID, ev, fs); err != nil {
		t.Fatalf("oversized evidence failed the put: %v", err)
	}
	got, err := s.Evidence(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].Data) > MaxEvidenceBytes {
		t.Errorf("stored %d bytes, cap %d", len(got[0].Data), MaxEvidenceBytes)
	}
	var marker struct {
		Truncated bool
		Bytes     int
		Head      string
	}
	if err := json.Unmarshal(got[0].Data, &marker); err != nil {
		t.Fatalf("stored data is not JSON: %v", err)
	}
	if !marker.Truncated || marker.Bytes != len(big) || len(marker.Head) == 0 {
		t.Errorf("marker: truncated %v, bytes %d (want %d), head %d bytes", marker.Truncated, marker.Bytes, len(big), len(marker.Head))
	}
	if got[0].ErrorClass != check.ErrTooLarge {
		t.Errorf("error class %q, want too-large so that reeval gives unknown", got[0].ErrorClass)
	}
	if n := count(t, s, "SELECT COUNT(*) FROM findings WHERE run_id = ?", r.ID); n != 1 {
		t.Errorf("%d findings stored, want 1", n)
	}
}

func TestDoneJobsSkipsCanceledJobs(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	r := mustBegin(t, s, "nightly")
	canceled := check.Evidence{CheckID: "tls.cert", Asset: host, CollectedAt: c.now(), Error: "context canceled", ErrorClass: check.ErrCanceled}
	timedOut := check.Evidence{CheckID: "web.headers", Asset: host, CollectedAt: c.now(), Error: "timeout", ErrorClass: check.ErrTimeout}
	for _, ev := range []check.Evidence{evidence("email.dmarc", domain, c.now()), canceled, timedOut} {
		if err := s.PutResult(ctx, r.ID, ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	done, err := s.DoneJobs(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[JobKey]bool{{"email.dmarc", domain.Key()}: true, {"web.headers", host.Key()}: true}
	if !reflect.DeepEqual(done, want) {
		t.Errorf("DoneJobs = %v, want %v", done, want)
	}
}

func TestOrganisationsAndAssetsAreUpserted(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	o := Org{Code: "RXX", Name: "Old", Contacts: []string{"a@example.nhs.uk"}}
	if err := s.PutOrganisations(ctx, []Org{o}); err != nil {
		t.Fatal(err)
	}
	o = Org{Code: "RXX", Name: "Example NHS FT", Parent: "QXX", Kind: "trust",
		Contacts: []string{"domainmanagement@example.nhs.uk"}, Domains: []string{"example.nhs.uk"}, GitHub: []string{"example-nhs"}}
	if err := s.PutOrganisations(ctx, []Org{o, {Code: "QXX", Name: "ICB"}}); err != nil {
		t.Fatal(err)
	}
	orgs, err := s.Organisations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Org{{Code: "QXX", Name: "ICB"}, o}; !reflect.DeepEqual(orgs, want) {
		t.Errorf("organisations\n%+v\nwant\n%+v", orgs, want)
	}

	r := mustBegin(t, s, "nightly")
	for range 2 {
		if err := s.PutAssets(ctx, r.ID, []check.Asset{host, domain}); err != nil {
			t.Fatal(err)
		}
	}
	assets, err := s.Assets(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []check.Asset{domain, host}; !reflect.DeepEqual(assets, want) {
		t.Errorf("assets %+v, want %+v", assets, want)
	}
}

func TestDiscoveredNamesSurviveTheRunAndArePutOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	r := mustBegin(t, s, "nightly")
	other := mustBegin(t, s, "other")
	names := map[string][]string{"example.nhs.uk": {"www.example.nhs.uk", "example.nhs.uk", "legacy.example.nhs.uk"}}
	for range 2 { // a resumed run that discovers again puts the same names
		if err := s.PutNames(ctx, r.ID, names); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Names(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"example.nhs.uk": {"example.nhs.uk", "legacy.example.nhs.uk", "www.example.nhs.uk"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
	if got, err := s.Names(ctx, other.ID); err != nil || len(got) != 0 {
		t.Errorf("another run's names: %v, %v; want none", got, err)
	}
}

// kinds maps finding id → change kind for a run.
func kinds(t *testing.T, s *Store, runID int64) map[string]ChangeKind {
	t.Helper()
	cs, err := s.Changes(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]ChangeKind{}
	for _, c := range cs {
		m[c.Finding.CheckID] = c.Kind
	}
	return m
}

func lifeOf(t *testing.T, s *Store, checkID string) Life {
	t.Helper()
	lives, err := s.Lifecycle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lives {
		if l.CheckID == checkID {
			return l
		}
	}
	t.Fatalf("no lifecycle for %s", checkID)
	return Life{}
}

// With a hold of 1 and a clean baseline run first, every change is
// announced at once (lifecycle_test.go tests the hold).
func TestLifecycleNewStillOpenResolvedRegressed(t *testing.T) {
	s, c := openTemp(t)
	s.SetHold(1)
	const id = "email.dmarc.policy"
	completeRun(t, s, c, map[string]check.Outcome{id: check.Pass, "email.dmarc.rua": check.Pass})
	steps := []struct {
		outcome    check.Outcome
		wantChange ChangeKind
		wantStatus LifeStatus
		wantRegr   int
	}{
		{check.Fail, ChangeNew, StatusOpen, 0},
		{check.Warn, ChangeStillOpen, StatusOpen, 0},
		{check.Pass, ChangeResolved, StatusResolved, 0},
		{check.Fail, ChangeRegressed, StatusOpen, 1},
	}
	var runs []Run
	for i, st := range steps {
		r := completeRun(t, s, c, map[string]check.Outcome{id: st.outcome, "email.dmarc.rua": check.Pass})
		runs = append(runs, r)
		got := kinds(t, s, r.ID)
		if want := map[string]ChangeKind{id: st.wantChange}; !reflect.DeepEqual(got, want) {
			t.Errorf("run %d (%s): changes %v, want %v", i+1, st.outcome, got, want)
		}
		l := lifeOf(t, s, id)
		if l.Status != st.wantStatus || l.Regressions != st.wantRegr || l.LastOutcome != st.outcome {
			t.Errorf("run %d (%s): status %s, regressions %d, last outcome %s; want %s, %d", i+1, st.outcome,
				l.Status, l.Regressions, l.LastOutcome, st.wantStatus, st.wantRegr)
		}
		if l.FirstSeenRun != runs[0].ID {
			t.Errorf("run %d: first seen in run %d, want %d", i+1, l.FirstSeenRun, runs[0].ID)
		}
	}
	l := lifeOf(t, s, id)
	if l.LastSeenRun != runs[3].ID || l.ResolvedRun != 0 || !l.ResolvedAt.IsZero() {
		t.Errorf("after the regression: last seen %d, resolved %d at %v; want last seen %d and no resolution",
			l.LastSeenRun, l.ResolvedRun, l.ResolvedAt, runs[3].ID)
	}
	if want := (Finding{Finding: finding(id, domain, check.Fail)}).Finding.ID(); l.FindingID != want {
		t.Errorf("lifecycle id %s, want the stable finding id %s", l.FindingID, want)
	}
	// Changes of an old run are as of that run, not as of now.
	cs, err := s.Changes(context.Background(), runs[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Regressions != 0 || cs[0].FirstSeenRun != runs[0].ID || cs[0].Finding.Outcome != check.Warn ||
		cs[0].Finding.Message == "" || len(cs[0].Finding.Standards) != 1 {
		t.Errorf("changes of run 2: %+v", cs)
	}
}

func TestUnknownOrMissingEvaluationDoesNotResolve(t *testing.T) {
	s, c := openTemp(t)
	s.SetHold(1)
	const id = "email.dmarc.policy"
	completeRun(t, s, c, map[string]check.Outcome{id: check.Fail})
	cases := []struct {
		name        string
		outcomes    map[string]check.Outcome
		wantOutcome check.Outcome
	}{
		{"unknown (a timeout)", map[string]check.Outcome{id: check.Unknown}, check.Unknown},
		{"not evaluated at all", nil, ""},
		{"another rule evaluated on the asset", map[string]check.Outcome{"email.dmarc.rua": check.Pass}, ""},
	}
	for _, tc := range cases {
		r := completeRun(t, s, c, tc.outcomes)
		if l := lifeOf(t, s, id); l.Status != StatusOpen {
			t.Errorf("%s: status %s, want open", tc.name, l.Status)
		}
		cs, err := s.Changes(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].Kind != ChangeStillOpen || cs[0].Finding.Outcome != tc.wantOutcome || cs[0].Finding.Severity != check.High {
			t.Errorf("%s: changes %+v, want one still-open with outcome %q", tc.name, cs, tc.wantOutcome)
		}
	}
	r := completeRun(t, s, c, map[string]check.Outcome{id: check.NA})
	if l := lifeOf(t, s, id); l.Status != StatusResolved || l.ResolvedRun != r.ID {
		t.Errorf("after n/a: status %s resolved in %d, want resolved in %d", l.Status, l.ResolvedRun, r.ID)
	}
}

func TestChangesNeedsACompleteRun(t *testing.T) {
	s, _ := openTemp(t)
	r := mustBegin(t, s, "nightly")
	if _, err := s.Changes(context.Background(), r.ID); !errors.Is(err, ErrRunIncomplete) {
		t.Errorf("Changes of a running run: %v, want ErrRunIncomplete", err)
	}
}

func TestAcceptedFindingReopensAfterItsExpiry(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	const id = "email.dmarc.policy"
	fail := map[string]check.Outcome{id: check.Fail}
	completeRun(t, s, c, fail)
	fid := lifeOf(t, s, id).FindingID

	if err := s.Accept(ctx, fid, "supplier migration until June", c.now().Add(36*time.Hour), "ciso@example.nhs.uk"); err != nil {
		t.Fatal(err)
	}
	l := lifeOf(t, s, id)
	if l.Status != StatusAccepted || l.Acceptance == nil || l.Acceptance.By != "ciso@example.nhs.uk" {
		t.Fatalf("after Accept: %+v", l)
	}
	r := completeRun(t, s, c, fail) // 24 h later: still in force
	if l := lifeOf(t, s, id); l.Status != StatusAccepted {
		t.Errorf("within the acceptance: status %s, want accepted", l.Status)
	}
	if cs, _ := s.Changes(ctx, r.ID); len(cs) != 1 || !cs[0].Accepted || cs[0].Kind != ChangeStillOpen {
		t.Errorf("changes within the acceptance: %+v", cs)
	}
	completeRun(t, s, c, fail) // 48 h later: lapsed
	if l := lifeOf(t, s, id); l.Status != StatusOpen {
		t.Errorf("after the acceptance lapsed: status %s, want open", l.Status)
	}

	for name, err := range map[string]error{
		"until in the past": s.Accept(ctx, fid, "x", c.now().Add(-time.Hour), "me"),
		"no reason":         s.Accept(ctx, fid, " ", c.now().Add(time.Hour), "me"),
	} {
		if err == nil {
			t.Errorf("Accept with %s succeeded", name)
		}
	}
	if err := s.Accept(ctx, "nope", "x", c.now().Add(time.Hour), "me"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Accept of an unknown finding: %v, want ErrNotFound", err)
	}
}

func TestAcceptedFindingThatPassesIsResolved(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	s.SetHold(1)
	const id = "email.dmarc.policy"
	completeRun(t, s, c, map[string]check.Outcome{id: check.Fail})
	if err := s.Accept(ctx, lifeOf(t, s, id).FindingID, "r", c.now().Add(time.Hour*1000), "me"); err != nil {
		t.Fatal(err)
	}
	completeRun(t, s, c, map[string]check.Outcome{id: check.Pass})
	if l := lifeOf(t, s, id); l.Status != StatusResolved {
		t.Errorf("status %s, want resolved", l.Status)
	}
}

func TestRebuildLifecycleAfterReevalOfACompleteRun(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	s.SetHold(1)
	const id = "email.dmarc.policy"
	for _, o := range []check.Outcome{check.Fail, check.Pass, check.Fail, check.Unknown} {
		completeRun(t, s, c, map[string]check.Outcome{id: o, "email.dmarc.rua": check.Warn})
	}
	before, err := s.Lifecycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RebuildLifecycle(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := s.Lifecycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("rebuild changed the lifecycle\nbefore %+v\nafter  %+v", before, after)
	}

	// reeval: a relaxed policy passes the newest run's finding.
	latest, err := s.LatestComplete(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceFindings(ctx, latest.ID, "email.dmarc", domain.Key(),
		[]check.Finding{finding(id, domain, check.Pass)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RebuildLifecycle(ctx); err != nil {
		t.Fatal(err)
	}
	if l := lifeOf(t, s, id); l.Status != StatusResolved || l.ResolvedRun != latest.ID || l.Regressions != 1 {
		t.Errorf("after reeval: %+v; want resolved in run %d with one regression", l, latest.ID)
	}
	if l := lifeOf(t, s, "email.dmarc.rua"); l.Status != StatusOpen {
		t.Errorf("rua, no longer evaluated in the replaced run: status %s, want open", l.Status)
	}
	if got := kinds(t, s, latest.ID); got[id] != ChangeResolved {
		t.Errorf("changes after reeval: %v", got)
	}
	if err := s.ReplaceFindings(ctx, latest.ID, "nope", domain.Key(), nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReplaceFindings of a missing job: %v, want ErrNotFound", err)
	}
}

func TestConcurrentReadersWhileTheWriterWrites(t *testing.T) {
	ctx := context.Background()
	s, c := openTemp(t)
	r := mustBegin(t, s, "nightly")
	const jobs = 150
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	reads := make([]int, 4)
	for i := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.Findings(ctx, r.ID); err != nil {
					errs <- err
					return
				}
				if _, err := s.DoneJobs(ctx, r.ID); err != nil {
					errs <- err
					return
				}
				reads[i]++
			}
		}()
	}
	// A second writer goroutine checks that in-process writers queue on
	// the single connection instead of failing with SQLITE_BUSY.
	var ww sync.WaitGroup
	for w := range 2 {
		ww.Add(1)
		go func() {
			defer ww.Done()
			for j := range jobs / 2 {
				a := check.Asset{Kind: check.KindHost, Name: "h" + string(rune('a'+w)) + time.Duration(j).String() + ".example.nhs.uk", Org: "RXX"}
				ev := evidence("tls.cert", a, c.now())
				if err := s.PutResult(ctx, r.ID, ev, []check.Finding{finding("tls.cert.expiry", a, check.Fail)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	ww.Wait()
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	fs, err := s.Findings(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != jobs {
		t.Errorf("%d findings, want %d", len(fs), jobs)
	}
	for i, n := range reads {
		if n == 0 {
			t.Errorf("reader %d never completed a read", i)
		}
	}
	t.Logf("reads while writing: %v", reads)
}

// Two Stores on one file stand in for two processes (serve and a manual
// reeval): BEGIN IMMEDIATE and busy_timeout make one wait for the other.
func TestTwoStoresOnOneFileWaitForEachOther(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "posture.db")
	a, c := openAt(t, path)
	b, _ := openAt(t, path)
	r := mustBegin(t, a, "nightly")
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 40 {
				h := check.Asset{Kind: check.KindHost, Name: time.Duration(i*1000+j).String() + ".example.nhs.uk"}
				if err := s.PutResult(ctx, r.ID, evidence("tls.cert", h, c.now()),
					[]check.Finding{finding("tls.cert.expiry", h, check.Warn)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := count(t, a, "SELECT COUNT(*) FROM findings"); n != 80 {
		t.Errorf("%d findings, want 80", n)
	}
}

func TestAMigrationMissingBelowTheHighestIsApplied(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "posture.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// A database made by a build that had 0008 but not yet 0007.
	if _, err := s.w.ExecContext(ctx, "DROP TABLE outbox; DROP TABLE outbox_runs; DELETE FROM schema_version WHERE version = 7"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := count(t, s, "SELECT COUNT(*) FROM schema_version WHERE version = 7"); n != 1 {
		t.Errorf("migration 7 recorded %d times, want once", n)
	}
	if n := count(t, s, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"); n != 1 {
		t.Error("the outbox table of migration 7 is missing after reopening")
	}
}
