package reports

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// WriteJSONL writes one finding per line as JSON, each with its stable id
// and its lifecycle (first and last seen, days open, regressions, the risk
// acceptance).
func WriteJSONL(w io.Writer, fs []Finding) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw) // escapes <, >, &, U+2028 and U+2029 too
	for _, f := range fs {
		if f.ID == "" {
			f.ID = f.Finding.ID()
		}
		if err := enc.Encode(f); err != nil {
			return fmt.Errorf("reports: jsonl: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("reports: jsonl: %w", err)
	}
	return nil
}

// CSVHeader is the first row of WriteCSV.
var CSVHeader = []string{
	"id", "organisation", "asset_kind", "asset", "domain", "check", "rule", "outcome", "severity",
	"status", "change", "first_seen", "message", "remediation", "standards", "reason",
	"last_seen", "days_open", "regressions", "accepted_by", "accepted_until", "accepted_reason",
}

// WriteCSV writes the findings as CSV (RFC 4180, UTF-8, no byte order
// mark). Cells that a spreadsheet would run as a formula are escaped.
func WriteCSV(w io.Writer, fs []Finding) error { return writeCSV(w, fs, false) }

// WriteExcelCSV is WriteCSV with a UTF-8 byte order mark, which Excel needs
// to read non-ASCII text correctly.
func WriteExcelCSV(w io.Writer, fs []Finding) error { return writeCSV(w, fs, true) }

func writeCSV(w io.Writer, fs []Finding, bom bool) error {
	bw := bufio.NewWriter(w)
	if bom {
		bw.WriteString("\uFEFF")
	}
	cw := csv.NewWriter(bw)
	cw.UseCRLF = true
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("reports: csv: %w", err)
	}
	for _, f := range fs {
		if f.ID == "" {
			f.ID = f.Finding.ID()
		}
		var refs []string
		for _, r := range f.Standards {
			if l := refLabel(r); l != "" {
				refs = append(refs, l)
			}
		}
		stamp := func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		}
		var days, regressions string
		if f.DaysOpen > 0 || f.Outcome.Counts() {
			days = strconv.Itoa(f.DaysOpen)
		}
		if f.Regressions > 0 {
			regressions = strconv.Itoa(f.Regressions)
		}
		var acc Acceptance
		if f.Acceptance != nil {
			acc = *f.Acceptance
		}
		row := []string{
			f.ID, f.Asset.Org, string(f.Asset.Kind), f.Asset.Name, f.Asset.Domain, f.CheckID, f.Rule,
			string(f.Outcome), string(f.Severity), f.Status, f.Change, stamp(f.FirstSeen), f.Message, f.Remediation,
			strings.Join(refs, "; "), f.Reason, stamp(f.LastSeen), days, regressions, acc.By, stamp(acc.Until), acc.Reason,
		}
		for i := range row {
			row[i] = csvCell(row[i])
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("reports: csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("reports: csv: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("reports: csv: %w", err)
	}
	return nil
}

// ScoresCSVHeader is the first row of WriteScoresCSV.
var ScoresCSVHeader = []string{
	"run", "started", "org", "name", "parent", "kind", "standard", "standard_title", "score",
	"points_earned", "points_possible", "pass", "warn", "fail", "unknown", "na", "accepted",
}

// WriteScoresCSV writes stored rollups as CSV, one row per run,
// organisation (empty: the nation) and standard (empty: every check), for
// charting elsewhere. Score is a percentage with one decimal, empty when
// nothing was at stake; points are the severity weights (a warn earns
// half). Cells are escaped against formulas like WriteCSV's.
func WriteScoresCSV(w io.Writer, runs []Run, orgs []Org, rows []ScoreRow) error {
	started := map[int64]time.Time{}
	for _, r := range runs {
		started[r.ID] = r.Started
	}
	names := map[string]string{"": "All organisations"}
	for _, o := range orgs {
		names[o.Code] = o.Name
	}
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw)
	cw.UseCRLF = true
	if err := cw.Write(ScoresCSVHeader); err != nil {
		return fmt.Errorf("reports: scores csv: %w", err)
	}
	half := func(n int64) string { return strconv.FormatFloat(float64(n)/2, 'f', -1, 64) }
	for _, r := range rows {
		score := ""
		if sc := r.Score(); sc.Valid {
			score = strconv.FormatFloat(sc.Value, 'f', 1, 64)
		}
		at := ""
		if t, ok := started[r.RunID]; ok {
			at = t.UTC().Format(time.RFC3339)
		}
		row := []string{
			strconv.FormatInt(r.RunID, 10), at, r.Org, names[r.Org], r.Parent, r.Kind, r.Standard, StandardTitle(r.Standard), score,
			half(r.Earned), half(r.Possible), strconv.Itoa(r.Pass), strconv.Itoa(r.Warn), strconv.Itoa(r.Fail),
			strconv.Itoa(r.Unknown), strconv.Itoa(r.NA), strconv.Itoa(r.Accepted),
		}
		for i := range row {
			row[i] = csvCell(oneLine(row[i]))
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("reports: scores csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("reports: scores csv: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("reports: scores csv: %w", err)
	}
	return nil
}
