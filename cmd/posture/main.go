// Command posture scans the NHS's internet estate and public code for
// security posture, stores the results in SQLite, reports to the governance
// board and emails each organisation its findings. Run `posture demo` to see
// the whole pipeline on a simulated estate, offline.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nhsx/posture/scanner/estate"
)

// Exit codes (product.md): 0 ok, 1 error, 2 bad usage or bad input file.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks bad usage or a bad input file: exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit, so tests can drive the CLI.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "posture:", err)
	var ue *usageError
	var ee estate.Errors
	switch {
	case errors.As(err, &ue), errors.As(err, &ee), isCobraUsage(err):
		return exitUsage
	}
	return exitError
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "posture",
		Short:         "Security posture scanner for the NHS estate",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			g.log = newLogger(stderr, g.verbose)
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "debug logging")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(
		demoCmd(g),
		scanCmd(g),
		reevalCmd(g),
		reportCmd(g),
		exportCmd(g),
		notifyCmd(g),
		acceptCmd(g),
		acceptancesCmd(g),
		checksCmd(g),
		estateCmd(g),
		nucleiWorkerCmd(g),
		serveCmd(g),
	)
	return root
}

type globals struct {
	stdout, stderr io.Writer
	verbose        bool
	log            *slog.Logger
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "invalid argument", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// newLogger: text logs on a terminal (warnings only, the progress bar says
// the rest), JSON logs at info when not a terminal (cron, systemd).
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	if isTerminal(w) {
		if !verbose {
			level = slog.LevelWarn
		}
		// termLog: a log line goes above the progress line, not into it.
		return slog.New(slog.NewTextHandler(termLog{w}, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// isTerminal says whether w is a terminal (a tty: /dev/null, a character
// device too, is not one).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
