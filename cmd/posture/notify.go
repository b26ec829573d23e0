package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/nhsx/posture/reports"
)

func notifyCmd(g *globals) *cobra.Command {
	var db, smtpAddr, dryRun, from, caFile string
	var digest bool
	c := &cobra.Command{
		Use:   "notify",
		Short: "Email each organisation its changes (or --dry-run DIR to write .eml files)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (smtpAddr == "") == (dryRun == "") {
				return usagef("give exactly one of --smtp HOST:PORT or --dry-run DIR")
			}
			s, st, err := summary(cmd.Context(), db)
			if err != nil {
				return err
			}
			defer st.Close()
			mails, err := reports.EmailOptions{From: from, Digest: digest}.Build(s)
			if err != nil {
				return err
			}
			if dryRun != "" {
				if err := reports.WriteEML(dryRun, mails); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "wrote %d emails to %s\n", len(mails), dryRun)
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			m := &reports.Mailer{Addr: smtpAddr}
			if caFile != "" {
				roots, _, err := loadRoots(caFile)
				if err != nil {
					return err
				}
				host, _, err := net.SplitHostPort(smtpAddr)
				if err != nil {
					return usagef("--smtp %q: want HOST:PORT", smtpAddr)
				}
				m.TLSConfig = &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
			}
			if err := m.Send(ctx, mails); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "sent %d emails through %s\n", len(mails), smtpAddr)
			return nil
		},
	}
	c.Flags().StringVar(&db, "db", "posture.db", "SQLite database")
	c.Flags().StringVar(&smtpAddr, "smtp", "", "SMTP relay HOST:PORT")
	c.Flags().StringVar(&dryRun, "dry-run", "", "write .eml files to this directory instead of sending")
	c.Flags().StringVar(&from, "from", "posture@nhs.net", "sender address")
	c.Flags().StringVar(&caFile, "ca-file", "", "extra trusted CA certificates (PEM) for the relay's STARTTLS certificate")
	c.Flags().BoolVar(&digest, "digest", false, "also remind organisations with open findings but no change (a weekly run)")
	return c
}
