package lab

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
)

// mtastsFamily: the MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) checks' lab:
// email.mtasts.record, .policy, .mode and email.tlsrpt on domains, and the
// rise of email.mx.cert to high under an enforce policy.
//
// Its cases publish _mta-sts and _smtp._tls records and serve policies
// from an mta-sts.<domain> host over HTTPS (a lab certificate). The
// policies cover the lab's shared MX hosts (*.lab-mail.nhs.uk), which the
// cases' domains use, except mtasts-enforce-bad-mx-cert, which has an MX
// host of its own with a self-signed certificate.
//
// Every other lab domain publishes neither, as most real domains do not:
// by the rules a receiving domain (the lab's default MX) fails the record
// and TLS-RPT checks, and the policy and mode do not apply; a domain that
// receives no mail (a null MX) is n/a throughout; one that does not exist
// is unknown. Complete states that truth and adds no records, so that the
// board shows what a real estate shows and a large lab costs two TXT
// lookups per domain, not a policy host each.
var mtastsFamily = Family{Name: "mtasts", Cases: mtastsCases, Complete: completeMTASTS}

// MTASTSCheckIDs are the catalogue ids every lab domain states an outcome
// for in the mtasts family.
var MTASTSCheckIDs = []string{"email.mtasts.record", "email.mtasts.policy", "email.mtasts.mode", "email.tlsrpt"}

// mtastsExpect states every id of the family on the domain name: w's
// outcome, else pass.
func mtastsExpect(name string, w want) []Expect {
	out := make([]Expect, 0, len(MTASTSCheckIDs))
	for _, id := range MTASTSCheckIDs {
		o, ok := w[id]
		if !ok {
			o = check.Pass
		}
		out = append(out, Expect{Kind: check.KindDomain, Name: name, CheckID: id, Outcome: o})
	}
	return out
}

// mtastsUnpublished is the truth of a receiving domain that publishes
// neither MTA-STS nor TLS-RPT.
var mtastsUnpublished = want{"email.mtasts.record": check.Fail, "email.mtasts.policy": check.NA,
	"email.mtasts.mode": check.NA, "email.tlsrpt": check.Fail}

// completeMTASTS states the family's truth on a domain of another family
// (see mtastsFamily).
func completeMTASTS(d *Domain, c Case, _ Added, _ []Case) {
	if c.Family == "mtasts" {
		return
	}
	for _, n := range []string{"_mta-sts." + d.Name, "_smtp._tls." + d.Name, "mta-sts." + d.Name} {
		if publishes(d, n, "") {
			return // a case that publishes these states its own truth
		}
	}
	switch {
	case d.Absent:
		d.Expect = append(d.Expect, mtastsExpect(d.Name, all(MTASTSCheckIDs, check.Unknown))...)
	case mtastsDropped(d):
		d.Expect = append(d.Expect, mtastsExpect(d.Name, all(MTASTSCheckIDs, check.Unknown))...)
	case !mtastsReceives(d):
		d.Expect = append(d.Expect, mtastsExpect(d.Name, all(MTASTSCheckIDs, check.NA))...)
	default:
		d.Expect = append(d.Expect, mtastsExpect(d.Name, mtastsUnpublished)...)
	}
}

// mtastsDropped reports a domain whose MX or record lookups the lab DNS
// never answers: the collectors cannot tell.
func mtastsDropped(d *Domain) bool {
	for _, n := range d.Drop {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if n == d.Name || n == "_mta-sts."+d.Name || n == "_smtp._tls."+d.Name {
			return true
		}
	}
	return false
}

// mtastsReceives reports whether d has an MX other than the null MX.
func mtastsReceives(d *Domain) bool {
	for _, r := range d.Records {
		rr, err := dns.NewRR(r)
		if err != nil || rr == nil {
			continue
		}
		if mx, ok := rr.(*dns.MX); ok && strings.EqualFold(strings.TrimSuffix(mx.Hdr.Name, "."), d.Name) && mx.Mx != "." {
			return true
		}
	}
	return false
}

// mtastsPolicy is a policy body covering the lab's shared MX hosts.
func mtastsPolicy(mode string, maxAge int, mx ...string) string {
	if len(mx) == 0 {
		mx = []string{"*." + MailZone}
	}
	b := "version: STSv1\r\nmode: " + mode + "\r\n"
	for _, m := range mx {
		b += "mx: " + m + "\r\n"
	}
	return b + fmt.Sprintf("max_age: %d\r\n", maxAge)
}

// mtastsServe serves body as text/plain at the well-known path.
func mtastsServe(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, body)
	})
}

// mtastsSetup is what a case publishes.
type mtastsSetup struct {
	sts     []string     // TXT at _mta-sts.<d>
	handler http.Handler // mta-sts.<d>'s HTTPS; nil: no policy host
	cert    CertSpec     // its certificate
	tlsrpt  []string     // TXT at _smtp._tls.<d>
	mx      *Host        // an MX host of the domain's own (nil: the lab's)
	mxWant  want         // the mail TLS truth on it
}

func mtastsGoodSetup(d string) *mtastsSetup {
	return &mtastsSetup{
		sts:     []string{"v=STSv1; id=20250101T000000"},
		handler: mtastsServe(mtastsPolicy("enforce", 1209600)),
		tlsrpt:  []string{"v=TLSRPTv1; rua=mailto:tls-reports@" + d},
	}
}

// mtastsCase is a case on the lab domain: the good setup changed by
// change, with the truth w (pass for the ids it leaves out).
func mtastsCase(name string, change func(d string, s *mtastsSetup), w want) Case {
	return Case{Name: name, Family: "mtasts", Build: func(d string) Domain {
		s := mtastsGoodSetup(d)
		change(d, s)
		dom := Domain{Name: d, Expect: mtastsExpect(d, w)}
		for _, r := range s.sts {
			dom.Records = append(dom.Records, txt("_mta-sts."+d, r))
		}
		for _, r := range s.tlsrpt {
			dom.Records = append(dom.Records, txt("_smtp._tls."+d, r))
		}
		if s.handler != nil {
			// A TLS template of its own: the TLS family states no truth
			// on it (it is not in CT, so discovery does not scan it as a
			// web host); its certificate is judged here, as the policy's.
			dom.Hosts = append(dom.Hosts, Host{Name: "mta-sts." + d, Web: &WebSpec{HTTPS: s.handler, Cert: s.cert,
				TLS: &tls.Config{MinVersion: tls.VersionTLS12}}})
		}
		if s.mx != nil {
			dom.Records = append(dom.Records, rr(d, "MX", "10 "+s.mx.Name+"."))
			dom.Hosts = append(dom.Hosts, *s.mx)
			dom.Expect = append(dom.Expect, mailExpect(s.mx.Name, s.mxWant)...)
		}
		return dom
	}}
}

// mtastsCases are the MTA-STS and TLS-RPT behaviours (checks.md §1.6,
// §3.1 decisions 4 and 5).
func mtastsCases() []Case {
	keep := func(string, *mtastsSetup) {}
	noPolicy := want{"email.mtasts.policy": check.Fail, "email.mtasts.mode": check.NA}
	return []Case{
		// A good enforce policy and TLS-RPT: everything passes.
		mtastsCase("mtasts-enforce", keep, want{}),
		// enforce, cached a day only: the mode warns.
		mtastsCase("mtasts-enforce-short", func(d string, s *mtastsSetup) {
			s.handler = mtastsServe(mtastsPolicy("enforce", 86400))
		}, want{"email.mtasts.mode": check.Warn}),
		// testing, served with LF line endings (noted, accepted): the
		// mode warns.
		mtastsCase("mtasts-testing", func(d string, s *mtastsSetup) {
			s.handler = mtastsServe(strings.ReplaceAll(mtastsPolicy("testing", 604800), "\r\n", "\n"))
		}, want{"email.mtasts.mode": check.Warn}),
		// none: the policy is switched off.
		mtastsCase("mtasts-none", func(d string, s *mtastsSetup) {
			s.handler = mtastsServe(mtastsPolicy("none", 86400))
		}, want{"email.mtasts.mode": check.Fail}),
		// The policy URL redirects: senders do not follow it.
		mtastsCase("mtasts-redirect", func(d string, s *mtastsSetup) {
			s.handler = Redirect("https://www." + d + "/.well-known/mta-sts.txt")
		}, noPolicy),
		// The policy host's certificate names www.<d> only.
		mtastsCase("mtasts-wrong-cert", func(d string, s *mtastsSetup) {
			s.cert = CertSpec{Names: []string{"www." + d}}
		}, noPolicy),
		// The policy names an MX host the domain does not use: senders
		// use the policy, and refuse the lab's MX hosts under it (the
		// policy fails; its enforce mode passes).
		mtastsCase("mtasts-mx-mismatch", func(d string, s *mtastsSetup) {
			s.handler = mtastsServe(mtastsPolicy("enforce", 1209600, "mail.outlook.example"))
		}, want{"email.mtasts.policy": check.Fail}),
		// max_age 0 (Mail Check's MaxAgeParser: 0 < max_age ≤ 31557600).
		mtastsCase("mtasts-bad-max-age", func(d string, s *mtastsSetup) {
			s.handler = mtastsServe(mtastsPolicy("enforce", 0))
		}, noPolicy),
		// Two MTA-STS records: senders ignore both (the record fails); the
		// policy itself is valid and judged.
		mtastsCase("mtasts-two-records", func(d string, s *mtastsSetup) {
			s.sts = append(s.sts, "v=STSv1; id=20240101T000000")
		}, want{"email.mtasts.record": check.Fail}),
		// No MTA-STS at all on a receiving domain, with TLS-RPT (the good
		// TLS-RPT case): the record fails; with no record senders look
		// for no policy, so the policy and mode do not apply.
		mtastsCase("mtasts-absent", func(d string, s *mtastsSetup) {
			s.sts, s.handler = nil, nil
		}, want{"email.mtasts.record": check.Fail, "email.mtasts.policy": check.NA, "email.mtasts.mode": check.NA}),
		// enforce, and the domain's own MX host serves a self-signed
		// certificate: email.mx.cert fails, and is high (senders that
		// honour the policy refuse delivery).
		mtastsCase("mtasts-enforce-bad-mx-cert", func(d string, s *mtastsSetup) {
			s.mx = &Host{Name: "mx." + d, SMTP: &SMTPSpec{Cert: CertSpec{SelfSigned: true}}}
			s.mxWant = want{"email.mx.cert": check.Fail}
			s.handler = mtastsServe(mtastsPolicy("enforce", 1209600, "mx."+d))
		}, want{}),

		// TLS-RPT (the MTA-STS setup is good).
		// The retired NCSC address beside the trust's own: a note.
		mtastsCase("tlsrpt-ncsc-legacy", func(d string, s *mtastsSetup) {
			s.tlsrpt = []string{"v=TLSRPTv1; rua=mailto:tls-rua@mailcheck.service.ncsc.gov.uk,mailto:tls-reports@" + d}
		}, want{}),
		// Only the retired NCSC address: nobody reads the reports.
		mtastsCase("tlsrpt-ncsc-only", func(d string, s *mtastsSetup) {
			s.tlsrpt = []string{"v=TLSRPTv1; rua=mailto:tls-rua@mailcheck.service.ncsc.gov.uk"}
		}, want{"email.tlsrpt": check.Warn}),
		// An http: URI, which RFC 8460 does not allow.
		mtastsCase("tlsrpt-bad-scheme", func(d string, s *mtastsSetup) {
			s.tlsrpt = []string{"v=TLSRPTv1; rua=http://tlsrpt." + d + "/report"}
		}, want{"email.tlsrpt": check.Fail}),
		// Two TLS-RPT records: senders ignore both.
		mtastsCase("tlsrpt-two-records", func(d string, s *mtastsSetup) {
			s.tlsrpt = append(s.tlsrpt, "v=TLSRPTv1; rua=mailto:other@"+d)
		}, want{"email.tlsrpt": check.Fail}),
		// No TLS-RPT record.
		mtastsCase("tlsrpt-absent", func(d string, s *mtastsSetup) {
			s.tlsrpt = nil
		}, want{"email.tlsrpt": check.Fail}),
	}
}
