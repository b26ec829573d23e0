package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/nhsx/posture/checks/nuclei"
	"github.com/nhsx/posture/checks/nuclei/engine"
)

// nucleiWorkerCmd is the hidden worker web.nuclei starts per batch of
// hosts: a job (JSON) on stdin, one event per line (JSON) on stdout. The
// nuclei SDK leaks memory over long runs, so it never runs in the scanner
// itself.
func nucleiWorkerCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "nuclei-worker",
		Short:  "Run one batch of nuclei templates for web.nuclei (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 16<<20))
			if err != nil {
				return err
			}
			var job nuclei.Job
			if err := json.Unmarshal(b, &job); err != nil {
				return usagef("nuclei-worker: the job does not decode: %v", err)
			}
			out := cmd.OutOrStdout()
			if out == nil {
				out = os.Stdout
			}
			if err := engine.Run(cmd.Context(), job, out); err != nil {
				return fmt.Errorf("nuclei-worker: %w", err)
			}
			return nil
		},
	}
}
