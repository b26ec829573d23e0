package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/scanner/store"
)

// newestRun picks the run reports describe: the newest complete run, or the
// newest run of any status if none completed (a report of a partial run
// says so in its header).
func newestRun(ctx context.Context, st *store.Store) (int64, error) {
	if r, err := st.LatestComplete(ctx); err == nil {
		return r.ID, nil
	}
	runs, err := st.Runs(ctx)
	if err != nil {
		return 0, err
	}
	if len(runs) == 0 {
		return 0, usagef("the database has no runs: run `posture scan` first")
	}
	return runs[0].ID, nil
}

func summary(ctx context.Context, db string) (*reports.Summary, *store.Store, error) {
	st, err := openExisting(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	id, err := newestRun(ctx, st)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	s, err := reports.BuildSummary(ctx, storeSource{st}, checks.Catalogue(), id)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return s, st, nil
}

// writeFile writes through a temporary file and renames it, so a reader
// never sees half a report.
func writeFile(stdout io.Writer, path string, fn func(w io.Writer) error) error {
	if path == "" || path == "-" {
		return fn(stdout)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".posture-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriter(tmp)
	if err := fn(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func reportCmd(g *globals) *cobra.Command {
	var db, out string
	var markdown bool
	c := &cobra.Command{
		Use:   "report board|org CODE",
		Short: "The board summary (HTML or Markdown) or one organisation's report",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && args[0] == "board":
			case len(args) == 2 && args[0] == "org":
			default:
				return usagef("want `report board` or `report org CODE`")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, st, err := summary(cmd.Context(), db)
			if err != nil {
				return err
			}
			defer st.Close()
			if args[0] == "org" && s.Org(args[1]) == nil {
				return usagef("organisation %s is not in the database", args[1])
			}
			err = writeFile(g.stdout, out, func(w io.Writer) error {
				switch {
				case args[0] == "org":
					return reports.WriteOrgReport(w, s, args[1])
				case markdown:
					return reports.WriteMarkdown(w, s)
				}
				return reports.WriteBoard(w, s)
			})
			if err == nil && out != "" && out != "-" {
				fmt.Fprintf(g.stdout, "wrote %s\n", out)
			}
			return err
		},
	}
	c.Flags().StringVar(&db, "db", "posture.db", "SQLite database")
	c.Flags().StringVarP(&out, "output", "o", "-", "output file")
	c.Flags().BoolVar(&markdown, "markdown", false, "the board summary as Markdown")
	return c
}

func exportCmd(g *globals) *cobra.Command {
	var db, out, format, repoName string
	c := &cobra.Command{
		Use:   "export",
		Short: "Export the newest run's findings as JSON Lines, CSV or SARIF (repositories, for GitHub code scanning)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var write func(io.Writer, []reports.Finding) error
			switch format {
			case "jsonl":
				write = reports.WriteJSONL
			case "csv":
				write = reports.WriteCSV
			case "sarif":
			default:
				return usagef("--format %q: want jsonl, csv or sarif", format)
			}
			if repoName != "" && format != "sarif" {
				return usagef("--repo is for --format sarif")
			}
			st, err := openExisting(ctx, db)
			if err != nil {
				return err
			}
			defer st.Close()
			id, err := newestRun(ctx, st)
			if err != nil {
				return err
			}
			if format == "sarif" {
				if write, err = sarifWriter(ctx, st, id, repoName); err != nil {
					return err
				}
			}
			fs, err := storeSource{st}.Findings(ctx, id)
			if err != nil {
				return err
			}
			return writeFile(g.stdout, out, func(w io.Writer) error { return write(w, fs) })
		},
	}
	c.Flags().StringVar(&db, "db", "posture.db", "SQLite database")
	c.Flags().StringVar(&format, "format", "jsonl", "jsonl, csv or sarif")
	c.Flags().StringVar(&repoName, "repo", "", "with --format sarif: only this repository (owner/name)")
	c.Flags().StringVarP(&out, "output", "o", "-", "output file")
	return c
}
