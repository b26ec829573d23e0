package email

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
)

// dmarcCase is one DMARC scenario served by the loopback DNS server.
type dmarcCase struct {
	name    string
	asset   string
	records []string
	drop    []string
	want    map[string]check.Outcome
	says    map[string]string // catalogue id → text its message must hold
	applied string            // domain whose record stopped the walk; "" none
}

func runDMARCCases(t *testing.T, tests []dmarcCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			recs := append(tc.records, txt(tc.asset, "v=spf1 ip4:192.0.2.1 -all"))
			env, _ := serve(t, nil, tc.drop, recs...)
			got, fs, ev := run[DMARCEvidence](t, DMARC(), env, tc.asset, check.DefaultPolicy())
			for _, f := range fs {
				t.Logf("%s %s %s: %s", f.Outcome, f.Severity, f.CheckID, f.Message)
			}
			for id, w := range tc.want {
				if got[id] != w {
					t.Errorf("%s = %s, want %s: %s", id, got[id], w, message(fs, id))
				}
			}
			for id, text := range tc.says {
				if m := message(fs, id); !strings.Contains(m, text) {
					t.Errorf("%s says %q, want it to say %q", id, m, text)
				}
			}
			applied := ""
			if ev.Applied >= 0 && ev.Applied < len(ev.Walk) {
				applied = ev.Walk[ev.Applied].Domain
			}
			if applied != tc.applied {
				t.Errorf("the walk stopped at %q, want %q", applied, tc.applied)
			}
			if len(got) != len(dmarcRules) {
				t.Errorf("findings for %d ids, want %d", len(got), len(dmarcRules))
			}
		})
	}
}

// A TXT record at _dmarc.<domain> meant as DMARC whose version tag is wrong
// or out of place is discarded by receivers (RFC 7489 §6.6.3 step 2; RFC
// 9989 §4.10 step 2): the record rule fails and says what is wrong, and the
// other rules judge the policy the walk then finds, or none.
func TestDMARCBrokenRecordFailsAndTheFallbackPolicyIsJudged(t *testing.T) {
	d, sub := zone, "mail."+zone
	rua := "; rua=mailto:dmarc@" + d
	runDMARCCases(t, []dmarcCase{
		{
			name: "no separator after the version: the organisational domain's policy applies", asset: sub,
			records: []string{txt("_dmarc."+sub, "v=DMARC1 p=reject"), txt("_dmarc."+d, "v=DMARC1; p=quarantine"+rua)},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Warn, DMARCSPNP: check.Pass, DMARCScope: check.Pass, DMARCReporting: check.Pass},
			says:    map[string]string{DMARCRecord: `not separated by ";"`, DMARCPolicy: "p=quarantine in the record of " + d},
			applied: d,
		},
		{
			name: "version not first with nothing above: no policy in force", asset: d,
			records: []string{txt("_dmarc."+d, "p=reject; v=DMARC1"+rua)},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.NA, DMARCSPNP: check.NA, DMARCScope: check.NA, DMARCReporting: check.NA},
			says:    map[string]string{DMARCRecord: "not the first tag"},
		},
		{
			name: "version not first: the public-suffix policy applies", asset: d,
			records: []string{txt("_dmarc."+d, "p=none; v=DMARC1"+rua), txt("_dmarc.nhs.uk", "v=DMARC1; p=reject; psd=y")},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Pass, DMARCReporting: check.Fail},
			says:    map[string]string{DMARCRecord: "the policy in force is the public-suffix policy at _dmarc.nhs.uk (p=reject)"},
			applied: "nhs.uk",
		},
		{
			name: "lower-case version", asset: d,
			records: []string{txt("_dmarc."+d, "v=dmarc1; p=reject"+rua)},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.NA},
			says:    map[string]string{DMARCRecord: "exactly DMARC1"},
		},
		{
			name: "an invalid p= with rua is read as p=none, not skipped", asset: sub,
			records: []string{txt("_dmarc."+sub, "v=DMARC1; p=bogus"+rua), txt("_dmarc."+d, "v=DMARC1; p=reject"+rua)},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Fail, DMARCReporting: check.Pass},
			says:    map[string]string{DMARCRecord: "act as if it said p=none", DMARCPolicy: "p=bogus"},
			applied: sub,
		},
		{
			name: "an invalid p= without rua stops the walk and applies nothing", asset: sub,
			records: []string{txt("_dmarc."+sub, "v=DMARC1; p=bogus"), txt("_dmarc."+d, "v=DMARC1; p=reject"+rua)},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.NA, DMARCSPNP: check.NA, DMARCScope: check.NA, DMARCReporting: check.NA},
			says:    map[string]string{DMARCRecord: "no DMARC processing", DMARCPolicy: "no DMARC policy is in force"},
			applied: sub,
		},
		{
			name: "an invalid sp= makes the whole record p=none", asset: d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=reject; sp=bogus"+rua)},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Fail, DMARCSPNP: check.Pass},
			says:    map[string]string{DMARCPolicy: "sp=bogus"},
			applied: d,
		},
		{
			name: "a valid record beside a broken one warns", asset: d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=reject"+rua), txt("_dmarc."+d, "p=none; v=DMARC1")},
			want:    map[string]check.Outcome{DMARCRecord: check.Warn, DMARCPolicy: check.Pass},
			says:    map[string]string{DMARCRecord: "meant as DMARC but is not valid"},
			applied: d,
		},
		{
			name: "other TXT at _dmarc is not a DMARC record", asset: d,
			records: []string{txt("_dmarc."+d, "google-site-verification=abc")},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.NA},
			says:    map[string]string{DMARCRecord: "no DMARC record at _dmarc." + d},
		},
	})
}

// RFC 7489 §6.3 and RFC 9989 §4.8: an invalid value in an optional tag is
// ignored (the tag keeps its default) and the rest of the record stands.
// The policy is judged as published; the defect is one low-severity warning
// on email.dmarc.record.
func TestDMARCInvalidOptionalTagIsALowSeverityRecordWarning(t *testing.T) {
	d := zone
	for _, tag := range []string{"fo=2", "rf=xml", "ri=daily", "adkim=x", "aspf=strict", "pct=150", "t=maybe", "psd=x", "rua=mailto:nobody,mailto:dmarc@" + d} {
		t.Run(tag, func(t *testing.T) {
			t.Parallel()
			rec := "v=DMARC1; p=reject; " + tag
			if !strings.HasPrefix(tag, "rua=") {
				rec += "; rua=mailto:dmarc@" + d
			}
			env, _ := serve(t, nil, nil, txt("_dmarc."+d, rec), txt(d, "v=spf1 ip4:192.0.2.1 -all"))
			got, fs, _ := run[DMARCEvidence](t, DMARC(), env, d, check.DefaultPolicy())
			want := map[string]check.Outcome{DMARCRecord: check.Warn, DMARCPolicy: check.Pass, DMARCSPNP: check.Pass, DMARCScope: check.Pass, DMARCReporting: check.Pass}
			for id, w := range want {
				if got[id] != w {
					t.Errorf("%s = %s, want %s: %s", id, got[id], w, message(fs, id))
				}
			}
			name, _, _ := strings.Cut(tag, "=")
			for _, f := range fs {
				if f.CheckID != DMARCRecord {
					continue
				}
				if f.Severity != check.Low || !strings.Contains(f.Message, name+"=") || f.Remediation == "" {
					t.Errorf("record finding = %s %s %q (remedy %q), want a low-severity warning naming %s=", f.Outcome, f.Severity, f.Message, f.Remediation, name)
				}
			}
		})
	}
}

// RFC 9091 and RFC 9989 §4.10.1: nhs.uk is a public suffix, so a policy at
// _dmarc.nhs.uk applies to an NHS domain that publishes none (nor does its
// organisational domain). The record rule fails (the domain has no record
// of its own) and names the policy in force; the policy rules judge it (sp
// else p: np is for names that do not exist, and a scanned domain exists).
func TestDMARCPublicSuffixPolicy(t *testing.T) {
	d, sub := zone, "mail."+zone
	rua := "; rua=mailto:dmarc@" + d
	runDMARCCases(t, []dmarcCase{
		{
			name: "a public-suffix policy applies to a domain with none of its own", asset: d,
			records: []string{txt("_dmarc.nhs.uk", "v=DMARC1; p=reject; psd=y; rua=mailto:psd-reports@nhs.uk")},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Pass, DMARCSPNP: check.Pass, DMARCScope: check.Pass, DMARCReporting: check.Fail},
			says: map[string]string{
				DMARCRecord:    "no DMARC record at _dmarc." + d + "; the policy in force is the public-suffix policy at _dmarc.nhs.uk (p=reject)",
				DMARCPolicy:    "p=reject in the public-suffix policy at _dmarc.nhs.uk",
				DMARCReporting: "public suffix's operator",
			},
			applied: "nhs.uk",
		},
		{
			name: "the record says where the policy came from", asset: d,
			records: []string{txt("_dmarc.nhs.uk", "v=DMARC1; p=reject")},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Pass},
			says:    map[string]string{DMARCRecord: "the policy in force is the public-suffix policy at _dmarc.nhs.uk (p=reject)"},
			applied: "nhs.uk",
		},
		{
			name: "a subdomain whose organisation publishes nothing gets the public-suffix policy", asset: sub,
			records: []string{txt("_dmarc.nhs.uk", "v=DMARC1; p=quarantine")},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Warn},
			says:    map[string]string{DMARCRecord: "nor at _dmarc." + d + " (tree walk up to the organisational domain " + d + "); the policy in force is the public-suffix policy at _dmarc.nhs.uk (p=quarantine)"},
			applied: "nhs.uk",
		},
		{
			name: "the public suffix's sp=none is the policy for its domains", asset: d,
			records: []string{txt("_dmarc.nhs.uk", "v=DMARC1; p=reject; sp=none; np=reject; psd=y")},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Fail, DMARCSPNP: check.Fail},
			says:    map[string]string{DMARCPolicy: "sp=none in the public-suffix policy", DMARCSPNP: "public-suffix policy"},
			applied: "nhs.uk",
		},
		{
			name: "np= does not apply to a domain that exists", asset: d,
			records: []string{txt("_dmarc.nhs.uk", "v=DMARC1; p=none; np=reject; psd=y")},
			want:    map[string]check.Outcome{DMARCPolicy: check.Fail},
			says:    map[string]string{DMARCPolicy: "p=none in the public-suffix policy"},
			applied: "nhs.uk",
		},
		{
			name: "psd=y at a parent inside the organisation makes it a public suffix", asset: "trust." + d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=quarantine; psd=y")},
			want:    map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Warn, DMARCReporting: check.Fail},
			says:    map[string]string{DMARCRecord: "public-suffix policy at _dmarc." + d},
			applied: d,
		},
		{
			name: "the domain's own record wins over the public suffix's", asset: d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=none"+rua), txt("_dmarc.nhs.uk", "v=DMARC1; p=reject")},
			want:    map[string]check.Outcome{DMARCRecord: check.Pass, DMARCPolicy: check.Fail},
			applied: d,
		},
		{
			name: "the public suffix does not answer: the record fails, the policy is unknown", asset: d,
			drop: []string{"_dmarc.nhs.uk"},
			want: map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Unknown, DMARCSPNP: check.Unknown, DMARCScope: check.Unknown, DMARCReporting: check.Unknown},
			says: map[string]string{DMARCRecord: "could not be told", DMARCPolicy: "_dmarc.nhs.uk"},
		},
		{
			name: "the public suffix does not answer but is not needed", asset: d,
			records: []string{txt("_dmarc."+d, "v=DMARC1; p=reject"+rua)},
			drop:    []string{"_dmarc.nhs.uk"},
			want:    map[string]check.Outcome{DMARCRecord: check.Pass, DMARCPolicy: check.Pass, DMARCReporting: check.Pass},
			applied: d,
		},
	})
}

// Version 1 evidence (no public-suffix level, no discarded records) is
// upgraded: a walk that found a record is judged as before; one that found
// none fails the record and leaves the policy unknown until the next scan.
func TestDMARCVersion1EvidenceIsUpgraded(t *testing.T) {
	v1 := func(ev DMARCEvidence) check.Evidence {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return check.Evidence{CheckID: "email.dmarc", Asset: check.Asset{Kind: check.KindDomain, Name: zone}, Version: 1, Data: b}
	}
	withRecord := dmarcEv("v=DMARC1; p=reject; rua=mailto:d@example.nhs.uk", receiving)
	noRecord := dmarcEv("", receiving)
	noRecord.Applied = -1
	noRecord.Walk[0] = DMARCLevel{Domain: zone, Lookup: Lookup{Name: "_dmarc." + zone, Type: "TXT", Rcode: "NOERROR", Answers: []string{"p=reject; v=DMARC1"}}}
	tests := []struct {
		name string
		ev   DMARCEvidence
		want map[string]check.Outcome
		says string
	}{
		{"a record found", withRecord, map[string]check.Outcome{DMARCRecord: check.Pass, DMARCPolicy: check.Pass, DMARCReporting: check.Pass}, ""},
		{"no record found", noRecord, map[string]check.Outcome{DMARCRecord: check.Fail, DMARCPolicy: check.Unknown, DMARCReporting: check.Unknown}, "not the first tag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := DMARC().Evaluate(v1(tc.ev), check.DefaultPolicy())
			got := worst(fs)
			for id, w := range tc.want {
				if got[id] != w {
					t.Errorf("%s = %s, want %s: %s", id, got[id], w, message(fs, id))
				}
			}
			for _, f := range fs {
				if f.Outcome == check.Unknown && f.Reason != string(check.ErrEvidenceVersion) {
					t.Errorf("%s unknown with reason %q, want %q", f.CheckID, f.Reason, check.ErrEvidenceVersion)
				}
			}
			if !strings.Contains(message(fs, DMARCRecord), tc.says) {
				t.Errorf("record says %q, want %q", message(fs, DMARCRecord), tc.says)
			}
		})
	}
	old := v1(withRecord)
	old.Version = 7
	if fs := DMARC().Evaluate(old, nil); fs[0].Reason != string(check.ErrEvidenceVersion) {
		t.Errorf("version 7 evidence judged: %+v", fs[0])
	}
}
