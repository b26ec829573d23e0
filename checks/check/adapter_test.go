package check

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

type evV2 struct {
	Days int `json:"days"`
}

func versioned(upgrade func(int, json.RawMessage) (evV2, error)) Check {
	return New(Spec[evV2]{
		ID: "fam.c", Family: "fam", Targets: []Kind{KindHost}, Version: 2, Upgrade: upgrade,
		Rules:   []Meta{{ID: "fam.rule", Title: "t", Severity: High, Rule: "rule-ok"}},
		Collect: func(context.Context, *Env, Asset) (evV2, error) { return evV2{Days: 3}, nil },
		Evaluate: func(in In[evV2]) []Finding {
			return []Finding{{CheckID: "fam.rule", Rule: "rule-ok", Outcome: Pass, Message: fmt.Sprint(in.Evidence.Days)}}
		},
	})
}

// TestEvidenceOfAnotherVersionIsUpgradedOrUnknown: stored evidence of an
// older schema goes through Upgrade, or is unknown with the reason
// evidence-version; it is never decoded into zero values.
func TestEvidenceOfAnotherVersionIsUpgradedOrUnknown(t *testing.T) {
	old := Evidence{CheckID: "fam.c", Asset: Asset{Kind: KindHost, Name: "h"}, Version: 1, Data: json.RawMessage(`{"old_days":5}`)}
	if fs := versioned(nil).Evaluate(old, nil); len(fs) != 1 || fs[0].Outcome != Unknown || fs[0].Reason != string(ErrEvidenceVersion) {
		t.Errorf("without an upgrader: %+v, want one unknown with reason evidence-version", fs)
	}
	up := func(v int, b json.RawMessage) (evV2, error) {
		var o struct {
			OldDays int `json:"old_days"`
		}
		err := json.Unmarshal(b, &o)
		return evV2{Days: o.OldDays}, err
	}
	if fs := versioned(up).Evaluate(old, nil); len(fs) != 1 || fs[0].Outcome != Pass || fs[0].Message != "5" {
		t.Errorf("with an upgrader: %+v, want pass from the upgraded evidence (5)", fs)
	}
	// Unversioned rows (stored before versioning) read as version 1.
	old.Version = 0
	if fs := versioned(nil).Evaluate(old, nil); fs[0].Reason != string(ErrEvidenceVersion) {
		t.Errorf("version 0 against a version-2 reader: %+v, want evidence-version", fs)
	}
	// Fresh evidence carries the collector's version and round-trips.
	ev, err := versioned(nil).Collect(context.Background(), &Env{Now: func() time.Time { return time.Unix(0, 0) }}, Asset{Kind: KindHost, Name: "h"})
	if err != nil || ev.Version != 2 {
		t.Fatalf("collected version %d (%v), want 2", ev.Version, err)
	}
	if fs := versioned(nil).Evaluate(ev, nil); fs[0].Outcome != Pass || fs[0].Message != "3" {
		t.Errorf("current evidence: %+v", fs)
	}
}

// TestSpecDeclaresFamilyAndTargetsOnce: rules inherit the collector's
// family and kinds, and Applies follows the kinds.
func TestSpecDeclaresFamilyAndTargetsOnce(t *testing.T) {
	c := versioned(nil)
	m := c.Rules()[0]
	if m.Family != "fam" || len(m.Targets) != 1 || m.Targets[0] != KindHost {
		t.Errorf("rule meta %+v, want family fam and targets [host] from the spec", m)
	}
	if !c.Applies(Asset{Kind: KindHost}) || c.Applies(Asset{Kind: KindDomain}) {
		t.Errorf("Applies does not follow Targets")
	}
}
