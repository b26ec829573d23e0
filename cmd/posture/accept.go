package main

import (
	"errors"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/scanner/store"
)

func acceptCmd(g *globals) *cobra.Command {
	var db, reason, until, by, checkPat, assetPat string
	var revoke int64
	var allAssets bool
	c := &cobra.Command{
		Use:   "accept [FINDING-ID]",
		Short: "Record a risk acceptance of a finding, or of a check on matching assets, with a reason and an expiry that re-opens it",
		Long: `Record a risk acceptance: the findings show as accepted (counted apart, left out of the
worst risks and the emails' new problems) until the date given; the first run after it
re-opens them, and the organisation is told ("acceptance expired").

One finding:   posture accept FINDING-ID --reason ... --until YYYY-MM-DD
A pattern:     posture accept --check email.dmarc.policy --asset '*.legacy.example.nhs.uk' --reason ... --until YYYY-MM-DD
               --check is a check id or a glob (web.hdr.*); --asset is a name, *.zone (every name
               below zone) or * (every asset); both case-insensitive. A pattern also covers findings
               that first fail later. --check '*' with --asset '*' needs --all-assets.
Revoke:        posture accept --revoke ID (ids from posture acceptances); the next run re-opens.

Finding ids are in the JSON Lines and CSV exports and the reports.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if by == "" {
				if u, err := user.Current(); err == nil {
					by = u.Username
				}
			}
			pattern := checkPat != "" || assetPat != ""
			if revoke != 0 {
				if len(args) > 0 || pattern || reason != "" || until != "" {
					return usagef("--revoke ID takes no finding, pattern, reason or date")
				}
				st, err := openExisting(ctx, db)
				if err != nil {
					return err
				}
				defer st.Close()
				if err := st.Revoke(ctx, revoke, by); err != nil {
					if errors.Is(err, store.ErrNotFound) {
						return usagef("no acceptance %d in %s (see posture acceptances)", revoke, db)
					}
					return &usageError{err}
				}
				fmt.Fprintf(g.stdout, "acceptance %d revoked by %s: the next run re-opens what it covered\n", revoke, by)
				return nil
			}
			switch {
			case pattern && len(args) > 0:
				return usagef("give a FINDING-ID or --check and --asset, not both")
			case pattern && (checkPat == "" || assetPat == ""):
				return usagef("a pattern needs both --check and --asset")
			case !pattern && len(args) == 0:
				return usagef("give a FINDING-ID, or --check and --asset, or --revoke ID")
			case reason == "":
				return usagef("--reason is required: say why the risk is accepted")
			}
			t, err := time.Parse("2006-01-02", until)
			if err != nil {
				return usagef("--until %q: want a date, YYYY-MM-DD", until)
			}
			t = t.Add(24*time.Hour - time.Second) // the whole day
			if pattern {
				if err := checkPatternKnown(checkPat, assetPat, allAssets); err != nil {
					return err
				}
			}
			st, err := openExisting(ctx, db)
			if err != nil {
				return err
			}
			defer st.Close()
			if !pattern {
				id, err := st.AcceptFinding(ctx, args[0], reason, t, by)
				if err != nil {
					if errors.Is(err, store.ErrNotFound) {
						return usagef("finding %s has never failed or warned in a completed run of %s", args[0], db)
					}
					return &usageError{err}
				}
				fmt.Fprintf(g.stdout, "acceptance %d: finding %s accepted until %s by %s: %s\n", id, args[0], until, by, reason)
				return nil
			}
			id, matched, err := st.AcceptPattern(ctx, checkPat, assetPat, reason, t, by)
			if err != nil {
				return &usageError{err}
			}
			fmt.Fprintf(g.stdout, "acceptance %d: %s on %s accepted until %s by %s: %s (%d findings so far)\n",
				id, checkPat, assetPat, until, by, reason, matched)
			return nil
		},
	}
	c.Flags().StringVar(&db, "db", "posture.db", "SQLite database")
	c.Flags().StringVar(&reason, "reason", "", "why the risk is accepted (required)")
	c.Flags().StringVar(&until, "until", "", "last day of the acceptance, YYYY-MM-DD (required)")
	c.Flags().StringVar(&by, "by", "", "who accepts the risk (default: the current user)")
	c.Flags().StringVar(&checkPat, "check", "", "accept a pattern: a check id or glob (web.hdr.*), with --asset")
	c.Flags().StringVar(&assetPat, "asset", "", "accept a pattern: an asset name, *.zone or *, with --check")
	c.Flags().BoolVar(&allAssets, "all-assets", false, "allow --check '*' --asset '*' (every finding of the estate)")
	c.Flags().Int64Var(&revoke, "revoke", 0, "revoke acceptance ID (see posture acceptances)")
	return c
}

// checkPatternKnown refuses a pattern that matches no check of the
// catalogue (a typo would accept nothing, silently) and the whole estate
// unless asked for.
func checkPatternKnown(checkPat, assetPat string, allAssets bool) error {
	if err := store.ValidateCheckPattern(checkPat); err != nil {
		return &usageError{err}
	}
	if err := store.ValidateAssetPattern(assetPat); err != nil {
		return &usageError{err}
	}
	if strings.Trim(checkPat, "*") == "" && assetPat == "*" && !allAssets {
		return usagef("--check %q --asset '*' accepts every finding of the estate: add --all-assets if that is meant", checkPat)
	}
	for _, m := range checks.Catalogue() {
		if store.MatchCheck(checkPat, m.ID) {
			return nil
		}
	}
	return usagef("--check %q matches no check id (see posture checks)", checkPat)
}

func acceptancesCmd(g *globals) *cobra.Command {
	var db string
	c := &cobra.Command{
		Use:   "acceptances",
		Short: "List the risk acceptances, in force and lapsed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openExisting(cmd.Context(), db)
			if err != nil {
				return err
			}
			defer st.Close()
			as, err := st.Acceptances(cmd.Context())
			if err != nil {
				return err
			}
			cover, err := st.AcceptanceCoverage(cmd.Context())
			if err != nil {
				return err
			}
			writeAcceptances(g.stdout, as, cover, time.Now())
			return nil
		},
	}
	c.Flags().StringVar(&db, "db", "posture.db", "SQLite database")
	return c
}

// writeAcceptances lists acceptances as a table: id, state, what, the
// unresolved findings it matches, until, by, reason.
func writeAcceptances(w io.Writer, as []store.Acceptance, cover map[int64]int, now time.Time) {
	if len(as) == 0 {
		fmt.Fprintln(w, "no risk acceptances")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tFINDING OR PATTERN\tFINDINGS\tUNTIL\tBY\tREASON")
	for _, a := range as {
		state := "in force"
		switch {
		case !a.RevokedAt.IsZero() && !now.Before(a.RevokedAt):
			state = "revoked " + a.RevokedAt.Format("2006-01-02")
		case !now.Before(a.Until):
			state = "lapsed"
		}
		what := "finding " + a.FindingID
		if a.IsPattern() {
			what = a.CheckPattern + " on " + a.AssetPattern
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", strconv.FormatInt(a.ID, 10), state, what, cover[a.ID],
			a.Until.Format("2006-01-02"), oneLine(a.By), oneLine(a.Reason))
	}
	tw.Flush()
}

// oneLine keeps a table row one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
