package lab

// scopeFamily: the scope guard's fixtures. They judge no check of their
// own, so they state no truth beyond what other families lend them.
var scopeFamily = Family{Name: "scope", Cases: scopeCases}

// scopeCases are the scope guard's fixtures: in-scope names that lead
// outside the scope. A correct scan makes zero connections to OutsideIP,
// MetadataIP and the excluded host (Lab.Conns counts them).
func scopeCases() []Case {
	return []Case{
		{Name: "scope-cname", Family: "scope", Build: func(d string) Domain {
			// An in-scope name whose CNAME leads outside the scope.
			return Domain{Name: d, Records: []string{"www." + d + ". 300 IN CNAME " + OutsideName + "."}}
		}},
		{Name: "scope-redirect", Family: "scope", Build: func(d string) Domain {
			// A lab web host that redirects, on HTTP and HTTPS, outside the scope.
			to := Redirect("http://" + OutsideName + "/")
			return Domain{Name: d, Hosts: []Host{{Name: "www." + d, Web: &WebSpec{HTTPS: to, HTTP: to}}}}
		}},
		{Name: "scope-metadata", Family: "scope", Build: func(d string) Domain {
			// An in-scope name that resolves to the cloud metadata address.
			return Domain{Name: d, Records: []string{"www." + d + ". 300 IN A " + MetadataIP}}
		}},
		{Name: "scope-exclude", Family: "scope", Build: func(d string) Domain {
			// A live lab host that the estate excludes from scope.
			return Domain{Name: d, Hosts: []Host{{Name: "www." + d, Web: &WebSpec{}}}, Exclude: []string{"www." + d}}
		}},
		{Name: "scope-exclude-mx", Family: "scope", Build: func(d string) Domain {
			// The domain's only MX is a live mail host under a name the
			// estate excludes: the exclusion beats the MX allowance.
			mx := "mail.legacy." + d
			return Domain{Name: d, Records: []string{rr(d, "MX", "10 "+mx+".")},
				Hosts: []Host{{Name: mx, SMTP: &SMTPSpec{}, Web: &WebSpec{}}}, Exclude: []string{"legacy." + d}}
		}},
	}
}

// ScopeFixtures names the scope guard's fixtures (the first stamp of each).
type ScopeFixtures struct {
	CNAME      string // CNAME to OutsideName
	Redirect   string // web host: 302 to http://OutsideName/ on HTTP and HTTPS
	Metadata   string // A MetadataIP
	Excluded   string // a live lab web host the estate excludes
	ExcludedIP string // its address, for Conns
	// ExcludedMX is a live mail host, the only MX of its domain, under a
	// name the estate excludes; ExcludedMXIP its address.
	ExcludedMX, ExcludedMXIP string
	OutsideIP                string // where OutsideName resolves
	MetadataIP               string
}

// Scope returns the scope fixtures.
func (l *Lab) Scope() ScopeFixtures {
	f := ScopeFixtures{
		CNAME:      "www." + domainName("scope-cname", 1),
		Redirect:   "www." + domainName("scope-redirect", 1),
		Metadata:   "www." + domainName("scope-metadata", 1),
		Excluded:   "www." + domainName("scope-exclude", 1),
		ExcludedMX: "mail.legacy." + domainName("scope-exclude-mx", 1),
		OutsideIP:  OutsideIP,
		MetadataIP: MetadataIP,
	}
	f.ExcludedIP = l.HostIP(f.Excluded)
	f.ExcludedMXIP = l.HostIP(f.ExcludedMX)
	return f
}
