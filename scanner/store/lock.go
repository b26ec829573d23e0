package store

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked is returned by LockScans when another process is scanning into
// the same database.
var ErrLocked = errors.New("another scan is running on this database")

// LockScans takes an exclusive, advisory lock for scanning into the
// database at path (a file path+".scan.lock" holding the owner's pid), so a
// nightly scan that overruns does not meet the next night's in the same run.
// The kernel drops the lock when the process dies, so a killed scan never
// leaves a stale lock. Readers (reports, exports) need no lock.
func LockScans(path string) (unlock func(), err error) {
	return lockFile(path+".scan.lock", 0o644, ErrLocked, "scan lock")
}

// lockFile takes an exclusive flock on name (created with perm), writes the
// owner's pid into it, and returns busy, wrapped with the holder's pid, when
// another process holds it.
func lockFile(name string, perm os.FileMode, busy error, what string) (unlock func(), err error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid := strings.TrimSpace(string(b[:n])); pid != "" {
				return nil, fmt.Errorf("store: %w (pid %s holds %s)", busy, pid, name)
			}
			return nil, fmt.Errorf("store: %w (%s)", busy, name)
		}
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
