package tlscheck

import "github.com/nhsx/posture/checks/check"

// TLSPolicy is the tls section of the policy file (`tls:`): certificate
// and protocol thresholds, shared by the web and mail collectors.
type TLSPolicy struct {
	CertWarnDays int `yaml:"cert_warn_days" json:"cert_warn_days"` // Mail Check: 14
	CertHighDays int `yaml:"cert_high_days" json:"cert_high_days"` // checks.md §3.2: 7
	MinRSABits   int `yaml:"min_rsa_bits" json:"min_rsa_bits"`     // 2048
	MinECBits    int `yaml:"min_ec_bits" json:"min_ec_bits"`       // 256
	MinDHBits    int `yaml:"min_dh_bits" json:"min_dh_bits"`       // 2048
}

// Settings is the tls section, with the thresholds of checks.md §1.1.
var Settings = check.NewSection("tls", TLSPolicy{
	CertWarnDays: 14, CertHighDays: 7, MinRSABits: 2048, MinECBits: 256, MinDHBits: 2048,
}, validate)

// validate rejects thresholds that are typos rather than policies: a
// negative day count, a high threshold beyond the warning one (it would
// never be reached), or a key size below any real key's (EC keys are a
// quarter of an RSA key's size for the same strength, so their floor is
// lower: 256 is the default).
func validate(p TLSPolicy) []*check.FieldError {
	return []*check.FieldError{
		check.AtLeast("cert_warn_days", p.CertWarnDays, 0),
		check.InRange("cert_high_days", p.CertHighDays, 0, max(p.CertWarnDays, 0)),
		check.AtLeast("min_rsa_bits", p.MinRSABits, 512),
		check.AtLeast("min_ec_bits", p.MinECBits, 128),
		check.AtLeast("min_dh_bits", p.MinDHBits, 512),
	}
}
