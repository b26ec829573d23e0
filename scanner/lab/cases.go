package lab

// cases is the ONE explicit list of lab behaviours. A check family adds its
// cases here (tlsCases, webCases, dnsCases, repoCases, …): a Case builds a
// Domain with DNS records, hosts (WebSpec, SMTPSpec, CertSpec), repositories
// and CT names, and says what the scanner must find (Expect).
func cases() []Case {
	var all []Case
	all = append(all, emailCases()...)
	all = append(all, scopeCases()...)
	all = append(all, tlsCases()...)
	return all
}
