package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// OrgCollector is the collector id of the organisation checks.
const OrgCollector = "org.github"

// OrgEvidence is GET /orgs/{org} as GitHub answered it (an owner sees the
// settings; anyone else sees the public profile).
type OrgEvidence struct {
	Login string `json:"login"`
	Org   *Call  `json:"org"`
}

// OrgCheck is the organisation collector.
func OrgCheck() check.Check {
	return check.New(check.Spec[OrgEvidence]{
		ID: OrgCollector, Family: "org", Targets: []check.Kind{check.KindOrg},
		Rules: orgRules, Collect: collectOrg, Evaluate: evaluateOrg, Version: 1,
		Timeout: 7 * time.Minute,
	})
}

func collectOrg(ctx context.Context, env *check.Env, a check.Asset) (OrgEvidence, error) {
	c, err := ghClient(env)
	if err != nil {
		return OrgEvidence{}, err
	}
	ev := OrgEvidence{Login: a.Name, Org: ghCall(ctx, c, "orgs/"+ghPath(a.Name))}
	if !ev.Org.OK() || ev.Org.Truncated {
		return ev, ev.Org.failed("GET orgs/" + a.Name)
	}
	return ev, nil
}

type orgInfo struct {
	PublicRepos   *int    `json:"public_repos"`
	TotalPrivate  *int    `json:"total_private_repos"`
	TwoFA         *bool   `json:"two_factor_requirement_enabled"`
	DefaultPerm   *string `json:"default_repository_permission"`
	ForkPrivate   *bool   `json:"members_can_fork_private_repositories"`
	CreatePublic  *bool   `json:"members_can_create_public_repositories"`
	CreatePrivate *bool   `json:"members_can_create_private_repositories"`
}

func evaluateOrg(in check.In[OrgEvidence]) []check.Finding {
	var o orgInfo
	if in.Evidence.Org == nil || json.Unmarshal(in.Evidence.Org.Body, &o) != nil {
		return []check.Finding{
			unknownf(IDOrg2FA, string(check.ErrMalformed), "the organisation does not decode"),
			unknownf(IDOrgBasePerms, string(check.ErrMalformed), "the organisation does not decode"),
			unknownf(IDOrgOpen, string(check.ErrMalformed), "the organisation does not decode"),
		}
	}
	var out []check.Finding
	if o.TwoFA == nil {
		out = append(out, needsAdmin(IDOrg2FA, "two_factor_requirement_enabled"))
	} else {
		out = append(out, passFail(IDOrg2FA, !*o.TwoFA, "two-factor authentication required: %v", *o.TwoFA))
	}
	switch {
	case o.DefaultPerm == nil || o.ForkPrivate == nil:
		out = append(out, needsAdmin(IDOrgBasePerms, "default_repository_permission and members_can_fork_private_repositories"))
	default:
		out = append(out, passFail(IDOrgBasePerms, *o.DefaultPerm != "none" || *o.ForkPrivate,
			"base permission %s; members can fork private repositories: %v", *o.DefaultPerm, *o.ForkPrivate))
	}
	pub := 0
	if o.PublicRepos != nil {
		pub = *o.PublicRepos
	}
	msg := fmt.Sprintf("%d public repositories", pub)
	if o.TotalPrivate != nil {
		total := pub + *o.TotalPrivate
		share := 100
		if total > 0 {
			share = pub * 100 / total
		}
		msg = fmt.Sprintf("%d public and %d private repositories (%d%% public)", pub, *o.TotalPrivate, share)
	}
	if o.CreatePublic != nil && o.CreatePrivate != nil {
		msg += fmt.Sprintf("; members may create public repositories: %v, private: %v", *o.CreatePublic, *o.CreatePrivate)
	}
	return append(out, finding(IDOrgOpen, check.Pass, "%s", msg))
}
