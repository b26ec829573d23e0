package reports

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// BenchmarkNotify1300Organisations: one night's emails to every trust of
// England, each with a change: built, queued in a real store's outbox and
// sent over one STARTTLS session to a go-smtp relay on loopback.
func BenchmarkNotify1300Organisations(b *testing.B) {
	const n = 1300
	src := &memSource{
		runs: []Run{
			{ID: 3, Started: day3, Finished: day3.Add(time.Hour), Status: "complete"},
			{ID: 2, Started: day2, Finished: day2.Add(time.Hour), Status: "complete"},
			{ID: 1, Started: day1, Finished: day1.Add(time.Hour), Status: "complete"},
		},
		findings: map[int64][]Finding{1: nil, 2: nil},
		resolved: map[int64][]Finding{},
	}
	for i := range n {
		code := fmt.Sprintf("R%04d", i)
		dom := fmt.Sprintf("trust%04d.nhs.uk", i)
		src.orgs = append(src.orgs, Org{Code: code, Name: "Trust " + code, Kind: "trust", Contacts: []string{"it@" + dom}})
		src.findings[3] = append(src.findings[3],
			fd(code, check.KindDomain, dom, "email.dmarc.policy", check.Fail, ChangeNew, day3, "p=none"),
			fd(code, check.KindHost, "www."+dom, "tls.min-version", check.Fail, ChangeStillOpen, day1, "TLS 1.0 accepted"),
			fd(code, check.KindDomain, dom, "email.dmarc.record", check.Pass, "", time.Time{}, "ok"))
	}
	sum := mustSummary(b, src)
	cert, pool := selfSigned(b)
	s := serveSink(b, &sink{}, &tls.Config{Certificates: []tls.Certificate{cert}}, false)
	m := &Mailer{Addr: s.addr, TLSConfig: trusting(pool)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := notifyStore(b, filepath.Join(b.TempDir(), "posture.db"))
		b.StartTimer()
		res, err := Notify(context.Background(), storeOutbox{st}, sum, NotifyOptions{Email: EmailOptions{From: "posture@nhs.net"}, Mailer: m})
		if err != nil || res.Sent != n {
			b.Fatalf("%+v %v", res, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "emails/s")
}
