package webcheck

import "github.com/nhsx/posture/checks/check"

// Policy is the web family's section of the policy file (`web:`).
type Policy struct {
	// HSTSMinMaxAge is the least HSTS max-age that passes web.hsts.max-age:
	// one year (checks.md §3.2 decision 10; pshtt's "strong HSTS";
	// hstspreload's hstsMinimumMaxAge).
	HSTSMinMaxAge int `yaml:"hsts_min_max_age" json:"hsts_min_max_age"`
	// SecurityTxtCentral are central vulnerability disclosure files: when
	// the redirects of /.well-known/security.txt reach one of these URLs,
	// web.securitytxt.present passes without fetching it (checks.md §3.2
	// decision 13; GDS Way). Default: the Cabinet Office VDP file.
	SecurityTxtCentral []string `yaml:"securitytxt_central" json:"securitytxt_central"`
}

// Settings is the web section.
var Settings = check.NewSection("web", Policy{HSTSMinMaxAge: 31536000, SecurityTxtCentral: DefaultSecurityTxtCentral}, validatePolicy)

// validatePolicy rejects a threshold that is a typo rather than a policy:
// a day (86400) or less protects nothing across visits, and more than
// MaxAgeCap can never be met.
func validatePolicy(p Policy) []*check.FieldError {
	return append([]*check.FieldError{check.InRange("hsts_min_max_age", p.HSTSMinMaxAge, 86400, MaxAgeCap)},
		validateSecurityTxtCentral(p.SecurityTxtCentral)...)
}
