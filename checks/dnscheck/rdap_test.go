package dnscheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/scanner"
)

var rdapNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func rdapRecord(expiry time.Time, status ...string) *RDAPDomain {
	return &RDAPDomain{ObjectClassName: "domain", LDHName: "a.nhs.uk", Status: status,
		Events: []RDAPEvent{{Action: "registration", Date: "2001-01-01T00:00:00Z"}, {Action: "expiration", Date: expiry.Format(time.RFC3339)}}}
}

func TestEvaluateRDAPJudgesExpiryAndLock(t *testing.T) {
	days := func(n int) time.Time { return rdapNow.Add(time.Duration(n) * 24 * time.Hour) }
	ok := func(rec *RDAPDomain) RDAPEvidence {
		return RDAPEvidence{Domain: "a.nhs.uk", Registrable: "a.nhs.uk", Service: "https://rdap.test/", Status: 200, Record: rec}
	}
	tests := []struct {
		name         string
		ev           RDAPEvidence
		expiry, lock check.Outcome
		reason       string
		msg          string
	}{
		{"a year left, registrar lock", ok(rdapRecord(days(365), "client transfer prohibited")), check.Pass, check.Pass, "", "runs until 2027-12-01 (365 days)"},
		{"31 days", ok(rdapRecord(days(31), "server transfer prohibited")), check.Pass, check.Pass, "", "31 days"},
		{"30 days warns", ok(rdapRecord(days(30), "clientTransferProhibited")), check.Warn, check.Pass, "", "in 30 days"},
		{"7 days fails", ok(rdapRecord(days(7), "client transfer prohibited")), check.Fail, check.Pass, "", "in 7 days"},
		{"expired fails", ok(rdapRecord(days(-2), "client transfer prohibited")), check.Fail, check.Pass, "", "expired on 2026-11-29"},
		{"being deleted fails", ok(rdapRecord(days(300), "redemption period")), check.Fail, check.Fail, "", "the registry is deleting"},
		{"no lock", ok(rdapRecord(days(365), "active")), check.Pass, check.Fail, "", "not locked"},
		{"no status", ok(rdapRecord(days(365))), check.Pass, check.Unknown, RDAPNoData, "no status values"},
		{"no expiration event", ok(&RDAPDomain{ObjectClassName: "domain", Status: []string{"active"}}), check.Unknown, check.Fail, RDAPNoData, "no expiration event"},
		{"no service", RDAPEvidence{Domain: "a.nhs.uk", Registrable: "a.nhs.uk"}, check.Unknown, check.Unknown, RDAPNoService, "--rdap-url"},
		{"service down", RDAPEvidence{Domain: "a.nhs.uk", Registrable: "a.nhs.uk", Service: "https://rdap.test/", Error: "rdap: i/o timeout", Class: "timeout"}, check.Unknown, check.Unknown, "timeout", "could not be read"},
		{"not found", RDAPEvidence{Domain: "a.nhs.uk", Registrable: "a.nhs.uk", Service: "https://rdap.test/", Status: 404}, check.Unknown, check.Unknown, RDAPNotFound, "HTTP 404"},
		{"server error", RDAPEvidence{Domain: "a.nhs.uk", Registrable: "a.nhs.uk", Service: "https://rdap.test/", Status: 503}, check.Unknown, check.Unknown, "error", "HTTP 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := byID(evaluateRDAP(check.In[RDAPEvidence]{Evidence: tt.ev, CollectedAt: rdapNow}))
			e, l := fs[DomainExpiry], fs[RegistrarLock]
			if e.Outcome != tt.expiry || l.Outcome != tt.lock {
				t.Fatalf("expiry %s (%s), lock %s (%s); want %s, %s", e.Outcome, e.Message, l.Outcome, l.Message, tt.expiry, tt.lock)
			}
			if tt.reason != "" && e.Reason != tt.reason && l.Reason != tt.reason {
				t.Errorf("reasons %q, %q; want %q", e.Reason, l.Reason, tt.reason)
			}
			if !strings.Contains(e.Message+" | "+l.Message, tt.msg) {
				t.Errorf("messages %q | %q lack %q", e.Message, l.Message, tt.msg)
			}
		})
	}
	t.Run("severities: fail high, warn medium, lock low", func(t *testing.T) {
		c := RDAPCheck()
		for exp, want := range map[int]check.Severity{3: check.High, 20: check.Medium} {
			b, _ := json.Marshal(ok(rdapRecord(days(exp), "active")))
			fs := byID(c.Evaluate(check.Evidence{CheckID: "dns.rdap", CollectedAt: rdapNow, Data: b, Version: 1}, nil))
			if fs[DomainExpiry].Severity != want || fs[RegistrarLock].Severity != check.Low {
				t.Errorf("%d days: expiry %s, lock %s; want %s, low", exp, fs[DomainExpiry].Severity, fs[RegistrarLock].Severity, want)
			}
		}
	})
}

// rdapJSON is an RDAP domain object as registries serve it.
func rdapJSON(name string, expiry time.Time, status ...string) string {
	st, _ := json.Marshal(status)
	return fmt.Sprintf(`{"objectClassName":"domain","ldhName":%q,"handle":"X1","status":%s,
	 "events":[{"eventAction":"registration","eventDate":"2004-03-01T10:00:00Z"},{"eventAction":"expiration","eventDate":%q},{"eventAction":"last changed","eventDate":"2025-01-01T00:00:00.123Z"}],
	 "entities":[{"objectClassName":"entity","roles":["registrar"],"vcardArray":["vcard",[["version",{},"text","4.0"],["fn",{},"text","Lab Registrar Ltd"]]]}],
	 "rdapConformance":["rdap_level_0"]}`, strings.ToUpper(name), st, expiry.Format(time.RFC3339))
}

// TestCollectRDAPReadsTheRegistry: GET <base>domain/<registrable> on the
// configured service; the registrable domain of a name under nhs.uk is one
// label below it; a 404, an oversized or malformed answer is unknown.
func TestCollectRDAPReadsTheRegistry(t *testing.T) {
	w := startDNS(t, []string{"uk."}, soa("good.nhs.uk", 1), "www.good.nhs.uk. 300 IN A 192.0.2.1",
		soa("soon.nhs.uk", 1), soa("huge.nhs.uk", 1), soa("junk.nhs.uk", 1), soa("unknown.nhs.uk", 1))
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		rw.Header().Set("Content-Type", "application/rdap+json")
		switch r.URL.Path {
		case "/rdap/domain/good.nhs.uk":
			fmt.Fprint(rw, rdapJSON("good.nhs.uk", rdapNow.AddDate(1, 0, 0), "client transfer prohibited", "active"))
		case "/rdap/domain/soon.nhs.uk":
			fmt.Fprint(rw, rdapJSON("soon.nhs.uk", rdapNow.AddDate(0, 0, 20), "active"))
		case "/rdap/domain/huge.nhs.uk":
			fmt.Fprint(rw, `{"objectClassName":"domain","remarks":"`+strings.Repeat("x", rdapMaxBody)+`"}`)
		case "/rdap/domain/junk.nhs.uk":
			fmt.Fprint(rw, `{"objectClassName":"domain","status":"not a list"}`)
		default:
			rw.WriteHeader(http.StatusNotFound)
			fmt.Fprint(rw, `{"errorCode":404,"title":"Not Found"}`)
		}
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL + "/rdap/")
	env := (&hygieneNet{world: w}).env()
	env.Now = func() time.Time { return rdapNow }
	env.Services = map[string]check.Service{RDAPService: {URL: base, Client: srv.Client()}}
	c := RDAPCheck()
	tests := []struct {
		domain       string
		expiry, lock check.Outcome
		reason       string
		msg          string
	}{
		{"good.nhs.uk", check.Pass, check.Pass, "", "registrar Lab Registrar Ltd"},
		{"www.good.nhs.uk", check.Pass, check.Pass, "", "good.nhs.uk"},
		{"soon.nhs.uk", check.Warn, check.Fail, "", "in 20 days"},
		{"huge.nhs.uk", check.Unknown, check.Unknown, string(check.ErrTooLarge), "larger than"},
		{"junk.nhs.uk", check.Unknown, check.Unknown, string(check.ErrMalformed), "not an RDAP object"},
		{"unknown.nhs.uk", check.Unknown, check.Unknown, RDAPNotFound, "HTTP 404"},
		{"gone.nhs.uk", check.Unknown, check.Unknown, string(check.ErrNoDomain), "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			ev, fs := collectOne(t, c, env, tt.domain)
			m := byID(fs)
			e, l := m[DomainExpiry], m[RegistrarLock]
			if e.Outcome != tt.expiry || l.Outcome != tt.lock || (tt.reason != "" && e.Reason != tt.reason) || !strings.Contains(e.Message, tt.msg) {
				t.Fatalf("expiry %s %q (%s), lock %s (%s); want %s %q, %s, %q\nevidence %.500s", e.Outcome, e.Reason, e.Message, l.Outcome, l.Message,
					tt.expiry, tt.reason, tt.lock, tt.msg, ev.Data)
			}
		})
	}
	if paths[0] != "/rdap/domain/good.nhs.uk" || paths[1] != "/rdap/domain/good.nhs.uk" {
		t.Errorf("requests %v: want GET <base>domain/<registrable domain>", paths)
	}
	t.Run("no service configured", func(t *testing.T) {
		env := (&hygieneNet{world: w}).env()
		_, fs := collectOne(t, c, env, "good.nhs.uk")
		if f := byID(fs)[DomainExpiry]; f.Outcome != check.Unknown || f.Reason != RDAPNoService {
			t.Fatalf("got %+v", f)
		}
	})
}

// TestADownRDAPServiceCostsOneConnectionPerRun: behind the scanner's
// breaker, a service that accepts connections and never answers is asked
// once; every domain after that is unknown at once.
func TestADownRDAPServiceCostsOneConnectionPerRun(t *testing.T) {
	var zones []string
	for i := range 20 {
		zones = append(zones, soa(fmt.Sprintf("d%d.nhs.uk", i), 1))
	}
	w := startDNS(t, []string{"uk."}, zones...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int64
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer conn.Close() // held open, silent, until the test ends
		}
	}()
	base, _ := url.Parse("http://" + l.Addr().String() + "/")
	// As scanner.ServiceClient builds it: the transport times out a
	// silent service (a client-wide Timeout cancels the request's context
	// instead, which the breaker takes for the caller giving up).
	client := scanner.Breaker(&http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 300 * time.Millisecond}})
	env := (&hygieneNet{world: w}).env()
	env.Services = map[string]check.Service{RDAPService: {URL: base, Client: client}}
	c := RDAPCheck()
	start := time.Now()
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ev, _ := c.Collect(ctx, env, check.Asset{Kind: check.KindDomain, Name: fmt.Sprintf("d%d.nhs.uk", i)})
		cancel()
		for _, f := range c.Evaluate(ev, nil) {
			if f.Outcome != check.Unknown || f.Reason != string(check.ErrTimeout) {
				t.Fatalf("d%d: %+v, want unknown (timeout)", i, f)
			}
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections to the down service, want 1", n)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("20 domains took %v: the breaker should make them cost one timeout", d)
	}
}

func FuzzParseRDAP(f *testing.F) {
	f.Add([]byte(rdapJSON("a.nhs.uk", rdapNow, "client transfer prohibited")))
	f.Add([]byte(`{"objectClassName":"domain","events":[{"eventAction":"expiration","eventDate":"not a date"}]}`))
	f.Add([]byte(`{"objectClassName":"domain","entities":[{"roles":["registrar"],"vcardArray":["vcard",[["fn",{},"text",1]]]}]}`))
	f.Add([]byte(`{"objectClassName":"entity"}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseRDAP(b)
		if err != nil {
			return
		}
		if len(d.Status) > rdapMaxList || len(d.Events) > rdapMaxList || len(d.Registrar) > rdapMaxString || len(d.LDHName) > rdapMaxString {
			t.Fatalf("bounds not kept: %d status, %d events, %d-byte registrar", len(d.Status), len(d.Events), len(d.Registrar))
		}
		for _, s := range append(d.Status, d.Registrar, d.LDHName) {
			if strings.ContainsAny(s, "\r\n\x00") {
				t.Fatalf("control characters kept: %q", s)
			}
		}
		d.Expiry()
		d.HasStatus("client transfer prohibited")
	})
}
