package tlsprobe

import (
	"bytes"
	"testing"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlsprobe/tlstest"
)

// fuzzVersions: the first input byte picks the hello the answer is read
// against; the rest is what the server sent.
var fuzzVersions = []Version{TLS12, TLS13, SSL30, TLS10}

func FuzzReadResponse(f *testing.F) {
	f.Add([]byte{0})
	f.Add(append([]byte{0}, tlstest.Record(21, 0x0303, []byte{2, 40})...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		v := fuzzVersions[int(data[0])%len(fuzzVersions)]
		hello := Hello{Version: v, Suites: ids(SuitesAt(v))}
		r, err := ReadResponse(bytes.NewReader(data[1:]), hello, 0)
		switch {
		case err != nil:
			if c := check.Classify(err); c != check.ErrMalformed {
				t.Fatalf("error of class %q from an in-memory answer: %v", c, err)
			}
		case r == nil:
			t.Fatal("nil response without error")
		case r.Accepted():
			sh := r.ServerHello
			if sh.Version > v || (v == TLS13) != (sh.Version == TLS13) {
				t.Fatalf("accepted version %v for a %v hello", sh.Version, v)
			}
			if s, ok := sh.Suite.Suite(); !ok || !s.ValidAt(sh.Version) {
				t.Fatalf("accepted suite %v invalid at %v", sh.Suite, sh.Version)
			}
		}
		if _, err := ParseServerHello(data[1:]); err != nil && check.Classify(err) != check.ErrMalformed {
			t.Fatalf("ParseServerHello error of class %q", check.Classify(err))
		}
		if _, _, err := readSSLv2Response(bytes.NewReader(data[1:])); err != nil && check.Classify(err) != check.ErrMalformed {
			t.Fatalf("SSLv2 error of class %q: %v", check.Classify(err), err)
		}
	})
}
