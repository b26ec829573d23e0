package lab

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webcheck"
	"github.com/nhsx/posture/checks/webfetch"
)

// hostileLab starts a lab of the hostile cases only.
func hostileLab(t *testing.T) *Lab {
	t.Helper()
	l, err := Start(context.Background(), Config{cases: hostileCases()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestHostileBodiesAreBoundedInMemoryAndOnTheWire fetches the 2 GiB body
// and the gzip bomb as web.https does, and measures what was read off the
// wire and allocated: a hop cut at the body cap is recorded, not lost.
func TestHostileBodiesAreBoundedInMemoryAndOnTheWire(t *testing.T) {
	env := hostileLab(t).Env()
	for _, tc := range []struct {
		host     string
		maxWire  int64
		maxAlloc uint64
	}{
		{HostileHost("huge"), webfetch.DefaultMaxBody + 64<<10, 48 << 20},
		{HostileHost("bomb"), 64 << 10, 48 << 20},
	} {
		t.Run(tc.host, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			res := webfetch.Fetch(context.Background(), env, "https://"+tc.host+"/", webfetch.Options{})
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if len(res.Hops) != 1 || res.End != webfetch.EndFinal || res.Hops[0].Status != 200 {
				t.Fatalf("chain %s, %d hops, want one answered hop: %+v", res.End, len(res.Hops), res)
			}
			b := res.Hops[0].Body
			if b == nil || !b.Truncated || int64(len(b.Data)) != webfetch.DefaultMaxBody {
				t.Fatalf("body %+v, want the first %d bytes, marked truncated", b, webfetch.DefaultMaxBody)
			}
			if b.WireBytes > tc.maxWire {
				t.Errorf("%d bytes read off the wire, want at most %d", b.WireBytes, tc.maxWire)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > tc.maxAlloc {
				t.Errorf("%d MiB allocated for the fetch, want at most %d", alloc>>20, tc.maxAlloc>>20)
			}
			if took > 5*time.Second {
				t.Errorf("took %s", took)
			}
			t.Logf("%s: %d bytes kept, %d read off the wire, %d KiB allocated, %s", tc.host, len(b.Data), b.WireBytes,
				(after.TotalAlloc-before.TotalAlloc)>>10, took.Round(time.Millisecond))
		})
	}
}

// TestHostileTricklesCostTheirBudget: a body sent a byte a second is cut
// at the chain's budget with what came recorded; a head sent a byte a
// second is cut at the silent-wait bound. Short bounds keep it quick.
func TestHostileTricklesCostTheirBudget(t *testing.T) {
	env := hostileLab(t).Env()
	o := webfetch.Options{Timeout: 2500 * time.Millisecond, WaitTimeout: time.Second}
	start := time.Now()
	res := webfetch.Fetch(context.Background(), env, "https://"+HostileHost("slow")+"/", o)
	took := time.Since(start)
	if len(res.Hops) != 1 || res.Hops[0].Status != 200 || res.Hops[0].Body == nil {
		t.Fatalf("slow: %+v", res)
	}
	if b := res.Hops[0].Body; b.Class != check.ErrTimeout || len(b.Data) == 0 || len(b.Data) > 4 {
		t.Errorf("slow: body %q (%s), want the first bytes and a timeout", b.Data, b.Class)
	}
	if took > 4*time.Second {
		t.Errorf("slow took %s, want about the 2.5 s budget", took)
	}
	start = time.Now()
	res = webfetch.Fetch(context.Background(), env, "https://"+HostileHost("drip")+"/", o)
	took = time.Since(start)
	if len(res.Hops) != 1 || res.Hops[0].Stage != webfetch.StageResponse || res.Hops[0].Class != check.ErrTimeout {
		t.Errorf("drip: %+v, want a response-stage timeout", res.Hops)
	}
	if took > 2500*time.Millisecond {
		t.Errorf("drip took %s, want about the 1 s wait", took)
	}
}

// TestHostileHostsTruth runs web.https on the fast hostile hosts and
// compares with the stated truth (the trickles are in the lab truth
// test, which runs them beside the rest of the lab).
func TestHostileHostsTruth(t *testing.T) {
	l := hostileLab(t)
	env, pol := l.Env(), l.Policy()
	c := webcheck.Check()
	for _, k := range []string{"huge", "bomb", "loop", "many", "xss"} {
		t.Run(k, func(t *testing.T) {
			n := HostileHost(k)
			_, d, _ := strings.Cut(n, ".")
			a := check.Asset{Kind: check.KindHost, Name: n, Domain: d}
			ev, err := c.Collect(context.Background(), env, a)
			if err != nil {
				t.Fatal(err)
			}
			want := (&hostileHandler{kind: k}).expect()
			got := map[string]check.Finding{}
			for _, f := range c.Evaluate(ev, pol) {
				got[f.CheckID] = f
			}
			for id, o := range want {
				if got[id].Outcome != o {
					t.Errorf("%s = %s (%s), want %s", id, got[id].Outcome, got[id].Message, o)
				}
			}
			if k == "xss" && !strings.Contains(got[webcheck.HSTSPresent].Message, HostileScript) {
				t.Errorf("the xss host's finding does not quote what it sent (reports must escape it): %s", got[webcheck.HSTSPresent].Message)
			}
		})
	}
}

// TestHostileBombDecodesToAGibibyte: the bomb is a valid gzip member
// (CRC and length) of 1 GiB of zeros, about 1 MB on the wire.
func TestHostileBombDecodesToAGibibyte(t *testing.T) {
	b := hostileBomb()
	if len(b) > 2<<20 {
		t.Errorf("the bomb is %d bytes on the wire, want about 1 MB", len(b))
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, zr)
	if err != nil || n != hostileBombSize {
		t.Fatalf("decoded %d bytes (%v), want %d", n, err, hostileBombSize)
	}
}

// TestHostileHandlersAreSafeInProcess: truth derivation asks handlers
// in-process; a hostile one answers at once with a bounded body.
func TestHostileHandlersAreSafeInProcess(t *testing.T) {
	for _, k := range hostileKinds {
		start := time.Now()
		r := webAsk(&hostileHandler{kind: k}, "https://"+HostileHost(k)+"/", true)
		body, _ := io.ReadAll(r.Body)
		if time.Since(start) > time.Second || (k != "bomb" && len(body) > hostileInProcess) {
			t.Errorf("%s: %d bytes in %s", k, len(body), time.Since(start))
		}
		if k != "loop" && r.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", k, r.StatusCode)
		}
	}
}

func TestHostileHostsAreNamed(t *testing.T) {
	for _, k := range hostileKinds {
		if HostileHost(k) == "" {
			t.Errorf("%s has no case", k)
		}
	}
}
