// Package browsertest opens HTML in a real headless Chromium for tests and
// records what the page did: the JavaScript dialogs it opened, every script
// it compiled (inline, event handler, javascript: URL, file) and every
// network request it made. Reports built from hostile scanned text are
// judged by what a browser does with them, not by string matching.
//
// The browser reaches loopback only: every other host goes to a dead proxy,
// so a page that tries to load something from outside fails to, and the
// request is still recorded.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/debugger"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// evalURL names the scripts this package evaluates (Eval, Text), so that
// the record of the page's scripts leaves them out.
const evalURL = "browsertest://eval"

// Settle is how long Open waits after the load event for timers, meta
// refreshes and late handlers (an <img onerror> fires after its failed
// load) before the page is looked at.
var Settle = 500 * time.Millisecond

// Browser is one headless Chromium process for a test.
type Browser struct {
	t      testing.TB
	ctx    context.Context // the browser's first tab: it owns the process
	cancel context.CancelFunc
}

// Path finds Chromium: $POSTURE_CHROMIUM, then chromium on $PATH, then
// /usr/bin/chromium ("" when there is none).
func Path() string {
	if p := os.Getenv("POSTURE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// Start launches Chromium for t and stops it when t ends. Without Chromium
// the test skips with a loud message, or fails when env CI is set (CI must
// install it: .ci/run does).
func Start(t testing.TB) *Browser {
	t.Helper()
	path := Path()
	if path == "" {
		msg := "browsertest: chromium is not installed (apt-get install chromium, or set POSTURE_CHROMIUM): this browser test cannot run"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " and CI is set")
		}
		t.Skip("SKIP LOUDLY: " + msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// Loopback only: every other request goes to a proxy nobody
		// listens on (loopback bypasses a proxy implicitly), and names
		// other than localhost do not resolve.
		chromedp.ProxyServer("http://127.0.0.1:9"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		// One renderer for every frame, so that the Debugger of the page
		// sees the scripts of srcdoc and data: iframes too.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,IsolateOrigins,site-per-process"),
		chromedp.Flag("disable-site-isolation-trials", true),
		chromedp.Flag("allow-file-access-from-files", false),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.CombinedOutput(io.Discard),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run its sandbox as root
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{t: t, ctx: ctx, cancel: func() { cancel(); acancel() }}
	// The first Run starts the process; it must not carry a timeout (that
	// would end the browser), so a watchdog cancels a start that hangs.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			b.cancel()
			msg := fmt.Sprintf("browsertest: start %s: %v", path, err)
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip("SKIP LOUDLY: " + msg)
		}
	case <-time.After(90 * time.Second):
		b.cancel()
		t.Fatalf("browsertest: %s did not start in 90 s", path)
	}
	t.Cleanup(b.cancel)
	return b
}

// Script is one script the page compiled.
type Script struct {
	ID  string
	URL string // the file's URL; for inline scripts and handlers, usually the document's
	// Source is the start of the script's text (filled in by Scripts).
	Source string
}

func (s Script) String() string { return fmt.Sprintf("script %s (%s): %q", s.ID, s.URL, s.Source) }

// Request is one network request the page made (file:// and data: too).
type Request struct {
	URL, Method, Type string
}

// Page is one tab showing one URL.
type Page struct {
	ctx    context.Context
	cancel context.CancelFunc
	url    string

	mu        sync.Mutex
	recording bool
	dialogs   []string
	scripts   []Script
	requests  []Request
}

// Open shows url (http(s) on loopback, file://) in a new tab, waits for its
// load event and Settle, and returns the page. Dialogs the page opens are
// recorded and dismissed.
func (b *Browser) Open(url string) (*Page, error) {
	ctx, cancel := chromedp.NewContext(b.ctx)
	p := &Page{ctx: ctx, cancel: cancel, url: url}
	b.t.Cleanup(cancel)
	dismiss := make(chan struct{}, 64)
	if err := chromedp.Listen(ctx, func(ev any) { p.record(ev, dismiss) }); err != nil {
		cancel()
		return nil, fmt.Errorf("browsertest: open a tab: %w", err)
	}
	go func() {
		for {
			select {
			case <-dismiss:
				// Not from the listener: a command there would deadlock.
				chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			case <-ctx.Done():
				return
			}
		}
	}()
	tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	defer tcancel()
	if _, err := chromedp.Call(tctx, debugger.Enable, debugger.EnableParams{}); err != nil {
		cancel()
		return nil, fmt.Errorf("browsertest: Debugger.enable: %w", err)
	}
	// What the blank tab compiled before (chromedp's own probe) is not the
	// page's: record from here on.
	p.mu.Lock()
	p.recording = true
	p.mu.Unlock()
	if err := chromedp.Do(tctx, chromedp.Navigate(url), chromedp.Sleep(Settle)); err != nil {
		return p, fmt.Errorf("browsertest: open %s: %w", url, err)
	}
	return p, nil
}

// record runs on the tab's reader goroutine: it must not block or call
// commands.
func (p *Page) record(ev any, dismiss chan<- struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := ev.(type) {
	case *page.EventJavascriptDialogOpening:
		p.dialogs = append(p.dialogs, string(e.Type)+": "+e.Message)
		select {
		case dismiss <- struct{}{}:
		default:
		}
	case *debugger.EventScriptParsed:
		if p.recording && e.URL != evalURL {
			p.scripts = append(p.scripts, Script{ID: string(e.ScriptID), URL: e.URL})
		}
	case *network.EventRequestWillBeSent:
		if p.recording && e.Request != nil && !p.autoFavicon(e) {
			p.requests = append(p.requests, Request{URL: e.Request.URL, Method: e.Request.Method, Type: string(e.Type)})
		}
	}
}

// autoFavicon says whether e is the browser's own fetch of the origin's
// /favicon.ico, which it makes for every http page: not the page's doing.
func (p *Page) autoFavicon(e *network.EventRequestWillBeSent) bool {
	u, err := neturl.Parse(e.Request.URL)
	if err != nil || e.Type != network.ResourceTypeOther || u.Path != "/favicon.ico" {
		return false
	}
	pu, err := neturl.Parse(p.url)
	return err == nil && pu.Scheme == u.Scheme && pu.Host == u.Host
}

// Close closes the tab (the test's end closes it too).
func (p *Page) Close() { p.cancel() }

// Dialogs lists the alert, confirm, prompt and beforeunload dialogs the
// page opened, as "type: message".
func (p *Page) Dialogs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.dialogs...)
}

// Scripts lists every script the page compiled since Open began (its
// files, inline scripts, event handlers that ran, javascript: URLs, eval),
// except those of Eval and Text, with the start of each one's source.
func (p *Page) Scripts() []Script {
	p.mu.Lock()
	out := append([]Script(nil), p.scripts...)
	p.mu.Unlock()
	for i := range out {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		r, err := chromedp.Call(ctx, debugger.GetScriptSource, debugger.GetScriptSourceParams{ScriptID: cdp.ScriptID(out[i].ID)})
		cancel()
		if err == nil {
			src := r.ScriptSource
			if len(src) > 200 {
				src = src[:200] + "…"
			}
			out[i].Source = src
		}
	}
	return out
}

// ScriptsNotFrom lists the scripts whose URL is none of own: a page's own
// script files are expected, anything else (inline, handlers, injected) is
// not. Inline scripts carry the document's URL, so pass the files only.
func (p *Page) ScriptsNotFrom(own ...string) []Script {
	var out []Script
	for _, s := range p.Scripts() {
		mine := false
		for _, o := range own {
			mine = mine || s.URL == o
		}
		if !mine {
			out = append(out, s)
		}
	}
	return out
}

// Requests lists every request the page made since Open began, the
// document's own first.
func (p *Page) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.requests...)
}

// RequestsNotTo lists the requests whose URL does not start with one of
// prefixes (the page's own origin, say).
func (p *Page) RequestsNotTo(prefixes ...string) []Request {
	var out []Request
	for _, r := range p.Requests() {
		ok := false
		for _, pre := range prefixes {
			ok = ok || strings.HasPrefix(r.URL, pre)
		}
		if !ok {
			out = append(out, r)
		}
	}
	return out
}

// Eval evaluates the expression js in the page and decodes its JSON value
// into out (nil: discard). A promise is awaited.
func (p *Page) Eval(js string, out any) error {
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	r, err := chromedp.Call(ctx, runtime.Evaluate, runtime.EvaluateParams{
		Expression:    js + "\n//# sourceURL=" + evalURL,
		ReturnByValue: ptr(true),
		AwaitPromise:  ptr(true),
	})
	if err != nil {
		return fmt.Errorf("browsertest: eval: %w", err)
	}
	if r.ExceptionDetails != nil {
		return fmt.Errorf("browsertest: eval: %w", &chromedp.ExceptionError{ExceptionDetails: r.ExceptionDetails})
	}
	if out == nil || r.Result == nil {
		return nil
	}
	if len(r.Result.Value) == 0 {
		return errors.New("browsertest: eval: no value (undefined)")
	}
	return json.Unmarshal(r.Result.Value, out)
}

// Text is what the page shows as text (document.body.innerText).
func (p *Page) Text() string {
	var s string
	if err := p.Eval(`document.body ? document.body.innerText : ""`, &s); err != nil {
		return ""
	}
	return s
}

// Screenshot writes a PNG of the whole page (beyond the viewport) to path.
func (p *Page) Screenshot(path string) error {
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("browsertest: screenshot: %w", err)
	}
	return os.WriteFile(path, png, 0o644)
}

// ScreenshotTop writes a PNG of the top of the page, height CSS pixels
// (or the whole page if it is shorter) at the window's width: what a
// reader sees first, for documentation.
func (p *Page) ScreenshotTop(path string, height int) error {
	var size struct{ W, H float64 }
	if err := p.Eval(`({W: document.documentElement.clientWidth, H: document.documentElement.scrollHeight})`, &size); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	r, err := chromedp.Call(ctx, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format:                page.CaptureScreenshotFormatPng,
		Clip:                  &page.Viewport{Width: size.W, Height: min(size.H, float64(height)), Scale: 1},
		CaptureBeyondViewport: ptr(true),
		FromSurface:           ptr(true),
	})
	if err != nil {
		return fmt.Errorf("browsertest: screenshot: %w", err)
	}
	return os.WriteFile(path, r.Data, 0o644)
}

func ptr[T any](v T) *T { return &v }
