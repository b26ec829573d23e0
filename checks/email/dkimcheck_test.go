package email

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
	"github.com/nhsx/posture/checks/email/dkim"
)

// The tests of the DKIM, null MX, PTR and DANE collectors share these
// helpers (prefixed, beside the SPF and DMARC tests' own).
const dkimZone = "trust.nhs.uk"

// dkimServe starts a loopback DNS server for zones and returns an Env
// whose resolver asks it.
func dkimServe(t *testing.T, zones, drop []string, records ...string) (*check.Env, *dnstest.Server) {
	t.Helper()
	srv, err := dnstest.Start(zones, records...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.Drop(drop...)
	r := &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: 150 * time.Millisecond, Retries: -1}
	return &check.Env{DNS: r}, srv
}

// dkimRun collects and evaluates c on asset a, and returns its one
// finding and the evidence as stored.
func dkimRun[E any](t *testing.T, c check.Check, env *check.Env, a check.Asset) (check.Finding, E, check.Evidence) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, _ := c.Collect(ctx, env, a)
	var e E
	if len(ev.Data) > 0 {
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			t.Fatal(err)
		}
	}
	fs := c.Evaluate(ev, nil)
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1: %+v", len(fs), fs)
	}
	return fs[0], e, ev
}

func dkimTXT(owner, s string) string {
	// 255-byte character-strings, as a zone file must split a key.
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	return fmt.Sprintf("%s. 300 IN TXT %s", owner, strings.Join(append(parts, `"`+s+`"`), " "))
}

// Classification lookups for evidence built by hand.
var (
	dkimSendingMX  = Lookup{Name: dkimZone, Type: "MX", Rcode: "NOERROR", Answers: []string{"10 mx.trust.nhs.uk."}}
	dkimSendingTXT = Lookup{Name: dkimZone, Type: "TXT", Rcode: "NOERROR", Answers: []string{"v=spf1 include:spf.protection.outlook.com -all"}}
	dkimParkedMX   = Lookup{Name: dkimZone, Type: "MX", Rcode: "NOERROR", Answers: []string{"0 ."}}
	dkimParkedTXT  = Lookup{Name: dkimZone, Type: "TXT", Rcode: "NOERROR", Answers: []string{"v=spf1 -all"}}
)

func sel(name string, answers ...string) DKIMSelector {
	l := Lookup{Name: name + "._domainkey." + dkimZone, Type: "TXT", Rcode: "NOERROR", Answers: answers}
	if len(answers) == 0 {
		l.Rcode, l.Void = "NXDOMAIN", true
	}
	return DKIMSelector{Selector: name, Source: "common", Lookup: l}
}

func selFailed(name string) DKIMSelector {
	return DKIMSelector{Selector: name, Source: "common", Lookup: Lookup{Name: name + "._domainkey." + dkimZone, Type: "TXT", Error: "dns TXT: timeout", Class: "timeout"}}
}

// dkimEv builds evidence: the given selectors found, the rest of the
// common list asked and absent, the probe answered by wild.
func dkimEv(parked bool, wild []string, found ...DKIMSelector) DKIMEvidence {
	ev := DKIMEvidence{Domain: dkimZone, MX: dkimSendingMX, TXT: dkimSendingTXT, Probe: sel("posture-probe-0123", wild...)}
	if parked {
		ev.MX, ev.TXT = dkimParkedMX, dkimParkedTXT
	}
	have := map[string]bool{}
	for _, s := range found {
		have[s.Selector] = true
		ev.Selectors = append(ev.Selectors, s)
	}
	for _, s := range DKIMCommonSelectors {
		switch {
		case have[s]:
		case len(wild) > 0:
			ev.Selectors = append(ev.Selectors, sel(s, wild...))
		default:
			ev.Selectors = append(ev.Selectors, sel(s))
		}
	}
	return ev
}

func TestEvaluateDKIM(t *testing.T) {
	s := dkim.Samples
	null := "v=DKIM1; p="
	rsa := func(k string) string { return "v=DKIM1; k=rsa; p=" + k }
	spf := "v=spf1 -all"
	mxFailed := dkimEv(false, nil, sel("selector1", null))
	mxFailed.MX = Lookup{Name: dkimZone, Type: "MX", Error: "timeout", Class: "timeout"}
	mxFailed.TXT = dkimParkedTXT
	wildMXFailed := dkimEv(true, []string{null})
	wildMXFailed.MX = mxFailed.MX
	pruned := DKIMEvidence{Domain: dkimZone, MX: dkimSendingMX, TXT: dkimSendingTXT, Pruned: true,
		Node: Lookup{Name: "_domainkey." + dkimZone, Type: "TXT", Rcode: "NXDOMAIN", Void: true}}
	for _, tc := range []struct {
		name   string
		ev     DKIMEvidence
		want   check.Outcome
		reason string
		says   []string
		never  []string
	}{
		{"a 2048-bit RSA key passes", dkimEv(false, nil, sel("selector1", rsa(s.RSA2048))), check.Pass, "",
			[]string{"selector1: RSA 2048 bits"}, nil},
		{"a 1024-bit RSA key warns", dkimEv(false, nil, sel("google", rsa(s.RSA1024))), check.Warn, "",
			[]string{"google: RSA 1024 bits", "RFC 8301"}, nil},
		{"a 512-bit RSA key fails", dkimEv(false, nil, sel("s1", rsa(s.RSA512))), check.Fail, "",
			[]string{"s1: RSA 512 bits: below 1024"}, nil},
		{"an Ed25519 key passes", dkimEv(false, nil, sel("k2", "v=DKIM1; k=ed25519; p="+s.Ed25519)), check.Pass, "",
			[]string{"k2: Ed25519"}, nil},
		{"the weakest of several keys decides", dkimEv(false, nil, sel("selector1", rsa(s.RSA2048)), sel("s1", rsa(s.RSA512)), sel("k2", rsa(s.RSA1024))), check.Fail, "",
			[]string{"selector1: RSA 2048", "s1: RSA 512", "k2: RSA 1024"}, nil},
		{"a record verifiers cannot read fails", dkimEv(false, nil, sel("dkim", "v=DKIM1; p=!!garbage")), check.Fail, "",
			[]string{"dkim: a record verifiers cannot read (p= is not base64)"}, nil},
		{"a key limited to sha1 fails", dkimEv(false, nil, sel("mail", "v=DKIM1; h=sha1; p="+s.RSA2048)), check.Fail, "",
			[]string{"cannot use", "RFC 8301"}, nil},
		{"two records at one selector warn", dkimEv(false, nil, sel("selector2", rsa(s.RSA2048), rsa(s.RSA4096))), check.Warn, "",
			[]string{"2 TXT records", "§3.6.2.2"}, nil},
		{"a revoked key on a parked domain is null DKIM", dkimEv(true, nil, sel("selector1", null)), check.Pass, "",
			[]string{"null DKIM on a parked domain", "selector1 revoked"}, nil},
		{"only revoked keys on a sending domain pass with a note", dkimEv(false, nil, sel("selector1", null)), check.Pass, "",
			[]string{"only revoked keys found (selector1", "no active key among the 20 selectors tried"}, nil},
		{"a revoked key beside an active one is named", dkimEv(false, nil, sel("selector1", rsa(s.RSA2048)), sel("selector2", null)), check.Pass, "",
			[]string{"selector1: RSA 2048", "revoked: selector2"}, nil},
		{"no selector found is not determined, never fail", dkimEv(false, nil), check.Unknown, "no-selector",
			[]string{"no DKIM selector found among the 20 tried", "not determined"}, nil},
		{"no _domainkey node is not determined, never fail", pruned, check.Unknown, "no-selector",
			[]string{"_domainkey.trust.nhs.uk does not exist (NXDOMAIN)", "RFC 8020", "not determined"}, nil},
		{"a protective wildcard on a parked domain passes without listing every selector", dkimEv(true, []string{null}), check.Pass, "",
			[]string{"null DKIM on a parked domain", "protective wildcard", "20 of those tried"}, []string{"selector1", "google"}},
		{"a protective wildcard on a sending domain leaves DKIM not determined", dkimEv(false, []string{null}), check.Unknown, "no-selector",
			[]string{"only the protective wildcard answered", "not determined"}, []string{"selector1"}},
		{"a key beside a protective wildcard is judged alone", dkimEv(false, []string{null}, sel("selector2", rsa(s.RSA2048))), check.Pass, "",
			[]string{"selector2: RSA 2048", "protective wildcard"}, []string{"selector1:", "google"}},
		{"a weak key behind a wildcard of keys fails once", dkimEv(false, []string{rsa(s.RSA512)}), check.Fail, "",
			[]string{"*: a wildcard under _domainkey that answers every selector: RSA 512"}, []string{"selector1"}},
		{"a wildcard of non-DKIM TXT is not a key", dkimEv(false, []string{spf}), check.Unknown, "no-selector",
			[]string{"not a DKIM key: not counted", "not determined"}, nil},
		{"failed lookups with nothing found are unknown with their class", dkimEv(false, nil, selFailed("selector1"), selFailed("selector2")), check.Unknown, "timeout",
			[]string{"2 selectors could not be looked up (selector1, selector2)"}, nil},
		{"failed lookups beside a key found are a note", dkimEv(false, nil, sel("google", rsa(s.RSA2048)), selFailed("selector1")), check.Pass, "",
			[]string{"google: RSA 2048", "1 selector could not be looked up (selector1)"}, nil},
		{"a revoked key needs no class: both readings pass", mxFailed, check.Pass, "", []string{"selector1"}, nil},
		{"a protective wildcard with the class unknown is unknown", wildMXFailed, check.Unknown, "timeout",
			[]string{"could not tell whether the domain sends or receives mail"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := DKIM().Evaluate(dkimEvidence(t, tc.ev), nil)
			if len(fs) != 1 {
				t.Fatalf("%d findings", len(fs))
			}
			f := fs[0]
			if f.CheckID != DKIMKeys || f.Outcome != tc.want || f.Reason != tc.reason {
				t.Errorf("got %s %s (reason %q): %s; want %s (reason %q)", f.CheckID, f.Outcome, f.Reason, f.Message, tc.want, tc.reason)
			}
			for _, w := range tc.says {
				if !strings.Contains(f.Message, w) {
					t.Errorf("message %q does not say %q", f.Message, w)
				}
			}
			for _, w := range tc.never {
				if strings.Contains(f.Message, w) {
					t.Errorf("message %q says %q", f.Message, w)
				}
			}
			if f.Severity != check.Medium {
				t.Errorf("severity %s", f.Severity)
			}
		})
	}
}

func dkimEvidence(t *testing.T, ev DKIMEvidence) check.Evidence {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return check.Evidence{CheckID: "email.dkim", Asset: check.Asset{Kind: check.KindDomain, Name: dkimZone}, Data: b, Version: 1}
}

func TestCollectDKIM(t *testing.T) {
	d := dkimZone
	s := dkim.Samples
	sending := []string{d + ". 300 IN MX 10 mx." + d + ".", dkimTXT(d, "v=spf1 ip4:192.0.2.0/24 -all")}
	parked := []string{d + ". 300 IN MX 0 .", dkimTXT(d, "v=spf1 -all")}
	asset := check.Asset{Kind: check.KindDomain, Name: d, Domain: d}
	// A selector the scanner does not ask: _domainkey.<d> exists.
	unrelated := dkimTXT("unasked-2019._domainkey."+d, "v=DKIM1; p=")
	hints := func(sels ...string) func(check.Asset, string) []string {
		return func(a check.Asset, key string) []string {
			if key != "dkim_selectors" || a.Name != d {
				return nil
			}
			return sels
		}
	}
	t.Run("a selector only the estate names is found through the hint", func(t *testing.T) {
		recs := append(sending, dkimTXT("nhs2026._domainkey."+d, "v=DKIM1; k=rsa; p="+s.RSA2048))
		env, _ := dkimServe(t, []string{d}, nil, recs...)
		f, _, _ := dkimRun[DKIMEvidence](t, DKIM(), env, asset)
		if f.Outcome != check.Unknown || f.Reason != "no-selector" {
			t.Errorf("without the hint: %s %q, want unknown (no-selector)", f.Outcome, f.Message)
		}
		env.Hints = hints("NHS2026", "bad selector!", "nhs2026")
		f, ev, _ := dkimRun[DKIMEvidence](t, DKIM(), env, asset)
		if f.Outcome != check.Pass || !strings.Contains(f.Message, "nhs2026: RSA 2048 bits") {
			t.Errorf("with the hint: %s %q, want pass naming nhs2026", f.Outcome, f.Message)
		}
		if len(ev.Estate) != 1 || ev.Estate[0] != "nhs2026" || ev.Selectors[0].Source != "estate" ||
			len(ev.Rejected) != 1 || len(ev.Selectors) != len(DKIMCommonSelectors)+1 {
			t.Errorf("estate %v, rejected %v, %d selectors (first %+v)", ev.Estate, ev.Rejected, len(ev.Selectors), ev.Selectors[0])
		}
		if !strings.Contains(f.Message, "bad selector! are not selectors") {
			t.Errorf("message %q does not name the rejected hint", f.Message)
		}
	})
	t.Run("a protective wildcard is told by the random selector", func(t *testing.T) {
		env, srv := dkimServe(t, []string{d}, nil, append(parked, dkimTXT("*._domainkey."+d, "v=DKIM1; p="))...)
		f, ev, _ := dkimRun[DKIMEvidence](t, DKIM(), env, asset)
		if f.Outcome != check.Pass || !strings.Contains(f.Message, "protective wildcard") || strings.Contains(f.Message, "selector1") {
			t.Errorf("%s %q, want a pass naming the wildcard and no selector", f.Outcome, f.Message)
		}
		if !strings.HasPrefix(ev.Probe.Selector, "posture-probe-") || len(ev.Probe.Lookup.Answers) != 1 ||
			srv.QueriesFor(ev.Probe.Selector+"._domainkey."+d) != 1 {
			t.Errorf("probe %+v", ev.Probe)
		}
	})
	t.Run("a CNAME to the provider's key is followed and named", func(t *testing.T) {
		recs := append(sending, "selector1._domainkey."+d+". 300 IN CNAME selector1-trust._domainkey.provider.nhs.uk.",
			dkimTXT("selector1-trust._domainkey.provider.nhs.uk", "v=DKIM1; k=rsa; p="+s.RSA1024))
		env, _ := dkimServe(t, []string{"nhs.uk"}, nil, recs...)
		f, ev, _ := dkimRun[DKIMEvidence](t, DKIM(), env, asset)
		if f.Outcome != check.Warn || !strings.Contains(f.Message, "through selector1-trust._domainkey.provider.nhs.uk") {
			t.Errorf("%s %q, want warn through the alias", f.Outcome, f.Message)
		}
		if len(ev.Selectors[0].Alias) != 1 {
			t.Errorf("alias %v", ev.Selectors[0].Alias)
		}
	})
	t.Run("a domain that does not exist is unknown (nxdomain)", func(t *testing.T) {
		env, _ := dkimServe(t, []string{"nhs.uk"}, nil, sending...)
		f, _, _ := dkimRun[DKIMEvidence](t, DKIM(), env, check.Asset{Kind: check.KindDomain, Name: "gone.nhs.uk"})
		if f.Outcome != check.Unknown || f.Reason != string(check.ErrNoDomain) {
			t.Errorf("%s %s %q", f.Outcome, f.Reason, f.Message)
		}
	})
	t.Run("selectors that never answer are unknown, never fail", func(t *testing.T) {
		var drop []string
		for _, s := range DKIMCommonSelectors {
			drop = append(drop, s+"._domainkey."+d)
		}
		env, _ := dkimServe(t, []string{d}, drop, append(sending, unrelated)...)
		f, _, _ := dkimRun[DKIMEvidence](t, DKIM(), env, asset)
		if f.Outcome != check.Unknown || f.Reason != "timeout" {
			t.Errorf("%s %s %q, want unknown (timeout)", f.Outcome, f.Reason, f.Message)
		}
	})
	t.Run("at most 30 selectors are asked, the estate's first", func(t *testing.T) {
		var many []string
		for i := range 40 {
			many = append(many, fmt.Sprintf("sel%d", i))
		}
		env, srv := dkimServe(t, []string{d}, nil, append(sending, unrelated)...)
		env.Hints = hints(many...)
		f, ev, _ := dkimRun[DKIMEvidence](t, DKIM(), env, asset)
		if len(ev.Selectors) != dkimMaxSelectors || ev.Selectors[29].Selector != "sel29" || srv.QueriesFor("selector1._domainkey."+d) != 0 {
			t.Errorf("%d selectors asked, last %s", len(ev.Selectors), ev.Selectors[len(ev.Selectors)-1].Selector)
		}
		if !strings.Contains(f.Message, "among the 30 tried") {
			t.Errorf("message %q", f.Message)
		}
	})
	t.Run("no _domainkey node: only the estate's selectors are asked (RFC 8020)", func(t *testing.T) {
		env, srv := dkimServe(t, []string{d}, nil, sending...)
		env.Hints = hints("nhs2026")
		f, ev, _ := dkimRun[DKIMEvidence](t, DKIM(), env, asset)
		if f.Outcome != check.Unknown || f.Reason != "no-selector" || !strings.Contains(f.Message, "_domainkey.trust.nhs.uk does not exist (NXDOMAIN)") ||
			!strings.Contains(f.Message, "estate file's nhs2026 were not found") {
			t.Errorf("%s %s %q", f.Outcome, f.Reason, f.Message)
		}
		if !ev.Pruned || len(ev.Selectors) != 1 || ev.Probe.Selector != "" || srv.QueriesFor("selector1._domainkey."+d) != 0 ||
			srv.QueriesFor("nhs2026._domainkey."+d) != 1 {
			t.Errorf("pruned %v, selectors %+v, probe %+v", ev.Pruned, ev.Selectors, ev.Probe)
		}
	})
	t.Run("an oversized record is cut and fails to parse", func(t *testing.T) {
		big := "v=DKIM1; n=" + strings.Repeat("x", dkim.MaxRecordLen) + "; p=" + s.RSA2048
		env, _ := dkimServe(t, []string{d}, nil, append(sending, dkimTXT("google._domainkey."+d, big))...)
		f, ev, _ := dkimRun[DKIMEvidence](t, DKIM(), env, asset)
		var g DKIMSelector
		for _, s := range ev.Selectors {
			if s.Selector == "google" {
				g = s
			}
		}
		if f.Outcome != check.Fail || !g.Truncated || len(g.Lookup.Answers[0]) != dkim.MaxRecordLen+1 {
			t.Errorf("%s %q; truncated %v", f.Outcome, f.Message, g.Truncated)
		}
	})
}
