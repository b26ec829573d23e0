package dnscheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
)

func TestEvaluateDanglingJudgesEachChain(t *testing.T) {
	azure := &DanglingProvider{Service: "Microsoft Azure", Suffix: "azurewebsites.net", Status: "Vulnerable", Fingerprint: "NXDOMAIN"}
	s3 := func(fetch *DanglingFetch) *DanglingProvider {
		return &DanglingProvider{Service: "AWS/S3", Suffix: "s3.amazonaws.com", Status: "Vulnerable", Fingerprint: "The specified bucket does not exist", Fetch: fetch}
	}
	alias := func(end string, p *DanglingProvider, target string) DanglingName {
		return DanglingName{Name: "www.a.nhs.uk", Chain: []string{target}, Target: target, End: end, Provider: p}
	}
	apex := DanglingName{Name: "a.nhs.uk", End: EndNoData}
	tests := []struct {
		name string
		www  DanglingName
		want check.Outcome
		sev  check.Severity
		msg  string
	}{
		{"no alias", DanglingName{Name: "www.a.nhs.uk", End: EndResolves}, check.Pass, "", "no aliases (CNAME) at a.nhs.uk or www.a.nhs.uk"},
		{"alias that resolves", alias(EndResolves, nil, "web.host.test"), check.Pass, "", "www.a.nhs.uk → web.host.test resolves"},
		{"target does not exist", alias(EndNXDomain, nil, "gone.host.test"), check.Fail, check.High, "does not exist (NXDOMAIN)"},
		{"target without address", alias(EndNoData, nil, "txt.host.test"), check.Pass, "", "exists but has no address"},
		{"takeover-prone target does not exist", alias(EndNXDomain, azure, "x.azurewebsites.net"), check.Fail, check.Critical, "Microsoft Azure"},
		{"takeover-prone target without address", alias(EndNoData, azure, "x.azurewebsites.net"), check.Fail, check.Critical, "has no address"},
		{"takeover-prone target resolves, fetch outside the scope", alias(EndResolves, s3(&DanglingFetch{NotMade: "outside the scope"}), "b.s3.amazonaws.com"),
			check.Pass, "", "not fetched (outside the scope): judged on DNS alone"},
		{"takeover-prone target shows the fingerprint", alias(EndResolves, s3(&DanglingFetch{Made: true, Status: 404, Found: true}), "b.s3.amazonaws.com"),
			check.Fail, check.Critical, "unclaimed"},
		{"takeover-prone target serves its owner's page", alias(EndResolves, s3(&DanglingFetch{Made: true, Status: 200}), "b.s3.amazonaws.com"),
			check.Pass, "", "does not show"},
		{"chain loops", DanglingName{Name: "www.a.nhs.uk", Chain: []string{"x.test", "www.a.nhs.uk"}, End: EndLoop}, check.Unknown, "", "does not end"},
		{"lookup failed", DanglingName{Name: "www.a.nhs.uk", End: EndError, Lookups: []DelegationLookup{{Error: "timeout", Class: "timeout"}}}, check.Unknown, "", "could not be followed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := DanglingEvidence{Domain: "a.nhs.uk", Names: []DanglingName{apex, tt.www}}
			fs := evaluateDangling(check.In[DanglingEvidence]{Evidence: ev})
			if len(fs) != 1 || fs[0].Outcome != tt.want || (tt.sev != "" && fs[0].Severity != tt.sev) || !strings.Contains(fs[0].Message, tt.msg) {
				t.Fatalf("got %+v, want %s %s with %q", fs, tt.want, tt.sev, tt.msg)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCollectDanglingFollowsAliases runs the collector against a loopback
// server: aliases at www into the estate, to names that do not exist, into
// a takeover-prone hosting suffix that does not resolve, and into one that
// does, whose page is fetched only when the HTTP client (the scope guard,
// on a scan) allows it.
func TestCollectDanglingFollowsAliases(t *testing.T) {
	w := startDNS(t, []string{"test.", "azurewebsites.net.", "amazonaws.com."},
		soa("plain.test", 1),
		soa("ok.test", 1), "www.ok.test. 300 IN CNAME web.host.test.", "web.host.test. 300 IN A 192.0.2.1",
		soa("v6.test", 1), "www.v6.test. 300 IN CNAME v6.host.test.", "v6.host.test. 300 IN AAAA 2001:db8::1",
		soa("gone.test", 1), "www.gone.test. 300 IN CNAME old.gone.test.",
		soa("azure.test", 1), "www.azure.test. 300 IN CNAME trust-old.azurewebsites.net.",
		soa("bucket.test", 1), "www.bucket.test. 300 IN CNAME b.s3.amazonaws.com.", "b.s3.amazonaws.com. 300 IN A 192.0.2.7",
		soa("loop.test", 1), "www.loop.test. 300 IN CNAME a.loop.test.", "a.loop.test. 300 IN CNAME www.loop.test.",
		soa("slow.test", 1), "www.slow.test. 300 IN CNAME dropped.slow.test.",
	)
	w.Drop("dropped.slow.test.")
	n := &hygieneNet{world: w}
	c := DanglingCNAMECheck()
	tests := []struct {
		domain string
		want   check.Outcome
		sev    check.Severity
		reason string
		msg    string
	}{
		{"plain.test", check.Pass, "", "", "no aliases"},
		{"ok.test", check.Pass, "", "", "www.ok.test → web.host.test resolves"},
		{"v6.test", check.Pass, "", "", "v6.host.test resolves"},
		{"gone.test", check.Fail, check.High, "", "old.gone.test does not exist"},
		{"azure.test", check.Fail, check.Critical, "", "Microsoft Azure"},
		{"bucket.test", check.Pass, "", "", "not fetched (no HTTP client)"},
		{"loop.test", check.Unknown, "", "dns", "does not end"},
		{"slow.test", check.Unknown, "", "timeout", "could not be followed"},
		{"nope.test", check.Unknown, "", string(check.ErrNoDomain), ""},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			ev, fs := collectOne(t, c, n.env(), tt.domain)
			if len(fs) != 1 || fs[0].Outcome != tt.want || fs[0].Reason != tt.reason || (tt.sev != "" && fs[0].Severity != tt.sev) || !strings.Contains(fs[0].Message, tt.msg) {
				t.Fatalf("got %+v\nevidence %s", fs, ev.Data)
			}
		})
	}

	page := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.WriteHeader(http.StatusNotFound)
		fmt.Fprint(rw, "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>")
	}))
	defer page.Close()
	t.Run("the unclaimed page is fetched when the client allows it", func(t *testing.T) {
		env := n.env()
		var host string
		env.HTTP = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host = addr
			return (&net.Dialer{}).DialContext(ctx, network, page.Listener.Addr().String())
		}}}
		_, fs := collectOne(t, c, env, "bucket.test")
		if fs[0].Outcome != check.Fail || fs[0].Severity != check.Critical || host != "www.bucket.test:80" {
			t.Fatalf("got %+v (dialled %q)", fs, host)
		}
	})
	t.Run("a scope refusal is recorded, not judged", func(t *testing.T) {
		env := n.env()
		env.HTTP = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, check.WithClass(check.ErrScope, errors.New("scope: www.bucket.test is an alias of b.s3.amazonaws.com, outside the scope"))
		})}
		ev, fs := collectOne(t, c, env, "bucket.test")
		if fs[0].Outcome != check.Pass || !strings.Contains(fs[0].Message, "outside the scope") || !strings.Contains(string(ev.Data), `"made":false`) {
			t.Fatalf("got %+v\nevidence %s", fs, ev.Data)
		}
	})
}

// TestCollectDanglingFollowsDiscoveredNames: the names discovery saw under
// the domain (the hint "names": CT names it dropped as hosts too) are
// followed; the finding names the subdomains that dangle, and a name with
// no alias, one outside the domain or one beyond the bound is not judged.
func TestCollectDanglingFollowsDiscoveredNames(t *testing.T) {
	w := startDNS(t, []string{"test.", "azurewebsites.net."},
		soa("ct.test", 1), "www.ct.test. 300 IN A 192.0.2.1",
		"legacy-app.ct.test. 300 IN CNAME ct-legacy.azurewebsites.net.",
		"retired.ct.test. 300 IN CNAME gone.ct.test.",
		"portal.ct.test. 300 IN CNAME www.ct.test.",
		"plain.ct.test. 300 IN A 192.0.2.2",
		soa("clean.test", 1), "portal.clean.test. 300 IN CNAME www.clean.test.", "www.clean.test. 300 IN A 192.0.2.3",
	)
	n := &hygieneNet{world: w}
	c := DanglingCNAMECheck()
	hinted := map[string][]string{
		"ct.test": {"ct.test", "www.ct.test", "LEGACY-APP.ct.test.", "*.retired.ct.test", "portal.ct.test",
			"plain.ct.test", "old.ct.test", "outside.example", "bad..ct.test"},
		"clean.test": {"portal.clean.test", "old.clean.test"},
	}
	env := n.env()
	env.Hints = func(a check.Asset, key string) []string {
		if key != "names" {
			return nil
		}
		return hinted[a.Name]
	}
	t.Run("a CT name that dangles fails the domain", func(t *testing.T) {
		ev, fs := collectOne(t, c, env, "ct.test")
		var got DanglingEvidence
		if err := json.Unmarshal(ev.Data, &got); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range got.Names {
			names = append(names, n.Name)
		}
		want := []string{"ct.test", "www.ct.test", "legacy-app.ct.test", "old.ct.test", "plain.ct.test", "portal.ct.test", "retired.ct.test"}
		if !slices.Equal(names, want) {
			t.Errorf("names followed %v, want %v", names, want)
		}
		if len(fs) != 1 || fs[0].Outcome != check.Fail || fs[0].Severity != check.Critical ||
			!strings.Contains(fs[0].Message, "2 of 7 names dangle (legacy-app.ct.test, retired.ct.test)") ||
			!strings.Contains(fs[0].Message, "1 other aliases resolve") {
			t.Fatalf("got %+v", fs)
		}
	})
	t.Run("names without an alias or whose alias resolves pass", func(t *testing.T) {
		_, fs := collectOne(t, c, env, "clean.test")
		if len(fs) != 1 || fs[0].Outcome != check.Pass || !strings.Contains(fs[0].Message, "portal.clean.test → www.clean.test resolves") {
			t.Fatalf("got %+v", fs)
		}
	})
}

func TestDanglingNamesAreBounded(t *testing.T) {
	var hinted []string
	for i := range 500 {
		hinted = append(hinted, fmt.Sprintf("h%03d.a.test", i))
	}
	names, skipped := danglingNames("A.test.", append(hinted, "www.a.test", "a.test"))
	if len(names) != danglingMaxNames || skipped != 500-(danglingMaxNames-2) || names[0] != "a.test" || names[1] != "www.a.test" || names[2] != "h000.a.test" {
		t.Fatalf("%d names (%v…), %d skipped", len(names), names[:3], skipped)
	}
	f := evaluateDangling(check.In[DanglingEvidence]{Evidence: DanglingEvidence{Domain: "a.test", Skipped: 3,
		Names: []DanglingName{{Name: "a.test", End: EndNoData}, {Name: "www.a.test", End: EndNoData}}}})
	if !strings.Contains(f[0].Message, "3 more discovered names not followed") {
		t.Errorf("message %q does not say names were skipped", f[0].Message)
	}
}

func TestDanglingMessageClipsLongLists(t *testing.T) {
	ev := DanglingEvidence{Domain: "a.test"}
	for i := range 30 {
		ev.Names = append(ev.Names, DanglingName{Name: fmt.Sprintf("h%02d.a.test", i), Chain: []string{"x.a.test"}, Target: "x.a.test", End: EndNXDomain})
	}
	f := evaluateDangling(check.In[DanglingEvidence]{Evidence: ev})
	if f[0].Outcome != check.Fail || !strings.Contains(f[0].Message, "30 of 30 names dangle") || !strings.Contains(f[0].Message, "and 22 more") || len(f[0].Message) > 2000 {
		t.Fatalf("%s (%d bytes): %s", f[0].Outcome, len(f[0].Message), f[0].Message)
	}
}

// FuzzDanglingNames: whatever the hint lists (CT names are hostile), the
// names followed are at most danglingMaxNames, start with the domain and
// www, and are valid names inside the domain, each once.
func FuzzDanglingNames(f *testing.F) {
	f.Add("a.test", "www.a.test\n*.A.test.\nlegacy.a.test\nbad..a.test\nx.other.test")
	f.Add("a.test", "\n\n*.\n.a.test\n*.*.a.test")
	f.Fuzz(func(t *testing.T, domain, hints string) {
		names, skipped := danglingNames(domain, strings.Split(hints, "\n"))
		if len(names) > danglingMaxNames || skipped < 0 || len(names) < 2 {
			t.Fatalf("%d names, %d skipped", len(names), skipped)
		}
		seen := map[string]bool{}
		for i, n := range names {
			if seen[n] {
				t.Fatalf("%q followed twice", n)
			}
			seen[n] = true
			if i >= 2 {
				if _, ok := dns.IsDomainName(n); !ok || !strings.HasSuffix(n, "."+names[0]) {
					t.Fatalf("%q followed for %q", n, names[0])
				}
			}
		}
	})
}
