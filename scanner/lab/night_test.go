package lab

import (
	"context"
	"testing"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/email"
)

// TestNextNightMovesDNSAndTruthTogether: after NextNight the real email
// checks still agree with the ground truth, and the changed verdicts did
// change.
func TestNextNightMovesDNSAndTruthTogether(t *testing.T) {
	l, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before := truthOf(l)
	changes, err := l.NextNight()
	if err != nil || len(changes) != len(nightly) {
		t.Fatalf("NextNight: %v, %v; want %d changes", changes, err, len(nightly))
	}
	after := truthOf(l)
	moved := 0
	for k, o := range after {
		if before[k] != o {
			moved++
		}
	}
	if moved != len(nightly) {
		t.Fatalf("%d verdicts moved in the truth, want %d", moved, len(nightly))
	}
	env := l.Env()
	for _, c := range changes {
		a := check.Asset{Kind: check.KindDomain, Name: c.Domain}
		got := map[string]check.Outcome{}
		for _, ch := range []check.Check{email.SPF(), email.DMARC()} {
			ev, _ := ch.Collect(context.Background(), env, a)
			for _, f := range ch.Evaluate(ev, nil) {
				k := "domain:" + c.Domain + " " + f.CheckID
				got[k] = check.Worst(got[k], f.Outcome)
			}
		}
		for k, o := range got {
			if want, ok := after[k]; ok && o != want {
				t.Errorf("%s after the night: scanner %s, truth %s", k, o, want)
			}
		}
	}
}

func truthOf(l *Lab) map[string]check.Outcome {
	m := map[string]check.Outcome{}
	for _, e := range l.Truth() {
		m[string(e.Kind)+":"+e.Name+" "+e.CheckID] = e.Outcome
	}
	return m
}
