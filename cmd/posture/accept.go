package main

import (
	"errors"
	"fmt"
	"os/user"
	"time"

	"github.com/spf13/cobra"

	"github.com/nhsx/posture/scanner/store"
)

func acceptCmd(g *globals) *cobra.Command {
	var db, reason, until, by string
	c := &cobra.Command{
		Use:   "accept FINDING-ID",
		Short: "Record a risk acceptance of a finding, with a reason and an expiry that re-opens it",
		Long: `Record a risk acceptance: the finding shows as accepted (still counted, left out of the
worst risks and the emails) until the date given; the first run after it re-opens the finding.
Finding ids are in the JSON Lines and CSV exports and the reports.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usagef("--reason is required: say why the risk is accepted")
			}
			t, err := time.Parse("2006-01-02", until)
			if err != nil {
				return usagef("--until %q: want a date, YYYY-MM-DD", until)
			}
			t = t.Add(24*time.Hour - time.Second) // the whole day
			if by == "" {
				if u, err := user.Current(); err == nil {
					by = u.Username
				}
			}
			st, err := openExisting(cmd.Context(), db)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.Accept(cmd.Context(), args[0], reason, t, by); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return usagef("finding %s has never failed or warned in a completed run of %s", args[0], db)
				}
				return &usageError{err}
			}
			fmt.Fprintf(g.stdout, "finding %s accepted until %s by %s: %s\n", args[0], until, by, reason)
			return nil
		},
	}
	c.Flags().StringVar(&db, "db", "posture.db", "SQLite database")
	c.Flags().StringVar(&reason, "reason", "", "why the risk is accepted (required)")
	c.Flags().StringVar(&until, "until", "", "last day of the acceptance, YYYY-MM-DD (required)")
	c.Flags().StringVar(&by, "by", "", "who accepts the risk (default: the current user)")
	c.MarkFlagRequired("until")
	return c
}
