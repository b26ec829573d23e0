package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// memSource is a Source over fixed runs: the shape the store adapter in cmd
// gives reports.
type memSource struct {
	runs     []Run // newest first
	orgs     []Org
	findings map[int64][]Finding
	resolved map[int64][]Finding
}

func (m *memSource) Runs(context.Context) ([]Run, error)          { return m.runs, nil }
func (m *memSource) Organisations(context.Context) ([]Org, error) { return m.orgs, nil }

func (m *memSource) Findings(_ context.Context, id int64) ([]Finding, error) {
	fs, ok := m.findings[id]
	if !ok {
		return nil, fmt.Errorf("no run %d", id)
	}
	// A copy, as a store would return: the summary may not alter ours.
	return append([]Finding(nil), fs...), nil
}

func (m *memSource) Resolved(_ context.Context, id int64) ([]Finding, error) {
	return append([]Finding(nil), m.resolved[id]...), nil
}

var (
	day1 = time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	day2 = day1.AddDate(0, 0, 7)
	day3 = day1.AddDate(0, 0, 14)
)

var (
	refGOVESS = check.Ref{Standard: "GOV.UK email security standard"}
	refBOD    = check.Ref{Standard: "BOD 18-01"}
	refB3b    = check.Ref{Standard: "CAF", Section: "B3.b"}
	refB4d    = check.Ref{Standard: "CAF", Section: "B4.d"}
	refSMH    = check.Ref{Standard: "Service Manual: Using HTTPS"}
	refNCSC   = check.Ref{Standard: "NCSC TLS guidance", Section: "TLS 1.2 configuration", Status: "unverified"}
)

func testCatalogue() []check.Meta {
	return []check.Meta{
		{ID: "email.dmarc.policy", Family: "email", Title: "DMARC policy enforces", Severity: check.High,
			Standards: []check.Ref{refGOVESS}, Remediation: "Set p=reject."},
		{ID: "email.dmarc.record", Family: "email", Title: "DMARC record is valid", Severity: check.Critical,
			Standards: []check.Ref{refGOVESS, refBOD}, Remediation: "Publish one DMARC record."},
		{ID: "tls.cert.expiry", Family: "tls", Title: "Certificate is in date", Severity: check.Critical,
			Standards: []check.Ref{refB4d}},
		{ID: "tls.min-version", Family: "tls", Title: "Only TLS 1.2 or later", Severity: check.High,
			Standards: []check.Ref{refB3b, refNCSC}},
		{ID: "web.hsts.max-age", Family: "web", Title: "HSTS lasts a year", Severity: check.High,
			Standards: []check.Ref{refSMH, refB3b}},
	}
}

// fd builds a finding as a check and the store would: standards from the
// catalogue, the stable id left to the summary.
func fd(org string, kind check.Kind, name, id string, o check.Outcome, change string, first time.Time, msg string) Finding {
	var m check.Meta
	for _, c := range testCatalogue() {
		if c.ID == id {
			m = c
		}
	}
	f := Finding{
		Finding: check.Finding{
			CheckID: id, Rule: id, Asset: check.Asset{Kind: kind, Name: name, Org: org},
			Outcome: o, Severity: m.Severity, Message: msg, Standards: m.Standards,
		},
		Change: change, FirstSeen: first,
	}
	if o.Counts() {
		f.Remediation = m.Remediation
		f.Status = StatusOpen
	}
	if o == check.Unknown {
		f.Reason = "timeout"
	}
	return f
}

const hostileMessage = `max-age=300 <script>alert("x")</script><img src=http://evil.example/x.png>`

// fixture is a small London estate over three weekly runs:
//
//	London region (Y56)
//	  South West London ICB (QWE): St George's (RJ7), Epsom and St Helier (RVR)
//	  South East London ICB (QKK): Kingston (RAX)
//	QRV (named as a parent only): Imperial (RYJ)
//	unassigned: orphan.nhs.uk
func fixture() *memSource {
	const (
		d = check.KindDomain
		h = check.KindHost
	)
	run1 := []Finding{
		fd("RJ7", d, "stgeorges.nhs.uk", "email.dmarc.record", check.Pass, "", time.Time{}, "v=DMARC1; p=none"),
		fd("RJ7", d, "stgeorges.nhs.uk", "email.dmarc.policy", check.Fail, ChangeNew, day1, "p=none"),
		fd("RVR", d, "epsom-sthelier.nhs.uk", "email.dmarc.record", check.Fail, ChangeNew, day1, "no DMARC record"),
		fd("RAX", d, "kingstonhospital.nhs.uk", "email.dmarc.record", check.Pass, "", time.Time{}, "ok"),
		fd("RAX", h, "www.kingstonhospital.nhs.uk", "web.hsts.max-age", check.Warn, ChangeNew, day1, "max-age=86400"),
	}
	run2 := []Finding{
		fd("RJ7", d, "stgeorges.nhs.uk", "email.dmarc.record", check.Pass, "", time.Time{}, "ok"),
		fd("RJ7", d, "stgeorges.nhs.uk", "email.dmarc.policy", check.Fail, ChangeStillOpen, day1, "p=none"),
		fd("RJ7", h, "www.stgeorges.nhs.uk", "tls.min-version", check.Fail, ChangeNew, day2, "TLS 1.0 accepted"),
		fd("RVR", d, "epsom-sthelier.nhs.uk", "email.dmarc.record", check.Pass, ChangeResolved, day1, "ok"),
		fd("RAX", d, "kingstonhospital.nhs.uk", "email.dmarc.record", check.Pass, "", time.Time{}, "ok"),
		fd("RAX", h, "www.kingstonhospital.nhs.uk", "web.hsts.max-age", check.Warn, ChangeStillOpen, day1, "max-age=86400"),
	}
	portalLeaf := fd("RJ7", h, "portal.stgeorges.nhs.uk", "tls.cert.expiry", check.Pass, "", time.Time{}, "leaf valid for 200 days")
	portalLeaf.Rule = "leaf-in-date"
	portalInter := fd("RJ7", h, "portal.stgeorges.nhs.uk", "tls.cert.expiry", check.Fail, ChangeNew, day3, "intermediate expired 3 days ago")
	portalInter.Rule = "intermediate-in-date"
	accepted := fd("RVR", h, "www.epsom-sthelier.nhs.uk", "tls.min-version", check.Fail, ChangeStillOpen, day1, "TLS 1.1 accepted")
	accepted.Status = StatusAccepted
	tlsFixed := fd("RJ7", h, "www.stgeorges.nhs.uk", "tls.min-version", check.Pass, ChangeResolved, day2, "TLS 1.2 minimum")
	tlsFixed.Status = StatusResolved
	run3 := []Finding{
		fd("RJ7", d, "stgeorges.nhs.uk", "email.dmarc.record", check.Pass, "", time.Time{}, "ok"),
		fd("RJ7", d, "stgeorges.nhs.uk", "email.dmarc.policy", check.Fail, ChangeStillOpen, day1, "p=none"),
		fd("RJ7", h, "www.stgeorges.nhs.uk", "web.hsts.max-age", check.Fail, ChangeNew, day3, hostileMessage),
		tlsFixed,
		fd("RJ7", h, "www.stgeorges.nhs.uk", "tls.cert.expiry", check.Unknown, "", time.Time{}, "could not tell: i/o timeout"),
		portalLeaf, portalInter,
		fd("RVR", d, "epsom-sthelier.nhs.uk", "email.dmarc.record", check.Fail, ChangeRegressed, day1, "no DMARC record"),
		fd("RVR", d, "epsom-sthelier.nhs.uk", "email.dmarc.policy", check.NA, "", time.Time{}, "no record"),
		fd("RVR", h, "www.epsom-sthelier.nhs.uk", "web.hsts.max-age", check.Pass, "", time.Time{}, "max-age=31536000"),
		accepted,
		fd("RAX", d, "kingstonhospital.nhs.uk", "email.dmarc.record", check.Pass, "", time.Time{}, "ok"),
		fd("RAX", d, "kingstonhospital.nhs.uk", "email.dmarc.policy", check.Pass, "", time.Time{}, "p=reject"),
		fd("RAX", h, "www.kingstonhospital.nhs.uk", "web.hsts.max-age", check.Warn, ChangeStillOpen, day1, "max-age=86400"),
		fd("RYJ", d, "imperial.nhs.uk", "email.dmarc.record", check.Pass, "", time.Time{}, "ok"),
		fd("RYJ", d, "imperial.nhs.uk", "email.dmarc.policy", check.Fail, ChangeNew, day3, "p=none"),
		fd("", d, "orphan.nhs.uk", "email.dmarc.record", check.Fail, ChangeNew, day3, "no DMARC record"),
	}
	gone := fd("RVR", h, "old.epsom-sthelier.nhs.uk", "web.hsts.max-age", check.Pass, ChangeResolved, day1, "max-age=31536000")
	gone.Status = StatusResolved
	return &memSource{
		runs: []Run{
			{ID: 3, Started: day3, Finished: day3.Add(time.Hour), Status: "done"},
			{ID: 2, Started: day2, Finished: day2.Add(time.Hour), Status: "done"},
			{ID: 1, Started: day1, Finished: day1.Add(time.Hour), Status: "done"},
		},
		orgs: []Org{
			{Code: "Y56", Name: "London", Kind: "region"},
			{Code: "QWE", Name: "South West London ICB", Parent: "Y56", Kind: "icb", Contacts: []string{"icb@swl.nhs.uk"}},
			{Code: "QKK", Name: "South East London ICB", Parent: "Y56", Kind: "icb"},
			{Code: "RJ7", Name: "St George's University Hospitals", Parent: "QWE", Kind: "trust",
				Contacts: []string{"domainmanagement@stgeorges.nhs.uk"}},
			{Code: "RVR", Name: "Epsom and St Helier University Hospitals", Parent: "QWE", Kind: "trust",
				Contacts: []string{"it@epsom-sthelier.nhs.uk", "security@epsom-sthelier.nhs.uk"}},
			{Code: "RAX", Name: "Kingston Hospital", Parent: "QKK", Kind: "trust",
				Contacts: []string{"domains@kingstonhospital.nhs.uk"}},
			{Code: "RYJ", Name: "Imperial College Healthcare\r\nBcc: attacker@evil.example", Parent: "QRV", Kind: "trust",
				Contacts: []string{"it@imperial.nhs.uk\r\nBcc: attacker@evil.example", "security@imperial.nhs.uk"}},
		},
		findings: map[int64][]Finding{1: run1, 2: run2, 3: run3},
		resolved: map[int64][]Finding{3: {tlsFixed, gone}},
	}
}

func mustSummary(t interface {
	Helper()
	Fatal(...any)
}, src Source) *Summary {
	t.Helper()
	s, err := BuildSummary(context.Background(), src, testCatalogue(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
