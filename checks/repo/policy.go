package repo

import "github.com/nhsx/posture/checks/check"

// Policy is the repository family's section of the policy file (`repo:`).
type Policy struct {
	// StaleDays: an unarchived repository with no push for longer warns
	// (repo.stale; GDS Way "Use GitHub": archive what is no longer used;
	// 12 months, checks.md §1.7).
	StaleDays int `yaml:"stale_days" json:"stale_days"`
	// AlertSLADays: an open critical or high alert older than this fails
	// repo.vuln-alerts.open (checks.md §1.7: the team's agreed SLA, default
	// 30 days).
	AlertSLADays int `yaml:"alert_sla_days" json:"alert_sla_days"`
}

// Settings is the repo section.
var Settings = check.NewSection("repo", Policy{StaleDays: 365, AlertSLADays: 30}, func(p Policy) []*check.FieldError {
	return []*check.FieldError{check.InRange("stale_days", p.StaleDays, 30, 3650),
		check.InRange("alert_sla_days", p.AlertSLADays, 0, 365)}
})
