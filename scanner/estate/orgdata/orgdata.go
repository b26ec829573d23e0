// Package orgdata embeds the NHS organisation hierarchy of England (trusts,
// integrated care boards, NHS England regions) from nhsx/open-cyber, MIT
// licence (LICENSE and SOURCE.md beside this file). It gives every estate a
// parent chain trust → ICB → region → national for roll-ups, and the lab
// realistic organisations.
package orgdata

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// National is the code of NHS England, the root of the hierarchy.
const National = "X24"

// Org is one organisation of the hierarchy.
type Org struct {
	Code   string
	Name   string
	Kind   string // national, region, icb, trust
	Parent string // "" for the national root
}

var (
	//go:embed trusts-2023-11.csv
	trustsCSV []byte
	//go:embed icbs-2023-11.csv
	icbsCSV []byte
	//go:embed sicbl-icb-region-2023-04.csv
	regionsCSV []byte

	once  sync.Once
	all   map[string]Org
	order []string
	err   error
)

// All returns the hierarchy keyed by ODS code. The embedded data is fixed, so
// an error here is a build defect; callers may treat it as fatal.
func All() (map[string]Org, error) {
	once.Do(load)
	return all, err
}

// Trusts returns the trusts in code order.
func Trusts() []Org { return ofKind("trust") }

// ICBs returns the integrated care boards in code order.
func ICBs() []Org { return ofKind("icb") }

// Regions returns the NHS England regions in code order.
func Regions() []Org { return ofKind("region") }

func ofKind(k string) []Org {
	m, _ := All()
	var out []Org
	for _, c := range order {
		if m[c].Kind == k {
			out = append(out, m[c])
		}
	}
	return out
}

func load() {
	all = map[string]Org{National: {Code: National, Name: "NHS England", Kind: "national"}}
	add := func(o Org) {
		if _, dup := all[o.Code]; !dup {
			all[o.Code] = o
		}
	}
	// Regions and each ICB's region, from the ONS lookup.
	icbRegion := map[string]string{}
	err = each(regionsCSV, func(r map[string]string) {
		add(Org{Code: r["NHSER23CDH"], Name: "NHS England " + r["NHSER23NM"], Kind: "region", Parent: National})
		icbRegion[r["ICB23CDH"]] = r["NHSER23CDH"]
	})
	if err != nil {
		return
	}
	err = each(icbsCSV, func(r map[string]string) {
		add(Org{Code: r["ICB23CDH"], Name: r["ICB23NM"], Kind: "icb", Parent: icbRegion[r["ICB23CDH"]]})
	})
	if err != nil {
		return
	}
	err = each(trustsCSV, func(r map[string]string) {
		name := r["Organisation Name"]
		if i := strings.LastIndex(name, " ("); i > 0 && strings.HasSuffix(name, ")") {
			name = name[:i] // "… TRUST (R0B)" → "… TRUST"
		}
		add(Org{Code: r["Code"], Name: titleCase(name), Kind: "trust", Parent: r["High Level Health Geography"]})
	})
	if err != nil {
		return
	}
	for c := range all {
		order = append(order, c)
	}
	sort.Strings(order)
}

func each(b []byte, fn func(map[string]string)) error {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\ufeff"))))
	head, err := r.Read()
	if err != nil {
		return fmt.Errorf("orgdata: header: %w", err)
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("orgdata: %w", err)
		}
		row := map[string]string{}
		for i, h := range head {
			if i < len(rec) {
				row[h] = strings.TrimSpace(rec[i])
			}
		}
		fn(row)
	}
}

// titleCase turns "MANCHESTER UNIVERSITY NHS FOUNDATION TRUST" into
// "Manchester University NHS Foundation Trust", keeping known acronyms.
func titleCase(s string) string {
	if strings.ToUpper(s) != s {
		return s
	}
	keep := map[string]bool{"NHS": true, "AND": false, "OF": false, "THE": false}
	words := strings.Fields(strings.ToLower(s))
	for i, w := range words {
		up := strings.ToUpper(w)
		if keep[up] {
			words[i] = up
			continue
		}
		if _, minor := keep[up]; minor && i > 0 {
			continue
		}
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}
