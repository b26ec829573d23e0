package email

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// DANE is the catalogue id of the DANE collector.
const DANE = "email.dane"

const ruleDANE = "mx-dane-tlsa"

const daneMaxRecords = 16 // TLSA records kept

// DANEEvidence is the TLSA lookup at _25._tcp.<mx host>.
type DANEEvidence struct {
	Host   string `json:"host"`
	Name   string `json:"name"`
	Rcode  string `json:"rcode,omitempty"`
	Alias  string `json:"alias,omitempty"` // where a CNAME at Name led
	Error  string `json:"error,omitempty"`
	Class  string `json:"class,omitempty"`
	AD     bool   `json:"ad,omitempty"` // the resolver set the AD bit (not validated here)
	Extra  int    `json:"extra,omitempty"`
	Record []TLSA `json:"tlsa,omitempty"`
}

// TLSA is one TLSA record (RFC 6698 §2.1).
type TLSA struct {
	Usage        uint8  `json:"usage"`
	Selector     uint8  `json:"selector"`
	MatchingType uint8  `json:"matching_type"`
	Data         string `json:"data"` // hex, as published
}

func (t TLSA) String() string {
	d := t.Data
	if len(d) > 16 {
		d = d[:16] + "…"
	}
	return fmt.Sprintf("%d %d %d %s", t.Usage, t.Selector, t.MatchingType, d)
}

// DANECheck returns the email.dane collector.
func DANECheck() check.Check {
	return check.New(check.Spec[DANEEvidence]{
		ID:      "email.dane",
		Family:  "email",
		Targets: []check.Kind{check.KindMail},
		Policy:  Settings,
		Rules: []check.Meta{{
			ID: DANE, Rule: ruleDANE, Title: "DANE TLSA records for the MX", Severity: check.Info,
			Description: "The TLSA records at _25._tcp.<mx host> (RFC 7672): none is recorded as a note; records of usage DANE-TA (2) or DANE-EE (3) with a known selector and matching type pass; only PKIX-TA/PKIX-EE (0, 1) or records SMTP clients cannot use warn. Whether they match the served certificate, and their DNSSEC validation (see dns.dnssec), are not checked yet.",
			Remediation: "If you publish DANE for your MX, use TLSA records of usage 3 (DANE-EE) or 2 (DANE-TA), e.g. \"3 1 1 <SHA-256 of the server's public key>\", in a DNSSEC-signed zone, and replace them before you change the key.",
			Standards: []check.Ref{
				rfc("7672", "SMTP Security via Opportunistic DANE TLS", "§3.1 TLSA records for SMTP; §3.1.3 PKIX-TA/PKIX-EE unusable", "unverified"),
				rfc("6698", "The DANE TLSA protocol", "§2.1 TLSA fields", ""),
			},
		}},
		Collect:  collectDANE,
		Evaluate: evaluateDANE,
	})
}

func collectDANE(ctx context.Context, env *check.Env, a check.Asset) (DANEEvidence, error) {
	host := strings.TrimSuffix(strings.ToLower(a.Name), ".")
	ev := DANEEvidence{Host: host, Name: "_25._tcp." + host}
	resp, err := dnsq.Over(env.DNS).Query(ctx, ev.Name, dns.TypeTLSA)
	if err != nil {
		ev.Error, ev.Class = err.Error(), string(check.Classify(err))
		return ev, nil
	}
	ev.Rcode, ev.AD = resp.Rcode, resp.Authenticated
	for _, rr := range resp.Answer {
		switch v := rr.(type) {
		case *dns.CNAME:
			ev.Alias = strings.TrimSuffix(strings.ToLower(v.Target), ".")
		case *dns.TLSA:
			if len(ev.Record) == daneMaxRecords {
				ev.Extra++
				continue
			}
			d := v.Certificate
			if len(d) > 256 {
				d = d[:256] // a SHA-512 is 128 hex digits; full certificates are cut
			}
			ev.Record = append(ev.Record, TLSA{Usage: v.Usage, Selector: v.Selector, MatchingType: v.MatchingType, Data: strings.ToLower(d)})
		}
	}
	return ev, nil
}

// daneUsable says why an SMTP client cannot use a TLSA record ("" if it
// can): RFC 7672 §3.1.3 treats PKIX-TA (0) and PKIX-EE (1) as unusable,
// and unknown selectors or matching types, or a digest of the wrong
// length, make any record unusable (RFC 6698 §2.1).
func daneUsable(t TLSA) string {
	switch {
	case t.Usage == 0 || t.Usage == 1:
		return fmt.Sprintf("usage %d (%s) is unusable for SMTP (RFC 7672 §3.1.3)", t.Usage, map[uint8]string{0: "PKIX-TA", 1: "PKIX-EE"}[t.Usage])
	case t.Usage != 2 && t.Usage != 3:
		return fmt.Sprintf("usage %d is not defined", t.Usage)
	case t.Selector > 1:
		return fmt.Sprintf("selector %d is not defined", t.Selector)
	case t.MatchingType == 1 && len(t.Data) != 64, t.MatchingType == 2 && len(t.Data) != 128:
		return fmt.Sprintf("a matching type %d digest of %d hex digits", t.MatchingType, len(t.Data))
	case t.MatchingType > 2:
		return fmt.Sprintf("matching type %d is not defined", t.MatchingType)
	case t.Data == "":
		return "no certificate data"
	}
	return ""
}

func evaluateDANE(in check.In[DANEEvidence]) []check.Finding {
	ev := in.Evidence
	id, rule := DANE, ruleDANE
	if ev.Error != "" {
		return []check.Finding{unknown(id, rule, fmt.Sprintf("the TLSA lookup at %s failed (%s)", ev.Name, ev.Error), ev.Class)}
	}
	if len(ev.Record) == 0 {
		return []check.Finding{finding(id, rule, check.Pass, "no DANE: no TLSA records at "+ev.Name+" (senders that use DANE fall back to opportunistic TLS)", "")}
	}
	var usable, unusable []string
	for _, t := range ev.Record {
		if why := daneUsable(t); why != "" {
			unusable = append(unusable, t.String()+": "+why)
		} else {
			usable = append(usable, t.String()+" ("+map[uint8]string{2: "DANE-TA", 3: "DANE-EE"}[t.Usage]+")")
		}
	}
	where := ev.Name
	if ev.Alias != "" {
		where += " (through " + ev.Alias + ")"
	}
	dnssec := "the resolver did not mark the answer DNSSEC-authenticated"
	if ev.AD {
		dnssec = "the resolver marked the answer DNSSEC-authenticated (AD)"
	}
	tail := "; matching the served certificate is not checked yet, nor is DNSSEC validated here (" + dnssec + ")"
	if len(usable) == 0 {
		return []check.Finding{finding(id, rule, check.Warn, fmt.Sprintf("TLSA records at %s that SMTP clients cannot use: %s%s", where, strings.Join(unusable, "; "), tail), "")}
	}
	msg := fmt.Sprintf("DANE TLSA records at %s: %s", where, strings.Join(usable, ", "))
	if len(unusable) > 0 {
		msg += "; unusable beside them: " + strings.Join(unusable, "; ")
	}
	if ev.Extra > 0 {
		msg += fmt.Sprintf("; %d more not recorded", ev.Extra)
	}
	return []check.Finding{finding(id, rule, check.Pass, msg+tail, "")}
}
