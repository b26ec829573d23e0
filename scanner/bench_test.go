package scanner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/scanner"
	"github.com/nhsx/posture/scanner/lab"
)

// BenchmarkScanLab times a whole scan (discovery, every check, the store)
// of a large lab, and beside it, in the same run, the floor it cannot beat:
// the same number of bare DNS TXT lookups through the same resolver.
// POSTURE_BENCH_DOMAINS sets the size (default 1000); `make bench` runs it.
func BenchmarkScanLab(b *testing.B) {
	n := 1000
	if s := os.Getenv("POSTURE_BENCH_DOMAINS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	l, err := lab.Start(context.Background(), lab.Config{Domains: n})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for _, families := range [][]string{{"email"}, {"tls"}, nil} {
		name := "all"
		if families != nil {
			name = families[0]
		}
		b.Run(fmt.Sprintf("domains=%d/families=%s", n, name), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cfg := labConfig(b, l)
				cfg.Families = families
				cfg.Concurrency = 64
				st := openDB(b, filepath.Join(b.TempDir(), "bench.db"))
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				start := time.Now()
				stats, err := scanner.Run(context.Background(), st, cfg)
				if err != nil {
					b.Fatal(err)
				}
				took := time.Since(start)
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(n)/took.Seconds(), "domains/s")
				b.ReportMetric(float64(stats.Jobs)/took.Seconds(), "jobs/s")
				b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-MiB")
				if name == "tls" {
					hosts := 0
					as, _ := st.Assets(context.Background(), stats.RunID)
					for _, a := range as {
						if a.Kind == check.KindHost || a.Kind == check.KindMail {
							hosts++
						}
					}
					b.ReportMetric(float64(hosts)/took.Seconds(), "tls-hosts/s")
				}

				// The floor: one bare TXT query per domain on a fresh resolver.
				r := &dnsq.Resolver{Servers: []string{l.DNSAddr}}
				start = time.Now()
				for _, d := range l.Domains() {
					if _, err := r.Query(context.Background(), d.Name, dns.TypeTXT); err != nil {
						b.Fatal(err)
					}
				}
				bare := time.Since(start)
				b.ReportMetric(took.Seconds()/bare.Seconds(), "x-bare-TXT")
			}
		})
	}
}
