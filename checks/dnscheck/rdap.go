package dnscheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
)

// Catalogue ids of the RDAP collector.
const (
	DomainExpiry  = "dns.domain-expiry"
	RegistrarLock = "dns.registrar-lock"
)

const (
	ruleDomainExpiry  = "registration-not-expiring"
	ruleRegistrarLock = "transfer-locked"
)

// Thresholds of dns.domain-expiry (checks.md §1.5): more than 30 days
// left passes, 30 or fewer warns, 7 or fewer (or expired) fails. The dns
// policy section does not carry them (yet): they are the catalogue's.
const (
	rdapWarnDays = 30
	rdapFailDays = 7
)

// Bounds against a hostile or broken RDAP service.
const (
	rdapMaxBody   = 1 << 20
	rdapMaxList   = 32  // status values and events kept
	rdapMaxString = 256 // bytes kept of any string
	rdapMaxDepth  = 8   // entity nesting searched for the registrar
)

// RDAPService is the name of the configured service (Env.Service).
const RDAPService = "rdap"

// Reasons of unknown RDAP findings that are not error classes.
const (
	RDAPNoService = "no-service" // no RDAP service is configured
	RDAPNotFound  = "not-found"  // the service has no such domain (HTTP 404)
	RDAPNoData    = "no-data"    // the record lacks what the rule reads
)

// RDAPEvidence is the registry's record of the domain's registrable
// domain, as the configured RDAP service gave it (RFC 9083), reduced to
// what the rules read.
type RDAPEvidence struct {
	Domain      string `json:"domain"`
	Registrable string `json:"registrable,omitempty"`
	// Service is the configured base URL ("": none is configured); URL
	// the request (GET <base>domain/<name>, RFC 9082 §3.1.3).
	Service string `json:"service,omitempty"`
	URL     string `json:"url,omitempty"`
	// Status is the HTTP status; Bytes the body's size.
	Status int         `json:"status,omitempty"`
	Bytes  int         `json:"bytes,omitempty"`
	Record *RDAPDomain `json:"record,omitempty"`
	Error  string      `json:"error,omitempty"`
	Class  string      `json:"class,omitempty"`
}

// RDAPDomain is the part of an RDAP domain object the rules read.
type RDAPDomain struct {
	ObjectClassName string      `json:"object_class,omitempty"`
	LDHName         string      `json:"ldh_name,omitempty"`
	Status          []string    `json:"status,omitempty"`
	Events          []RDAPEvent `json:"events,omitempty"`
	// Registrar is the "fn" of the entity with the registrar role.
	Registrar string `json:"registrar,omitempty"`
}

// RDAPEvent is one event (eventAction, eventDate as served).
type RDAPEvent struct {
	Action string `json:"action"`
	Date   string `json:"date"`
}

// RDAPCheck returns the dns.rdap collector (dns.domain-expiry and
// dns.registrar-lock).
func RDAPCheck() check.Check {
	return check.New(check.Spec[RDAPEvidence]{
		ID: "dns.rdap", Family: "dns", Targets: []check.Kind{check.KindDomain},
		Rules: []check.Meta{{
			ID: DomainExpiry, Rule: ruleDomainExpiry, Title: "The domain's registration is not about to expire", Severity: check.High,
			Description: "The expiration event of the registrable domain's RDAP record (RFC 9083) from the configured RDAP service (--rdap-url): more than 30 days left passes, 30 or fewer warns, 7 or fewer or expired fails; a registry deleting it (redemption period, pending delete) fails. Without an RDAP service, or when it does not answer, unknown.",
			Remediation: "Renew the domain's registration now, and set it to renew automatically with your registrar; make sure the registrar's renewal notices reach a monitored role mailbox.",
			Standards: []check.Ref{
				{Standard: "security.gov.uk: Protecting public sector domains", Section: `Managing expiring domains: "it will be automatically suspended by the registry operator"`},
				{Standard: "NCSC CAF v3.2", Section: "A3.a Asset management (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"},
				{Standard: "RFC 9083 (JSON responses for RDAP)", Section: "§4.5 events (expiration)", URL: "https://www.rfc-editor.org/rfc/rfc9083"},
			},
		}, {
			ID: RegistrarLock, Rule: ruleRegistrarLock, Title: "The domain is locked against transfer", Severity: check.Low,
			Description: "The registrable domain's RDAP status includes client transfer prohibited (a registrar lock) or server transfer prohibited (a registry lock); neither fails.",
			Remediation: "Ask your registrar to set the transfer lock (clientTransferProhibited) on the domain, and for a critical domain the registry lock (serverTransferProhibited).",
			Standards: []check.Ref{
				{Standard: "GOV.UK: Keeping your domain name secure", Section: `§1 "Make sure your domains are registry locked"`, URL: "https://www.gov.uk/guidance/keeping-your-domain-name-secure"},
				{Standard: "GDS Way: Security overview", Section: "§2 registrar safeguards"},
				{Standard: "NCSC CAF v3.2", Section: "B4.c Secure management (evidence only)", URL: "https://www.ncsc.gov.uk/collection/cyber-assessment-framework"},
				{Standard: "RFC 8056 (EPP and RDAP status mapping)", URL: "https://www.rfc-editor.org/rfc/rfc8056"},
			},
		}},
		Collect:  collectRDAP,
		Evaluate: evaluateRDAP,
	})
}

func collectRDAP(ctx context.Context, env *check.Env, a check.Asset) (RDAPEvidence, error) {
	ev := RDAPEvidence{Domain: a.Name, Registrable: Registrable(a.Name)}
	if err := hygieneExists(ctx, dnsq.Over(env.DNS), "dns.rdap", a.Name); err != nil {
		return ev, err
	}
	svc, ok := env.Service(RDAPService)
	if !ok {
		return ev, nil
	}
	ev.Service = svc.URL.String()
	if ev.Registrable == "" {
		ev.Error, ev.Class = fmt.Sprintf("%s has no registrable domain on the public suffix list", a.Name), string(check.ErrOther)
		return ev, nil
	}
	u := svc.URL.JoinPath("domain", ev.Registrable)
	ev.URL = u.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ev.URL, nil)
	if err != nil {
		ev.Error, ev.Class = err.Error(), string(check.ErrInternal)
		return ev, nil
	}
	req.Header.Set("Accept", "application/rdap+json, application/json;q=0.9")
	resp, err := svc.Client.Do(req)
	if err != nil {
		ev.Error, ev.Class = "rdap: "+err.Error(), string(check.Classify(err))
		return ev, nil
	}
	defer resp.Body.Close()
	ev.Status = resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, rdapMaxBody+1))
	ev.Bytes = len(body)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		ev.Error, ev.Class = "rdap: read: "+err.Error(), string(check.Classify(err))
	case len(body) > rdapMaxBody:
		ev.Error, ev.Class = fmt.Sprintf("rdap: the answer is larger than %d bytes", rdapMaxBody), string(check.ErrTooLarge)
	case resp.StatusCode != http.StatusOK:
		// Evaluate reads the status.
	default:
		rec, err := ParseRDAP(body)
		if err != nil {
			ev.Error, ev.Class = "rdap: "+err.Error(), string(check.ErrMalformed)
		} else {
			ev.Record = &rec
		}
	}
	return ev, nil
}

// rdapRaw is the wire form of the fields read (RFC 9083 §4.5, §5.3).
type rdapRaw struct {
	ObjectClassName string          `json:"objectClassName"`
	LDHName         string          `json:"ldhName"`
	Status          []string        `json:"status"`
	Events          []rdapRawEvent  `json:"events"`
	Entities        []rdapRawEntity `json:"entities"`
}

type rdapRawEvent struct {
	Action string `json:"eventAction"`
	Date   string `json:"eventDate"`
}

type rdapRawEntity struct {
	Roles    []string        `json:"roles"`
	VCard    json.RawMessage `json:"vcardArray"`
	Entities []rdapRawEntity `json:"entities"`
}

// ParseRDAP reads an RDAP domain object (RFC 9083 §5.3). The input is
// hostile: values of the wrong type are errors, lists are cut to
// rdapMaxList entries and strings to rdapMaxString bytes of valid UTF-8.
func ParseRDAP(b []byte) (RDAPDomain, error) {
	var raw rdapRaw
	if err := json.Unmarshal(b, &raw); err != nil {
		return RDAPDomain{}, fmt.Errorf("the answer is not an RDAP object: %w", err)
	}
	d := RDAPDomain{ObjectClassName: rdapClip(raw.ObjectClassName), LDHName: rdapClip(raw.LDHName)}
	if d.ObjectClassName != "domain" {
		return d, fmt.Errorf("the answer is a %q object, not a domain", d.ObjectClassName)
	}
	for _, s := range raw.Status[:min(len(raw.Status), rdapMaxList)] {
		d.Status = append(d.Status, rdapClip(s))
	}
	for _, e := range raw.Events[:min(len(raw.Events), rdapMaxList)] {
		d.Events = append(d.Events, RDAPEvent{Action: rdapClip(e.Action), Date: rdapClip(e.Date)})
	}
	d.Registrar = rdapRegistrar(raw.Entities, 0)
	return d, nil
}

// rdapRegistrar finds the fn of the first entity with the registrar role.
func rdapRegistrar(es []rdapRawEntity, depth int) string {
	if depth > rdapMaxDepth {
		return ""
	}
	for _, e := range es[:min(len(es), rdapMaxList)] {
		if slices.Contains(e.Roles, "registrar") {
			if fn := rdapVCardFN(e.VCard); fn != "" {
				return fn
			}
		}
		if fn := rdapRegistrar(e.Entities, depth+1); fn != "" {
			return fn
		}
	}
	return ""
}

// rdapVCardFN reads the fn property of a jCard (RFC 7095):
// ["vcard", [["fn", {}, "text", "Name"], …]].
func rdapVCardFN(raw json.RawMessage) string {
	var card []json.RawMessage
	if json.Unmarshal(raw, &card) != nil || len(card) != 2 {
		return ""
	}
	var props [][]json.RawMessage
	if json.Unmarshal(card[1], &props) != nil {
		return ""
	}
	for _, p := range props[:min(len(props), rdapMaxList)] {
		var name, value string
		if len(p) >= 4 && json.Unmarshal(p[0], &name) == nil && name == "fn" && json.Unmarshal(p[3], &value) == nil {
			return rdapClip(value)
		}
	}
	return ""
}

// rdapClip bounds a string from the service: at most rdapMaxString bytes,
// valid UTF-8, no control characters.
func rdapClip(s string) string {
	if len(s) > rdapMaxString {
		s = s[:rdapMaxString]
	}
	s = strings.ToValidUTF8(s, "") // a rune cut in two goes too
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// Expiry returns the latest expiration event's time.
func (d *RDAPDomain) Expiry() (time.Time, bool) {
	var t time.Time
	found := false
	for _, e := range d.Events {
		if !strings.EqualFold(e.Action, "expiration") {
			continue
		}
		at, err := time.Parse(time.RFC3339, e.Date)
		if err != nil {
			continue
		}
		if !found || at.After(t) {
			t, found = at, true
		}
	}
	return t, found
}

// HasStatus reports whether the record has a status value, compared as
// RFC 8056 maps EPP statuses ("client transfer prohibited") and as
// registries that serve the EPP names ("clientTransferProhibited") write
// it.
func (d *RDAPDomain) HasStatus(want string) bool {
	norm := func(s string) string {
		return strings.NewReplacer(" ", "", "_", "", "-", "").Replace(strings.ToLower(s))
	}
	for _, s := range d.Status {
		if norm(s) == norm(want) {
			return true
		}
	}
	return false
}

func evaluateRDAP(in check.In[RDAPEvidence]) []check.Finding {
	ev := in.Evidence
	expiry := check.Finding{CheckID: DomainExpiry, Rule: ruleDomainExpiry}
	lock := check.Finding{CheckID: RegistrarLock, Rule: ruleRegistrarLock}
	unknown := func(reason, msg string) []check.Finding {
		expiry.Outcome, expiry.Reason, expiry.Message = check.Unknown, reason, msg
		lock.Outcome, lock.Reason, lock.Message = check.Unknown, reason, msg
		return []check.Finding{expiry, lock}
	}
	name := ev.Registrable
	if name == "" {
		name = ev.Domain
	}
	switch {
	case ev.Service == "":
		return unknown(RDAPNoService, "no RDAP service is configured (posture scan --rdap-url): the registration of "+name+" cannot be read")
	case ev.Error != "":
		return unknown(ev.Class, fmt.Sprintf("the RDAP record of %s could not be read: %s", name, ev.Error))
	case ev.Status == http.StatusNotFound:
		return unknown(RDAPNotFound, fmt.Sprintf("the RDAP service %s has no record of %s (HTTP 404): it may not be the registry of that name (names under nhs.uk are delegated by NHS England, not registered with Nominet)", ev.Service, ev.Registrable))
	case ev.Status != http.StatusOK || ev.Record == nil:
		return unknown(string(check.ErrOther), fmt.Sprintf("the RDAP service answered HTTP %d for %s", ev.Status, ev.Registrable))
	}
	rec := ev.Record
	who := ev.Registrable
	if rec.Registrar != "" {
		who += " (registrar " + rec.Registrar + ")"
	}

	deleting := ""
	for _, s := range []string{"redemption period", "pending delete"} {
		if rec.HasStatus(s) {
			deleting = s
		}
	}
	exp, ok := rec.Expiry()
	left := exp.Sub(in.CollectedAt)
	days := int(math.Ceil(left.Hours() / 24)) // days left, a part day counted
	on := exp.UTC().Format("2006-01-02")
	switch {
	case deleting != "":
		expiry.Outcome, expiry.Severity = check.Fail, check.High
		expiry.Message = fmt.Sprintf("the registry is deleting %s (status %q): renew or restore it now", who, deleting)
	case !ok:
		expiry.Outcome, expiry.Reason = check.Unknown, RDAPNoData
		expiry.Message = fmt.Sprintf("the RDAP record of %s has no expiration event", who)
	case left <= 0:
		expiry.Outcome, expiry.Severity = check.Fail, check.High
		expiry.Message = fmt.Sprintf("the registration of %s expired on %s", who, on)
	case left <= rdapFailDays*24*time.Hour:
		expiry.Outcome, expiry.Severity = check.Fail, check.High
		expiry.Message = fmt.Sprintf("the registration of %s expires on %s, in %d days", who, on, days)
	case left <= rdapWarnDays*24*time.Hour:
		expiry.Outcome, expiry.Severity = check.Warn, check.Medium
		expiry.Message = fmt.Sprintf("the registration of %s expires on %s, in %d days", who, on, days)
	default:
		expiry.Outcome = check.Pass
		expiry.Message = fmt.Sprintf("the registration of %s runs until %s (%d days)", who, on, days)
	}

	switch {
	case rec.HasStatus("server transfer prohibited"):
		lock.Outcome = check.Pass
		lock.Message = fmt.Sprintf("%s is registry locked (server transfer prohibited)", who)
	case rec.HasStatus("client transfer prohibited"):
		lock.Outcome = check.Pass
		lock.Message = fmt.Sprintf("%s is locked against transfer by its registrar (client transfer prohibited); a registry lock (server transfer prohibited) is stronger", who)
	case len(rec.Status) == 0:
		lock.Outcome, lock.Reason = check.Unknown, RDAPNoData
		lock.Message = fmt.Sprintf("the RDAP record of %s has no status values", who)
	default:
		lock.Outcome = check.Fail
		lock.Message = fmt.Sprintf("%s is not locked against transfer (status %s)", who, strings.Join(rec.Status, ", "))
	}
	return []check.Finding{expiry, lock}
}
