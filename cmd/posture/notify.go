package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/scanner/store"
)

// SMTPPasswordEnv holds the relay password: never a flag value, which
// every user of the machine can read in the process list.
const SMTPPasswordEnv = "POSTURE_SMTP_PASSWORD"

// notifyOptions are the email settings `posture notify` and `posture serve`
// share (addNotifyFlags registers them on either command).
type notifyOptions struct {
	SMTP         string // relay HOST:PORT
	TLS          string // starttls (default) | tls | none
	CAFile       string // extra trusted CAs for the relay's certificate
	User         string // AUTH PLAIN user; the password from SMTPPasswordEnv or PasswordFile
	PasswordFile string
	From         string
	Digest       bool   // remind organisations whose open findings did not change
	DigestDay    string // Mon … Sun: the digest on that weekday only
	Timeout      time.Duration
	// Warn receives warnings (TLS off, contacts that are not addresses,
	// recipients refused); nil: discarded.
	Warn io.Writer
	// Loc is the zone --digest-day reads the run's start in (serve: the
	// schedule's); nil: the process's local time.
	Loc *time.Location
}

// addNotifyFlags registers the email flags. caFlag names the flag of the
// relay's extra CAs (notify: --ca-file; serve may have its own --ca-file).
func addNotifyFlags(fl *pflag.FlagSet, o *notifyOptions, caFlag string) {
	fl.StringVar(&o.SMTP, "smtp", "", "SMTP relay HOST:PORT")
	fl.StringVar(&o.TLS, "smtp-tls", "starttls", "relay connection: starttls (required, refused if not offered), tls (implicit TLS, port 465) or none (in the clear: explicit choice)")
	fl.StringVar(&o.CAFile, caFlag, "", "extra trusted CA certificates (PEM) for the relay's certificate")
	fl.StringVar(&o.User, "smtp-user", "", "AUTH PLAIN user (over TLS only); password from $"+SMTPPasswordEnv+" or --smtp-password-file")
	fl.StringVar(&o.PasswordFile, "smtp-password-file", "", "file holding the relay password (first line)")
	fl.StringVar(&o.From, "from", "posture@nhs.net", "sender address")
	fl.BoolVar(&o.Digest, "digest", false, "also remind organisations with open findings but no change (a weekly run)")
	fl.StringVar(&o.DigestDay, "digest-day", "", "send the digest only when the run started on this weekday (Mon … Sun), for a nightly job")
	fl.DurationVar(&o.Timeout, "smtp-timeout", reports.DefaultSendTimeout, "bound on connecting and on each email's SMTP dialogue")
}

// mailer checks the options and builds the relay's Mailer.
func (o notifyOptions) mailer() (*reports.Mailer, error) {
	host, _, err := net.SplitHostPort(o.SMTP)
	if err != nil || host == "" {
		return nil, usagef("--smtp %q: want HOST:PORT", o.SMTP)
	}
	mode, err := reports.ParseTLSMode(o.TLS)
	if err != nil {
		return nil, usagef("--smtp-tls %q: want starttls, tls or none", o.TLS)
	}
	m := &reports.Mailer{Addr: o.SMTP, TLS: mode, Timeout: o.Timeout}
	if o.CAFile != "" {
		roots, _, err := loadRoots(o.CAFile)
		if err != nil {
			return nil, err
		}
		m.TLSConfig = &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
	}
	if o.PasswordFile != "" && o.User == "" {
		return nil, usagef("--smtp-password-file needs --smtp-user")
	}
	if o.User != "" {
		if mode == reports.TLSNone {
			return nil, usagef("--smtp-user with --smtp-tls none: AUTH is sent only over TLS")
		}
		pw, ok := os.LookupEnv(SMTPPasswordEnv)
		if o.PasswordFile != "" {
			b, err := os.ReadFile(o.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("--smtp-password-file: %w", err)
			}
			pw, ok = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r"), true
		}
		if !ok || pw == "" {
			return nil, usagef("--smtp-user %s: no password: set $%s or --smtp-password-file", o.User, SMTPPasswordEnv)
		}
		m.Username, m.Password = o.User, pw
	}
	if mode == reports.TLSNone && o.Warn != nil {
		fmt.Fprintf(o.Warn, "warning: --smtp-tls none: findings go to %s in the clear\n", o.SMTP)
	}
	return m, nil
}

// emailOptions applies --digest and --digest-day to a run started at t.
func (o notifyOptions) emailOptions(started time.Time) (reports.EmailOptions, error) {
	digest := o.Digest
	if o.DigestDay != "" {
		loc := o.Loc
		if loc == nil {
			loc = time.Local
		}
		due, err := reports.DigestDue(o.DigestDay, started.In(loc))
		if err != nil {
			return reports.EmailOptions{}, usagef("--digest-day %q: want Mon, Tue … Sun", o.DigestDay)
		}
		digest = due
	}
	return reports.EmailOptions{From: o.From, Digest: digest}, nil
}

// notify emails each organisation what changed at the summary's run, once:
// the run's emails are queued in the store's outbox before any is sent,
// each is marked sent when the relay accepts it, and a repeat (or a restart
// after a crash) sends only what is still pending. It returns how many
// emails the relay accepted now. `posture serve` calls it after each
// complete run; `posture notify` is the same code path.
func notify(ctx context.Context, st *store.Store, s *reports.Summary, o notifyOptions) (sent int, err error) {
	res, err := notifyRun(ctx, st, s, o)
	return res.Sent, err
}

// notifyRun is notify with the whole account of what was done.
func notifyRun(ctx context.Context, st *store.Store, s *reports.Summary, o notifyOptions) (reports.NotifyResult, error) {
	m, err := o.mailer()
	if err != nil {
		return reports.NotifyResult{}, err
	}
	eo, err := o.emailOptions(s.Run.Started)
	if err != nil {
		return reports.NotifyResult{}, err
	}
	res, err := reports.Notify(ctx, outboxStore{st}, s, reports.NotifyOptions{Email: eo, Mailer: m})
	if o.Warn != nil {
		for _, w := range res.Warnings {
			fmt.Fprintln(o.Warn, "warning:", w)
		}
	}
	return res, err
}

// outboxStore is the store's outbox as reports sees it.
type outboxStore struct{ st *store.Store }

func (o outboxStore) QueueOutbox(ctx context.Context, runID int64, digest bool, msgs []reports.QueuedEmail) (bool, error) {
	out := make([]store.OutboxMessage, len(msgs))
	for i, m := range msgs {
		out[i] = store.OutboxMessage(m)
	}
	return o.st.QueueOutbox(ctx, runID, digest, out)
}

func (o outboxStore) OutboxPending(ctx context.Context) ([]reports.QueuedEmail, error) {
	ms, err := o.st.OutboxPending(ctx)
	out := make([]reports.QueuedEmail, len(ms))
	for i, m := range ms {
		out[i] = reports.QueuedEmail(m)
	}
	return out, err
}

func (o outboxStore) MarkOutboxSent(ctx context.Context, id string) error {
	return o.st.MarkOutboxSent(ctx, id)
}

func (o outboxStore) MarkOutboxAttempt(ctx context.Context, id, reason string, permanent bool) error {
	return o.st.MarkOutboxAttempt(ctx, id, reason, permanent)
}

func (o outboxStore) LockOutbox(ctx context.Context) (func(), error) { return o.st.LockOutbox(ctx) }

func (o outboxStore) ExpireOutbox(ctx context.Context, cutoff time.Time) (int, error) {
	return o.st.ExpireOutbox(ctx, cutoff)
}

func notifyCmd(g *globals) *cobra.Command {
	var db, dryRun string
	o := notifyOptions{Warn: g.stderr}
	c := &cobra.Command{
		Use:   "notify",
		Short: "Email each organisation its changes, once per run (or --dry-run DIR to write .eml files)",
		Long: `Email each organisation of the newest complete run what changed: new and
returning findings, fixes, lapsed risk acceptances. The run's emails are queued
in the database's outbox before any is sent and each is marked sent when the
relay accepts it, so notify can be re-run (or restarted after a crash) and
sends only what is still pending; a run already notified sends nothing more.

The relay connection requires STARTTLS unless --smtp-tls says otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (o.SMTP == "") == (dryRun == "") {
				return usagef("give exactly one of --smtp HOST:PORT or --dry-run DIR")
			}
			ctx := cmd.Context()
			if o.SMTP != "" {
				// Check the flags before opening anything.
				if _, err := o.mailer(); err != nil {
					return err
				}
				if _, err := o.emailOptions(time.Now()); err != nil {
					return err
				}
			}
			s, st, err := summary(ctx, db)
			if err != nil {
				return err
			}
			defer st.Close()
			if dryRun != "" {
				eo, err := o.emailOptions(s.Run.Started)
				if err != nil {
					return err
				}
				mails, err := eo.Build(s)
				if err != nil {
					return err
				}
				if err := reports.WriteEML(dryRun, mails); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "wrote %d emails to %s\n", len(mails), dryRun)
				return nil
			}
			o.Warn = nil // mailer() warned once already
			res, err := notifyRun(ctx, st, s, o)
			for _, w := range res.Warnings {
				fmt.Fprintln(g.stderr, "warning:", w)
			}
			if res.RunID != 0 {
				fmt.Fprintf(g.stdout, "%s (relay %s)\n", res, o.SMTP)
			}
			return err
		},
	}
	c.Flags().StringVar(&db, "db", "posture.db", "SQLite database")
	c.Flags().StringVar(&dryRun, "dry-run", "", "write .eml files to this directory instead of sending (the outbox is not touched)")
	addNotifyFlags(c.Flags(), &o, "ca-file")
	return c
}
