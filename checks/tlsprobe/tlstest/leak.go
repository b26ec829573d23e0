package tlstest

import (
	"runtime"
	"testing"
	"time"
)

// NoLeak fails the test if, when it ends, more goroutines run than when
// NoLeak was called (after a grace period for connections to wind down):
// a probe of a hostile server must leave nothing behind.
func NoLeak(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines left behind (before %d, after %d)\n%s", n-before, before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}
