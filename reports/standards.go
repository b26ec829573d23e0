package reports

import (
	"strings"

	"github.com/nhsx/posture/checks/check"
)

// BoardStandard is a standard the board reads compliance against. The
// catalogue cites documents finely (a rule file of NCSC Mail Check, an RFC
// section); the board sees them grouped under the standard an organisation
// is held to. A check counts towards every standard it cites.
type BoardStandard struct {
	ID    string `json:"id"` // stored with the scores: keep it stable
	Title string `json:"title"`
	About string `json:"about"`
	// Cites are the catalogue citations (Ref.Standard, matched as a
	// case-insensitive prefix) that count towards the standard.
	Cites []string `json:"-"`
	// Families are catalogue families whose every check counts.
	Families []string `json:"-"`
	// MailCheck counts NCSC Mail Check citations of email checks and of
	// checks on mail servers (Mail Check tested the email standard; its
	// TLS rules on web hosts belong to the TLS guidance).
	MailCheck bool `json:"-"`
}

// BoardStandards are the standards of the board, in the order it lists
// them. Citations of none of them (RFCs, OWASP, CISA, GitHub Docs) stay in
// the catalogue view and count in the overall score only.
var BoardStandards = []BoardStandard{
	{ID: "email", Title: "GOV.UK email security standard",
		About: "SPF, DKIM, DMARC, encrypted mail transfer, MTA-STS and TLS-RPT: what DCB1596 secure email requires and NCSC Mail Check tested",
		Cites: []string{"GOV.UK email security standard", "GOV.UK: Securing government email", "GOV.UK: Set up government email services securely",
			"GOV.UK: Protect domains that don't send email", "GDS Way: Protect domains that do not send email",
			"security.gov.uk: Set up TLS-RPT and MTA-STS"},
		MailCheck: true},
	{ID: "tls", Title: "NCSC TLS guidance",
		About:    "TLS versions, ciphers and certificates of web and mail servers",
		Cites:    []string{"NCSC TLS guidance", "NCSC: Using TLS to protect data"},
		Families: []string{"tls"}},
	{ID: "https", Title: "GOV.UK Service Manual: HTTPS",
		About: "HTTPS only, HSTS, no content over HTTP, test sites behind a login",
		Cites: []string{"GOV.UK Service Manual: Using HTTPS", "GOV.UK Service Manual: Get a domain name",
			"NCSC: Serve websites over HTTPS, always", "Service Manual: Using HTTPS"}},
	{ID: "domains", Title: "Protecting public sector domains",
		About: "GOV.UK and security.gov.uk domain guidance: registry locks, expiry, CAA, DNSSEC, dangling records",
		Cites: []string{"GOV.UK: Use your .gov.uk domain name", "GOV.UK: Keeping your domain name secure",
			"security.gov.uk: Protecting public sector domains"}},
	{ID: "hscn-dns", Title: "NHS England HSCN DNS standards",
		About: "delegations, zone transfers, wildcards and records pointing off the infrastructure",
		Cites: []string{"NHS England HSCN DNS standards"}},
	{ID: "gds-way", Title: "GDS Way: security of websites and code",
		About: "security headers, registrar safeguards and repository practice",
		Cites: []string{"GDS Way"}},
	{ID: "vdp", Title: "Vulnerability disclosure (security.txt)",
		About: "a valid security.txt on every site (RFC 9116, endorsed by the UK Data Standards Authority)",
		Cites: []string{"RFC 9116", "UK Data Standards Authority: security.txt", "NCSC Vulnerability Disclosure Toolkit",
			"GDS Way: Vulnerability Disclosure"}},
	{ID: "seqf", Title: "NHS England Software Engineering Quality Framework",
		About: "repository and organisation settings of the NHS's public code",
		Cites: []string{"NHS England Software Engineering Quality Framework", "nhs-england-tools/repository-template"}},
	{ID: "open-source", Title: "NHS open source policy and GOV.UK Service Standard",
		About: "licences, contributing guides and no secrets in public code",
		Cites: []string{"NHS (nhsx) Open Source Policy", "GOV.UK Service Standard", "Technology Code of Practice"}},
	{ID: "caf", Title: "NCSC Cyber Assessment Framework (evidence)",
		About: "evidence relevant to CAF outcomes: CAF and DSPT are judged by people, not by this scan",
		Cites: []string{"NCSC CAF", "CAF"}},
}

var boardStandardByID = func() map[string]BoardStandard {
	m := map[string]BoardStandard{}
	for _, b := range BoardStandards {
		m[b.ID] = b
	}
	return m
}()

// StandardTitle is the title of a board standard id ("" for AllChecks:
// "All checks").
func StandardTitle(id string) string {
	if id == AllChecks {
		return "All checks"
	}
	if b, ok := boardStandardByID[id]; ok {
		return b.Title
	}
	return id
}

// standardsOf lists the board standards (ids, in board order) a check of
// the family counts towards on an asset of the kind, given its citations.
func standardsOf(family string, kind check.Kind, refs []check.Ref) []string {
	var out []string
	for _, b := range BoardStandards {
		if b.matches(family, kind, refs) {
			out = append(out, b.ID)
		}
	}
	return out
}

func (b BoardStandard) matches(family string, kind check.Kind, refs []check.Ref) bool {
	for _, f := range b.Families {
		if f == family {
			return true
		}
	}
	for _, r := range refs {
		std := strings.ToLower(strings.TrimSpace(r.Standard))
		if std == "" {
			continue
		}
		if b.MailCheck && strings.HasPrefix(std, "ncsc mail check") && (family == "email" || kind == check.KindMail) {
			return true
		}
		for _, c := range b.Cites {
			if strings.HasPrefix(std, strings.ToLower(c)) {
				return true
			}
		}
	}
	return false
}

// refLabel is a citation as the catalogue view prints it: "CAF B3.b".
func refLabel(r check.Ref) string {
	return strings.TrimSpace(oneLine(r.Standard) + " " + oneLine(r.Section))
}

// refsOf is the standards a finding cites, or its catalogue entry's.
func (s *Summary) refsOf(f Finding) []check.Ref {
	if len(f.Standards) > 0 {
		return f.Standards
	}
	return s.meta[f.CheckID].Standards
}

// StandardsOf names the board standards a finding counts towards, by
// title: what a board reads in "relevant to". Rule files and sections stay
// in the catalogue view and the evidence.
func (s *Summary) StandardsOf(f Finding) []string {
	family := s.meta[f.CheckID].Family
	if family == "" {
		family, _, _ = strings.Cut(f.CheckID, ".")
	}
	var out []string
	for _, id := range standardsOf(family, f.Asset.Kind, s.refsOf(f)) {
		out = append(out, StandardTitle(id))
	}
	return out
}
