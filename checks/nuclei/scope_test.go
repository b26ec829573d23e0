package nuclei_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/nuclei"
	"github.com/nhsx/posture/scanner/lab"
	"github.com/nhsx/posture/scanner/scope"
)

// Operator templates aimed outside the estate: an http request to a name
// outside the scope (web.outside.example, which resolves to the lab's
// OutsideIP) and to OutsideIP itself, and ssl handshakes to both.
var outsideTemplates = map[string]string{
	"outside-http.yaml": `id: outside-http
info:
  name: http outside the scope
  author: posture-test
  severity: high
http:
  - raw:
      - |
        @Host: https://` + lab.OutsideName + `:443
        GET / HTTP/1.1
        Host: ` + lab.OutsideName + `

      - |
        @Host: http://` + lab.OutsideIP + `:80
        GET / HTTP/1.1
        Host: ` + lab.OutsideIP + `

    matchers:
      - type: word
        words:
          - "outside the scope"
`,
	// Pipelined HTTP goes through rawhttp's own dialer, not the proxy: the
	// worker refuses to run it.
	"outside-pipeline.yaml": `id: outside-pipeline
info:
  name: pipelined http outside the scope
  author: posture-test
  severity: high
http:
  - raw:
      - |
        GET / HTTP/1.1
        Host: ` + lab.OutsideName + `

    unsafe: true
    pipeline: true
    matchers:
      - type: word
        words:
          - "outside the scope"
`,
	"outside-unsafe.yaml": `id: outside-unsafe
info:
  name: unsafe (rawhttp) http outside the scope
  author: posture-test
  severity: high
http:
  - raw:
      - |
        @Host: https://` + lab.OutsideName + `:443
        GET / HTTP/1.1
        Host: ` + lab.OutsideName + `

    unsafe: true
    matchers:
      - type: word
        words:
          - "outside the scope"
`,
	"outside-ssl.yaml": `id: outside-ssl
info:
  name: ssl outside the scope
  author: posture-test
  severity: high
ssl:
  - address: "` + lab.OutsideName + `:443"
    matchers:
      - type: dsl
        dsl:
          - "len(tls_version) > 0"
`,
	"outside-ssl-ip.yaml": `id: outside-ssl-ip
info:
  name: ssl to an address outside the scope
  author: posture-test
  severity: high
ssl:
  - address: "` + lab.OutsideIP + `:443"
    matchers:
      - type: dsl
        dsl:
          - "len(tls_version) > 0"
`,
}

// guardedEnv is the lab's environment behind a scope guard over the lab
// estate (every lab domain under nhs.uk), as a scan builds it.
func guardedEnv(l *lab.Lab, settings map[string]string) *check.Env {
	g := &scope.Guard{
		InScope:      func(n string) bool { return strings.HasSuffix(n, ".nhs.uk") },
		AllowPrivate: true, DNS: l.Resolver(), Dial: l.Dial, ConnectTimeout: 3 * time.Second,
	}
	env := l.Env()
	env.Dial, env.Lookup, env.HTTP = g.DialContext, g.Resolve, g.HTTPClient(l.Roots)
	env.Settings = settings
	return env
}

// TestTemplatesAimedOutsideTheScopeMakeNoConnection: nuclei's http and
// ssl requests go through the guarded proxy, so a template aimed outside
// the scope reaches nothing (the lab's outside listener counts zero), the
// guard's refusals are recorded, and the finding is not a fail.
func TestTemplatesAimedOutsideTheScopeMakeNoConnection(t *testing.T) {
	l := sharedLab(t)
	dir := t.TempDir()
	for name, body := range outsideTemplates {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := l.Conns(lab.OutsideIP)
	env := guardedEnv(l, map[string]string{nuclei.SetTemplates: dir})
	c := nuclei.NewCheck(&nuclei.Runner{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	host := "www.lab-exposure-mentions.nhs.uk"
	ev, err := c.Collect(ctx, env, check.Asset{Kind: check.KindHost, Name: host})
	if err != nil {
		t.Fatal(err)
	}
	var e nuclei.Evidence
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		t.Fatal(err)
	}
	if n := l.Conns(lab.OutsideIP) - before; n != 0 {
		t.Errorf("%d connections reached the outside address", n)
	}
	ran := map[string]bool{}
	for _, r := range e.Templates {
		if r.Source == "user" {
			ran[r.Template] = true
			if r.Outcome == nuclei.Matched {
				t.Errorf("%s matched: %+v", r.Template, r)
			}
		}
	}
	for _, id := range []string{"outside-http", "outside-unsafe", "outside-ssl", "outside-ssl-ip", "outside-pipeline"} {
		if !ran[id] {
			t.Errorf("template %s has no result (evidence %+v)", id, e.Templates)
		}
	}
	for _, r := range e.Templates {
		if r.Template == "outside-pipeline" && (r.Outcome != nuclei.Errored || !strings.Contains(r.Error, "pipelined")) {
			t.Errorf("the pipelined template: %s %q, want refused", r.Outcome, r.Error)
		}
	}
	// http (the name), ssl (the name, resolved by the worker: an address
	// the guard never vouched for) and the literal address, at least.
	if e.Worker.ScopeRefused < 3 {
		t.Errorf("the guard refused %d of the worker's connections, want at least 3 (worker %+v)", e.Worker.ScopeRefused, e.Worker)
	}
	for _, f := range c.Evaluate(ev, l.Policy()) {
		if f.CheckID == nuclei.CustomID && f.Outcome == check.Fail {
			t.Errorf("%s: %s %s", f.CheckID, f.Outcome, f.Message)
		}
		if f.CheckID != nuclei.CustomID && f.Outcome != check.Pass {
			t.Errorf("%s on %s: %s %s, want pass (the pack still runs)", f.CheckID, host, f.Outcome, f.Message)
		}
	}
}
