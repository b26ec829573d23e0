package discover_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/scanner/discover"
	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/lab"
)

func TestDiscoverLab(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, err := estate.Parse("lab.yaml", l.EstateYAML())
	if err != nil {
		t.Fatal(err)
	}
	svc := &http.Client{Transport: &http.Transport{DialContext: l.Dial}}
	gh := github.NewClient(svc)
	gh.BaseURL, _ = url.Parse(l.GitHubURL)
	res, err := discover.Run(context.Background(), e, discover.Options{
		DNS: l.Resolver(), CTURL: l.CTURL, HTTP: svc, GitHub: gh, AllowPrivate: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]check.Asset{}
	for _, a := range res.Assets {
		if _, dup := have[a.Key()]; dup {
			t.Errorf("asset %s listed twice", a.Key())
		}
		have[a.Key()] = a
	}

	t.Run("every estate domain is an asset owned by its organisation", func(t *testing.T) {
		for _, o := range e.Organisations {
			for _, d := range o.Domains {
				a, ok := have["domain:"+d]
				if !ok || a.Org != o.Code {
					t.Errorf("domain %s: asset %+v, want one owned by %s", d, a, o.Code)
				}
			}
		}
	})
	t.Run("CT names are kept when in scope and resolving, dropped otherwise", func(t *testing.T) {
		fx := l.Scope() // resolving names the guard refuses: the next subtest
		for _, d := range l.Domains() {
			keep, drop := l.CTNames(d.Name)
			for _, n := range keep {
				if n == fx.CNAME || n == fx.Metadata {
					continue
				}
				if _, ok := have["host:"+n]; !ok {
					t.Errorf("%s: CT name %s not discovered", d.Name, n)
				}
			}
			for _, n := range drop {
				if _, ok := have["host:"+n]; ok {
					t.Errorf("%s: CT name %s should have been dropped", d.Name, n)
				}
			}
		}
	})
	t.Run("zones delegated below a domain are zone assets, their name servers queryable", func(t *testing.T) {
		found := 0
		for _, d := range l.Domains() {
			for _, z := range l.Zones(d.Name) {
				found++
				if a, ok := have["zone:"+z]; !ok || a.Domain != d.Name || a.Source != "ns" {
					t.Errorf("%s: zone %s: asset %+v, want a zone asset of the domain", d.Name, z, a)
				}
			}
		}
		if found == 0 {
			t.Fatal("the lab delegates no zone below a domain")
		}
		n := 0
		for _, a := range res.Assets {
			if a.Kind == check.KindZone {
				n++
			}
		}
		if n != found {
			t.Errorf("%d zone assets, want %d (a CT name without NS records of its own is no zone)", n, found)
		}
		// Zone checks alone: the name servers are the zones' only.
		zr, err := discover.Run(context.Background(), e, discover.Options{
			DNS: l.Resolver(), CTURL: l.CTURL, HTTP: svc, AllowPrivate: true, Kinds: map[check.Kind]bool{check.KindZone: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{lab.NS1: true, lab.NS2: true, lab.NSXfr: true}
		if len(zr.NSHosts) != len(want) {
			t.Errorf("NSHosts %v, want the delegated zones' %v", zr.NSHosts, want)
		}
		for h := range want {
			if !zr.NSHosts[h] {
				t.Errorf("NSHosts %v lack %s, a name server of a delegated zone", zr.NSHosts, h)
			}
		}
	})
	t.Run("mail hosts come from MX records", func(t *testing.T) {
		for _, mx := range []string{lab.MX1, lab.MX2} {
			if a, ok := have["mail:"+mx]; !ok || !res.MXHosts[mx] {
				t.Errorf("MX host %s: %+v, want a mail asset", mx, a)
			}
		}
	})
	t.Run("hosts the scope guard would refuse are not assets", func(t *testing.T) {
		fx := l.Scope()
		for _, n := range []string{fx.CNAME, fx.Metadata, fx.Excluded} {
			if _, ok := have["host:"+n]; ok {
				t.Errorf("%s discovered, want it dropped", n)
			}
		}
		if res.Dropped["alias (CNAME) of a name outside the scope"] == 0 || res.Dropped["resolves only to private, loopback or metadata addresses"] == 0 {
			t.Errorf("dropped %v: want the CNAME and metadata fixtures counted", res.Dropped)
		}
	})
	t.Run("repositories of every GitHub organisation, across pages", func(t *testing.T) {
		orgs, repos := 0, 0
		for _, a := range res.Assets {
			switch a.Kind {
			case check.KindOrg:
				orgs++
			case check.KindRepo:
				repos++
			}
		}
		want := 0
		for _, o := range e.Organisations {
			want += len(o.GitHub)
		}
		if orgs != want || repos < 3*want {
			t.Errorf("%d organisations and %d repositories, want %d organisations with 3 repositories each", orgs, repos, want)
		}
	})
	t.Run("every name seen under a domain is recorded, kept or dropped", func(t *testing.T) {
		for _, d := range l.Domains() {
			if d.Absent {
				continue
			}
			keep, drop := l.CTNames(d.Name)
			got := res.Names[d.Name]
			for _, n := range append(append([]string{d.Name, "www." + d.Name}, keep...), drop...) {
				n = strings.TrimPrefix(n, "*.")
				inside := n == d.Name || strings.HasSuffix(n, "."+d.Name)
				if inside != slices.Contains(got, n) && !slices.Contains(d.Exclude, n) {
					t.Errorf("%s: names %v: %s listed %v, want %v", d.Name, got, n, !inside, inside)
				}
			}
			if !slices.IsSorted(got) {
				t.Errorf("%s: names %v not sorted", d.Name, got)
			}
		}
	})
	if len(res.Errors) > 0 {
		t.Errorf("discovery errors: %v", res.Errors)
	}
	t.Run("estate domains that do not exist are reported", func(t *testing.T) {
		var absent []string
		for _, d := range l.Domains() {
			if d.Absent {
				absent = append(absent, d.Name)
			}
		}
		if len(absent) == 0 || len(res.Missing) != len(absent) || res.Missing[0] != absent[0] {
			t.Errorf("missing %v, want the lab's absent domains %v", res.Missing, absent)
		}
	})
}

func TestDiscoverWithoutPrivateDropsLoopbackHosts(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, _ := estate.Parse("lab.yaml", l.EstateYAML())
	res, err := discover.Run(context.Background(), e, discover.Options{DNS: l.Resolver(), Kinds: map[check.Kind]bool{check.KindHost: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Assets {
		if a.Kind == check.KindHost {
			t.Fatalf("host %s kept although it resolves to loopback and --allow-private is off", a.Name)
		}
	}
}

func TestDiscoverRecordsNamesForDomainChecksAlone(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e, _ := estate.Parse("lab.yaml", l.EstateYAML())
	svc := &http.Client{Transport: &http.Transport{DialContext: l.Dial}}
	res, err := discover.Run(context.Background(), e, discover.Options{DNS: l.Resolver(), CTURL: l.CTURL, HTTP: svc,
		AllowPrivate: true, Kinds: map[check.Kind]bool{check.KindDomain: true}, Names: true, MaxPerDomain: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Assets {
		if a.Kind != check.KindDomain {
			t.Fatalf("asset %s built although only domain checks run", a.Key())
		}
	}
	d := l.Domains()[0].Name
	if got := res.Names[d]; len(got) != 3 || !slices.Contains(got, d) {
		t.Errorf("names of %s: %v, want three (the bound) with the apex", d, got)
	}
	// Without Names (an --only email run), no CT search is made for them.
	res, err = discover.Run(context.Background(), e, discover.Options{DNS: l.Resolver(), CTURL: l.CTURL, HTTP: svc,
		AllowPrivate: true, Kinds: map[check.Kind]bool{check.KindDomain: true}})
	if err != nil || len(res.Names) != 0 {
		t.Errorf("names %v (%v) recorded although not asked for", res.Names, err)
	}
}
