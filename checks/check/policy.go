package check

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// Policy holds the thresholds and severities that Evaluate applies. The
// built-in defaults follow checks.md; a YAML file overrides any of them, and
// `posture reeval` re-applies a changed policy to stored evidence.
type Policy struct {
	// Severity overrides the default severity of a catalogue id.
	Severity map[string]Severity `yaml:"severity,omitempty" json:"severity,omitempty"`
	// Disabled catalogue ids produce no findings.
	Disabled []string `yaml:"disabled,omitempty" json:"disabled,omitempty"`

	Email EmailPolicy `yaml:"email" json:"email"`
	TLS   TLSPolicy   `yaml:"tls" json:"tls"`
}

// EmailPolicy: SPF, DMARC and mail-server thresholds.
type EmailPolicy struct {
	SPFMaxLookups   int  `yaml:"spf_max_lookups" json:"spf_max_lookups"`             // RFC 7208 §4.6.4: 10
	SPFMaxVoid      int  `yaml:"spf_max_void" json:"spf_max_void"`                   // RFC 7208 §4.6.4: 2
	SPFMaxUDPBytes  int  `yaml:"spf_max_udp_bytes" json:"spf_max_udp_bytes"`         // Mail Check: 450
	SPFSoftfailPass bool `yaml:"spf_softfail_pass" json:"spf_softfail_pass"`         // ~all passes on sending domains
	DMARCMaxLength  int  `yaml:"dmarc_max_length" json:"dmarc_max_length"`           // Mail Check: 450
	DMARCQuarantine bool `yaml:"dmarc_quarantine_warn" json:"dmarc_quarantine_warn"` // quarantine = warn (else pass)
	DMARCMaxRUAURIs int  `yaml:"dmarc_max_rua" json:"dmarc_max_rua"`                 // Mail Check: 2
}

// TLSPolicy: certificate and protocol thresholds.
type TLSPolicy struct {
	CertWarnDays int `yaml:"cert_warn_days" json:"cert_warn_days"` // Mail Check: 14
	CertHighDays int `yaml:"cert_high_days" json:"cert_high_days"` // checks.md §3.2: 7
	MinRSABits   int `yaml:"min_rsa_bits" json:"min_rsa_bits"`     // 2048
	MinECBits    int `yaml:"min_ec_bits" json:"min_ec_bits"`       // 256
	MinDHBits    int `yaml:"min_dh_bits" json:"min_dh_bits"`       // 2048
}

// DefaultPolicy returns the built-in thresholds of checks.md.
func DefaultPolicy() *Policy {
	return &Policy{
		Email: EmailPolicy{
			SPFMaxLookups:   10,
			SPFMaxVoid:      2,
			SPFMaxUDPBytes:  450,
			SPFSoftfailPass: true,
			DMARCMaxLength:  450,
			DMARCQuarantine: true,
			DMARCMaxRUAURIs: 2,
		},
		TLS: TLSPolicy{CertWarnDays: 14, CertHighDays: 7, MinRSABits: 2048, MinECBits: 256, MinDHBits: 2048},
	}
}

// LoadPolicy reads a YAML policy over the defaults. Unknown keys are errors,
// so a typo cannot silently leave a default in force.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return ParsePolicy(path, b)
}

// ParsePolicy parses YAML policy bytes over the defaults.
func ParsePolicy(name string, b []byte) (*Policy, error) {
	p := DefaultPolicy()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for id, s := range p.Severity {
		if s.Rank() < 0 {
			return nil, fmt.Errorf("%s: severity of %s: unknown severity %q", name, id, s)
		}
	}
	return p, nil
}

// SeverityOf returns the policy's severity for a catalogue id, or def.
func (p *Policy) SeverityOf(id string, def Severity) Severity {
	if p != nil {
		if s, ok := p.Severity[id]; ok {
			return s
		}
	}
	return def
}

// Enabled reports whether a catalogue id is not disabled.
func (p *Policy) Enabled(id string) bool {
	if p == nil {
		return true
	}
	for _, d := range p.Disabled {
		if d == id {
			return false
		}
	}
	return true
}
