package nuclei

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

// FuzzWorkerEvents: a worker's output line (the worker reads hostile
// servers) never panics the parent, and what it keeps stays bounded.
func FuzzWorkerEvents(f *testing.F) {
	f.Add([]byte(`{"template":"git-config","source":"pack","target":"https://h","matched":true,"url":"https://h/.git/config","extracted":["a"]}`))
	f.Add([]byte(`{"template":"env-file","source":"pack","target":"https://h","error":"timeout"}`))
	f.Add([]byte(`{"loaded":{"pack/git-config":"pack"}}`))
	f.Add([]byte(`{"done":true,"load_error":"x"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var e Event
		if json.Unmarshal(line, &e) != nil {
			return
		}
		_ = hostOfTarget(e.Target)
		for _, r := range runsFor([]Event{e, e}, Worker{}, hostNet{}) {
			if len(r.Template) > 130 || len(r.URL) > 310 || len(r.Error) > 310 || len(r.Extracted) > 10 || len(r.Name) > 130 || len(r.Severity) > 30 {
				t.Fatalf("unbounded run: %+v", r)
			}
			for _, x := range r.Extracted {
				if len(x) > 130 {
					t.Fatalf("unbounded extracted value (%d bytes)", len(x))
				}
			}
		}
		ev := Evidence{Host: "h", PackVersion: PackVersion, Templates: runsFor([]Event{e}, Worker{}, hostNet{})}
		_ = Evaluate(check.In[Evidence]{Evidence: ev})
	})
}

// FuzzSOCKSRequest: whatever the worker sends the proxy's SOCKS side, it
// answers or hangs up in time, and dials only through env.
func FuzzSOCKSRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 5, 1, 0, 3, 9, 'l', 'a', 'b', '.', 'n', 'h', 's', '.', 'u', 1, 187})
	f.Add([]byte{5, 1, 0, 5, 1, 0, 1, 203, 0, 113, 10, 0, 80})
	f.Add([]byte{5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80})
	f.Add([]byte{5, 0})
	f.Add([]byte{5, 255, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 53})
	f.Fuzz(func(t *testing.T, in []byte) {
		dialled := 0
		env := &check.Env{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialled++
			return nil, check.WithClass(check.ErrScope, errors.New("refused"))
		}}
		p := &guardProxy{env: env, hosts: map[string]*hostNet{}, self: map[string]bool{}, budget: time.Second}
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() { p.serveSOCKS(a); close(done) }()
		go func() {
			defer b.Close() // the worker hangs up after what it sent
			b.SetDeadline(time.Now().Add(200 * time.Millisecond))
			b.Write(in)
			buf := make([]byte, 64)
			for {
				if _, err := b.Read(buf); err != nil {
					return
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("serveSOCKS did not return")
		}
		if dialled > 1 {
			t.Fatalf("%d dials for one request", dialled)
		}
	})
}
