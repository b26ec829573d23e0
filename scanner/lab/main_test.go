package lab_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/nhsx/posture/checks/nuclei"
)

// TestMain builds the nuclei worker before any test runs (unless `make
// test` gave one in POSTURE_NUCLEI_WORKER): the truth tests' per-job time
// limits must not be spent linking it.
func TestMain(m *testing.M) {
	if err := nuclei.WaitForTestWorker(); err != nil {
		fmt.Fprintln(os.Stderr, err) // the web.nuclei verdicts will say unknown
	}
	os.Exit(m.Run())
}
