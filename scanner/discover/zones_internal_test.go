package discover

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
	"github.com/nhsx/posture/scanner/estate"
)

// TestZoneCutIsANameThatOwnsNSRecords: a name with NS records of its own
// is a zone cut and gives its name servers; a name without them, or an
// alias of a zone's apex (the NS records are the target's), is not.
func TestZoneCutIsANameThatOwnsNSRecords(t *testing.T) {
	srv, err := dnstest.Start([]string{"uk."},
		"dept.a.nhs.uk. 300 IN NS ns1.provider.nhs.uk.",
		"dept.a.nhs.uk. 300 IN NS ns2.provider.nhs.uk.",
		"www.a.nhs.uk. 300 IN A 192.0.2.1",
		"alias.a.nhs.uk. 300 IN CNAME dept.a.nhs.uk.",
	)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: time.Second, Retries: -1}
	e := &estate.Estate{}
	tests := []struct {
		name  string
		cut   bool
		hosts []string
	}{
		{"dept.a.nhs.uk", true, []string{"ns1.provider.nhs.uk", "ns2.provider.nhs.uk"}},
		{"www.a.nhs.uk", false, nil},
		{"alias.a.nhs.uk", false, nil},
		{"gone.a.nhs.uk", false, nil},
	}
	for _, tt := range tests {
		hosts, cut, err := zoneCut(context.Background(), r, e, tt.name)
		slices.Sort(hosts)
		if err != nil || cut != tt.cut || !slices.Equal(hosts, tt.hosts) {
			t.Errorf("%s: cut %v, hosts %v, err %v; want cut %v, hosts %v", tt.name, cut, hosts, err, tt.cut, tt.hosts)
		}
	}
}
