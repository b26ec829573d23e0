package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/nuclei"
	"github.com/nhsx/posture/scanner/lab"
	"github.com/nhsx/posture/scanner/store"
)

// The CLI runs in a child process (this test binary again) so that a real
// SIGINT reaches its signal handling.
const cliChildEnv = "POSTURE_TEST_CLI_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(cliChildEnv) != "" {
		os.Exit(run(strings.Split(os.Getenv(cliChildEnv), "\x1f"), os.Stdout, os.Stderr))
	}
	if err := nuclei.WaitForTestWorker(); err != nil {
		fmt.Fprintln(os.Stderr, err) // the demo's web.nuclei verdicts will say unknown
	}
	code := m.Run()
	if demoOnce.dir != "" {
		os.RemoveAll(demoOnce.dir)
	}
	os.Exit(code)
}

func cliChild(args ...string) *exec.Cmd {
	c := exec.Command(os.Args[0], "-test.run=^$")
	c.Env = append(os.Environ(), cliChildEnv+"="+strings.Join(args, "\x1f"))
	return c
}

func TestSIGINTMarksTheRunInterruptedAndTheSameCommandResumes(t *testing.T) {
	t.Parallel() // runs beside the shared demo run
	l, err := lab.Start(context.Background(), lab.Config{Domains: 60, Latency: 15 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	estatePath, db := filepath.Join(dir, "estate.yaml"), filepath.Join(dir, "p.db")
	os.WriteFile(estatePath, l.EstateYAML(), 0o644)
	args := []string{"scan", "--estate", estatePath, "--db", db, "--resolver", l.DNSAddr, "--only", "email",
		"--ct-url", "", "--allow-private", "--concurrency", "2", "--per-domain", "1", "--dns-timeout", "300ms"}

	child := cliChild(args...)
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && storedJobs(db) < 5 {
		time.Sleep(20 * time.Millisecond)
	}
	child.Process.Signal(syscall.SIGINT)
	err = child.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitError || !strings.Contains(out.String(), "run the same command again to resume") {
		t.Fatalf("after SIGINT: %v\n%s\nwant exit 1 telling how to resume", err, out.String())
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	runs, _ := st.Runs(context.Background())
	st.Close()
	if len(runs) != 1 || runs[0].Status != store.Interrupted {
		t.Fatalf("runs after SIGINT: %+v, want one interrupted run", runs)
	}

	// The same command (concurrency is not part of what makes a run the
	// same), with more workers so the rest of the lab goes quickly.
	again := cliChild(append(args, "--concurrency", "16", "--per-domain", "4")...)
	b, err := again.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "complete") || !strings.Contains(string(b), "resumed:") {
		t.Fatalf("re-run: %v\n%s\nwant the interrupted run resumed and completed", err, b)
	}
}

func storedJobs(db string) int {
	if _, err := os.Stat(db); err != nil {
		return 0
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		return 0
	}
	defer st.Close()
	runs, err := st.Runs(context.Background())
	if err != nil || len(runs) == 0 {
		return 0
	}
	done, _ := st.DoneJobs(context.Background(), runs[0].ID)
	return len(done)
}
