package checks

import (
	"strings"
	"testing"

	"github.com/nhsx/posture/checks/check"
)

// TestCatalogueIsWellFormed: every entry a user sees in `posture checks` has
// an id in its family, a known severity, targets and at least one standard;
// collector ids are unique.
func TestCatalogueIsWellFormed(t *testing.T) {
	ids := map[string]bool{}
	for _, c := range All() {
		if ids[c.ID()] {
			t.Errorf("collector id %s appears twice in All()", c.ID())
		}
		ids[c.ID()] = true
		if len(c.Rules()) == 0 {
			t.Errorf("collector %s has no catalogue entries", c.ID())
		}
	}
	seen := map[string]bool{}
	for _, m := range Catalogue() {
		if seen[m.ID] {
			t.Errorf("%s listed twice", m.ID)
		}
		seen[m.ID] = true
		if m.Family == "" || !strings.HasPrefix(m.ID, m.Family+".") {
			t.Errorf("%s: family %q is not its id's prefix", m.ID, m.Family)
		}
		if m.Severity.Rank() < 0 {
			t.Errorf("%s: severity %q", m.ID, m.Severity)
		}
		if len(m.Targets) == 0 || len(m.Standards) == 0 || m.Title == "" || m.Description == "" {
			t.Errorf("%s: needs targets, standards, a title and a description", m.ID)
		}
		for _, k := range m.Targets {
			switch k {
			case check.KindDomain, check.KindHost, check.KindMail, check.KindRepo, check.KindOrg, check.KindZone:
			default:
				t.Errorf("%s: unknown target kind %q", m.ID, k)
			}
		}
	}
	if len(seen) < 25 {
		t.Errorf("catalogue has %d entries; the email and TLS families alone have more", len(seen))
	}
}
