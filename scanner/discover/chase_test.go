package discover

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/checks/dnsq/dnstest"
	"github.com/nhsx/posture/scanner/estate"
)

// TestCNAMEChainsLeadToTheirOwners: an alias under one estate domain that
// points into another makes the target a name (and host) of the other,
// owned by its organisation; an alias into a name in scope that no
// estate domain owns lists that name as unowned; a name outside the
// scope is neither.
func TestCNAMEChainsLeadToTheirOwners(t *testing.T) {
	srv, err := dnstest.Start([]string{"uk.", "example."},
		"app.a.nhs.uk. 300 IN CNAME svc.b.nhs.uk.",
		"svc.b.nhs.uk. 300 IN A 192.0.2.9",
		"old.a.nhs.uk. 300 IN CNAME www.nobody.nhs.uk.",
		"www.nobody.nhs.uk. 300 IN A 192.0.2.10",
		"cdn.a.nhs.uk. 300 IN CNAME edge.example.",
		"edge.example. 300 IN A 192.0.2.11",
	)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := &estate.Estate{Scope: estate.Scope{Suffixes: []string{"nhs.uk"}}, Organisations: []estate.Organisation{
		{Code: "RA", Domains: []string{"a.nhs.uk"}}, {Code: "RB", Domains: []string{"b.nhs.uk"}}}}
	res, err := Run(context.Background(), e, Options{DNS: &dnsq.Resolver{Servers: []string{srv.Addr}, Timeout: time.Second, Retries: -1},
		Labels: []string{"app", "old", "cdn"}, AllowPrivate: true,
		Kinds: map[check.Kind]bool{check.KindDomain: true, check.KindHost: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Names["b.nhs.uk"], "svc.b.nhs.uk") || slices.Contains(res.Names["a.nhs.uk"], "svc.b.nhs.uk") {
		t.Errorf("names %v: svc.b.nhs.uk should be b.nhs.uk's", res.Names)
	}
	var svc check.Asset
	for _, a := range res.Assets {
		if a.Key() == "host:svc.b.nhs.uk" {
			svc = a
		}
	}
	if svc.Org != "RB" || svc.Domain != "b.nhs.uk" || svc.Source != "cname" {
		t.Errorf("host svc.b.nhs.uk: %+v, want RB's, found by cname", svc)
	}
	want := []Unowned{{Name: "www.nobody.nhs.uk", Source: "cname", Via: "old.a.nhs.uk"}}
	if !slices.Equal(res.Unowned, want) {
		t.Errorf("unowned %v, want %v", res.Unowned, want)
	}
}
