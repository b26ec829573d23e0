package reports

import (
	"bytes"
	"embed"
	"encoding/csv"
	"strings"
	"sync"
	"time"
)

// The DSPT 2022/23 statuses of trusts and ICBs (nhsx/open-cyber, MIT; see
// data/SOURCE.md and data/LICENSE, embedded with them).
//
//go:embed data/trusts-2023-11.csv data/icbs-2023-11.csv data/LICENSE data/SOURCE.md
var dsptFS embed.FS

// DSPT is an organisation's Data Security and Protection Toolkit
// self-assessment as published for 2022/23.
type DSPT struct {
	Status    string    `json:"status"` // "22/23 Standards Met", …
	Published time.Time `json:"published,omitzero"`
}

// DSPTList names the list DSPT statuses come from, for the reports.
const DSPTList = "the DSPT 2022/23 list (NHS England, via nhsx/open-cyber, MIT licence)"

var dspt = sync.OnceValue(func() map[string]DSPT {
	m := map[string]DSPT{}
	for _, f := range []struct {
		name                    string
		code, status, published string
	}{
		{"data/trusts-2023-11.csv", "Code", "Status", "Date Of Publication"},
		{"data/icbs-2023-11.csv", "Code", "Status", "Date Of Publication"},
	} {
		b, err := dsptFS.ReadFile(f.name)
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\uFEFF")))).ReadAll()
		if err != nil || len(rows) < 2 {
			panic("reports: embedded " + f.name + " does not parse")
		}
		col := map[string]int{}
		for i, h := range rows[0] {
			col[strings.TrimSpace(h)] = i
		}
		for _, r := range rows[1:] {
			code := strings.ToUpper(strings.TrimSpace(r[col[f.code]]))
			if code == "" {
				continue
			}
			d := DSPT{Status: strings.TrimSpace(r[col[f.status]])}
			d.Published, _ = time.Parse("02/01/2006", strings.TrimSpace(r[col[f.published]]))
			m[code] = d
		}
	}
	return m
})

// DSPTOf returns the organisation's DSPT 2022/23 status by ODS code.
func DSPTOf(code string) (DSPT, bool) {
	d, ok := dspt()[strings.ToUpper(strings.TrimSpace(code))]
	return d, ok
}

// DSPTLicence is the licence of the embedded DSPT lists.
func DSPTLicence() string {
	b, _ := dsptFS.ReadFile("data/LICENSE")
	return string(b)
}
