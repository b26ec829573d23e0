package email

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/email/dkim"
)

// DKIMKeys is the catalogue id of the DKIM collector.
const DKIMKeys = "email.dkim.keys"

const ruleDKIMKeys = "dkim-keys-strong"

// DKIM key size thresholds (checks.md §1.6; RFC 8301 §3.2: verifiers must
// not accept keys below 1024 bits, signers should use at least 2048).
const (
	dkimMinBits  = 1024
	dkimGoodBits = 2048
)

// Bounds of the DKIM collector.
const (
	dkimMaxSelectors = 30 // selectors asked per domain (estate first)
	dkimMaxAnswers   = 4  // TXT records kept per selector
	dkimParallel     = 8  // selector lookups in flight per domain
)

// DKIMCommonSelectors are the selectors asked on every domain besides the
// estate's: the defaults of the mail services NHS bodies use, and the
// generic names signing software ships with. Selectors cannot be
// enumerated (checks.md §3.1 decision 8), so a domain whose selectors are
// none of these and not in the estate file is "not determined".
var DKIMCommonSelectors = []string{
	"selector1", "selector2", // Microsoft 365 / Exchange Online (CNAMEs to the tenant's keys)
	"google",   // Google Workspace's default selector
	"s1", "s2", // SendGrid automated security (and NationBuilder)
	"k1", "k2", "k3", // Mailchimp and Mandrill (k1._domainkey → dkim.mcsv.net)
	"mandrill",     // Mandrill's older selector
	"default",      // cPanel and OpenDKIM's default KeyTable selector
	"dkim", "mail", // generic names in admin guides and public selector lists
	"smtp", "mx", // Mailgun's defaults
	"mxvault",       // MXVault hosting: named in checks.md §1.6 and public selector lists
	"everlytickey1", // Everlytic (public selector lists)
	"everlytickey2", //
	"zoho",          // Zoho Mail's default
	"protonmail",    // Proton Mail (protonmail, protonmail2, protonmail3)
	"fm1",           // Fastmail (fm1, fm2, fm3)
}

// DKIMEvidence is what the DKIM collector saw. The domain's TXT and MX
// lookups classify it (parked or not, checks.md §4); the probe is a random
// selector that only a wildcard answers.
type DKIMEvidence struct {
	Domain string `json:"domain"`
	TXT    Lookup `json:"txt"`
	MX     Lookup `json:"mx"`
	// Estate are the selectors the estate file names for the domain's
	// organisation (dkim_selectors), as asked; Rejected those that are not
	// selectors (not asked).
	Estate   []string `json:"estate,omitempty"`
	Rejected []string `json:"rejected,omitempty"`
	// Node is the TXT lookup at _domainkey.<domain>. NXDOMAIN there means
	// no name below it exists (RFC 8020 §2), so no selector can: the
	// common selectors and the probe are then not asked (Pruned), only
	// the estate's.
	Node      Lookup         `json:"node"`
	Pruned    bool           `json:"pruned,omitempty"`
	Probe     DKIMSelector   `json:"probe"`
	Selectors []DKIMSelector `json:"selectors"`
}

// DKIMSelector is the TXT lookup at <selector>._domainkey.<domain>.
type DKIMSelector struct {
	Selector string `json:"selector"`
	Source   string `json:"source"` // estate, common or probe
	Lookup   Lookup `json:"lookup"`
	// Alias is the CNAME chain the name led through (the key is then the
	// target's: Microsoft 365 and most mail services publish it so).
	Alias []string `json:"alias,omitempty"`
	// Truncated: records beyond dkimMaxAnswers, or longer than
	// dkim.MaxRecordLen (kept one character longer, so they fail to
	// parse), were cut.
	Truncated bool `json:"truncated,omitempty"`
}

// DKIM returns the email.dkim collector.
func DKIM() check.Check {
	return check.New(check.Spec[DKIMEvidence]{
		ID:      "email.dkim",
		Family:  "email",
		Targets: []check.Kind{check.KindDomain},
		Policy:  Settings,
		Rules: []check.Meta{{
			ID: DKIMKeys, Rule: ruleDKIMKeys, Title: "DKIM keys strong", Severity: check.Medium,
			Description: "Every DKIM key found at <selector>._domainkey.<domain>, for the selectors the estate file names (dkim_selectors) and about twenty common ones, parses and is RSA of 2048 bits or more (1024–2047 warns, below 1024 or a record verifiers cannot use fails) or Ed25519. A revoked key (empty p=) passes; a protective *._domainkey wildcard is recognised and passes on a parked domain. No selector found is unknown (DKIM not determined), never fail.",
			Remediation: "Publish DKIM keys of at least 2048 bits (RSA) or Ed25519 for every service that sends mail as your domain, " +
				"and revoke (empty p=) or remove the DNS records of weaker or retired keys. Tell the posture team your selectors (dkim_selectors in the estate file) so they are checked.",
			Standards: []check.Ref{
				mc("Dkim.Evaluator/Rules/SelectorShouldBeWellConfigured.cs (< 1024 error, < 2048 \"We recommend a longer key size\")"),
				rfc("8301", "Cryptographic Algorithm and Key Usage Update to DKIM", "§3.1 rsa-sha1 not used; §3.2 keys of 1024 bits at least, 2048 recommended", "unverified"),
				rfc("6376", "DKIM Signatures", "§3.6.1 key record tags; §3.6.2.2 one record per selector", ""),
				rfc("8463", "A New Cryptographic Signature Method for DKIM (Ed25519)", "§4.2 key format", ""),
				{Standard: "CISA Cyber Hygiene FAQ", Section: "querying it out first requires a 'selector' (DKIM is not scanned)"},
				refGovSGE,
			},
		}},
		Collect:  collectDKIM,
		Evaluate: evaluateDKIM,
	})
}

func collectDKIM(ctx context.Context, env *check.Env, a check.Asset) (DKIMEvidence, error) {
	r := dnsq.Over(env.DNS)
	domain := strings.TrimSuffix(strings.ToLower(a.Name), ".")
	ev := DKIMEvidence{Domain: domain}
	ev.TXT = query(ctx, r, domain, dns.TypeTXT)
	if err := noDomain("dkim", ev.TXT); err != nil {
		return ev, err
	}
	ev.MX = query(ctx, r, domain, dns.TypeMX)
	if err := noDomain("dkim", ev.MX); err != nil {
		return ev, err
	}
	ev.Node = query(ctx, r, "_domainkey."+domain, dns.TypeTXT)
	ev.Pruned = ev.Node.Rcode == "NXDOMAIN"
	var sels []DKIMSelector
	seen := map[string]bool{}
	for _, s := range env.Hint(a, "dkim_selectors") {
		s = strings.ToLower(strings.TrimSpace(s))
		switch {
		case seen[s]:
		case !dkimValidSelector(s, domain):
			ev.Rejected = append(ev.Rejected, s)
		case len(sels) < dkimMaxSelectors:
			seen[s] = true
			ev.Estate = append(ev.Estate, s)
			sels = append(sels, DKIMSelector{Selector: s, Source: "estate"})
		}
	}
	all := sels
	if !ev.Pruned {
		for _, s := range DKIMCommonSelectors {
			if !seen[s] && len(all) < dkimMaxSelectors {
				seen[s] = true
				all = append(all, DKIMSelector{Selector: s, Source: "common"})
			}
		}
		// A random selector: only a wildcard answers it.
		b := make([]byte, 8)
		rand.Read(b)
		all = append(all, DKIMSelector{Selector: "posture-probe-" + hex.EncodeToString(b), Source: "probe"})
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, dkimParallel)
	for i := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			dkimLookup(ctx, r, &all[i], domain)
		}()
	}
	wg.Wait()
	if !ev.Pruned {
		all, ev.Probe = all[:len(all)-1], all[len(all)-1]
	}
	ev.Selectors = all
	return ev, nil
}

// dkimValidSelector: one or more labels of letters, digits, '-' and '_'
// (RFC 6376 §3.1: a selector is a sub-domain; '_' is seen in the wild),
// and a name under the domain short enough to ask.
func dkimValidSelector(s, domain string) bool {
	if s == "" || len(s+"._domainkey."+domain) > 253 || strings.Contains(s, "_domainkey") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// dkimLookup asks TXT at the selector's name and records it, bounded.
func dkimLookup(ctx context.Context, r *dnsq.Client, s *DKIMSelector, domain string) {
	name := s.Selector + "._domainkey." + domain
	s.Lookup = Lookup{Name: name, Type: "TXT"}
	resp, err := r.Query(ctx, name, dns.TypeTXT)
	if err != nil {
		s.Lookup.Error, s.Lookup.Class = err.Error(), string(check.Classify(err))
		return
	}
	s.Lookup.Rcode, s.Lookup.Size, s.Lookup.Void = resp.Rcode, resp.Size, resp.Void()
	for _, rr := range resp.Answer {
		switch v := rr.(type) {
		case *dns.CNAME:
			if len(s.Alias) < 8 {
				s.Alias = append(s.Alias, strings.TrimSuffix(strings.ToLower(v.Target), "."))
			}
		case *dns.TXT:
			if len(s.Lookup.Answers) == dkimMaxAnswers {
				s.Truncated = true
				continue
			}
			t := strings.Join(v.Txt, "")
			if len(t) > dkim.MaxRecordLen {
				t, s.Truncated = t[:dkim.MaxRecordLen+1], true
			}
			s.Lookup.Answers = append(s.Lookup.Answers, t)
		}
	}
}

// dkimVerdict is the judgement of one key record.
type dkimVerdict struct {
	o       check.Outcome
	desc    string
	revoked bool
}

// dkimJudgeKey judges one key record.
func dkimJudgeKey(rec string) dkimVerdict {
	k, err := dkim.Parse(rec)
	if err != nil {
		var reason string
		if e, ok := err.(*dkim.Error); ok {
			reason = e.Reason
		}
		return dkimVerdict{o: check.Fail, desc: "a record verifiers cannot read (" + reason + ")"}
	}
	if k.Revoked {
		return dkimVerdict{o: check.Pass, desc: "revoked (empty p=)", revoked: true}
	}
	v := dkimVerdict{o: check.Pass}
	switch {
	case k.Unusable != "":
		v.o, v.desc = check.Fail, "a key verifiers cannot use: "+k.Unusable
	case k.Type == dkim.KeyEd25519:
		v.desc = "Ed25519"
	case k.Bits < dkimMinBits:
		v.o, v.desc = check.Fail, fmt.Sprintf("RSA %d bits: below %d, which verifiers must reject (RFC 8301 §3.2)", k.Bits, dkimMinBits)
	case k.Bits < dkimGoodBits:
		v.o, v.desc = check.Warn, fmt.Sprintf("RSA %d bits: below the %d bits signers should use (RFC 8301 §3.2)", k.Bits, dkimGoodBits)
	default:
		v.desc = fmt.Sprintf("RSA %d bits", k.Bits)
	}
	if k.Format == "pkcs1" {
		v.desc += ", published as a bare RSAPublicKey"
	}
	if k.Testing() {
		v.desc += "; t=y: in testing, so verifiers treat its mail as unsigned"
	}
	return v
}

// dkimFound is a selector with records of its own, judged.
type dkimFound struct {
	name    string // the selector, or "*" for a wildcard
	outcome check.Outcome
	desc    string
	revoked bool // every record is a revoked key
}

func dkimJudgeSelector(name string, s DKIMSelector) dkimFound {
	f := dkimFound{name: name, revoked: true}
	var descs []string
	for _, rec := range s.Lookup.Answers {
		v := dkimJudgeKey(rec)
		f.outcome = check.Worst(f.outcome, v.o)
		f.revoked = f.revoked && v.revoked
		descs = append(descs, v.desc)
	}
	f.desc = strings.Join(descs, " and ")
	if n := len(s.Lookup.Answers); n > 1 {
		// RFC 6376 §3.6.2.2: the results of several records are undefined.
		f.outcome = check.Worst(f.outcome, check.Warn)
		f.desc = fmt.Sprintf("%d TXT records, so verifiers may use either (RFC 6376 §3.6.2.2): %s", n, f.desc)
		if s.Truncated {
			f.desc += " and more"
		}
	}
	if len(s.Alias) > 0 {
		f.desc += " (through " + s.Alias[len(s.Alias)-1] + ")"
	}
	return f
}

func evaluateDKIM(in check.In[DKIMEvidence]) []check.Finding {
	ev := in.Evidence
	c := classify(ev.MX, spfRecords(ev.TXT.Answers), ev.TXT.Error, ev.TXT.Class)
	return []check.Finding{byClass(c, func(parked bool) check.Finding { return dkimJudge(ev, parked) })}
}

func dkimJudge(ev DKIMEvidence, parked bool) check.Finding {
	id, rule := DKIMKeys, ruleDKIMKeys
	tried := len(ev.Selectors)
	// The wildcard, if the random selector got an answer.
	wild := ev.Probe.Lookup.Answers
	var notes []string
	var found []dkimFound
	var failed []DKIMSelector
	covered := 0
	for _, s := range ev.Selectors {
		switch {
		case s.Lookup.failed():
			failed = append(failed, s)
		case len(s.Lookup.Answers) == 0:
		case len(wild) > 0 && dkimSameSet(s.Lookup.Answers, wild):
			covered++
		default:
			found = append(found, dkimJudgeSelector(s.Selector, s))
		}
	}
	wildNull := false
	switch {
	case ev.Probe.Lookup.failed():
		notes = append(notes, "the lookup of a random selector, which tells a wildcard, failed ("+ev.Probe.Lookup.Error+")")
	case len(wild) > 0 && !slices.ContainsFunc(wild, dkim.LooksLikeKey):
		notes = append(notes, "a wildcard answers every selector with TXT that is not a DKIM key: not counted")
	case len(wild) > 0:
		w := dkimJudgeSelector("*", ev.Probe)
		if w.revoked {
			wildNull = true
		} else {
			w.desc = "a wildcard under _domainkey that answers every selector: " + w.desc
			found = append(found, w)
		}
	}
	if len(failed) > 0 {
		var names []string
		for _, s := range failed {
			names = append(names, s.Selector)
		}
		notes = append(notes, fmt.Sprintf("%s could not be looked up (%s)", plural(len(failed), "selector", "selectors"), strings.Join(names, ", ")))
	}
	if len(ev.Rejected) > 0 {
		notes = append(notes, "the estate file's dkim_selectors "+strings.Join(ev.Rejected, ", ")+" are not selectors and were not asked")
	}
	tail := func(msg string) string {
		if len(notes) > 0 {
			msg += "; " + strings.Join(notes, "; ")
		}
		return msg
	}
	var active, revoked []string
	worst := check.Outcome("")
	for _, f := range found {
		if f.revoked {
			revoked = append(revoked, f.name)
			continue
		}
		active = append(active, f.name+": "+f.desc)
		worst = check.Worst(worst, f.outcome)
	}
	wildNote := ""
	if wildNull {
		wildNote = fmt.Sprintf("a protective wildcard (*._domainkey, empty p=) revokes every other selector, %d of those tried included", covered)
	}
	switch {
	case len(active) > 0:
		msg := "DKIM keys found: " + strings.Join(active, "; ")
		if len(revoked) > 0 {
			msg += "; revoked: " + strings.Join(revoked, ", ")
		}
		if wildNote != "" {
			msg += "; " + wildNote
		}
		return finding(id, rule, worst, tail(msg), "")
	case len(revoked) > 0 && parked:
		msg := "null DKIM on a parked domain: " + strings.Join(revoked, ", ") + " revoked (empty p=)"
		if wildNote != "" {
			msg += "; " + wildNote
		}
		return finding(id, rule, check.Pass, tail(msg), "")
	case len(revoked) > 0:
		msg := fmt.Sprintf("only revoked keys found (%s: empty p=); no active key among the %d selectors tried", strings.Join(revoked, ", "), tried)
		if wildNote != "" {
			msg += "; " + wildNote
		}
		return finding(id, rule, check.Pass, tail(msg), "")
	case wildNull && parked:
		return finding(id, rule, check.Pass, tail("null DKIM on a parked domain: "+wildNote), "")
	case wildNull:
		f := unknown(id, rule, tail(fmt.Sprintf("only the protective wildcard answered (*._domainkey, empty p=): no selector of the domain's own among the %d tried, so DKIM is not determined", tried)), "no-selector")
		f.Remediation = remedyDKIMUnknown
		return f
	case len(failed) > 0:
		return unknown(id, rule, tail(fmt.Sprintf("no DKIM key found among the %d selectors tried", tried)), failed[0].Lookup.Class)
	}
	msg := fmt.Sprintf("no DKIM selector found among the %d tried (%s): DKIM not determined", tried, dkimSources(ev))
	if ev.Pruned {
		msg = fmt.Sprintf("no DKIM selector: %s does not exist (NXDOMAIN), so no selector below it does (RFC 8020)", ev.Node.Name)
		if len(ev.Estate) > 0 {
			msg += fmt.Sprintf(", and the estate file's %s were not found either", strings.Join(ev.Estate, ", "))
		}
		msg += ": DKIM not determined"
	}
	f := unknown(id, rule, tail(msg), "no-selector")
	f.Remediation = remedyDKIMUnknown
	return f
}

const remedyDKIMUnknown = "Nothing may be wrong: DKIM selectors cannot be listed from DNS. Add the selectors your mail services sign with " +
	"to your organisation's dkim_selectors in the estate file (for Microsoft 365: selector1 and selector2) so that their keys are checked."

func dkimSources(ev DKIMEvidence) string {
	if len(ev.Estate) == 0 {
		return "common selectors; the estate file names none for this organisation"
	}
	return fmt.Sprintf("the estate file's %s and common selectors", strings.Join(ev.Estate, ", "))
}

// dkimSameSet reports whether two TXT answer lists hold the same records.
func dkimSameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
