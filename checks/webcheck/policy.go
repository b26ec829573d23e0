package webcheck

import "github.com/nhsx/posture/checks/check"

// Policy is the web family's section of the policy file (`web:`).
type Policy struct {
	// HSTSMinMaxAge is the least HSTS max-age that passes web.hsts.max-age:
	// one year (checks.md §3.2 decision 10; pshtt's "strong HSTS";
	// hstspreload's hstsMinimumMaxAge).
	HSTSMinMaxAge int `yaml:"hsts_min_max_age" json:"hsts_min_max_age"`
	// PublicSectorSuffixes are the domains web.redirect.scope accepts as
	// the end of a public-sector host's redirects (GOV.UK: not "a
	// non-public sector domain like … .com"). Default
	// DefaultPublicSectorSuffixes; the host's own estate domain always
	// counts.
	PublicSectorSuffixes []string `yaml:"public_sector_suffixes" json:"public_sector_suffixes"`
	// NonprodLabels name non-production hosts by their first label below
	// the estate domain (web.nonprod.protected): a label matches itself
	// and itself followed by digits (dev2); one with '*' is a glob over
	// the label (*-dev). Default DefaultNonprodLabels.
	NonprodLabels []string `yaml:"nonprod_labels" json:"nonprod_labels"`
	// LoginHosts are sign-in services ("*." for any name below): a
	// non-production host that sends visitors to one is protected
	// (web.nonprod.protected), and a redirect to one does not take a
	// public-sector host off the public sector (web.redirect.scope).
	// Default DefaultLoginHosts.
	LoginHosts []string `yaml:"login_hosts" json:"login_hosts"`
	// Preload is a newer copy of Chromium's HSTS preload list to judge
	// web.hsts.preload against (reeval --hsts-preload FILE): configuration,
	// not a policy file setting. nil: the fact the scan recorded.
	Preload *PreloadList `yaml:"-" json:"-"`
	// SecurityTxtCentral are central vulnerability disclosure files: when
	// the redirects of /.well-known/security.txt reach one of these URLs,
	// web.securitytxt.present passes without fetching it (checks.md §3.2
	// decision 13; GDS Way). Default: the Cabinet Office VDP file.
	SecurityTxtCentral []string `yaml:"securitytxt_central" json:"securitytxt_central"`
}

// Settings is the web section.
var Settings = check.NewSection("web", Policy{HSTSMinMaxAge: 31536000, PublicSectorSuffixes: DefaultPublicSectorSuffixes,
	NonprodLabels: DefaultNonprodLabels, LoginHosts: DefaultLoginHosts, SecurityTxtCentral: DefaultSecurityTxtCentral}, func(p Policy) []*check.FieldError {
	return append(validatePolicy(p), validateSitePolicy(p)...)
})

// validatePolicy rejects a threshold that is a typo rather than a policy:
// a day (86400) or less protects nothing across visits, and more than
// MaxAgeCap can never be met.
func validatePolicy(p Policy) []*check.FieldError {
	return append([]*check.FieldError{check.InRange("hsts_min_max_age", p.HSTSMinMaxAge, 86400, MaxAgeCap)},
		validateSecurityTxtCentral(p.SecurityTxtCentral)...)
}
