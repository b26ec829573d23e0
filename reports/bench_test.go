package reports

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// estateSource is a national-sized estate: 7 regions, 42 ICBs, 1,260
// trusts, each with 5 assets × the 5 catalogue checks, over 12 runs.
func estateSource() *memSource {
	src := &memSource{findings: map[int64][]Finding{}, resolved: map[int64][]Finding{}}
	cat := testCatalogue()
	outcomes := []check.Outcome{check.Pass, check.Pass, check.Pass, check.Fail, check.Warn, check.Unknown, check.Pass}
	for r := int64(12); r >= 1; r-- {
		start := day1.AddDate(0, 0, int(r)*7)
		src.runs = append(src.runs, Run{ID: r, Started: start, Finished: start.Add(time.Hour)})
	}
	for g := range 7 {
		src.orgs = append(src.orgs, Org{Code: fmt.Sprintf("Y%02d", g), Name: fmt.Sprintf("Region %d", g)})
		for i := range 6 {
			icb := fmt.Sprintf("Q%d%d", g, i)
			src.orgs = append(src.orgs, Org{Code: icb, Name: "ICB " + icb, Parent: fmt.Sprintf("Y%02d", g)})
			for k := range 30 {
				code := fmt.Sprintf("R%d%d%02d", g, i, k)
				src.orgs = append(src.orgs, Org{Code: code, Name: "Trust " + code, Parent: icb,
					Contacts: []string{"domains@" + code + ".nhs.uk"}})
			}
		}
	}
	for _, run := range src.runs {
		var fs []Finding
		n := int(run.ID)
		for _, o := range src.orgs[1:] {
			if o.Contacts == nil {
				continue
			}
			for a := range 5 {
				for ci, m := range cat {
					out := outcomes[(n+a+ci+len(o.Code))%len(outcomes)]
					f := fd(o.Code, check.KindHost, fmt.Sprintf("h%d.%s.nhs.uk", a, o.Code), m.ID, out, "", time.Time{}, "seen")
					fs = append(fs, f)
				}
			}
		}
		src.findings[run.ID] = fs
	}
	return src
}

func BenchmarkNationalEstate(b *testing.B) {
	src := estateSource()
	b.Logf("%d organisations, %d findings per run", len(src.orgs), len(src.findings[12]))
	var board, md countWriter
	b.ReportAllocs()
	for b.Loop() {
		s, err := BuildSummary(context.Background(), src, testCatalogue(), 0)
		if err != nil {
			b.Fatal(err)
		}
		board, md = 0, 0
		if err := WriteBoard(&board, s); err != nil {
			b.Fatal(err)
		}
		if err := WriteMarkdown(&md, s); err != nil {
			b.Fatal(err)
		}
		if _, err := (EmailOptions{From: "posture@nhs.net"}).Build(s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(board)/1e6, "board-MB")
	b.ReportMetric(float64(md)/1e6, "md-MB")
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
