package nuclei

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// isTestBinary: a go test binary is not a posture binary, so it cannot be
// its own worker. (Its flags tell it, without linking package testing
// into posture.)
func isTestBinary() bool { return flag.Lookup("test.v") != nil }

var testWorkerOnce = sync.OnceValues(buildTestWorker)

// testWorker builds ./cmd/posture once per test process (the Go build
// cache makes that a link) when WorkerEnv is unset, so that any package's
// tests that run web.nuclei (the lab truth, the scanner) find a worker.
// `make test` builds bin/posture first and sets WorkerEnv instead.
func testWorker() (string, error) { return testWorkerOnce() }

func buildTestWorker() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := ""
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/nhsx/posture\n")) {
			root = d
			break
		}
		if filepath.Dir(d) == d {
			return "", errNoWorker
		}
	}
	dir := filepath.Join(os.TempDir(), "posture-nuclei-worker")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "posture-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	cmd := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/posture")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("build the nuclei worker: %w: %s", err, strings.TrimSpace(out.String()))
	}
	final := filepath.Join(dir, "posture")
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", errors.Join(err, os.Remove(tmp.Name()))
	}
	return final, nil
}
