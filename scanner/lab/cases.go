package lab

import (
	"slices"
	"strings"

	"github.com/nhsx/posture/checks/check"
)

// Family is one check family's part of the lab, defined in one file
// (email.go, tls.go, …) and registered in families(). Its truth is its
// own: Cases are its behaviours, each with the ground truth of the
// family's checks on it, and Complete states that truth on every other lab
// domain (a DNS family says what its checks find on an email case's
// domain), so a new family needs nothing from the others and the others
// need nothing from it.
type Family struct {
	Name  string
	Cases func() []Case
	// Complete adds, to a domain built by a case of another family or to
	// what the lab added around any domain (see Added), the records this
	// family's checks need to have a known answer, and that answer. The
	// case's own records win: Complete adds nothing where the case
	// already published what the family looks at. nil: nothing to add.
	Complete func(d *Domain, c Case, added Added, cases []Case)
	// Infra is the family's truth on the lab's shared hosts (the MX hosts
	// every domain without its own MX points at). nil: none.
	Infra func(host string, kind check.Kind) []Expect
}

// Added is what the lab put around a case's domain; a name is "" when the
// case defined it itself.
type Added struct {
	WWW       string // a good web host, www.<domain>
	MailAlias string // mail.<domain>, a CNAME to the lab's MX (no web service)
}

// families is the ONE list of the lab's check families. A family adds its
// file and one line here.
func families() []Family {
	return []Family{emailFamily, scopeFamily, tlsFamily, dnsFamily, dnssecFamily, dkimFamily, mtastsFamily, webFamily, securityTxtFamily, hygieneFamily, repoFamily, orgFamily, secretsFamily, exposureFamily, webhdrFamily, hostileFamily}
}

// cases are every family's behaviours, in stamping order, each marked with
// its family.
func cases() []Case {
	var all []Case
	for _, f := range families() {
		for _, c := range f.Cases() {
			c.Family = f.Name
			all = append(all, c)
		}
	}
	return all
}

// FamilyNames lists the lab's families: the families whose ground truth
// the lab states in full (every id of the family on every asset it judges).
func FamilyNames() []string {
	var out []string
	for _, f := range families() {
		out = append(out, f.Name)
	}
	return out
}

// active are the registered families that have a case among cs: only
// they state truth (a test lab with only email cases asks nothing of TLS).
func active(cs []Case) []Family {
	var out []Family
	for _, f := range families() {
		if slices.ContainsFunc(cs, func(c Case) bool { return c.Family == f.Name }) {
			out = append(out, f)
		}
	}
	return out
}

// publishes reports whether d's records have an RR of type typ at owner.
func publishes(d *Domain, owner, typ string) bool {
	owner = strings.ToLower(strings.TrimSuffix(owner, ".")) + "."
	for _, r := range d.Records {
		o, t := ownerType(r)
		if o == owner && (typ == "" || t == typ) {
			return true
		}
	}
	return false
}
