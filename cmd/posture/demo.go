package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nhsx/posture/checks"
	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/dnscheck"
	"github.com/nhsx/posture/checks/dnsq"
	"github.com/nhsx/posture/reports"
	"github.com/nhsx/posture/scanner"
	"github.com/nhsx/posture/scanner/estate"
	"github.com/nhsx/posture/scanner/lab"
	"github.com/nhsx/posture/scanner/store"
)

func demoCmd(g *globals) *cobra.Command {
	var dir string
	var hosts, hold int
	c := &cobra.Command{
		Use:   "demo",
		Short: "The whole pipeline on the lab, offline: lab → discover → scan → store → reports → emails",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if hosts < 0 {
				return usagef("--hosts must be 0 (one domain per lab behaviour) or more")
			}
			if err := checkHold(hold, false); err != nil {
				return err
			}
			return demo(cmd.Context(), g, dir, hosts, hold)
		},
	}
	c.Flags().StringVar(&dir, "dir", "posture-demo", "where to write the database, reports and emails")
	c.Flags().IntVar(&hosts, "hosts", 0, "lab domains (0: one per lab behaviour)")
	// The demo has two nights, and night 1 is the baseline: with scan's
	// default hold of 2, night 2's changes would not be announced yet. A
	// third night would cost another scan of the whole lab; hold 1 costs
	// nothing and is said on the first line.
	holdFlag(c.Flags(), &hold, 1, " (the demo's default is 1, so that its second night shows changes; posture scan's is 2)")
	return c
}

func demo(ctx context.Context, g *globals, dir string, hosts, hold int) error {
	start := time.Now()
	mailDir := filepath.Join(dir, "mail")
	os.RemoveAll(mailDir) // each demo starts afresh
	if err := os.MkdirAll(mailDir, 0o755); err != nil {
		return err
	}
	l, err := lab.Start(ctx, lab.Config{Domains: hosts, Log: g.log})
	if err != nil {
		return fmt.Errorf("demo: start the lab: %w", err)
	}
	defer l.Close()

	estatePath := filepath.Join(dir, "estate.yaml")
	if err := os.WriteFile(estatePath, l.EstateYAML(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "lab-ca.pem"), l.CAPEM, 0o644); err != nil {
		return err
	}
	e, err := estate.Load(estatePath)
	if err != nil {
		return fmt.Errorf("demo: the lab's estate: %w", err)
	}
	dbPath := filepath.Join(dir, "posture.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(dbPath + suffix)
	}
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := setHold(st, hold); err != nil {
		return err
	}
	if err := useSecretKey(dbPath); err != nil {
		return err
	}

	svc := scanner.ServiceClient(l.Dial)
	// The lab's token sees what an organisation owner sees; the ETag cache
	// makes night 2's unchanged GitHub data free.
	gh, err := githubClient(svc, l.GitHubURL, lab.GitHubToken, &ghCache{st: st}, 0)
	if err != nil {
		return err
	}
	cfg := scanner.Config{
		Estate: e, Checks: checks.All(),
		DNS:  &dnsq.Resolver{Servers: []string{l.DNSAddr}, Timeout: 500 * time.Millisecond, Retries: 1},
		Dial: l.Dial, AllowPrivate: true, Roots: l.Roots, CAPEM: l.CAPEM,
		TrustAnchors: dnscheck.Settings.Get(l.Policy()).TrustAnchors, // the lab's DNSSEC island
		CTURL:        l.CTURL, RDAPURL: l.RDAPURL, GitHub: gh, ServiceHTTP: svc, Sources: pagesSource(gh), EHLOName: "posture-demo.lab-dns.nhs.uk",
		Options: scanner.Options{Concurrency: 32, JobTimeout: 20 * time.Second, Log: g.log,
			Policy: l.Policy()},
	}
	domains := 0
	for _, o := range e.Organisations {
		domains += len(o.Domains)
	}
	fmt.Fprintf(g.stdout, "posture demo: a lab of %d domains owned by NHS trusts (%d organisations with their ICBs and regions)\n",
		domains, len(e.Organisations))
	fmt.Fprintf(g.stdout, "lifecycle: night 1 is the baseline (nothing is new on a first run); a change is announced once it held for %d night(s) (--hold; posture scan's default is %d)\n",
		hold, store.DefaultHold)

	// Two nights: the lab changes in between (trusts fix things, one
	// regresses), so the second night's report and emails show what changed.
	var boardPath, jsonlPath string
	for night := 1; night <= 2; night++ {
		if night == 2 {
			changes, err := l.NextNight()
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "between the nights, in the lab:")
			for _, c := range changes {
				fmt.Fprintf(g.stdout, "  %s: %s\n", c.Domain, c.What)
			}
		}
		pr := newProgress(g.stderr, g.log)
		pr.attach(&cfg.Options)
		stats, err := scanner.Run(ctx, st, cfg)
		pr.close()
		if err != nil {
			return fmt.Errorf("demo: night %d: scan: %w", night, err)
		}
		if err := RecordRunScores(ctx, st, stats.RunID); err != nil {
			return fmt.Errorf("demo: night %d: %w", night, err)
		}
		s, err := reports.BuildSummary(ctx, storeSource{Store: st}, checks.Catalogue(), stats.RunID)
		if err != nil {
			return err
		}
		boardPath = filepath.Join(dir, fmt.Sprintf("board-night-%d.html", night))
		if err := writeFile(g.stdout, boardPath, func(w io.Writer) error { return reports.WriteBoard(w, s) }); err != nil {
			return err
		}
		fs, err := storeSource{Store: st}.Findings(ctx, stats.RunID)
		if err != nil {
			return err
		}
		jsonlPath = filepath.Join(dir, "findings.jsonl")
		if err := writeFile(g.stdout, jsonlPath, func(w io.Writer) error { return reports.WriteJSONL(w, fs) }); err != nil {
			return err
		}
		// Night 1 is the baseline: nothing is new, so each organisation
		// gets its starting position as a digest.
		seen := len(l.Received())
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		// posture notify's path: queued in the outbox, then sent. The lab's
		// mailbox is a plaintext sink on loopback: TLS off, by choice.
		_, err = notify(sctx, st, s, notifyOptions{SMTP: l.SMTPAddr, TLS: "none", From: "posture@nhs.net", Digest: night == 1})
		cancel()
		if err != nil {
			return fmt.Errorf("demo: send the emails to the lab's mail server: %w", err)
		}
		received := l.Received()[seen:]
		nightDir := filepath.Join(mailDir, fmt.Sprintf("night-%d", night))
		if err := os.MkdirAll(nightDir, 0o755); err != nil {
			return err
		}
		for i, m := range received {
			name := fmt.Sprintf("%03d-%s.eml", i+1, safeName(strings.Join(m.To, ",")))
			if err := os.WriteFile(filepath.Join(nightDir, name), m.Data, 0o644); err != nil {
				return err
			}
		}
		fmt.Fprintf(g.stdout, "night %d: ", night)
		printStats(g.stdout, stats, dbPath)
		if night == 2 {
			c := s.Estate.Changes
			fmt.Fprintf(g.stdout, "         since night 1: %d new, %d fixed, %d back again, %d still open\n",
				c.New, c.Resolved, c.Regressed, c.StillOpen)
		}
		agree, total, diffs := compareTruth(l.Truth(), fs)
		fmt.Fprintf(g.stdout, "         ground truth: %d of %d expected verdicts match\n", agree, total)
		for _, d := range diffs {
			fmt.Fprintln(g.stdout, "           differs:", d)
		}
		fmt.Fprintf(g.stdout, "         %d emails received by the lab's mail server, saved in %s\n", len(received), nightDir)
	}
	fmt.Fprintf(g.stdout, "done in %s\n", time.Since(start).Round(100*time.Millisecond))
	fmt.Fprintf(g.stdout, "database:     %s\n", dbPath)
	fmt.Fprintf(g.stdout, "board report: %s\n", boardPath)
	fmt.Fprintf(g.stdout, "findings:     %s\n", jsonlPath)
	fmt.Fprintf(g.stdout, "emails:       %s\n", mailDir)
	fmt.Fprintf(g.stdout, "estate:       %s (the lab's estate file)\n", estatePath)
	return nil
}

// compareTruth compares the worst outcome per (asset, check id) with the
// lab's ground truth.
func compareTruth(truth []lab.Expect, fs []reports.Finding) (agree, total int, diffs []string) {
	got := map[string][]check.Outcome{}
	for _, f := range fs {
		k := f.Asset.Key() + " " + f.CheckID
		got[k] = append(got[k], f.Outcome)
	}
	for _, t := range truth {
		total++
		k := string(t.Kind) + ":" + t.Name + " " + t.CheckID
		w := check.Worst(got[k]...)
		if w == t.Outcome {
			agree++
		} else {
			diffs = append(diffs, fmt.Sprintf("%s: want %s, got %q", k, t.Outcome, w))
		}
	}
	sort.Strings(diffs)
	return agree, total, diffs
}

func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '@' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 80 {
			break
		}
	}
	return b.String()
}
