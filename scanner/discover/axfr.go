package discover

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Zone transfers (RFC 5936) where a server allows them: the names of an
// estate domain's zone, asked of its name servers and of its SOA MNAME
// (the primary, often a hidden one, and often the one that still
// transfers). A server that refuses, as it should, costs one exchange.

const (
	axfrTimeout    = 10 * time.Second // one server, the whole transfer
	axfrMaxRecords = 20_000
	axfrMaxServers = 4
)

// axfr tries a transfer of dom from its servers; the names of the first
// that transfers are candidates. Only a zone apex (a name owning NS
// records) is asked: a parent's transfer is not the estate's to take.
func (d *run) axfr(ctx context.Context, dom string) {
	hosts, cut, err := zoneCut(ctx, d.o.DNS, d.e, dom)
	if err != nil || !cut {
		return
	}
	if resp, err := d.o.DNS.Query(ctx, dom, dns.TypeSOA); err == nil {
		for _, rr := range resp.Of(dns.TypeSOA) {
			if !strings.EqualFold(rr.Header().Name, dns.CanonicalName(dom)) {
				continue
			}
			m := strings.ToLower(strings.TrimSuffix(rr.(*dns.SOA).Ns, "."))
			if m != "" && !d.e.Excluded(m) && !slices.Contains(hosts, m) {
				hosts = append([]string{m}, hosts...)
			}
		}
	}
	if len(hosts) > axfrMaxServers {
		hosts = hosts[:axfrMaxServers]
	}
	for _, h := range hosts {
		names, err := axfrNames(ctx, d.o.Dial, h, dom)
		if err != nil {
			d.o.Log.Debug("zone transfer refused or failed", "zone", dom, "server", h, "err", err)
			continue
		}
		d.o.Log.Info("zone transfer allowed: its names are discovered", "zone", dom, "server", h, "names", len(names))
		d.mu.Lock()
		d.res.AXFR = append(d.res.AXFR, dom)
		d.mu.Unlock()
		for _, n := range names {
			d.candidate(n, "axfr", dom)
		}
		return
	}
}

// axfrNames transfers zone from host and returns the owner names of its
// records (bounded), or why not.
func axfrNames(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), host, zone string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, axfrTimeout)
	defer cancel()
	conn, err := dial(ctx, "tcp", net.JoinHostPort(host, "53"))
	if err != nil {
		return nil, fmt.Errorf("axfr %s: %w", host, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	tr := &dns.Transfer{Conn: &dns.Conn{Conn: conn}, DialTimeout: axfrTimeout, ReadTimeout: axfrTimeout, WriteTimeout: axfrTimeout}
	q := new(dns.Msg)
	q.SetAxfr(dns.Fqdn(zone))
	env, err := tr.In(q, "")
	if err != nil {
		return nil, fmt.Errorf("axfr %s: %w", host, err)
	}
	var names []string
	seen := map[string]bool{}
	records := 0
	for e := range env {
		if e.Error != nil {
			conn.Close()
			for range env { // let the reader end
			}
			if len(names) > 0 {
				// Transferred in part: what came is real.
				return names, nil
			}
			return nil, fmt.Errorf("axfr %s: %w", host, e.Error)
		}
		for _, rr := range e.RR {
			if records++; records > axfrMaxRecords {
				conn.Close()
				for range env {
				}
				return names, nil
			}
			n := strings.ToLower(strings.TrimSuffix(rr.Header().Name, "."))
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("axfr %s: empty transfer", host)
	}
	return names, nil
}
