package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/nhsx/posture/checks/check"
)

// The fake CT search, in crt.sh's JSON shape: GET /?q=%25.<domain>&output=json.
// For each lab domain it returns certificates naming www and mail (which the
// lab DNS resolves), the case's extra names, and noise a correct discovery
// drops: a wildcard, a name outside the scope and a name that does not
// resolve.

type ctEntry struct {
	IssuerCAID     int    `json:"issuer_ca_id"`
	IssuerName     string `json:"issuer_name"`
	CommonName     string `json:"common_name"`
	NameValue      string `json:"name_value"`
	ID             int64  `json:"id"`
	EntryTimestamp string `json:"entry_timestamp"`
	NotBefore      string `json:"not_before"`
	NotAfter       string `json:"not_after"`
	SerialNumber   string `json:"serial_number"`
	ResultCount    int    `json:"result_count"`
}

var ctIssuers = []struct {
	id   int
	name string
}{
	{183267, "C=US, O=Let's Encrypt, CN=R3"},
	{1397, "C=GB, ST=Greater Manchester, L=Salford, O=Sectigo Limited, CN=Sectigo RSA Domain Validation Secure Server CA"},
	{157938, "C=US, O=DigiCert Inc, CN=DigiCert TLS RSA SHA256 2020 CA1"},
}

// ctNoise are the names for domain d that discovery must drop or list
// apart: a wildcard (its parent is the name), a name outside the scope, a
// name that does not resolve, and a name in scope that no estate domain
// owns (unowned: listed, not scanned).
func ctNoise(d string) (wildcard, outside, dangling, unowned string) {
	return "*." + d, OutsideName, "old." + d, "www.old-" + d
}

// ctBulk are the names the first lab domain's certificates list under
// three teams' subdomains (h<k>.team<j>.<d>): enough rows that a capped
// search (SetCT) must split by label to see them all. None resolves.
func ctBulk(d string) []string {
	var out []string
	for j := 1; j <= 3; j++ {
		for k := 1; k <= 4; k++ {
			out = append(out, fmt.Sprintf("h%d.team%d.%s", k, j, d))
		}
	}
	return out
}

// ctLab is the lab CT search's state: its simulated limits and what it
// was asked.
type ctLab struct {
	once     sync.Once
	byOrg    map[string][]int // registrable domain → lab domains below it
	mu       sync.Mutex
	rowCap   int
	throttle int
	queries  map[string]int
	extra    map[int][][]string // certificates added after start, by domain
}

// SetCT shapes the lab CT search as crt.sh behaves under load: rowCap > 0
// caps every answer at rowCap rows (an arbitrary subset, as crt.sh's
// LIMIT inside the query gives); throttle answers the next throttle
// requests with 429 Too Many Requests and Retry-After: 1.
func (l *Lab) SetCT(rowCap, throttle int) {
	l.ct.mu.Lock()
	l.ct.rowCap, l.ct.throttle = rowCap, throttle
	l.ct.mu.Unlock()
}

// AddCTCert logs a new certificate for a lab domain (a later id than any
// before): what an incremental search must find.
func (l *Lab) AddCTCert(domain string, names ...string) {
	i, ok := l.byDomain[strings.ToLower(strings.TrimSuffix(domain, "."))]
	if !ok {
		return
	}
	l.ct.mu.Lock()
	if l.ct.extra == nil {
		l.ct.extra = map[int][][]string{}
	}
	l.ct.extra[i] = append(l.ct.extra[i], names)
	l.ct.mu.Unlock()
}

// CTQueries is how many requests the lab CT search got per q= value (the
// throttled ones included).
func (l *Lab) CTQueries() map[string]int {
	l.ct.mu.Lock()
	defer l.ct.mu.Unlock()
	return maps.Clone(l.ct.queries)
}

// ctEntries are the rows CT shows for lab domain i: each certificate as
// its precertificate and its certificate (the same serial; deduplicate
// drops the certificate), certificates that expired long ago among them.
func (l *Lab) ctEntries(i int) []ctEntry {
	d := l.domains[i]
	wild, out, old, unowned := ctNoise(d.Name)
	certs := [][]string{
		{d.Name, "www." + d.Name},
		{"www." + d.Name},
		{"mail." + d.Name},
		{wild, d.Name},
		{old},
		{"www." + d.Name, out},
		{"www." + d.Name, unowned},
	}
	expired := []int{4} // the certificate of old.<d>
	if i == 0 {
		for j := 0; j < 3; j++ {
			certs = append(certs, ctBulk(d.Name)[j*4:j*4+4])
		}
		expired = append(expired, 7) // team1's: only a full search sees it
	}
	for _, n := range d.CT {
		certs = append(certs, []string{n})
	}
	l.ct.mu.Lock()
	certs = append(certs, l.ct.extra[i]...)
	l.ct.mu.Unlock()
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }
	var es []ctEntry
	for k, names := range certs {
		id := 5_000_000_000 + int64(i)*1000 + int64(2*k)
		iss := ctIssuers[(i+k)%len(ctIssuers)]
		nb := l.pki.now.Add(-time.Duration(30*(len(certs)-k)) * 24 * time.Hour).Truncate(time.Second)
		na := nb.Add(400 * 24 * time.Hour)
		if slices.Contains(expired, k) {
			nb = l.pki.now.Add(-3 * 365 * 24 * time.Hour).Truncate(time.Second)
			na = nb.Add(90 * 24 * time.Hour)
		}
		e := ctEntry{IssuerCAID: iss.id, IssuerName: iss.name, CommonName: names[0],
			NameValue: strings.Join(names, "\n"), ID: id,
			EntryTimestamp: ts(nb.Add(time.Hour)) + ".123", NotBefore: ts(nb), NotAfter: ts(na),
			SerialNumber: fmt.Sprintf("%032x", id), ResultCount: len(names)}
		es = append(es, e)
		e.ID++ // the certificate after its precertificate
		e.EntryTimestamp = ts(nb.Add(2*time.Hour)) + ".456"
		es = append(es, e)
	}
	return es
}

// CTNames says what a correct discovery makes of the CT entries for a lab
// domain: keep are in-scope names that resolve in the lab DNS; drop are the
// wildcard, the out-of-scope name, the name that does not resolve and names
// the estate excludes.
func (l *Lab) CTNames(domain string) (keep, drop []string) {
	i, ok := l.byDomain[strings.ToLower(strings.TrimSuffix(domain, "."))]
	if !ok {
		return nil, nil
	}
	d := l.domains[i]
	// A name counts as resolving when the lab DNS gives it an address
	// through names inside the lab's scope (an alias that leaves it, or
	// dangles, is dropped by discovery).
	resolves := map[string]bool{}
	for _, r := range d.Records {
		switch o, t := ownerType(r); t {
		case "A", "AAAA":
			resolves[strings.TrimSuffix(o, ".")] = true
		case "CNAME":
			o = strings.TrimSuffix(o, ".")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			addrs, chain, err := l.resolver.Addrs(ctx, o)
			cancel()
			resolves[o] = err == nil && len(addrs) > 0 && !slices.ContainsFunc(chain, func(c string) bool { return !under(c, "nhs.uk") })
		}
	}
	wild, out, old, unowned := ctNoise(d.Name)
	drop = []string{wild, out, old, unowned}
	for _, n := range append([]string{"www." + d.Name, "mail." + d.Name}, d.CT...) {
		n = strings.ToLower(n)
		switch {
		case slices.Contains(keep, n) || slices.Contains(drop, n):
		case slices.Contains(d.Exclude, n) || !under(n, d.Name) || !resolves[n] || strings.HasPrefix(n, "*."):
			drop = append(drop, n)
		default:
			keep = append(keep, n)
		}
	}
	return keep, drop
}

// ctHints wraps an Env's estate hints with "names", what discovery records
// for a lab domain (scanner/discover Result.Names): the apex, www and every
// name its CT entries list, less the names the estate excludes. The
// domain's checks clean them as they do discovery's (a wildcard names its
// parent; a name outside the domain is not theirs).
func (l *Lab) ctHints(next func(a check.Asset, key string) []string) func(a check.Asset, key string) []string {
	return func(a check.Asset, key string) []string {
		if key != "names" {
			if next == nil {
				return nil
			}
			return next(a, key)
		}
		i, ok := l.byDomain[a.Name]
		if a.Kind != check.KindDomain || !ok {
			return nil
		}
		d := l.domains[i]
		out := []string{d.Name, "www." + d.Name}
		for _, e := range l.ctEntries(i) {
			for _, n := range strings.Split(e.NameValue, "\n") {
				if !slices.Contains(d.Exclude, n) && !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
		return out
	}
}

// ctSearch answers q= as crt.sh's identity search does: the rows of
// certificates naming q (a "%." prefix: names under it), less expired
// certificates and precertificate duplicates when asked.
func (l *Lab) ctSearch(q string, excludeExpired, dedup bool) []ctEntry {
	sub := strings.HasPrefix(q, "%.")
	base := strings.TrimPrefix(strings.TrimPrefix(q, "%"), ".")
	match := func(n string) bool {
		n = strings.TrimPrefix(strings.ToLower(n), "*.")
		if sub {
			return strings.HasSuffix(n, "."+base) || n == base
		}
		return n == base
	}
	now := l.pki.now.UTC().Format("2006-01-02T15:04:05")
	l.ct.once.Do(func() {
		l.ct.byOrg = map[string][]int{}
		for i, d := range l.domains {
			od, err := publicsuffix.EffectiveTLDPlusOne(d.Name)
			if err != nil {
				od = d.Name
			}
			l.ct.byOrg[od] = append(l.ct.byOrg[od], i)
		}
	})
	// The lab domains a query can match: those below its registrable
	// domain (every lab domain when it asks for a suffix above them).
	idx, ok := []int(nil), false
	if od, err := publicsuffix.EffectiveTLDPlusOne(base); err == nil {
		idx, ok = l.ct.byOrg[od], true
	}
	if !ok {
		for i := range l.domains {
			idx = append(idx, i)
		}
	}
	es := []ctEntry{}
	for _, i := range idx {
		d := l.domains[i]
		if !under(d.Name, base) && !under(base, d.Name) {
			continue
		}
		for k, e := range l.ctEntries(i) {
			n := 0
			for _, name := range strings.Split(e.NameValue, "\n") {
				if match(name) {
					n++
				}
			}
			if n == 0 || (excludeExpired && e.NotAfter < now) || (dedup && k%2 == 1) {
				continue
			}
			e.ResultCount = n // the identity rows that matched
			es = append(es, e)
		}
	}
	return es
}

func (l *Lab) startCT() error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("lab: listen ct: %w", err)
	}
	l.CTURL = "http://" + ln.Addr().String() + "/"
	l.infra[portOf(ln.Addr().String())] = true
	l.serve(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if q.Get("output") != "json" {
			http.Error(w, "this lab CT search speaks output=json only", http.StatusBadRequest)
			return
		}
		name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(q.Get("q")), "."))
		l.ct.mu.Lock()
		if l.ct.queries == nil {
			l.ct.queries = map[string]int{}
		}
		l.ct.queries[name]++
		throttled := l.ct.throttle > 0
		if throttled {
			l.ct.throttle--
		}
		rowCap := l.ct.rowCap
		l.ct.mu.Unlock()
		if throttled {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
			return
		}
		es := l.ctSearch(name, q.Get("exclude") == "expired", strings.EqualFold(q.Get("deduplicate"), "Y"))
		if rowCap > 0 {
			// crt.sh's LIMIT counts identity rows (result_count) and
			// gives an arbitrary subset: here the first rows.
			// The limit is on identity rows, so the last certificate
			// may come with some of its names only.
			total := 0
			for i, e := range es {
				if total+e.ResultCount > rowCap {
					names := strings.Split(e.NameValue, "\n")[:rowCap-total]
					e.NameValue, e.ResultCount = strings.Join(names, "\n"), len(names)
					es = append(es[:i], e)
					if len(names) == 0 {
						es = es[:i]
					}
					break
				}
				total += e.ResultCount
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(es)
	})}, ln)
	return nil
}

// DiscoveryTruth is what a correct discovery of the lab finds when it
// searches CT, asks labels in DNS and (axfr) asks the domains' name servers
// for zone transfers: owned maps every name in scope that
// a lab domain owns to that domain (the longest lab domain it is at or
// under): each domain's apex and www, its CT names (a wildcard's "*."
// removed) and label.<domain> for the labels the lab DNS answers (an
// address or an alias; none under a wildcard), and with axfr the owner
// names of the zones NSXfr transfers (host names: no "_"), and the names
// in scope that a lab domain owns which those names' CNAME chains lead to
// (as discovery with host checks follows them); unowned are the CT names
// in scope that no lab domain owns. Names outside the scope (OutsideName)
// and the names the estate excludes are in neither.
func (l *Lab) DiscoveryTruth(labels []string, axfr bool) (owned map[string]string, unowned []string) {
	var exclude []string
	for _, d := range l.domains {
		exclude = append(exclude, d.Exclude...)
	}
	inScope := func(n string) bool {
		return under(n, "nhs.uk") && !slices.ContainsFunc(exclude, func(x string) bool { return under(n, x) })
	}
	owner := func(n string) string {
		best := ""
		for c := n; c != ""; {
			if _, ok := l.byDomain[c]; ok && len(c) > len(best) {
				best = c
			}
			_, c, _ = strings.Cut(c, ".")
		}
		return best
	}
	owned = map[string]string{}
	note := func(n string) {
		n = strings.TrimPrefix(strings.ToLower(strings.TrimSuffix(n, ".")), "*.")
		if !inScope(n) {
			return
		}
		if o := owner(n); o != "" {
			owned[n] = o
		} else if !slices.Contains(unowned, n) {
			unowned = append(unowned, n)
		}
	}
	for i, d := range l.domains {
		note(d.Name)
		note("www." + d.Name)
		for _, e := range l.ctEntries(i) {
			for _, n := range strings.Split(e.NameValue, "\n") {
				note(n)
			}
		}
		answers := map[string]bool{}
		xfr := axfr && slices.Contains(d.Records, rr(d.Name, "NS", NSXfr+"."))
		for _, r := range d.Records {
			o, t := ownerType(r)
			o = strings.TrimSuffix(o, ".")
			switch t {
			case "A", "AAAA", "CNAME":
				answers[o] = true
			}
			if xfr && under(o, d.Name) && !strings.Contains(o, "_") && !strings.HasPrefix(o, "*.") {
				note(o)
			}
		}
		if answers["*."+d.Name] {
			continue
		}
		for _, lb := range labels {
			if n := lb + "." + d.Name; answers[n] && !slices.Contains(d.Drop, n) {
				note(n)
			}
		}
	}
	cname := map[string]string{}
	for _, d := range l.domains {
		for _, r := range d.Records {
			if o, t := ownerType(r); t == "CNAME" {
				f := strings.Fields(r)
				cname[strings.TrimSuffix(o, ".")] = strings.ToLower(strings.TrimSuffix(f[len(f)-1], "."))
			}
		}
	}
	for _, n := range slices.Collect(maps.Keys(owned)) {
		for t, i := cname[n], 0; t != "" && i < 8; t, i = cname[t], i+1 {
			if inScope(t) && owner(t) != "" {
				owned[t] = owner(t)
			}
		}
	}
	slices.Sort(unowned)
	return owned, unowned
}
