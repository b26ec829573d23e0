package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/scanner/estate"
)

func checksCmd(g *globals) *cobra.Command {
	var asJSON, markdown bool
	c := &cobra.Command{
		Use:   "checks",
		Short: "List every check: id, family, severity, standards and description",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat := checks.Catalogue()
			switch {
			case asJSON:
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(cat)
			case markdown:
				return writeCatalogueMarkdown(g, cat)
			}
			tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tFAMILY\tSEVERITY\tTARGETS\tTITLE")
			for _, m := range cat {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.ID, m.Family, m.Severity, kinds(m.Targets), m.Title)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "machine-readable catalogue")
	c.Flags().BoolVar(&markdown, "markdown", false, "the catalogue as a Markdown table (the README's checks section)")
	return c
}

func kinds(ks []check.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ",")
}

func writeCatalogueMarkdown(g *globals, cat []check.Meta) error {
	fmt.Fprintln(g.stdout, "| check id | targets | severity | what passes | standards |")
	fmt.Fprintln(g.stdout, "|---|---|---|---|---|")
	for _, m := range cat {
		var refs []string
		for _, r := range m.Standards {
			s := r.Standard
			if r.Section != "" {
				s += " " + r.Section
			}
			if r.Status != "" {
				s += " [" + r.Status + "]"
			}
			refs = append(refs, s)
		}
		desc := strings.ReplaceAll(m.Description, "|", `\|`)
		fmt.Fprintf(g.stdout, "| `%s` | %s | %s | %s | %s |\n", m.ID, kinds(m.Targets), m.Severity, desc,
			strings.ReplaceAll(strings.Join(refs, "; "), "|", `\|`))
	}
	return nil
}

func estateCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "estate", Short: "Work with estate files"}
	c.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check an estate file; every error has its line number",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := estate.Load(args[0])
			if err != nil {
				var es estate.Errors
				if ok := asEstateErrors(err, &es); ok {
					return es
				}
				return &usageError{err}
			}
			domains, gh := 0, 0
			for _, o := range e.Organisations {
				domains += len(o.Domains)
				gh += len(o.GitHub)
			}
			fmt.Fprintf(g.stdout, "%s: ok: %d organisations, %d domains, %d GitHub organisations\n",
				args[0], len(e.Organisations), domains, gh)
			return nil
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the embedded default estate (a starting point for your own)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := g.stdout.Write(estate.DefaultYAML())
			return err
		},
	})
	return c
}

func asEstateErrors(err error, es *estate.Errors) bool {
	e, ok := err.(estate.Errors)
	if ok {
		*es = e
	}
	return ok
}
