package nightly

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/scanner/store"
)

// scrape serves m's registry on loopback, GETs it in the text format and
// parses it with Prometheus's own parser.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the text parser refuses /metrics: %v", err)
	}
	return fams
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsParseAndCountTheNewestCompleteRun(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// Run 1: complete, three jobs (one unknown by timeout), four findings.
	run, _, err := st.BeginRun(ctx, "k", "{}")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	put := func(runID int64, name string, class check.ErrClass, fs ...check.Finding) {
		a := check.Asset{Kind: check.KindDomain, Name: name, Domain: name}
		ev := check.Evidence{CheckID: "dns.collector", Asset: a, CollectedAt: now, ErrorClass: class}
		if class != "" {
			ev.Error = "it timed out"
		}
		for i := range fs {
			fs[i].Asset = a
		}
		if err := st.PutResult(ctx, runID, ev, fs); err != nil {
			t.Fatal(err)
		}
	}
	put(run.ID, "a.nhs.uk", "",
		check.Finding{CheckID: "dns.a", Rule: "r1", Outcome: check.Fail, Severity: check.High},
		check.Finding{CheckID: "dns.b", Rule: "r2", Outcome: check.Pass, Severity: check.High})
	put(run.ID, "b.nhs.uk", "",
		check.Finding{CheckID: "dns.a", Rule: "r1", Outcome: check.Fail, Severity: check.High})
	put(run.ID, "c.nhs.uk", check.ErrTimeout,
		check.Finding{CheckID: "dns.a", Rule: "r1", Outcome: check.Unknown, Severity: check.High, Reason: "timeout"})
	if err := st.FinishRun(ctx, run.ID, store.Complete); err != nil {
		t.Fatal(err)
	}
	// Run 2: interrupted; its findings are not the newest complete run's.
	run2, _, err := st.BeginRun(ctx, "other", "{}")
	if err != nil {
		t.Fatal(err)
	}
	put(run2.ID, "a.nhs.uk", "", check.Finding{CheckID: "dns.a", Rule: "r1", Outcome: check.Pass, Severity: check.High})
	if err := st.FinishRun(ctx, run2.ID, store.Interrupted); err != nil {
		t.Fatal(err)
	}

	next := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	m := NewMetrics(st, func() State { return State{Running: true, Next: next} },
		func() map[string]bool { return map[string]bool{"ct": true, "rdap": false} })
	m.SkippedSlots.WithLabelValues(SkipOverrun).Inc()
	m.RunDuration.WithLabelValues("complete").Observe(42)
	fams := scrape(t, m)

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"posture_runs", map[string]string{"status": "complete"}, 1},
		{"posture_runs", map[string]string{"status": "interrupted"}, 1},
		{"posture_runs", map[string]string{"status": "running"}, 0},
		{"posture_findings", map[string]string{"outcome": "fail", "severity": "high"}, 2},
		{"posture_findings", map[string]string{"outcome": "pass", "severity": "high"}, 1},
		{"posture_findings", map[string]string{"outcome": "unknown", "severity": "high"}, 1},
		{"posture_probes", map[string]string{"result": "ok"}, 2},
		{"posture_probes", map[string]string{"result": "timeout"}, 1},
		{"posture_last_complete_run_id", nil, float64(run.ID)},
		{"posture_service_up", map[string]string{"service": "ct"}, 1},
		{"posture_service_up", map[string]string{"service": "rdap"}, 0},
		{"posture_skipped_slots_total", map[string]string{"reason": "overrun"}, 1},
		{"posture_skipped_slots_total", map[string]string{"reason": "locked"}, 0},
		{"posture_run_duration_seconds", map[string]string{"status": "complete"}, 1},
		{"posture_next_run_timestamp_seconds", nil, float64(next.Unix())},
		{"posture_run_in_progress", nil, 0},
		{"posture_emails_sent_total", nil, 0},
	} {
		got, ok := value(t, fams, tc.name, tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	last, ok := value(t, fams, "posture_last_success_timestamp_seconds", nil)
	if !ok || last < float64(now.Add(-time.Minute).Unix()) || last > float64(time.Now().Add(time.Minute).Unix()) {
		t.Errorf("posture_last_success_timestamp_seconds = %v (present %v), want about %d", last, ok, now.Unix())
	}
	if _, ok := fams["posture_findings"]; !ok {
		t.Error("no posture_findings family")
	}
	if got, ok := value(t, fams, "posture_findings", map[string]string{"outcome": "pass", "severity": "high"}); ok && got == 2 {
		t.Error("the interrupted run's findings were counted")
	}
}

func TestMetricsOfAnEmptyDatabaseParse(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fams := scrape(t, NewMetrics(st, nil, nil))
	if got, ok := value(t, fams, "posture_runs", map[string]string{"status": "complete"}); !ok || got != 0 {
		t.Errorf("posture_runs{complete} = %v (present %v), want 0", got, ok)
	}
	for _, absent := range []string{"posture_findings", "posture_last_success_timestamp_seconds"} {
		if _, ok := fams[absent]; ok {
			t.Errorf("%s present with no complete run", absent)
		}
	}
}
