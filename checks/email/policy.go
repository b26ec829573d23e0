package email

import "github.com/nhsx/posture/checks/check"

// Policy is the email family's section of the policy file (`email:`):
// SPF, DMARC and mail-server thresholds.
type Policy struct {
	SPFMaxLookups   int  `yaml:"spf_max_lookups" json:"spf_max_lookups"`             // RFC 7208 §4.6.4: 10
	SPFMaxVoid      int  `yaml:"spf_max_void" json:"spf_max_void"`                   // RFC 7208 §4.6.4: 2
	SPFMaxUDPBytes  int  `yaml:"spf_max_udp_bytes" json:"spf_max_udp_bytes"`         // Mail Check: 450
	SPFSoftfailPass bool `yaml:"spf_softfail_pass" json:"spf_softfail_pass"`         // ~all passes on sending domains
	DMARCMaxLength  int  `yaml:"dmarc_max_length" json:"dmarc_max_length"`           // Mail Check: 450
	DMARCQuarantine bool `yaml:"dmarc_quarantine_warn" json:"dmarc_quarantine_warn"` // quarantine = warn (else pass)
	DMARCMaxRUAURIs int  `yaml:"dmarc_max_rua" json:"dmarc_max_rua"`                 // Mail Check: 2
}

// Settings is the email section with the thresholds of checks.md §1.6.
var Settings = check.NewSection("email", Policy{
	SPFMaxLookups:   10,
	SPFMaxVoid:      2,
	SPFMaxUDPBytes:  450,
	SPFSoftfailPass: true,
	DMARCMaxLength:  450,
	DMARCQuarantine: true,
	DMARCMaxRUAURIs: 2,
}, func(p Policy) []*check.FieldError {
	// A limit of 0 would fail every domain with an SPF record: a typo,
	// not a policy.
	return []*check.FieldError{
		check.InRange("spf_max_lookups", p.SPFMaxLookups, 1, 100),
		check.InRange("spf_max_void", p.SPFMaxVoid, 0, 100),
		check.InRange("spf_max_udp_bytes", p.SPFMaxUDPBytes, 256, 65535),
		check.InRange("dmarc_max_length", p.DMARCMaxLength, 32, 65535),
		check.InRange("dmarc_max_rua", p.DMARCMaxRUAURIs, 1, 100),
	}
})
