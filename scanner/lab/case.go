package lab

import "github.com/nhsx/posture/checks/check"

// Case is one behaviour the scanner must judge. Build instantiates it on a
// domain name, so that the lab can scale by stamping cases onto many domains
// while still knowing the right answer for each (its ground truth).
type Case struct {
	Name   string // short, unique: "spf-plus-all"
	Family string // email, dns, tls, web, repo
	Build  func(domain string) Domain
}

// Domain is one lab domain: the DNS records that make the behaviour, and the
// outcomes the scanner must find.
type Domain struct {
	Name string
	// Records are RFC 1035 presentation-format RRs with absolute owner
	// names, e.g. `lab-spf-none.nhs.uk. 300 IN TXT "v=spf1 -all"`. Their
	// owners may be the domain or names below it.
	Records []string
	// Drop lists owner names whose queries the lab DNS never answers, so a
	// resolver times out on them.
	Drop []string
	// Expect is the ground truth: the worst outcome (check.Worst) of each
	// catalogue id on each asset. A test compares a scan of the lab with it.
	Expect []Expect
}

// Expect is one expected verdict.
type Expect struct {
	Kind    check.Kind    `json:"kind"`
	Name    string        `json:"name"` // asset name
	CheckID string        `json:"check"`
	Outcome check.Outcome `json:"outcome"`
}
