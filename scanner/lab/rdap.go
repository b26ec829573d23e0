package lab

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnscheck"
)

// The fake RDAP service (RFC 9082 paths, RFC 9083 JSON): GET
// /domain/<name> for the registrable domain of every lab domain (its
// stamped zone, lab-<case>[-n].nhs.uk: nhs.uk is a public suffix), with
// the registration its case gives it (rdapProfiles) or the default: a
// year left, locked against transfer by the registrar. Anything else is
// 404 with an RDAP error object, as registries answer.

// rdapProfile is one registration: its expiry from the lab's start and
// its status values (RFC 8056 names).
type rdapProfile struct {
	expires time.Duration
	status  []string
}

var rdapDefault = rdapProfile{expires: 365 * 24 * time.Hour, status: []string{"client transfer prohibited", "active"}}

// rdapProfiles are the registrations of the DNS hygiene cases, by case.
var rdapProfiles = map[string]rdapProfile{
	"dns-expiring": {expires: 20 * 24 * time.Hour, status: rdapDefault.status},
	"dns-expired":  {expires: -3 * 24 * time.Hour, status: []string{"client transfer prohibited", "client hold"}},
	"dns-unlocked": {expires: rdapDefault.expires, status: []string{"active"}},
}

type rdapEvent struct {
	Action string `json:"eventAction"`
	Date   string `json:"eventDate"`
}

type rdapEntity struct {
	ObjectClassName string   `json:"objectClassName"`
	Handle          string   `json:"handle"`
	Roles           []string `json:"roles"`
	VCardArray      []any    `json:"vcardArray"`
}

type rdapDomain struct {
	ObjectClassName string       `json:"objectClassName"`
	Handle          string       `json:"handle"`
	LDHName         string       `json:"ldhName"`
	Status          []string     `json:"status"`
	Events          []rdapEvent  `json:"events"`
	Entities        []rdapEntity `json:"entities"`
	Nameservers     []any        `json:"nameservers"`
	Conformance     []string     `json:"rdapConformance"`
	Notices         []any        `json:"notices"`
}

// startRDAP indexes the registrations and serves them on loopback.
func (l *Lab) startRDAP() error {
	h := l.hygiene
	h.rdap = map[string]rdapProfile{}
	for i, d := range l.domains {
		if d.Absent {
			continue
		}
		c := l.cases[i%len(l.cases)]
		p, ok := rdapProfiles[c.Name]
		if !ok {
			p = rdapDefault
		}
		h.rdap[dnscheck.Registrable(domainName(c.Name, i/len(l.cases)+1))] = p
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("lab: listen rdap: %w", err)
	}
	l.RDAPURL = "http://" + ln.Addr().String() + "/"
	l.infra[portOf(ln.Addr().String())] = true
	start := l.pki.now
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	l.serve(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rdap+json")
		name, ok := strings.CutPrefix(r.URL.Path, "/domain/")
		name = strings.ToLower(strings.TrimSuffix(name, "."))
		p, known := h.rdap[name]
		if !ok || !known || r.Method != http.MethodGet {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]any{"errorCode": 404, "title": "Not Found",
				"description": []string{"the lab registry has no such object"}, "rdapConformance": []string{"rdap_level_0"}})
			return
		}
		handle := strings.ToUpper(strings.ReplaceAll(name, ".", "-"))
		json.NewEncoder(w).Encode(rdapDomain{
			ObjectClassName: "domain", Handle: handle, LDHName: name, Status: p.status,
			Events: []rdapEvent{
				{"registration", ts(start.AddDate(-6, 0, 0))},
				{"expiration", ts(start.Add(p.expires))},
				{"last changed", ts(start.AddDate(0, -2, 0))},
			},
			Entities: []rdapEntity{{ObjectClassName: "entity", Handle: "LAB-REGISTRAR", Roles: []string{"registrar"},
				VCardArray: []any{"vcard", []any{[]any{"version", map[string]any{}, "text", "4.0"}, []any{"fn", map[string]any{}, "text", "Lab Registrar Ltd"}}}}},
			Nameservers: []any{map[string]any{"objectClassName": "nameserver", "ldhName": NS1}, map[string]any{"objectClassName": "nameserver", "ldhName": NS2}},
			Conformance: []string{"rdap_level_0", "icann_rdap_response_profile_0"},
			Notices:     []any{map[string]any{"title": "Terms of use", "description": []string{"A lab registry: nothing here is real."}}},
		})
	})}, ln)
	return nil
}

// services are the configured services a check of the lab may call: the
// RDAP service, over the lab's network.
func (l *Lab) services() map[string]check.Service {
	u, err := url.Parse(l.RDAPURL)
	if err != nil || l.RDAPURL == "" {
		return nil
	}
	return map[string]check.Service{dnscheck.RDAPService: {URL: u, Client: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: l.Dial, MaxIdleConnsPerHost: 4, IdleConnTimeout: 5 * time.Second}}}}
}
