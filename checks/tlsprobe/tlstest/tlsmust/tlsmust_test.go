package tlsmust

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// outcome records what a helper did to a test: skipped, failed, logged,
// or let it go on.
type outcome struct {
	testing.TB
	skipped, failed, logged string
}

func (o *outcome) Helper() {}
func (o *outcome) Skipf(f string, a ...any) {
	o.skipped = fmt.Sprintf(f, a...)
	runtime.Goexit()
}
func (o *outcome) Fatalf(f string, a ...any) {
	o.failed = fmt.Sprintf(f, a...)
	runtime.Goexit()
}
func (o *outcome) Logf(f string, a ...any) { o.logged = fmt.Sprintf(f, a...) }

// run calls f with a recorder in its own goroutine, as the testing package
// runs a test, so that Skipf and Fatalf can end it.
func run(t *testing.T, f func(testing.TB)) *outcome {
	o := &outcome{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(o)
	}()
	<-done
	return o
}

func TestMissingTLSStackSkipsLoudlyButFailsUnderCI(t *testing.T) {
	const absent = "posture-no-such-tls-stack"
	cases := []struct {
		name, ci, bin string
		without       bool // Without rather than Binary
		want          string
	}{
		{"binary-missing-outside-ci", "", absent, false, "skipped"},
		{"binary-missing-in-ci", "true", absent, false, "failed"},
		{"binary-missing-ci-1", "1", absent, false, "failed"},
		{"binary-present-in-ci", "true", "go", false, "ran"},
		{"without-outside-ci", "", absent, true, "logged"},
		{"without-in-ci", "true", absent, true, "failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			var path string
			o := run(t, func(tb testing.TB) {
				if tc.without {
					Without(tb, tc.bin, "the external hosts are not tested")
				} else {
					path = Binary(tb, tc.bin)
				}
			})
			got, msg := "ran", ""
			switch {
			case o.failed != "":
				got, msg = "failed", o.failed
			case o.skipped != "":
				got, msg = "skipped", o.skipped
			case o.logged != "":
				got, msg = "logged", o.logged
			}
			if got != tc.want {
				t.Fatalf("CI=%q %s: %s (%q), want %s", tc.ci, tc.bin, got, msg, tc.want)
			}
			if got == "ran" {
				if path == "" {
					t.Errorf("Binary returned no path for %s", tc.bin)
				}
				return
			}
			// The same loud message either way: what is missing and how
			// to install it.
			if !strings.Contains(msg, "LOUDLY") || !strings.Contains(msg, tc.bin+" is not installed (apt-get install -y gnutls-bin openssl)") {
				t.Errorf("message %q does not say loudly what is missing and how to install it", msg)
			}
		})
	}
}
