package store

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const lockChild = "POSTURE_TEST_LOCK_CHILD"

func TestMain(m *testing.M) {
	if p := os.Getenv(lockChild); p != "" {
		// Hold the lock until killed.
		if _, err := LockScans(p); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestScanLockIsExclusiveAndDiesWithItsHolder(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), lockChild+"="+db)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("child did not take the lock: %q %v", buf, err)
	}
	_, err = LockScans(db)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second lock while the child holds it: %v, want ErrLocked naming the pid", err)
	}
	child.Process.Kill() // SIGKILL: no chance to unlock
	child.Wait()
	unlock, err := LockScans(db)
	if err != nil {
		t.Fatalf("lock after the holder was killed: %v", err)
	}
	unlock()
}
