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
	"time"
)

// isTestBinary: a go test binary is not a posture binary, so it cannot be
// its own worker. (Its flags tell it, without linking package testing
// into posture.)
func isTestBinary() bool {
	return flag.Lookup("test.v") != nil
}

var testWorkerOnce = sync.OnceValues(buildTestWorker)

// testWorker builds ./cmd/posture once per test process when WorkerEnv
// is unset, so that any package's tests that run web.nuclei (the lab
// truth, the scanner) find a worker. The binary lives at one path per
// module, so a later test process finds it up to date (go build then
// only checks it: about a second). `make test` builds bin/posture first
// and sets WorkerEnv instead.
func testWorker() (string, error) { return testWorkerOnce() }

// PrepareWorker starts building the test worker in the background (a
// lab calls it as it starts, in test binaries only), so the first batch
// does not wait for the link.
func PrepareWorker() {
	if os.Getenv(WorkerEnv) == "" && isTestBinary() {
		go testWorkerOnce()
	}
}

// WaitForTestWorker builds the test worker now and points WorkerEnv at it
// (in test binaries only, when WorkerEnv is unset): a TestMain calls it so
// that tests with job time limits never spend them on the link (15 s when
// the binary is stale). Without a go toolchain or the module it returns
// the error, and the tests that need a worker report unknowns.
func WaitForTestWorker() error {
	if os.Getenv(WorkerEnv) != "" || !isTestBinary() {
		return nil
	}
	p, err := testWorkerOnce()
	if err != nil {
		return fmt.Errorf("nuclei test worker: %w", err)
	}
	return os.Setenv(WorkerEnv, p)
}

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
	dir := filepath.Join(os.TempDir(), "posture-nuclei-worker", fmt.Sprintf("%x", fnv(root)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// One build at a time per module (test processes run in parallel).
	lock := filepath.Join(dir, "lock")
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			break
		}
		if st, serr := os.Stat(lock); serr == nil && time.Since(st.ModTime()) > 5*time.Minute {
			os.Remove(lock) // a build that died
		}
		if time.Since(start) > 6*time.Minute {
			return "", errors.New("build the nuclei worker: another test process holds " + lock)
		}
	}
	defer os.Remove(lock)
	bin := filepath.Join(dir, "posture")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/posture")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the nuclei worker: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return bin, nil
}

func fnv(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}
