package check

import (
	"crypto/sha256"
	"encoding/hex"
)

// Outcome is the verdict of a finding. Only fail and warn count against
// posture; unknown (could not tell) is shown and counted apart, never as fail.
type Outcome string

const (
	Pass    Outcome = "pass"
	Warn    Outcome = "warn"
	Fail    Outcome = "fail"
	Unknown Outcome = "unknown"
	NA      Outcome = "n/a"
)

// Outcomes in report order.
var Outcomes = []Outcome{Fail, Warn, Unknown, Pass, NA}

// Valid reports whether o is one of the five outcomes.
func (o Outcome) Valid() bool {
	switch o {
	case Pass, Warn, Fail, Unknown, NA:
		return true
	}
	return false
}

// Counts reports whether the outcome counts against posture.
func (o Outcome) Counts() bool { return o == Fail || o == Warn }

// Severity of a finding, from critical (immediate exploitation or
// impersonation risk) to info (record only, never fail).
type Severity string

const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
	Info     Severity = "info"
)

// Severities from most to least severe.
var Severities = []Severity{Critical, High, Medium, Low, Info}

// Rank orders severities: critical 4 … info 0; unknown values -1.
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 4
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	case Info:
		return 0
	}
	return -1
}

// FindingID hashes the identifying parts of a finding into a short stable id.
func FindingID(checkID, rule, assetKey string) string {
	h := sha256.Sum256([]byte(checkID + "\x00" + rule + "\x00" + assetKey))
	return hex.EncodeToString(h[:10])
}

// worstOrder ranks outcomes for roll-ups: one fail makes a check fail.
var worstOrder = map[Outcome]int{Fail: 5, Warn: 4, Unknown: 3, Pass: 2, NA: 1}

// Worst returns the worst of the outcomes (fail › warn › unknown › pass ›
// n/a), or "" for none.
func Worst(os ...Outcome) Outcome {
	var w Outcome
	for _, o := range os {
		if worstOrder[o] > worstOrder[w] {
			w = o
		}
	}
	return w
}
