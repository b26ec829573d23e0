// Package lab is a simulated NHS estate that runs in-process on loopback,
// with no root and no internet: an authoritative DNS server for the lab
// zones, HTTPS/HTTP hosts with certificates from a lab CA, SMTP MX hosts
// with STARTTLS, a notification sink (the trusts' mailboxes), a fake GitHub
// REST API and a fake CT log search. Every behaviour the scanner must judge
// is a Case (cases() is the one list); the lab stamps cases onto as many
// domains as asked and knows the right outcome for each (Truth).
//
// The scanner is given the lab's world: a resolver pointed at DNSAddr, Dial
// as its network and Roots as its trust anchors.
package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/crl"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
)

// Config sizes and shapes a lab.
type Config struct {
	// Domains is how many lab domains to make. Cases are stamped round-robin,
	// so there is always at least one domain per case (0: one per case).
	Domains int
	// Latency is added to every DNS answer and every connection Dial makes.
	Latency time.Duration
	Log     *slog.Logger // nil: discard
	// External adds the cases that need an independent TLS stack (a web
	// host with 1024-bit DHE, served by gnutls-serv), with their ground
	// truth, when gnutls-serv is on PATH; without it they are left out and
	// Lab.External reports false. Off: the lab needs nothing installed.
	External bool

	cases []Case // tests: instead of cases()
}

// Infrastructure names: the lab's name servers and shared MX hosts.
const (
	NSZone   = "lab-dns.nhs.uk"
	MailZone = "lab-mail.nhs.uk"
	NS1      = "ns1.lab-dns.nhs.uk"
	NS2      = "ns2.lab-dns.nhs.uk"
	MX1      = "mx1.lab-mail.nhs.uk"
	MX2      = "mx2.lab-mail.nhs.uk"
)

// Lab is a running lab. Its exported fields are set by Start and read-only.
type Lab struct {
	DNSAddr   string // "127.0.0.1:port", UDP and TCP
	GitHubURL string // fake GitHub REST API base URL, with trailing slash
	CTURL     string // fake crt.sh: GET CTURL?q=%25.<domain>&output=json
	RDAPURL   string // fake RDAP service: GET RDAPURL+"domain/<name>" (rdap.go)
	SMTPAddr  string // the notification sink: accepts and stores any mail
	CAPEM     []byte // the lab CA certificate
	Roots     *x509.CertPool
	// Ports maps the well-known ports (443, 80, 25) to the lab's listener
	// ports. Dial applies it; it is exported for an Env's PortMap.
	Ports map[int]int

	cfg         Config
	log         *slog.Logger
	pki         *pki
	cases       []Case
	domains     []Domain
	byDomain    map[string]int
	hosts       map[netip.Addr]*host // read-only after Start
	byName      map[string]*host
	nameservers map[netip.Addr]bool
	outside     map[netip.Addr]*outsideHost
	infra       map[int]bool // ports of the lab's own services on 127.0.0.1
	orgs        []labOrg
	estate      []byte
	git         gitLab // the git server's repositories (git.go)

	dns      *dnstest.Server
	resolver *dnsq.Resolver
	svc      [nServices]net.Listener
	web      [2]*chanListener // HTTPS (TLS conns), HTTP
	servers  []*http.Server
	lns      []net.Listener // every real listener, closed by Close
	sink     *sink
	smtpMu   sync.Mutex
	smtps    []*smtp.Server
	smtpLns  []net.Listener
	rawMu    sync.Mutex
	rawConns map[net.Conn]struct{} // held by raw handlers

	infraExpect []Expect // ground truth of the lab's own hosts (mx1, mx2)
	ext         *external
	hygiene     *hygieneLab // the DNS hygiene family's name servers and registrations
	ct          ctLab       // the CT search's simulated limits and counts (ct.go)
	gh          *ghServer   // the fake GitHub API (github.go, githubapi.go)

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// host is one lab host at run time.
type host struct {
	Host
	ip    netip.Addr
	conns atomic.Int64

	webCert, smtpCert lazyCert
	webOnce           sync.Once
	webCfg            *tls.Config
	smtpOnce          sync.Once
	smtpLn            *chanListener
	smtpCfgOnce       sync.Once
	smtpCfg           *tls.Config
}

func (h *host) serves(s service) bool {
	switch s {
	case svcHTTPS:
		return h.Web != nil && !h.Web.NoHTTPS
	case svcHTTP:
		return h.Web != nil && !h.Web.NoHTTP
	case svcSMTP:
		return h.SMTP != nil
	}
	return false
}

func (h *host) webTLS(p *pki) *tls.Config {
	h.webOnce.Do(func() {
		h.webCfg = serverTLS(h.Web.TLS, func() (*tls.Certificate, error) {
			return h.webCert.get(p, h.Web.Cert, []string{h.Name})
		})
	})
	return h.webCfg
}

func (h *host) smtpTLS(p *pki) *tls.Config {
	h.smtpCfgOnce.Do(func() {
		h.smtpCfg = serverTLS(h.SMTP.TLS, func() (*tls.Certificate, error) {
			return h.smtpCert.get(p, h.SMTP.Cert, []string{h.Name})
		})
	})
	return h.smtpCfg
}

// External reports whether the lab serves the external TLS hosts
// (Config.External with gnutls-serv installed).
func (l *Lab) External() bool { return l.ext != nil && l.ext.cmd != nil }

// Cases returns the lab's behaviours, in stamping order.
func Cases() []Case { return cases() }

// Start builds the lab and starts its servers. ctx bounds start-up only: the
// lab runs until Close.
func Start(ctx context.Context, cfg Config) (_ *Lab, err error) {
	l := &Lab{cfg: cfg, log: cfg.Log, Ports: map[int]int{}, done: make(chan struct{}),
		hosts: map[netip.Addr]*host{}, byName: map[string]*host{}, byDomain: map[string]int{},
		nameservers: map[netip.Addr]bool{}, outside: map[netip.Addr]*outsideHost{}, infra: map[int]bool{},
		rawConns: map[net.Conn]struct{}{}}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	start := time.Now()
	if l.pki, err = newPKI(start.UTC()); err != nil {
		return nil, err
	}
	l.CAPEM, l.Roots = l.pki.caPEM, l.pki.roots
	l.cases = cfg.cases
	if l.cases == nil {
		l.cases = cases()
	}
	if cfg.External {
		if l.ext = newExternal(); l.ext != nil {
			l.cases = append(slices.Clip(l.cases), externalCases(l.ext)...)
		} else {
			l.log.Warn("lab: gnutls-serv is not installed (apt-get install gnutls-bin): the external TLS hosts are left out")
		}
	}
	records, drops, err := l.build(ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lab: start: %w", err)
	}
	if err := l.startDNS(records, drops); err != nil {
		return nil, err
	}
	if err := l.startHygiene(records); err != nil {
		return nil, err
	}
	if l.ext != nil {
		if err := l.ext.start(l.pki); err != nil {
			return nil, err
		}
	}
	for s := service(0); s < nServices; s++ {
		if err := l.listen(s); err != nil {
			return nil, err
		}
	}
	l.startWeb()
	if err := l.startOutside(); err != nil {
		return nil, err
	}
	if err := l.startSink(); err != nil {
		return nil, err
	}
	if err := l.startGitHub(); err != nil {
		return nil, err
	}
	l.startGit()
	if err := l.startCT(); err != nil {
		return nil, err
	}
	if l.estate, err = l.buildEstate(); err != nil {
		return nil, err
	}
	l.run()
	l.log.Info("lab started", "domains", len(l.domains), "hosts", len(l.hosts),
		"records", len(records), "dns", l.DNSAddr, "took", time.Since(start).Round(time.Millisecond))
	return l, nil
}

// Close stops every server and waits for their goroutines.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.closeRaw()
		for _, ln := range l.svc {
			if ln != nil {
				ln.Close()
			}
		}
		for _, cl := range l.web {
			if cl != nil {
				cl.Close()
			}
		}
		for _, s := range l.servers {
			s.Close()
		}
		// A server closed before its Serve began has not taken its listener.
		for _, ln := range l.lns {
			ln.Close()
		}
		l.smtpMu.Lock()
		for _, s := range l.smtps {
			s.Close()
		}
		// go-smtp's Close misses a listener its Serve has not registered yet.
		for _, ln := range l.smtpLns {
			ln.Close()
		}
		l.smtpMu.Unlock()
		if l.dns != nil {
			l.dns.Close()
		}
		l.hygiene.close()
		l.wg.Wait()
		if l.ext != nil {
			l.ext.stop()
		}
	})
	return nil
}

// serve runs an HTTP server on ln until Close.
func (l *Lab) serve(srv *http.Server, ln net.Listener) {
	srv.ReadHeaderTimeout = 10 * time.Second
	srv.IdleTimeout = 30 * time.Second
	srv.ErrorLog = slog.NewLogLogger(l.log.Handler(), slog.LevelDebug)
	l.servers = append(l.servers, srv)
	l.lns = append(l.lns, ln)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		srv.Serve(ln)
	}()
}

// serveSMTP runs an SMTP server on ln until Close.
func (l *Lab) serveSMTP(srv *smtp.Server, ln net.Listener) {
	srv.ErrorLog = slog.NewLogLogger(l.log.Handler(), slog.LevelDebug)
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	l.smtpMu.Lock()
	defer l.smtpMu.Unlock()
	select {
	case <-l.done:
		ln.Close()
		return
	default:
	}
	l.smtps = append(l.smtps, srv)
	l.smtpLns = append(l.smtpLns, ln)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		srv.Serve(ln)
	}()
}

// domainName is the name of the k-th stamp (from 1) of a case.
func domainName(c string, k int) string {
	if k == 1 {
		return "lab-" + c + ".nhs.uk"
	}
	return fmt.Sprintf("lab-%s-%d.nhs.uk", c, k)
}

// build stamps the cases onto domains, completes each domain with what every
// lab domain has (SOA, NS, MX, www, mail), gives hosts their addresses and
// returns the DNS data.
func (l *Lab) build(ctx context.Context) (records, drops []string, err error) {
	if len(l.cases) == 0 {
		return nil, nil, errors.New("lab: no cases")
	}
	seen := map[string]bool{}
	for _, c := range l.cases {
		if seen[c.Name] {
			return nil, nil, fmt.Errorf("lab: case %q appears twice", c.Name)
		}
		seen[c.Name] = true
		if _, ok := dns.IsDomainName(domainName(c.Name, 99999)); !ok || strings.ContainsAny(c.Name, ". _") ||
			c.Name != strings.ToLower(c.Name) || c.Build == nil {
			return nil, nil, fmt.Errorf("lab: case %q: want a lower-case DNS label and a Build func", c.Name)
		}
	}
	n := max(l.cfg.Domains, len(l.cases))
	fams := active(l.cases)

	// Infrastructure first, so its addresses do not depend on the scale.
	var next int
	alloc := func(h Host) (*host, error) {
		h.Name = strings.ToLower(strings.TrimSuffix(h.Name, "."))
		if l.byName[h.Name] != nil {
			return nil, fmt.Errorf("lab: host %s defined twice", h.Name)
		}
		rh := &host{Host: h, ip: hostIP(next)}
		next++
		l.hosts[rh.ip], l.byName[h.Name] = rh, rh
		return rh, nil
	}
	for _, ns := range []string{NS1, NS2} {
		h, _ := alloc(Host{Name: ns})
		l.nameservers[h.ip] = true
	}
	for _, mx := range []string{MX1, MX2} {
		alloc(Host{Name: mx, SMTP: &SMTPSpec{}})
		for _, f := range fams {
			if f.Infra != nil {
				l.infraExpect = append(l.infraExpect, f.Infra(mx, check.KindMail)...)
			}
		}
	}
	records = append(records, zoneHead(NSZone)...)
	records = append(records, zoneHead(MailZone)...)
	records = append(records, sharedSPFRecords()...)
	records = append(records, zoneHead(OutsideZone)...)
	records = append(records, OutsideName+". 300 IN A "+OutsideIP, CRLHost+". 300 IN A "+CRLIP)

	l.domains = make([]Domain, 0, n)
	for i := range n {
		if i%1024 == 0 && ctx.Err() != nil {
			return nil, nil, fmt.Errorf("lab: start: %w", ctx.Err())
		}
		c := l.cases[i%len(l.cases)]
		zone := domainName(c.Name, i/len(l.cases)+1)
		d := c.Build(zone)
		d.Name = strings.ToLower(strings.TrimSuffix(d.Name, "."))
		if d.Name == "" {
			d.Name = zone
		}
		if !under(d.Name, zone) {
			return nil, nil, fmt.Errorf("lab: case %s built %q, which is not under %q", c.Name, d.Name, zone)
		}
		if _, dup := l.byDomain[d.Name]; dup {
			return nil, nil, fmt.Errorf("lab: case %s: domain %s built twice", c.Name, d.Name)
		}
		var added Added
		if !d.Absent {
			added = complete(&d, zone)
		}
		for _, f := range fams {
			if f.Complete != nil {
				f.Complete(&d, c, added, l.cases)
			}
		}
		for j := range d.Hosts {
			hn := strings.ToLower(strings.TrimSuffix(d.Hosts[j].Name, "."))
			if !under(hn, zone) {
				return nil, nil, fmt.Errorf("lab: case %s: host %s is not under %s", c.Name, hn, zone)
			}
			h, err := alloc(d.Hosts[j])
			if err != nil {
				return nil, nil, err
			}
			d.Records = append(d.Records, h.Name+". 300 IN A "+h.ip.String())
		}
		names := slices.Sorted(maps.Keys(d.Addrs))
		for _, n := range names {
			for _, hn := range d.Addrs[n] {
				h := l.byName[strings.ToLower(hn)]
				if h == nil || !under(h.Name, zone) {
					return nil, nil, fmt.Errorf("lab: case %s: %s takes the address of %s, which is not a host of the case", c.Name, n, hn)
				}
				d.Records = append(d.Records, strings.TrimSuffix(n, ".")+". 300 IN A "+h.ip.String())
			}
		}
		l.byDomain[d.Name] = len(l.domains)
		l.domains = append(l.domains, d)
		records = append(records, d.Records...)
		drops = append(drops, d.Drop...)
	}
	for _, n := range []string{NS1, NS2, MX1, MX2} {
		records = append(records, n+". 300 IN A "+l.byName[n].ip.String())
	}
	l.orgs = assignOrgs(l.domains)
	return records, drops, nil
}

// zoneHead is the SOA and NS records of a zone served by the lab DNS.
func zoneHead(apex string) []string {
	return []string{
		apex + ". 3600 IN SOA " + NS1 + ". hostmaster." + apex + ". 1 7200 3600 1209600 300",
		apex + ". 3600 IN NS " + NS1 + ".",
		apex + ". 3600 IN NS " + NS2 + ".",
	}
}

// complete adds what every lab domain has unless its case says otherwise:
// SOA and NS at the zone apex (the stamped name; the case's domain may be a
// name under it); MX to the shared lab MX hosts (a case that sets MX, e.g. a
// null MX for a parked domain, keeps its own); www, a good web host; mail, a
// CNAME to the lab MX. It states no truth: each family's Complete does, for
// its own checks, from what complete says it added.
func complete(d *Domain, zone string) Added {
	hostNamed := func(n string) bool {
		return slices.ContainsFunc(d.Hosts, func(h Host) bool { return strings.EqualFold(strings.TrimSuffix(h.Name, "."), n) })
	}
	var add []string
	if !publishes(d, zone, "SOA") {
		add = append(add, zoneHead(zone)[0])
	}
	if !publishes(d, zone, "NS") {
		add = append(add, zoneHead(zone)[1:]...)
	}
	name := d.Name + "."
	if !publishes(d, d.Name, "MX") {
		add = append(add, name+" 300 IN MX 10 "+MX1+".", name+" 300 IN MX 20 "+MX2+".")
	}
	var a Added
	if www := "www." + d.Name; !publishes(d, www, "") && !hostNamed(www) {
		d.Hosts = append(d.Hosts, Host{Name: www, Web: &WebSpec{}})
		a.WWW = www
	}
	if mail := "mail." + d.Name; !publishes(d, mail, "") && !hostNamed(mail) {
		add = append(add, mail+". 300 IN CNAME "+MX1+".")
		a.MailAlias = mail
	}
	d.Records = append(d.Records, add...)
	return a
}

// ownerType returns the canonical owner and the type of a presentation-format
// record without parsing its data.
func ownerType(rr string) (owner, typ string) {
	f := strings.Fields(rr)
	if len(f) == 0 {
		return "", ""
	}
	owner = dns.CanonicalName(f[0])
	for _, t := range f[1:min(len(f), 4)] {
		if _, ok := dns.StringToType[strings.ToUpper(t)]; ok {
			return owner, strings.ToUpper(t)
		}
	}
	return owner, ""
}

func under(name, zone string) bool { return name == zone || strings.HasSuffix(name, "."+zone) }

func (l *Lab) startDNS(records, drops []string) error {
	// The lab is authoritative from uk. down, so that a climb towards the
	// root (CAA, DMARC's tree walk) gets answers, not refusals.
	// in-addr.arpa: the reverse DNS of the lab's hosts (dkim.go).
	srv, err := dnstest.Start([]string{"uk.", OutsideZone + ".", "in-addr.arpa."})
	if err != nil {
		return fmt.Errorf("lab: dns: %w", err)
	}
	records = append(slices.Clip(records), l.ptrRecords()...)
	l.dns = srv
	// Set before Add: Add's lock orders this write before any query's read.
	srv.Latency = l.cfg.Latency
	// Stamps of a case that publish the same shared record (outside their
	// domain) must not serve it twice.
	seen := make(map[string]bool, len(records))
	uniq := records[:0:0]
	for _, r := range records {
		if !seen[r] {
			seen[r] = true
			uniq = append(uniq, r)
		}
	}
	if err := srv.Add(uniq...); err != nil {
		return fmt.Errorf("lab: dns: %w", err)
	}
	srv.Drop(drops...)
	l.DNSAddr = srv.Addr
	l.infra[portOf(srv.Addr)] = true
	l.resolver = &dnsq.Resolver{Servers: []string{l.DNSAddr}, Timeout: time.Second + 2*l.cfg.Latency, Retries: -1}
	return nil
}

func portOf(addr string) int {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return 0
	}
	return int(ap.Port())
}

// Resolver returns a fresh resolver that asks the lab DNS, with a short
// timeout (dropped names time out quickly).
func (l *Lab) Resolver() *dnsq.Resolver {
	return &dnsq.Resolver{Servers: []string{l.DNSAddr}, Timeout: 500*time.Millisecond + 2*l.cfg.Latency, Retries: -1}
}

// Env returns a check environment wired straight to the lab (no scope
// guard): its resolver, Dial, roots, an HTTP client over Dial that does
// not follow redirects, and a service client (for the lab CA's CRL) with a
// CRL cache.
func (l *Lab) Env() *check.Env {
	tr := &http.Transport{DialContext: l.Dial, TLSClientConfig: &tls.Config{RootCAs: l.Roots},
		ForceAttemptHTTP2: false, MaxIdleConnsPerHost: 2, IdleConnTimeout: 5 * time.Second}
	return &check.Env{
		DNS:   l.Resolver(),
		Dial:  l.Dial,
		Roots: l.Roots,
		HTTP: &http.Client{Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		CRLs: crl.Source{Client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: l.Dial,
			MaxIdleConnsPerHost: 2, IdleConnTimeout: 5 * time.Second}}, Cache: &crl.Cache{}},
		Log:   l.log,
		Hints: l.ctHints(l.dkimHints()),
		// The RDAP service (rdap.go).
		Services: l.withGitHub(l.services()),
		// The lab's HSTS preload list (webcheck.go).
		Lists: webPreloadLists(l.domains),
	}
}

// DNSQueriesFor is how many queries for name the lab DNS has received.
func (l *Lab) DNSQueriesFor(name string) int64 { return l.dns.QueriesFor(name) }

// Policy is the default policy with the lab CA as the trust anchor, so
// that Evaluate judges lab chains as a scan of the lab does.
func (l *Lab) Policy() *check.Policy {
	p := check.DefaultPolicy()
	p.Roots = l.Roots
	// and the lab's DNSSEC trust anchor, nhs.uk, and its HSTS preload list
	return webPreloadPolicy(dnssecPolicy(p), l.domains)
}

// Domains returns the stamped lab domains (records, hosts and expectations
// included), in order.
func (l *Lab) Domains() []Domain { return slices.Clone(l.domains) }

// Domain returns one lab domain by name.
func (l *Lab) Domain(name string) (Domain, bool) {
	i, ok := l.byDomain[strings.ToLower(strings.TrimSuffix(name, "."))]
	if !ok {
		return Domain{}, false
	}
	return l.domains[i], true
}

// HostIP returns the loopback address of a lab host ("" if none).
func (l *Lab) HostIP(name string) string {
	if h := l.byName[strings.ToLower(strings.TrimSuffix(name, "."))]; h != nil {
		return h.ip.String()
	}
	return ""
}

// Truth returns the ground truth: every stamped domain's expectations, then
// those of the lab's own hosts (the shared MX hosts, when the lab has the
// TLS family's cases).
func (l *Lab) Truth() []Expect {
	var out []Expect
	for _, d := range l.domains {
		out = append(out, d.Expect...)
	}
	out = append(out, l.ghTruth()...) // repositories and organisations (githubrepos.go)
	return append(out, l.infraExpect...)
}
