package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnscheck"
	"github.com/nhsx/posture/scanner"
	"github.com/nhsx/posture/scanner/store"
)

func reevalCmd(g *globals) *cobra.Command {
	var db, policy, caFile, trustAnchor, hstsPreload string
	var hold int
	c := &cobra.Command{
		Use:   "reeval",
		Short: "Re-apply a policy to the newest run's stored evidence (no network)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := checkHold(hold, true); err != nil {
				return err
			}
			pol := check.DefaultPolicy()
			if policy != "" {
				var err error
				if pol, err = checks.LoadPolicy(policy); err != nil {
					return &usageError{err}
				}
			}
			pol, err := withTrustAnchors(pol, trustAnchor)
			if err != nil {
				return err
			}
			preload, err := loadHSTSPreload(hstsPreload)
			if err != nil {
				return err
			}
			pol = withHSTSPreload(pol, preload)
			var extra []byte
			if caFile != "" {
				var err error
				if _, extra, err = loadRoots(caFile); err != nil {
					return err
				}
			}
			st, err := openExisting(ctx, db)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := setHold(st, hold); err != nil {
				return err
			}
			runs, err := st.Runs(ctx)
			if err != nil {
				return err
			}
			if len(runs) == 0 {
				return usagef("%s has no runs: run `posture scan` first", db)
			}
			run := runs[0]
			// Judge as the scan did: its families, and its trust anchors
			// (the system roots, the run's --ca-file, and this one's).
			ro := scanner.ReadRunOptions(run.Options)
			pol.Roots = ro.Roots()
			pol.Roots.AppendCertsFromPEM(extra)
			if trustAnchor == "" && len(ro.Anchors) > 0 {
				pol = dnscheck.WithTrustAnchors(pol, ro.Anchors)
			}
			cs, keep := scanner.Select(checks.All(), ro.Families)
			byID := map[string]check.Check{}
			for _, c := range cs {
				byID[c.ID()] = c
			}
			var evs []check.Evidence
			if err := st.EachEvidence(ctx, run.ID, func(ev check.Evidence) error {
				evs = append(evs, ev)
				return nil
			}); err != nil {
				return err
			}
			counts := map[check.Outcome]int{}
			skipped := 0
			for _, ev := range evs {
				c, ok := byID[ev.CheckID]
				if !ok {
					skipped++ // a check this build no longer has
					continue
				}
				fs := scanner.Keep(c.Evaluate(ev, pol), keep)
				for _, f := range fs {
					counts[f.Outcome]++
				}
				if err := st.ReplaceFindings(ctx, run.ID, ev.CheckID, ev.Asset.Key(), fs); err != nil {
					return err
				}
			}
			// --hold rebuilds the lifecycle even when the newest run is
			// unfinished: every complete run is replayed with it.
			if run.Status == store.Complete || hold > 0 {
				if err := st.RebuildLifecycle(ctx); err != nil {
					return err
				}
			}
			if hold > 0 {
				fmt.Fprintf(g.stdout, "lifecycle rebuilt: every complete run with a hold of %d\n", hold)
			}
			if run.Status == store.Complete {
				// The run's findings changed: so did its scores.
				if err := RecordRunScores(ctx, st, run.ID); err != nil {
					return err
				}
			}
			fmt.Fprintf(g.stdout, "run %d re-evaluated: %d evidence records", run.ID, len(evs))
			if skipped > 0 {
				fmt.Fprintf(g.stdout, " (%d from checks this build does not have, left as they were)", skipped)
			}
			fmt.Fprintf(g.stdout, "; findings: %d fail, %d warn, %d unknown, %d pass, %d n/a\n",
				counts[check.Fail], counts[check.Warn], counts[check.Unknown], counts[check.Pass], counts[check.NA])
			return nil
		},
	}
	c.Flags().StringVar(&db, "db", "posture.db", "SQLite database")
	holdFlag(c.Flags(), &hold, 0, "; the lifecycle is rebuilt with it for every run (0: each run's own)")
	c.Flags().StringVar(&policy, "policy", "", "policy file (YAML); default: the built-in policy")
	c.Flags().StringVar(&trustAnchor, "trust-anchor", "", "DNSSEC trust anchors (DS or DNSKEY records in zone-file form) to judge dns.dnssec with, replacing the built-in root anchors")
	c.Flags().StringVar(&caFile, "ca-file", "", "extra trusted CA certificates (PEM), besides the system roots and those the run was scanned with")
	c.Flags().StringVar(&hstsPreload, "hsts-preload", "", hstsPreloadUsage)
	return c
}
