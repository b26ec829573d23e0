package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

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
	return summaryWith(ctx, db, reports.Options{})
}

func summaryWith(ctx context.Context, db string, o reports.Options) (*reports.Summary, *store.Store, error) {
	st, err := openExisting(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	id, err := newestRun(ctx, st)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	s, err := o.Build(ctx, storeSource{Store: st}, checks.Catalogue(), id)
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
	var db, out, dir string
	var markdown bool
	c := &cobra.Command{
		Use:   "report board|org CODE",
		Short: "The board summary (HTML or Markdown; --dir: with a page per organisation) or one organisation's report",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && args[0] == "board":
			case len(args) == 2 && args[0] == "org":
			default:
				return usagef("want `report board` or `report org CODE`")
			}
			if dir != "" && (args[0] != "board" || markdown || cmd.Flags().Changed("output")) {
				return usagef("--dir is for the HTML board, without -o")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			// Organisation pages chart each organisation's score over the
			// year; the board alone needs only the nation's.
			o := reports.Options{OrgTrends: dir != "" || args[0] == "org"}
			if args[0] == "org" {
				o.TrendsFor = []string{args[1]}
			}
			s, st, err := summaryWith(cmd.Context(), db, o)
			if err != nil {
				return err
			}
			defer st.Close()
			if dir != "" {
				n, err := writeBoardDir(dir, s)
				if err == nil {
					fmt.Fprintf(g.stdout, "wrote %s and %d organisation pages in %s\n", filepath.Join(dir, "index.html"), n, filepath.Join(dir, "orgs"))
				}
				return err
			}
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
	c.Flags().StringVar(&dir, "dir", "", "write the board as DIR/index.html and a page per organisation in DIR/orgs/, linked")
	c.Flags().BoolVar(&markdown, "markdown", false, "the board summary as Markdown")
	return c
}

// writeBoardDir writes the board as dir/index.html and every
// organisation's page as dir/orgs/CODE.html, linked both ways down the
// hierarchy. It returns the number of organisation pages.
func writeBoardDir(dir string, s *reports.Summary) (int, error) {
	files := map[string]string{} // code → file name
	used := map[string]bool{}
	for _, o := range s.Orgs {
		name := fileSafe(o.Code)
		for i := 2; used[strings.ToLower(name)]; i++ {
			name = fmt.Sprintf("%s-%d", fileSafe(o.Code), i)
		}
		used[strings.ToLower(name)] = true
		files[o.Code] = name + ".html"
	}
	link := func(prefix, board string) reports.Links {
		return reports.Links{Board: board, Org: func(code string) string {
			if f, ok := files[code]; ok {
				return prefix + f
			}
			return ""
		}}
	}
	if err := writeFile(io.Discard, filepath.Join(dir, "index.html"), func(w io.Writer) error {
		return reports.WriteBoardWith(w, s, link("orgs/", ""))
	}); err != nil {
		return 0, err
	}
	for _, o := range s.Orgs {
		if err := writeFile(io.Discard, filepath.Join(dir, "orgs", files[o.Code]), func(w io.Writer) error {
			return reports.WriteOrgReportWith(w, s, o.Code, link("", "../index.html"))
		}); err != nil {
			return 0, err
		}
	}
	return len(s.Orgs), nil
}

// fileSafe keeps ASCII letters, digits, '-' and '_' of an organisation code
// for a file name (at most 64), or "org".
func fileSafe(code string) string {
	var b strings.Builder
	for _, r := range code {
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_') && b.Len() < 64 {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "org"
	}
	return b.String()
}

func exportCmd(g *globals) *cobra.Command {
	var db, out, format, repoName string
	var days int
	c := &cobra.Command{
		Use:   "export",
		Short: "Export the newest run's findings as JSON Lines, CSV or SARIF (repositories, for GitHub code scanning), or the scores of every run as CSV",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var write func(io.Writer, []reports.Finding) error
			switch format {
			case "jsonl":
				write = reports.WriteJSONL
			case "csv":
				write = reports.WriteCSV
			case "sarif", "scores":
			default:
				return usagef("--format %q: want jsonl, csv, sarif or scores", format)
			}
			if repoName != "" && format != "sarif" {
				return usagef("--repo is for --format sarif")
			}
			st, err := openExisting(ctx, db)
			if err != nil {
				return err
			}
			defer st.Close()
			if format == "scores" {
				runs, rows, err := reports.StoredScores(ctx, storeSource{Store: st}, checks.Catalogue(), days)
				if err != nil {
					return err
				}
				orgs, err := storeSource{Store: st}.Organisations(ctx)
				if err != nil {
					return err
				}
				return writeFile(g.stdout, out, func(w io.Writer) error { return reports.WriteScoresCSV(w, runs, orgs, rows) })
			}
			id, err := newestRun(ctx, st)
			if err != nil {
				return err
			}
			if format == "sarif" {
				if write, err = sarifWriter(ctx, st, id, repoName); err != nil {
					return err
				}
			}
			fs, err := storeSource{Store: st}.Findings(ctx, id)
			if err != nil {
				return err
			}
			return writeFile(g.stdout, out, func(w io.Writer) error { return write(w, fs) })
		},
	}
	c.Flags().StringVar(&db, "db", "posture.db", "SQLite database")
	c.Flags().StringVar(&format, "format", "jsonl", "jsonl, csv, sarif or scores (every run's scores by organisation and standard)")
	c.Flags().IntVar(&days, "days", 0, "with --format scores: only the runs of the last DAYS days (0: all)")
	c.Flags().StringVar(&repoName, "repo", "", "with --format sarif: only this repository (owner/name)")
	c.Flags().StringVarP(&out, "output", "o", "-", "output file")
	return c
}

// RecordRunScores stores the rolled-up scores of a run that has just
// completed, so that reports read trends from them and never from old
// findings. scan, demo and reeval call it after a run completes; so does the
// nightly service.
func RecordRunScores(ctx context.Context, st *store.Store, runID int64) error {
	return reports.RecordScores(ctx, storeSource{Store: st}, checks.Catalogue(), runID)
}
