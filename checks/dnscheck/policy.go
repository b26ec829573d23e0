package dnscheck

import (
	_ "embed"
	"fmt"

	"github.com/nhsx/posture/checks/check"
)

// Policy is the dns family's section of the policy file (`dns:`).
type Policy struct {
	// TrustAnchors are the DNSSEC trust anchors dns.dnssec validates
	// from: DS or DNSKEY records in zone-file form (". IN DS 20326 8 2
	// E06D…"). A domain is judged from the anchor closest above it
	// (RFC 4033 §5). Default: the root zone's key-signing keys.
	TrustAnchors []string `yaml:"trust_anchors" json:"trust_anchors"`
}

//go:embed root-anchors.txt
var rootAnchorsFile []byte

// RootAnchors are the root zone's trust anchors (root-anchors.txt: the DS
// records of KSK-2017 and KSK-2024 from IANA's root-anchors.xml).
var RootAnchors = mustAnchors("root-anchors.txt", rootAnchorsFile)

func mustAnchors(name string, b []byte) []string {
	a, err := ParseTrustAnchors(name, b)
	if err != nil {
		panic(err)
	}
	return a
}

// Settings is the dns section. Its only setting so far is the DNSSEC trust
// anchors; `posture scan --trust-anchor FILE` sets it from a file.
var Settings = check.NewSection("dns", Policy{TrustAnchors: RootAnchors}, validatePolicy)

func validatePolicy(p Policy) []*check.FieldError {
	if len(p.TrustAnchors) == 0 {
		return []*check.FieldError{{Field: "trust_anchors", Msg: "at least one DS or DNSKEY record is needed (disable dns.dnssec instead)"}}
	}
	if len(p.TrustAnchors) > maxAnchors {
		return []*check.FieldError{{Field: "trust_anchors", Msg: fmt.Sprintf("%d records: at most %d", len(p.TrustAnchors), maxAnchors)}}
	}
	var errs []*check.FieldError
	for i, s := range p.TrustAnchors {
		if _, err := parseAnchor(s); err != nil {
			errs = append(errs, &check.FieldError{Field: "trust_anchors", Msg: fmt.Sprintf("item %d (%q): %v", i+1, s, err)})
		}
	}
	return errs
}

// WithTrustAnchors returns a copy of p whose dns section has these anchors
// (`--trust-anchor`, the lab).
func WithTrustAnchors(p *check.Policy, anchors []string) *check.Policy {
	s := Settings.Get(p)
	s.TrustAnchors = anchors
	return Settings.Set(p, s)
}
