package lab

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/smtp"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/scanner/estate"
)

// testCases are fixtures for behaviours the shipped cases may not show yet:
// a dropped name, a dead host, repositories, extra CT names, expectations.
func testCases() []Case {
	return append([]Case{
		{Name: "t-drop", Family: "t", Build: func(d string) Domain {
			return Domain{Name: d,
				Records: []string{d + `. 300 IN TXT "v=spf1 -all"`, "slow." + d + ". 300 IN A 192.0.2.1",
					d + ". 300 IN MX 5 " + MX2 + "."},
				Drop:   []string{"slow." + d},
				Expect: []Expect{{Kind: check.KindDomain, Name: d, CheckID: "t.drop", Outcome: check.Unknown}}}
		}},
		{Name: "t-dead", Family: "t", Build: func(d string) Domain {
			return Domain{Name: d, Hosts: []Host{{Name: "www." + d, Web: &WebSpec{}, Dead: true}},
				Expect: []Expect{{Kind: check.KindHost, Name: "www." + d, CheckID: "t.dead", Outcome: check.Unknown}}}
		}},
		{Name: "t-repos", Family: "t", Build: func(d string) Domain {
			return Domain{Name: d, Repos: []Repo{{Name: "secrets-demo", Language: "Go"}},
				CT:     []string{"portal." + d, "gone." + d},
				Hosts:  []Host{{Name: "portal." + d, Web: &WebSpec{Cert: CertSpec{Key: KeyRSA2048}}}},
				Expect: []Expect{{Kind: check.KindRepo, Name: "x/secrets-demo", CheckID: "t.repo", Outcome: check.Fail}}}
		}},
	}, scopeCases()...)
}

func startLab(t testing.TB, cfg Config) *Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func client(l *Lab) (*http.Client, *http.Transport) {
	tr := &http.Transport{DialContext: l.Dial, TLSClientConfig: &tls.Config{RootCAs: l.Roots}}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, tr
}

func TestStartIsQuickAndCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	start := time.Now()
	l, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Start took %v; want under 1s", d)
	}
	// Exercise every server so that each has connection goroutines to stop.
	c, tr := client(l)
	for _, u := range []string{"https://www.lab-scope-exclude.nhs.uk/", "http://www.lab-scope-exclude.nhs.uk/",
		l.GitHubURL + "orgs/none", l.CTURL + "?q=%25.lab-scope-cname.nhs.uk&output=json"} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	sc := smtpDial(t, l, MX1)
	sc.Hello("scanner.test")
	if err := smtp.SendMail(l.SMTPAddr, nil, "a@b.nhs.uk", []string{"c@d.nhs.uk"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Resolver().Query(context.Background(), "lab-scope-cname.nhs.uk", dns.TypeSOA); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	sc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before Start, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestDNSServesCaseRecordsRefusesOthersAndDrops(t *testing.T) {
	l := startLab(t, Config{cases: testCases()})
	r := l.Resolver()
	ctx := context.Background()
	addr := func(name string) string {
		addrs, _, err := r.Addrs(ctx, name)
		if err != nil || len(addrs) == 0 {
			return ""
		}
		return addrs[0].String()
	}
	tests := []struct {
		name, qname string
		qtype       uint16
		want        string // a substring of the answer, or the rcode
		wantClass   string // error class, if the query must fail
		absent      string // a substring the answer must not have
	}{
		{"soa at each apex", "lab-t-drop.nhs.uk", dns.TypeSOA, "SOA\tns1.lab-dns.nhs.uk.", "", ""},
		{"ns at each apex", "lab-t-dead.nhs.uk", dns.TypeNS, "NS\tns2.lab-dns.nhs.uk.", "", ""},
		{"case txt record", "lab-t-drop.nhs.uk", dns.TypeTXT, `"v=spf1 -all"`, "", ""},
		{"lab mx when the case has none", "lab-t-dead.nhs.uk", dns.TypeMX, "MX\t10 mx1.lab-mail.nhs.uk.", "", ""},
		{"the case's own mx kept", "lab-t-drop.nhs.uk", dns.TypeMX, "MX\t5 mx2.lab-mail.nhs.uk.", "", "mx1"},
		{"lab mx address", MX2, dns.TypeA, "A\t127.1.", "", ""},
		{"host address", "portal.lab-t-repos.nhs.uk", dns.TypeA, "A\t" + l.HostIP("portal.lab-t-repos.nhs.uk"), "", ""},
		{"baseline www host", "www.lab-t-drop.nhs.uk", dns.TypeA, "A\t127.1.", "", ""},
		{"mail cname to mx", "mail.lab-t-drop.nhs.uk", dns.TypeA, "CNAME\tmx1.lab-mail.nhs.uk.", "", ""},
		{"cname chased outside", "www.lab-scope-cname.nhs.uk", dns.TypeA, "A\t" + OutsideIP, "", ""},
		{"metadata address", "www.lab-scope-metadata.nhs.uk", dns.TypeA, "A\t" + MetadataIP, "", ""},
		{"nxdomain under a lab zone", "old.lab-t-drop.nhs.uk", dns.TypeA, "NXDOMAIN", "", ""},
		{"refused outside the lab", "example.com", dns.TypeA, "", "dns", ""},
		{"dropped name times out", "slow.lab-t-drop.nhs.uk", dns.TypeA, "", "timeout", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := r.Query(ctx, tc.qname, tc.qtype)
			if tc.wantClass != "" {
				if got := check.Classify(err); string(got) != tc.wantClass {
					t.Fatalf("error %v: class %q, want %q", err, got, tc.wantClass)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			all := resp.Rcode + "\n" + strings.Join(resp.Records, "\n") + "\n"
			if !strings.Contains(all, tc.want) {
				t.Errorf("answer %q lacks %q", all, tc.want)
			}
			if tc.absent != "" && strings.Contains(all, tc.absent) {
				t.Errorf("answer %q has %q", all, tc.absent)
			}
		})
	}
	// The name servers' port 53 reaches the lab DNS through Dial, so a check
	// can ask the authoritative servers directly.
	ns := &dnsq.Resolver{Servers: []string{l.HostIP(NS1) + ":53"}, Dial: l.Dial, Timeout: time.Second, Retries: -1}
	if resp, err := ns.Query(ctx, "lab-t-drop.nhs.uk", dns.TypeSOA); err != nil || len(resp.Records) != 1 {
		t.Errorf("SOA from %s:53: %v %v", NS1, resp, err)
	}
	if got, want := addr("www.lab-t-dead.nhs.uk"), l.HostIP("www.lab-t-dead.nhs.uk"); got != want || !strings.HasPrefix(got, "127.1.") {
		t.Errorf("dead host resolves to %q, want its lab address %q", got, want)
	}
}

func TestDialReachesHTTPSHostWithLabCAAndItsCertificate(t *testing.T) {
	l := startLab(t, Config{cases: testCases()})
	c, _ := client(l)
	for _, name := range []string{"www.lab-t-drop.nhs.uk", "portal.lab-t-repos.nhs.uk", "www.lab-scope-exclude.nhs.uk"} {
		resp, err := c.Get("https://" + name + "/")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		leaf := resp.TLS.PeerCertificates[0]
		if resp.StatusCode != 200 || !slices.Contains(leaf.DNSNames, name) || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("%s: status %d, certificate names %v, HSTS %q", name, resp.StatusCode, leaf.DNSNames, resp.Header.Get("Strict-Transport-Security"))
		}
	}
	// The RSA profile's key differs from the default ECDSA one.
	resp, err := c.Get("https://portal.lab-t-repos.nhs.uk/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if alg := resp.TLS.PeerCertificates[0].PublicKeyAlgorithm.String(); alg != "RSA" {
		t.Errorf("portal key %s, want RSA", alg)
	}
	// By address, with the SNI of the name: the host is told apart by the
	// dialled address.
	ip := l.HostIP("www.lab-t-drop.nhs.uk")
	raw, err := l.Dial(context.Background(), "tcp", ip+":443")
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: l.Roots, ServerName: "www.lab-t-drop.nhs.uk"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake by address: %v", err)
	}
	tc.Close()
	// Plain HTTP redirects to HTTPS.
	resp, err = c.Get("http://www.lab-t-drop.nhs.uk/a?b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 301 || loc != "https://www.lab-t-drop.nhs.uk/a" {
		t.Errorf("http: %d Location %q, want 301 to https", resp.StatusCode, loc)
	}
}

func TestDialRefusesWhatTheLabDoesNotServe(t *testing.T) {
	l := startLab(t, Config{cases: testCases()})
	ctx := context.Background()
	tests := []struct {
		name, network, addr string
		want                check.ErrClass
	}{
		{"no internet", "tcp", "192.0.2.7:443", check.ErrUnreachable},
		{"port a host does not serve", "tcp", "www.lab-t-drop.nhs.uk:22", check.ErrUnreachable},
		{"web port of an MX", "tcp", MX1 + ":443", check.ErrUnreachable},
		{"smtp port of a web host", "tcp", "www.lab-t-drop.nhs.uk:25", check.ErrUnreachable},
		{"name that does not resolve", "tcp", "old.lab-t-drop.nhs.uk:443", check.ErrDNS},
		{"udp to a web host", "udp", "www.lab-t-drop.nhs.uk:443", check.ErrUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := l.Dial(ctx, tc.network, tc.addr)
			if err == nil {
				c.Close()
				t.Fatalf("Dial %s succeeded", tc.addr)
			}
			if got := check.Classify(err); got != tc.want {
				t.Errorf("Dial %s: %v: class %q, want %q", tc.addr, err, got, tc.want)
			}
		})
	}
}

func TestDeadHostBlackholesUntilTheCallerGivesUp(t *testing.T) {
	l := startLab(t, Config{cases: testCases()})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := l.Dial(ctx, "tcp", "www.lab-t-dead.nhs.uk:443")
	if got := check.Classify(err); got != check.ErrTimeout || time.Since(start) < 90*time.Millisecond {
		t.Errorf("dead host: %v (class %q) after %v; want a timeout at the deadline", err, got, time.Since(start))
	}
}

func TestLatencyDelaysDNSAndDial(t *testing.T) {
	l := startLab(t, Config{Latency: 60 * time.Millisecond})
	start := time.Now()
	if _, err := l.Resolver().Query(context.Background(), "lab-scope-cname.nhs.uk", dns.TypeSOA); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("DNS answered in %v, want ≥ 60ms", d)
	}
	ip := l.HostIP("www.lab-scope-exclude.nhs.uk")
	start = time.Now()
	c, err := l.Dial(context.Background(), "tcp", ip+":80")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("Dial took %v, want ≥ 60ms", d)
	}
}

func TestScopeFixturesLeadOutsideAndOutsideIsCounted(t *testing.T) {
	l := startLab(t, Config{})
	f := l.Scope()
	c, _ := client(l)
	if n := l.Conns(OutsideIP) + l.Conns(MetadataIP) + l.Conns(f.ExcludedIP); n != 0 {
		t.Fatalf("%d connections before anything was dialled", n)
	}
	// The redirect host sends clients outside.
	for _, scheme := range []string{"http", "https"} {
		resp, err := c.Get(scheme + "://" + f.Redirect + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || loc != "http://"+OutsideName+"/" {
			t.Errorf("%s redirect host: %d %q", scheme, resp.StatusCode, loc)
		}
	}
	if n := l.Conns(OutsideIP); n != 0 {
		t.Fatalf("outside reached %d times without following the redirect", n)
	}
	// A client with no scope guard reaches outside through each fixture,
	// and every connection is counted where it lands.
	steps := []struct {
		url, ip string
	}{
		{"http://" + OutsideName + "/", OutsideIP},
		{"http://" + f.CNAME + "/", OutsideIP},
		{"http://" + f.Metadata + "/latest/meta-data/", MetadataIP},
		{"http://" + f.Excluded + "/", f.ExcludedIP},
	}
	for i, s := range steps {
		before := l.Conns(s.ip)
		resp, err := c.Get(s.url)
		if err != nil {
			t.Fatalf("%s: %v", s.url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.CloseIdleConnections()
		if got := l.Conns(s.ip); got != before+1 {
			t.Errorf("step %d %s: Conns(%s) = %d, want %d", i, s.url, s.ip, got, before+1)
		}
	}
	if !strings.HasPrefix(f.ExcludedIP, "127.1.") {
		t.Errorf("excluded host address %q", f.ExcludedIP)
	}
}

func smtpDial(t *testing.T, l *Lab, host string) *smtp.Client {
	t.Helper()
	conn, err := l.Dial(context.Background(), "tcp", host+":25")
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMXOffersSTARTTLSWithLabCertificate(t *testing.T) {
	l := startLab(t, Config{})
	for _, mx := range []string{MX1, MX2} {
		c := smtpDial(t, l, mx)
		if err := c.Hello("scanner.test"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Fatalf("%s does not offer STARTTLS", mx)
		}
		if err := c.StartTLS(&tls.Config{RootCAs: l.Roots, ServerName: mx}); err != nil {
			t.Fatalf("%s STARTTLS: %v", mx, err)
		}
		st, _ := c.TLSConnectionState()
		if got := st.PeerCertificates[0].DNSNames; !slices.Contains(got, mx) {
			t.Errorf("%s certificate names %v", mx, got)
		}
		if err := c.Mail("x@lab-scope-cname.nhs.uk"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("someone@example.com"); err == nil {
			t.Errorf("%s relays to example.com", mx)
		}
		c.Quit()
	}
}

func TestSinkStoresMail(t *testing.T) {
	l := startLab(t, Config{})
	msg := "From: posture@lab.nhs.uk\r\nTo: domainmanagement@lab-scope-cname.nhs.uk\r\nSubject: findings\r\n\r\nhello\r\n"
	if err := smtp.SendMail(l.SMTPAddr, nil, "posture@lab.nhs.uk", []string{"domainmanagement@lab-scope-cname.nhs.uk"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := l.Received()
	if len(got) != 1 || got[0].From != "posture@lab.nhs.uk" ||
		!slices.Equal(got[0].To, []string{"domainmanagement@lab-scope-cname.nhs.uk"}) || !strings.Contains(string(got[0].Data), "Subject: findings") {
		t.Fatalf("received %+v", got)
	}
}

func TestGitHubPaginatesThroughGoGitHub(t *testing.T) {
	l := startLab(t, Config{cases: testCases()})
	gh, err := github.NewClient(nil).WithEnterpriseURLs(l.GitHubURL, l.GitHubURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var est *estate.Estate
	if est, err = estate.Parse("lab.yaml", l.EstateYAML()); err != nil {
		t.Fatal(err)
	}
	owner, _ := est.Owner("lab-t-repos.nhs.uk")
	if owner == nil || len(owner.GitHub) != 1 {
		t.Fatalf("owner of the repo case: %+v, want one GitHub org", owner)
	}
	login := owner.GitHub[0]
	org, _, err := gh.Organizations.Get(ctx, login)
	if err != nil {
		t.Fatal(err)
	}
	if org.GetLogin() != login || org.GetPublicRepos() != 4 || org.GetType() != "Organization" {
		t.Errorf("org %s: %d repos, type %q", org.GetLogin(), org.GetPublicRepos(), org.GetType())
	}
	var names []string
	pages := 0
	opt := &github.RepositoryListByOrgOptions{ListOptions: github.ListOptions{PerPage: 2}}
	for {
		repos, resp, err := gh.Repositories.ListByOrg(ctx, login, opt)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range repos {
			names = append(names, r.GetFullName())
		}
		if resp.NextPage == 0 {
			if resp.LastPage != 0 || resp.PrevPage != pages-1 {
				t.Errorf("last page: prev %d, last %d", resp.PrevPage, resp.LastPage)
			}
			break
		}
		opt.Page = resp.NextPage
	}
	if pages != 2 || len(names) != 4 || !slices.Contains(names, login+"/secrets-demo") {
		t.Errorf("%d pages, repos %v", pages, names)
	}
	repo, _, err := gh.Repositories.Get(ctx, login, "patient-leaflets")
	if err != nil {
		t.Fatal(err)
	}
	if !repo.GetArchived() || repo.GetOwner().GetLogin() != login || repo.GetDefaultBranch() != "main" || repo.GetPushedAt().IsZero() {
		t.Errorf("repo %+v", repo)
	}
	_, _, err = gh.Repositories.Get(ctx, login, "nope")
	var ge *github.ErrorResponse
	if !errors.As(err, &ge) || ge.Response.StatusCode != 404 {
		t.Errorf("missing repo: %v, want a 404", err)
	}
}

func TestCTSearchReturnsCrtShJSONWithNoise(t *testing.T) {
	l := startLab(t, Config{cases: testCases()})
	const d = "lab-t-repos.nhs.uk"
	resp, err := http.Get(l.CTURL + "?q=" + url.QueryEscape("%."+d) + "&output=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var entries []struct {
		ID             int64  `json:"id"`
		IssuerName     string `json:"issuer_name"`
		CommonName     string `json:"common_name"`
		NameValue      string `json:"name_value"`
		NotBefore      string `json:"not_before"`
		NotAfter       string `json:"not_after"`
		EntryTimestamp string `json:"entry_timestamp"`
		SerialNumber   string `json:"serial_number"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		if e.ID == 0 || e.IssuerName == "" || e.SerialNumber == "" || e.EntryTimestamp == "" {
			t.Errorf("entry lacks fields: %+v", e)
		}
		for _, ts := range []string{e.NotBefore, e.NotAfter} {
			if _, err := time.Parse("2006-01-02T15:04:05", ts); err != nil {
				t.Errorf("timestamp %q: %v", ts, err)
			}
		}
		for _, n := range strings.Split(e.NameValue, "\n") {
			names[n] = true
		}
	}
	keep, drop := l.CTNames(d)
	for _, n := range append(keep, drop...) {
		if !names[n] {
			t.Errorf("CT does not show %s", n)
		}
	}
	for _, want := range []string{"*." + d, OutsideName, "old." + d, "gone." + d} {
		if !slices.Contains(drop, want) {
			t.Errorf("drop %v lacks %s", drop, want)
		}
	}
	// What discovery keeps resolves in the lab DNS; what it drops for not
	// resolving does not.
	r := l.Resolver()
	for _, n := range keep {
		if addrs, _, err := r.Addrs(context.Background(), n); err != nil || len(addrs) == 0 {
			t.Errorf("kept %s does not resolve: %v", n, err)
		}
	}
	for _, n := range []string{"old." + d, "gone." + d} {
		if addrs, _, _ := r.Addrs(context.Background(), n); len(addrs) != 0 {
			t.Errorf("%s resolves to %v", n, addrs)
		}
	}
	if !slices.Contains(keep, "portal."+d) || !slices.Contains(keep, "www."+d) {
		t.Errorf("keep %v", keep)
	}
	// Unknown domains: an empty array, as crt.sh answers.
	resp2, err := http.Get(l.CTURL + "?q=%25.example.com&output=json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("unknown domain: %s", b)
	}
}

func TestEstateYAMLParsesAndCoversTheLab(t *testing.T) {
	l := startLab(t, Config{cases: testCases()})
	e, err := estate.Parse("lab.yaml", l.EstateYAML())
	if err != nil {
		t.Fatalf("%v\n%s", err, l.EstateYAML())
	}
	github := 0
	for _, d := range l.Domains() {
		o, _ := e.Owner(d.Name)
		if o == nil || o.Kind != "trust" || o.Parent == "" || !slices.Contains(o.Contacts, "domainmanagement@"+o.Domains[0]) {
			t.Errorf("%s: owner %+v", d.Name, o)
		}
	}
	for _, o := range e.Organisations {
		github += len(o.GitHub)
	}
	if github == 0 {
		t.Error("no organisation has a GitHub org")
	}
	if f := l.Scope(); e.InScope(f.Excluded) || !e.InScope(f.CNAME) || e.InScope(OutsideName) {
		t.Errorf("scope: excluded %v, cname %v, outside %v", e.InScope(f.Excluded), e.InScope(f.CNAME), e.InScope(OutsideName))
	}
}

func TestStampsCasesAndTruthIsTheirUnion(t *testing.T) {
	cs := testCases()
	l := startLab(t, Config{Domains: 2*len(cs) + 1, cases: cs})
	ds := l.Domains()
	if len(ds) != 2*len(cs)+1 {
		t.Fatalf("%d domains", len(ds))
	}
	for _, want := range []string{"lab-t-drop.nhs.uk", "lab-t-drop-2.nhs.uk", "lab-t-drop-3.nhs.uk", "lab-scope-exclude-2.nhs.uk"} {
		if _, ok := l.Domain(want); !ok {
			t.Errorf("no domain %s", want)
		}
	}
	truth := l.Truth()
	var want []Expect
	for _, d := range ds {
		want = append(want, d.Expect...)
	}
	if !slices.Equal(truth, want) || len(truth) != 3+2+2 {
		t.Errorf("truth has %d expectations: %v", len(truth), truth)
	}
	if _, ok := l.Domain("lab-t-drop-3.nhs.uk"); !ok {
		t.Error("third stamp missing")
	}
	// Every stamp's hosts have their own addresses.
	a, b := l.HostIP("www.lab-t-dead.nhs.uk"), l.HostIP("www.lab-t-dead-2.nhs.uk")
	if a == "" || b == "" || a == b {
		t.Errorf("host addresses %q %q", a, b)
	}
}

func TestLargeLabStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 domains")
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	l := startLab(t, Config{Domains: 10000})
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	t.Logf("10,000 domains: started in %v, heap %d MiB, %d hosts", took.Round(time.Millisecond),
		(m1.HeapAlloc-m0.HeapAlloc)>>20, len(l.hosts))
	if len(l.Domains()) != 10000 {
		t.Fatalf("%d domains", len(l.Domains()))
	}
	// The last stamp of the baseline case: an ordinary web host.
	var last Domain
	for i := len(l.domains) - 1; i >= 0; i-- {
		if strings.HasPrefix(l.domains[i].Name, "lab-email-good-") {
			last = l.domains[i]
			break
		}
	}
	c, _ := client(l)
	resp, err := c.Get("https://www." + last.Name + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := estate.Parse("lab.yaml", l.EstateYAML()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkStart(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run(map[int]string{0: "default", 1000: "1000-domains"}[n], func(b *testing.B) {
			for b.Loop() {
				l, err := Start(context.Background(), Config{Domains: n})
				if err != nil {
					b.Fatal(err)
				}
				l.Close()
			}
		})
	}
}
