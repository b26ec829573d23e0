package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

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

// ctNoise are the names for domain d that discovery must drop.
func ctNoise(d string) (wildcard, outside, dangling string) {
	return "*." + d, OutsideName, "old." + d
}

// ctEntries are the certificates CT shows for lab domain i.
func (l *Lab) ctEntries(i int) []ctEntry {
	d := l.domains[i]
	wild, out, old := ctNoise(d.Name)
	certs := [][]string{
		{d.Name, "www." + d.Name},
		{"www." + d.Name},
		{"mail." + d.Name},
		{wild, d.Name},
		{old},
		{"www." + d.Name, out},
	}
	for _, n := range d.CT {
		certs = append(certs, []string{n})
	}
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }
	var es []ctEntry
	for k, names := range certs {
		id := 5_000_000_000 + int64(i)*100 + int64(k)
		iss := ctIssuers[(i+k)%len(ctIssuers)]
		nb := l.pki.now.Add(-time.Duration(30*(k+1)) * 24 * time.Hour).Truncate(time.Second)
		es = append(es, ctEntry{IssuerCAID: iss.id, IssuerName: iss.name, CommonName: names[0],
			NameValue: strings.Join(names, "\n"), ID: id,
			EntryTimestamp: ts(nb.Add(time.Hour)) + ".123", NotBefore: ts(nb), NotAfter: ts(nb.Add(90 * 24 * time.Hour)),
			SerialNumber: fmt.Sprintf("%032x", id), ResultCount: len(names)})
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
	wild, out, old := ctNoise(d.Name)
	drop = []string{wild, out, old}
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
		name = strings.TrimPrefix(strings.TrimPrefix(name, "%"), ".")
		es := []ctEntry{}
		if i, ok := l.byDomain[name]; ok {
			es = l.ctEntries(i)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(es)
	})}, ln)
	return nil
}
