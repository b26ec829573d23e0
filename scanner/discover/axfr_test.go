package discover

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
	"github.com/nhsx/posture/scanner/estate"
)

// TestAXFRDiscoversTheNamesOfAZoneAServerTransfers: a zone whose server
// transfers it gives its names (those only the zone knows included; an
// underscore name is no host name); a zone whose server refuses gives
// none, and is not listed.
func TestAXFRDiscoversTheNamesOfAZoneAServerTransfers(t *testing.T) {
	head := func(z string) []string {
		return []string{z + ". 3600 IN SOA ns1." + z + ". hostmaster." + z + ". 1 7200 3600 1209600 300",
			z + ". 3600 IN NS ns1." + z + ".", "ns1." + z + ". 300 IN A 192.0.2.53"}
	}
	recs := append(head("open.nhs.uk"), "hidden.open.nhs.uk. 300 IN A 192.0.2.7", "_dmarc.open.nhs.uk. 300 IN TXT \"v=DMARC1; p=reject\"")
	recs = append(recs, head("shut.nhs.uk")...)
	recs = append(recs, "hidden.shut.nhs.uk. 300 IN A 192.0.2.8")
	srv, err := dnstest.Start([]string{"uk."}, recs...)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AllowTransfer("open.nhs.uk")
	var dialed []string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		return (&net.Dialer{}).DialContext(ctx, network, srv.Addr) // every name server is the test's
	}
	e := &estate.Estate{Scope: estate.Scope{Suffixes: []string{"nhs.uk"}}, Organisations: []estate.Organisation{
		{Code: "RA", Domains: []string{"open.nhs.uk"}}, {Code: "RB", Domains: []string{"shut.nhs.uk"}}}}
	res, err := Run(context.Background(), e, Options{DNS: &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: time.Second, Retries: -1},
		Dial: dial, Kinds: map[check.Kind]bool{check.KindDomain: true}, Names: true, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"hidden.open.nhs.uk", "ns1.open.nhs.uk", "open.nhs.uk", "www.open.nhs.uk"}; !slices.Equal(res.Names["open.nhs.uk"], want) {
		t.Errorf("names of the open zone %v, want %v", res.Names["open.nhs.uk"], want)
	}
	if want := []string{"shut.nhs.uk", "www.shut.nhs.uk"}; !slices.Equal(res.Names["shut.nhs.uk"], want) {
		t.Errorf("names of the shut zone %v, want %v", res.Names["shut.nhs.uk"], want)
	}
	if !slices.Equal(res.AXFR, []string{"open.nhs.uk"}) {
		t.Errorf("AXFR %v, want the open zone only", res.AXFR)
	}
	if len(dialed) != 2 {
		t.Errorf("dialed %v, want one name server per zone (the SOA primary is also its NS)", dialed)
	}
}
