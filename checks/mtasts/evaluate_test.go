package mtasts

import (
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlscheck"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
)

const dom = "a.nhs.uk"

var testCA *tlstest.CA

func ca(t testing.TB) *tlstest.CA {
	t.Helper()
	if testCA == nil {
		var err error
		if testCA, err = tlstest.NewCA("mtasts test"); err != nil {
			t.Fatal(err)
		}
	}
	return testCA
}

// certFor issues a certificate and returns it as a recorded endpoint.
func certFor(t testing.TB, l tlstest.Leaf) *tlscheck.Endpoint {
	t.Helper()
	is, err := ca(t).Issue(l)
	if err != nil {
		t.Fatal(err)
	}
	return &tlscheck.Endpoint{Addr: "192.0.2.1:443", Via: "crypto/tls", Certs: is.Cert.Certificate}
}

func policyPolicy(t testing.TB) *check.Policy {
	p := check.DefaultPolicy()
	p.Roots = ca(t).Pool()
	return p
}

// served is a 200 text/plain policy fetch with a good certificate.
func served(t testing.TB, body string) *Fetch {
	return &Fetch{URL: "https://mta-sts." + dom + WellKnownPath, Host: "mta-sts." + dom,
		Cert: certFor(t, tlstest.Leaf{Names: []string{"mta-sts." + dom}}), Status: 200,
		ContentType: "text/plain; charset=utf-8", Body: body}
}

func stsRecord(recs ...string) Lookup {
	return Lookup{Name: "_mta-sts." + dom, Type: "TXT", Rcode: "NOERROR", Answers: recs}
}

func mxOf(hosts ...string) Lookup {
	return Lookup{Name: dom, Type: "MX", Rcode: "NOERROR", Answers: hosts}
}

const body14d = "version: STSv1\r\nmode: enforce\r\nmx: mail.a.nhs.uk\r\nmx: *.mx.nhs.net\r\nmax_age: 1209600\r\n"

func outcomes(fs []check.Finding) map[string]check.Finding {
	out := map[string]check.Finding{}
	for _, f := range fs {
		out[f.CheckID] = f
	}
	return out
}

func TestEvaluateSTSJudgesRecordPolicyAndMode(t *testing.T) {
	good := "v=STSv1; id=20250101"
	withBody := func(b string) func(*Fetch) { return func(f *Fetch) { f.Body = b } }
	tests := []struct {
		name   string
		mx     Lookup
		record Lookup
		fetch  func(*Fetch) // changes the good fetch; nil: good
		noPol  bool         // no fetch recorded
		want   [3]check.Outcome
		msg    map[string]string // id → substring of the message
	}{
		{name: "good enforce policy", mx: mxOf("mail.a.nhs.uk", "x.mx.nhs.net"), record: stsRecord(good, "google-site-verification=x"),
			want: [3]check.Outcome{check.Pass, check.Pass, check.Pass}, msg: map[string]string{PolicyID: "matching every MX host"}},
		{name: "LF line endings are noted", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good), fetch: withBody(strings.ReplaceAll(body14d, "\r\n", "\n")),
			want: [3]check.Outcome{check.Pass, check.Pass, check.Pass}, msg: map[string]string{PolicyID: "lines end in LF"}},
		{name: "enforce with a short max_age warns", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good), fetch: withBody(strings.Replace(body14d, "1209600", "86400", 1)),
			want: [3]check.Outcome{check.Pass, check.Pass, check.Warn}, msg: map[string]string{ModeID: "under 1209600"}},
		{name: "testing warns", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good), fetch: withBody(strings.Replace(body14d, "enforce", "testing", 1)),
			want: [3]check.Outcome{check.Pass, check.Pass, check.Warn}, msg: map[string]string{ModeID: "mode testing"}},
		{name: "testing with a max_age under a day notes it", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good),
			fetch: withBody(strings.Replace(strings.Replace(body14d, "enforce", "testing", 1), "1209600", "3600", 1)),
			want:  [3]check.Outcome{check.Pass, check.Pass, check.Warn}, msg: map[string]string{ModeID: "under 86400"}},
		{name: "none fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good), fetch: withBody(strings.Replace(body14d, "enforce", "none", 1)),
			want: [3]check.Outcome{check.Pass, check.Pass, check.Fail}, msg: map[string]string{ModeID: "mode none"}},
		{name: "no record fails, the rest does not apply", mx: mxOf("mail.a.nhs.uk"), record: stsRecord("v=spf1 -all"), noPol: true,
			want: [3]check.Outcome{check.Fail, check.NA, check.NA}, msg: map[string]string{RecordID: "no MTA-STS record"}},
		{name: "a mis-cased record is named", mx: mxOf("mail.a.nhs.uk"), record: stsRecord("V=STSv1; id=1"), noPol: true,
			want: [3]check.Outcome{check.Fail, check.NA, check.NA}, msg: map[string]string{RecordID: "senders discard it"}},
		{name: "NXDOMAIN at _mta-sts", mx: mxOf("mail.a.nhs.uk"), record: Lookup{Name: "_mta-sts." + dom, Rcode: "NXDOMAIN"}, noPol: true,
			want: [3]check.Outcome{check.Fail, check.NA, check.NA}},
		{name: "two records fail; the policy is still judged", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good, "v=STSv1; id=2"),
			want: [3]check.Outcome{check.Fail, check.Pass, check.Pass}, msg: map[string]string{RecordID: "2 MTA-STS records"}},
		{name: "invalid id fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord("v=STSv1; id=2025-01-01"),
			want: [3]check.Outcome{check.Fail, check.Pass, check.Pass}, msg: map[string]string{RecordID: "not 1 to 32"}},
		{name: "record lookup timeout is unknown", mx: mxOf("mail.a.nhs.uk"), record: Lookup{Name: "_mta-sts." + dom, Error: "timeout", Class: check.ErrTimeout}, noPol: true,
			want: [3]check.Outcome{check.Unknown, check.Unknown, check.Unknown}},
		{name: "redirect fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good),
			fetch: func(f *Fetch) {
				f.Status, f.Location, f.Body, f.ContentType = 301, "https://www.a.nhs.uk/mta-sts.txt", "", "text/html"
			},
			want: [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "do not follow redirects"}},
		{name: "404 fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good), fetch: func(f *Fetch) { f.Status, f.Body = 404, "" },
			want: [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "HTTP 404"}},
		{name: "wrong certificate name fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good),
			fetch: func(f *Fetch) { f.Cert = certFor(t, tlstest.Leaf{Names: []string{"www." + dom}}) },
			want:  [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "certificate is not valid"}},
		{name: "self-signed certificate fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good),
			fetch: func(f *Fetch) { f.Cert = certFor(t, tlstest.Leaf{Names: []string{"mta-sts." + dom}, SelfSigned: true}) },
			want:  [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "certificate is not valid"}},
		{name: "expired certificate fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good),
			fetch: func(f *Fetch) {
				f.Cert = certFor(t, tlstest.Leaf{Names: []string{"mta-sts." + dom}, NotBefore: time.Now().AddDate(0, -3, 0), NotAfter: time.Now().AddDate(0, 0, -1)})
			},
			want: [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "certificate is not valid"}},
		{name: "wrong content type fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good), fetch: func(f *Fetch) { f.ContentType = "text/html" },
			want: [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "not text/plain"}},
		{name: "no content type fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good), fetch: func(f *Fetch) { f.ContentType = "" },
			want: [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "not text/plain"}},
		{name: "MX not covered fails", mx: mxOf("mail.a.nhs.uk", "backup.other.nhs.uk"), record: stsRecord(good),
			want: [3]check.Outcome{check.Pass, check.Fail, check.Pass}, msg: map[string]string{PolicyID: "match none of backup.other.nhs.uk"}},
		{name: "bad max_age fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good), fetch: withBody(strings.Replace(body14d, "1209600", "0", 1)),
			want: [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "max_age 0"}},
		{name: "body too large fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good), fetch: func(f *Fetch) { f.TooLarge, f.Error, f.Class = true, "too big", check.ErrTooLarge },
			want: [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "over 65536 bytes"}},
		{name: "policy host without an address fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good),
			fetch: func(f *Fetch) { *f = Fetch{URL: f.URL, Host: f.Host, NoHost: true, Error: "no address"} },
			want:  [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "does not resolve"}},
		{name: "refused connection fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good),
			fetch: func(f *Fetch) {
				*f = Fetch{URL: f.URL, Host: f.Host, Refused: true, Error: "refused", Class: check.ErrUnreachable}
			},
			want: [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "refuses connections"}},
		{name: "TLS alert fails", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good),
			fetch: func(f *Fetch) {
				*f = Fetch{URL: f.URL, Host: f.Host, Alerted: true, Error: "remote error", Class: check.ErrBlocked}
			},
			want: [3]check.Outcome{check.Pass, check.Fail, check.NA}, msg: map[string]string{PolicyID: "alert"}},
		{name: "fetch timeout is unknown", mx: mxOf("mail.a.nhs.uk"), record: stsRecord(good),
			fetch: func(f *Fetch) { *f = Fetch{URL: f.URL, Host: f.Host, Error: "i/o timeout", Class: check.ErrTimeout} },
			want:  [3]check.Outcome{check.Pass, check.Unknown, check.Unknown}},
	}
	at := time.Now()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Discovery{Domain: dom, Record: tt.record}
			if !tt.noPol {
				f := served(t, body14d)
				if tt.fetch != nil {
					tt.fetch(f)
				}
				d.Policy = f
			}
			fs := outcomes(evaluateSTS(check.In[Evidence]{Evidence: Evidence{Domain: dom, MX: tt.mx, STS: &d}, CollectedAt: at, Policy: policyPolicy(t)}))
			for i, id := range []string{RecordID, PolicyID, ModeID} {
				f := fs[id]
				if f.Outcome != tt.want[i] {
					t.Errorf("%s: %s (%s), want %s", id, f.Outcome, f.Message, tt.want[i])
				}
				if f.Outcome == check.Unknown && f.Reason == "" {
					t.Errorf("%s: unknown without a reason", id)
				}
				if m := tt.msg[id]; m != "" && !strings.Contains(f.Message, m) {
					t.Errorf("%s: message %q lacks %q", id, f.Message, m)
				}
			}
		})
	}
}

func TestMTASTSDoesNotApplyToADomainWithoutMail(t *testing.T) {
	for _, mx := range []Lookup{mxOf(), mxOf(""), {Name: dom, Rcode: "NOERROR"}} {
		fs := evaluateSTS(check.In[Evidence]{Evidence: Evidence{Domain: dom, MX: mx}})
		if len(fs) != 3 {
			t.Fatalf("%d findings", len(fs))
		}
		for _, f := range fs {
			if f.Outcome != check.NA {
				t.Errorf("%s: %s, want n/a", f.CheckID, f.Outcome)
			}
		}
		tf := evaluateTLSRPT(check.In[TLSRPTEvidence]{Evidence: TLSRPTEvidence{Domain: dom, MX: mx}})
		if len(tf) != 1 || tf[0].Outcome != check.NA {
			t.Errorf("tlsrpt: %+v, want n/a", tf)
		}
	}
}

func TestEvaluateTLSRPT(t *testing.T) {
	rec := func(answers ...string) *Lookup {
		return &Lookup{Name: "_smtp._tls." + dom, Type: "TXT", Rcode: "NOERROR", Answers: answers}
	}
	ncsc := "mailto:" + NCSCLegacyTLSRPT
	tests := []struct {
		name   string
		record *Lookup
		want   check.Outcome
		msg    string
	}{
		{"good", rec("v=TLSRPTv1; rua=mailto:tls@a.nhs.uk"), check.Pass, "TLS reports go to mailto:tls@a.nhs.uk"},
		{"https destination", rec("v=TLSRPTv1; rua=https://tlsrpt.example.com/r"), check.Pass, "https://tlsrpt.example.com/r"},
		{"legacy NCSC address beside another is a note", rec("v=TLSRPTv1; rua=" + ncsc + ",mailto:tls@a.nhs.uk"), check.Pass, "legacy"},
		{"only the legacy NCSC address warns", rec("v=TLSRPTv1; rua=" + ncsc), check.Warn, "retired NCSC Mail Check address"},
		{"bad scheme fails", rec("v=TLSRPTv1; rua=http://tlsrpt.example.com/"), check.Fail, "not a mailto: or https: URI"},
		{"duplicate fails", rec("v=TLSRPTv1; rua=mailto:tls@a.nhs.uk,mailto:tls@a.nhs.uk"), check.Fail, "listed twice"},
		{"two records fail", rec("v=TLSRPTv1; rua=mailto:a@a.nhs.uk", "v=TLSRPTv1; rua=mailto:b@a.nhs.uk"), check.Fail, "2 TLS-RPT records"},
		{"absent fails", rec("something else"), check.Fail, "no TLS-RPT record"},
		{"NXDOMAIN fails", &Lookup{Name: "_smtp._tls." + dom, Rcode: "NXDOMAIN"}, check.Fail, "no TLS-RPT record"},
		{"lookup timeout is unknown", &Lookup{Name: "_smtp._tls." + dom, Error: "timeout", Class: check.ErrTimeout}, check.Unknown, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := evaluateTLSRPT(check.In[TLSRPTEvidence]{Evidence: TLSRPTEvidence{Domain: dom, MX: mxOf("mail.a.nhs.uk"), Record: tt.record}})
			if len(fs) != 1 || fs[0].Outcome != tt.want || !strings.Contains(fs[0].Message, tt.msg) {
				t.Fatalf("got %+v, want %s with %q", fs, tt.want, tt.msg)
			}
			if tt.want == check.Unknown && fs[0].Reason != string(check.ErrTimeout) {
				t.Fatalf("reason %q", fs[0].Reason)
			}
		})
	}
}

func TestInForceIsTheModeSendersApply(t *testing.T) {
	good := stsRecord("v=STSv1; id=1")
	at := time.Now()
	tests := []struct {
		name  string
		d     func() Discovery
		mode  string
		known bool
	}{
		{"valid enforce policy", func() Discovery { return Discovery{Domain: dom, Record: good, Policy: served(t, body14d)} }, ModeEnforce, true},
		{"valid testing policy", func() Discovery {
			return Discovery{Domain: dom, Record: good, Policy: served(t, strings.Replace(body14d, "enforce", "testing", 1))}
		}, ModeTesting, true},
		{"MX coverage is not asked", func() Discovery { return Discovery{Domain: dom, Record: good, Policy: served(t, body14d)} }, ModeEnforce, true},
		{"no record", func() Discovery { return Discovery{Domain: dom, Record: stsRecord()} }, ModeNone, true},
		{"two records", func() Discovery {
			return Discovery{Domain: dom, Record: stsRecord("v=STSv1; id=1", "v=STSv1; id=2"), Policy: served(t, body14d)}
		}, ModeNone, true},
		{"bad certificate", func() Discovery {
			f := served(t, body14d)
			f.Cert = certFor(t, tlstest.Leaf{Names: []string{"other.nhs.uk"}})
			return Discovery{Domain: dom, Record: good, Policy: f}
		}, ModeNone, true},
		{"record lookup failed", func() Discovery { return Discovery{Domain: dom, Record: Lookup{Error: "x", Class: check.ErrTimeout}} }, "", false},
		{"fetch timed out", func() Discovery {
			return Discovery{Domain: dom, Record: good, Policy: &Fetch{Error: "timeout", Class: check.ErrTimeout}}
		}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode, known := InForce(tt.d(), at, policyPolicy(t))
			if mode != tt.mode || known != tt.known {
				t.Fatalf("InForce = %q, %v; want %q, %v", mode, known, tt.mode, tt.known)
			}
		})
	}
}
