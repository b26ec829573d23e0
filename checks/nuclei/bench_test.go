package nuclei_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/nuclei"
	"github.com/nhsx/posture/checks/webcheck"
)

// BenchmarkFamilyCostPerHost measures, side by side on the same lab hosts
// (every ordinary www host of the lab, one batch), the wall time per host
// of web.nuclei (worker start-up, the pack's requests through the guarded
// proxy) and of web.https (two fetches), and their ratio. Run it with
// -benchtime 1x: go test -run '^$' -bench FamilyCost -benchtime 1x ./checks/nuclei/
func BenchmarkFamilyCostPerHost(b *testing.B) {
	l := sharedLab(b)
	var hosts []string
	for _, e := range l.Truth() {
		if e.Kind == check.KindHost && e.CheckID == "web.exposure.git-config" && e.Outcome == check.Pass &&
			strings.HasPrefix(e.Name, "www.") && !slices.Contains(hosts, e.Name) {
			hosts = append(hosts, e.Name)
		}
	}
	if len(hosts) > 64 {
		hosts = hosts[:64]
	}
	env := l.Env()
	run := func(c check.Check) (time.Duration, []check.Evidence) {
		var wg sync.WaitGroup
		evs := make([]check.Evidence, len(hosts))
		start := time.Now()
		for i, h := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				evs[i], _ = c.Collect(ctx, env, check.Asset{Kind: check.KindHost, Name: h})
			}()
		}
		wg.Wait()
		return time.Since(start), evs
	}
	var nucleiT, httpsT time.Duration
	dials := 0
	for range b.N {
		d, evs := run(nuclei.NewCheck(&nuclei.Runner{}))
		nucleiT += d
		for _, ev := range evs {
			var e nuclei.Evidence
			if json.Unmarshal(ev.Data, &e) == nil {
				dials += e.Net.Dials
			}
		}
		d, _ = run(webcheck.Check())
		httpsT += d
	}
	n := float64(b.N * len(hosts))
	b.ReportMetric(float64(nucleiT.Milliseconds())/n, "nuclei-ms/host")
	b.ReportMetric(float64(httpsT.Milliseconds())/n, "https-ms/host")
	b.ReportMetric(float64(nucleiT)/float64(httpsT), "nuclei/https")
	b.ReportMetric(float64(dials)/n, "nuclei-conns/host")
	b.ReportMetric(float64(len(hosts)), "hosts")
}
