package nightly

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/scanner/store"
)

// MetricsStore is what the metrics read; *store.Store implements it.
type MetricsStore interface {
	Runs(ctx context.Context) ([]store.Run, error)
	LatestComplete(ctx context.Context) (store.Run, error)
	EachFinding(ctx context.Context, runID int64, fn func(store.Finding) error) error
	EachEvidence(ctx context.Context, runID int64, fn func(check.Evidence) error) error
}

// Metrics are the service's Prometheus metrics (all named posture_*): what
// the database says (runs, the newest complete run's findings and probes,
// the last success), read at scrape time, and what this process saw (run
// durations, skipped slots, services' health, emails sent).
type Metrics struct {
	Registry *prometheus.Registry

	// Counted by the service as it runs.
	RunDuration  *prometheus.HistogramVec // by status
	SkippedSlots *prometheus.CounterVec   // by reason
	EmailsSent   prometheus.Counter

	st       MetricsStore
	state    func() State
	services func() map[string]bool // configured service → up in the current or last run

	mu       sync.Mutex
	cached   int64 // the run the counts below are of (0: none)
	cachedAt time.Time
	counts   runCounts

	runs, findings, probes, lastSuccess, lastRun, up, next, busy *prometheus.Desc
}

type runCounts struct {
	findings map[[2]string]int // (outcome, severity)
	probes   map[string]int    // result: ok or the error class
}

// NewMetrics registers the metrics. state and services may be nil.
func NewMetrics(st MetricsStore, state func() State, services func() map[string]bool) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		RunDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "posture_run_duration_seconds",
			Help: "Wall time of the runs this process did (a resumed run counts from its resume), by how they ended.",
			// A lab run takes seconds, the national estate hours.
			Buckets: []float64{10, 60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 16 * 3600},
		}, []string{"status"}),
		SkippedSlots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "posture_skipped_slots_total",
			Help: "Scheduled slots that did not run: overrun (the previous run was still going), locked (another scan held the database) or repeated-hour (the clocks went back and the slot's local time came again).",
		}, []string{"reason"}),
		EmailsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "posture_emails_sent_total",
			Help: "Notification emails this process sent.",
		}),
		st: st, state: state, services: services,
		runs: prometheus.NewDesc("posture_runs",
			"Runs in the database, by status.", []string{"status"}, nil),
		findings: prometheus.NewDesc("posture_findings",
			"Findings of the newest complete run, by outcome and severity.", []string{"outcome", "severity"}, nil),
		probes: prometheus.NewDesc("posture_probes",
			"Jobs (one check on one asset) of the newest complete run, by result: ok, or the class of error that made them unknown.", []string{"result"}, nil),
		lastSuccess: prometheus.NewDesc("posture_last_success_timestamp_seconds",
			"When the newest complete run finished (Unix time).", nil, nil),
		lastRun: prometheus.NewDesc("posture_last_complete_run_id",
			"The id of the newest complete run.", nil, nil),
		up: prometheus.NewDesc("posture_service_up",
			"Configured services (ct, rdap, github, github-git): 1 unless found down in the current or last run.", []string{"service"}, nil),
		next: prometheus.NewDesc("posture_next_run_timestamp_seconds",
			"The next scheduled slot (Unix time); absent while a run is in progress.", nil, nil),
		busy: prometheus.NewDesc("posture_run_in_progress",
			"1 while a run is in progress.", nil, nil),
	}
	for _, s := range []store.RunStatus{store.Complete, store.Interrupted, store.Failed} {
		m.RunDuration.WithLabelValues(string(s))
	}
	for _, r := range []string{SkipOverrun, SkipLocked, SkipRepeat} {
		m.SkippedSlots.WithLabelValues(r)
	}
	m.Registry.MustRegister(m.RunDuration, m.SkippedSlots, m.EmailsSent, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.runs, m.findings, m.probes, m.lastSuccess, m.lastRun, m.up, m.next, m.busy} {
		ch <- d
	}
}

// scrapeTimeout bounds the database reads of one scrape.
const scrapeTimeout = 20 * time.Second

// countsTTL is how long a complete run's counts are kept: they change only
// when `posture reeval` re-judges the run.
const countsTTL = 10 * time.Minute

// Collect implements prometheus.Collector: it reads the database. A complete
// run's counts are read once per countsTTL, not on every scrape.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if m.state != nil {
		s := m.state()
		b := 0.0
		if s.Busy {
			b = 1
		}
		ch <- prometheus.MustNewConstMetric(m.busy, prometheus.GaugeValue, b)
		if !s.Next.IsZero() {
			ch <- prometheus.MustNewConstMetric(m.next, prometheus.GaugeValue, float64(s.Next.Unix()))
		}
	}
	if m.services != nil {
		svc := m.services()
		names := make([]string, 0, len(svc))
		for n := range svc {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			v := 0.0
			if svc[n] {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, v, n)
		}
	}
	if m.st == nil {
		return
	}
	runs, err := m.st.Runs(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.runs, err)
		return
	}
	byStatus := map[store.RunStatus]int{store.Running: 0, store.Interrupted: 0, store.Failed: 0, store.Complete: 0}
	for _, r := range runs {
		byStatus[r.Status]++
	}
	for s, n := range byStatus {
		ch <- prometheus.MustNewConstMetric(m.runs, prometheus.GaugeValue, float64(n), string(s))
	}
	last, err := m.st.LatestComplete(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return
	} else if err != nil {
		ch <- prometheus.NewInvalidMetric(m.lastSuccess, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.lastSuccess, prometheus.GaugeValue, float64(last.FinishedAt.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(m.lastRun, prometheus.GaugeValue, float64(last.ID))
	c, err := m.countsOf(ctx, last.ID)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.findings, err)
		return
	}
	for k, n := range c.findings {
		ch <- prometheus.MustNewConstMetric(m.findings, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	for r, n := range c.probes {
		ch <- prometheus.MustNewConstMetric(m.probes, prometheus.GaugeValue, float64(n), r)
	}
}

func (m *Metrics) countsOf(ctx context.Context, runID int64) (runCounts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cached == runID && time.Since(m.cachedAt) < countsTTL {
		return m.counts, nil
	}
	c := runCounts{findings: map[[2]string]int{}, probes: map[string]int{}}
	err := m.st.EachFinding(ctx, runID, func(f store.Finding) error {
		c.findings[[2]string{string(f.Outcome), string(f.Severity)}]++
		return nil
	})
	if err != nil {
		return runCounts{}, err
	}
	err = m.st.EachEvidence(ctx, runID, func(ev check.Evidence) error {
		r := "ok"
		if ev.ErrorClass != "" {
			r = string(ev.ErrorClass)
		} else if ev.Error != "" {
			r = "error"
		}
		c.probes[r]++
		return nil
	})
	if err != nil {
		return runCounts{}, err
	}
	m.cached, m.cachedAt, m.counts = runID, time.Now(), c
	return c, nil
}
