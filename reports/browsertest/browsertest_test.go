package browsertest

import (
	"bytes"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// site serves / (the page under test), /app.js (a script file) and counts
// every request it gets.
func site(t *testing.T, html string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, html)
		case "/app.js":
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprint(w, `document.title = "from app.js";`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestPageWithoutScriptRecordsNoScriptNoDialogOneRequest(t *testing.T) {
	b := Start(t)
	srv, _ := site(t, `<!doctype html><title>plain</title><p>hello <b>there</b></p><style>p{color:red}</style>`)
	p, err := b.Open(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Scripts(); len(s) != 0 {
		t.Errorf("a page without script compiled %d scripts: %v", len(s), s)
	}
	if d := p.Dialogs(); len(d) != 0 {
		t.Errorf("dialogs: %v", d)
	}
	reqs := p.Requests()
	if len(reqs) != 1 || reqs[0].URL != srv.URL+"/" {
		t.Errorf("requests: want only the page, got %v", reqs)
	}
	if got := p.Text(); got != "hello there" {
		t.Errorf("Text() = %q, want %q", got, "hello there")
	}
	// Text and Eval are not the page's scripts.
	if s := p.Scripts(); len(s) != 0 {
		t.Errorf("Eval/Text were recorded as the page's scripts: %v", s)
	}
}

func TestPageWithScriptsRecordsEachKindAndDismissesDialogs(t *testing.T) {
	b := Start(t)
	srv, _ := site(t, `<!doctype html><title>t</title>
<script src="/app.js"></script>
<script>alert("inline")</script>
<img src="/missing.png" onerror="confirm('handler')">
<p>after</p>`)
	p, err := b.Open(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	dialogs := strings.Join(p.Dialogs(), "|")
	for _, want := range []string{"alert: inline", "confirm: handler"} {
		if !strings.Contains(dialogs, want) {
			t.Errorf("dialogs %q lack %q", dialogs, want)
		}
	}
	var title string
	if err := p.Eval(`document.title`, &title); err != nil || title != "from app.js" {
		t.Errorf("the script file did not run: title %q, %v", title, err)
	}
	all := p.Scripts()
	srcs := fmt.Sprint(all)
	for _, want := range []string{`alert(\"inline\")`, `confirm('handler')`, "from app.js"} {
		if !strings.Contains(srcs, want) {
			t.Errorf("scripts lack %s: %s", want, srcs)
		}
	}
	foreign := p.ScriptsNotFrom(srv.URL + "/app.js")
	if len(foreign) != len(all)-1 {
		t.Errorf("ScriptsNotFrom(app.js): %d of %d scripts, want all but the file: %v", len(foreign), len(all), foreign)
	}
	if got := p.RequestsNotTo(srv.URL + "/"); len(got) != 0 {
		t.Errorf("requests beyond the site: %v", got)
	}
	if n := len(p.Requests()); n != 3 { // page, app.js, missing.png
		t.Errorf("%d requests recorded, want 3: %v", n, p.Requests())
	}
}

func TestFileURLAndScreenshot(t *testing.T) {
	b := Start(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "board.html")
	if err := os.WriteFile(page, []byte(`<!doctype html><body style="height:3000px;background:#005eb8"><h1>Board</h1>`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := b.Open("file://" + page)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Text(); got != "Board" {
		t.Errorf("Text() = %q", got)
	}
	if got := p.RequestsNotTo("file://" + page); len(got) != 0 {
		t.Errorf("requests beyond the file: %v", got)
	}
	png := filepath.Join(dir, "shot.png")
	if err := p.Screenshot(png); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("not a PNG: % x", data[:min(8, len(data))])
	}
	// Full page: the PNG's height (IHDR bytes 20..24) is the body's 3000
	// px or more, not the 900 px window.
	if h := pngHeight(data); h < 3000 {
		t.Errorf("screenshot %d px high: not the full page", h)
	}
	if err := p.ScreenshotTop(png, 1200); err != nil {
		t.Fatal(err)
	}
	if data, _ = os.ReadFile(png); pngHeight(data) != 1200 {
		t.Errorf("ScreenshotTop(1200): %d px high", pngHeight(data))
	}
}

// pngHeight reads the height of a PNG (IHDR bytes 20..24).
func pngHeight(data []byte) int {
	if len(data) < 24 {
		return 0
	}
	return int(data[20])<<24 | int(data[21])<<16 | int(data[22])<<8 | int(data[23])
}

// TestRequestsBeyondLoopbackNeverLeave: a page that loads from this
// machine's own non-loopback address gets nothing (the dead proxy), and the
// attempt is recorded.
func TestRequestsBeyondLoopbackNeverLeave(t *testing.T) {
	ip := outsideIP()
	if ip == "" {
		t.Skip("SKIP LOUDLY: this machine has no non-loopback IPv4 address to aim at")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("SKIP LOUDLY: cannot listen on %s: %v", ip, err)
	}
	var outside atomic.Int64
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outside.Add(1)
	})}}
	srv.Start()
	t.Cleanup(srv.Close)
	b := Start(t)
	home, _ := site(t, `<!doctype html><img src="`+srv.URL+`/beacon.png"><link rel=stylesheet href="http://example.com/x.css">`)
	p, err := b.Open(home.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if n := outside.Load(); n != 0 {
		t.Errorf("the page reached %s %d times: the browser is not held to loopback", srv.URL, n)
	}
	got := fmt.Sprint(p.RequestsNotTo(home.URL))
	for _, want := range []string{srv.URL + "/beacon.png", "http://example.com/x.css"} {
		if !strings.Contains(got, want) {
			t.Errorf("attempted request %s not recorded: %s", want, got)
		}
	}
}

func outsideIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// openAll opens one file per page body, six tabs at a time.
func openAll(t *testing.T, b *Browser, bodies []string) []*Page {
	t.Helper()
	dir := t.TempDir()
	pages := make([]*Page, len(bodies))
	errs := make([]error, len(bodies))
	sem := make(chan struct{}, 6)
	var wg sync.WaitGroup
	for i, body := range bodies {
		path := filepath.Join(dir, fmt.Sprintf("p%02d.html", i))
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			pages[i], errs[i] = b.Open("file://" + path)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
	}
	return pages
}

// TestPayloadsAreLiveRaw is the proof that the XSS tests of the reports
// can fail: each payload marked Live, put unescaped into its context, runs
// script, loads from outside or navigates in Chromium, and the recorder
// sees it.
func TestPayloadsAreLiveRaw(t *testing.T) {
	b := Start(t)
	var bodies []string
	for _, p := range Payloads {
		bodies = append(bodies, p.Raw())
	}
	for i, pg := range openAll(t, b, bodies) {
		p := Payloads[i]
		did := pg.Did(p.Mark)
		// A loaded machine may be slow to fire late handlers (toggle,
		// animation, focus): give a live payload up to 5 s more.
		for wait := time.Now().Add(5 * time.Second); p.Live && len(did) == 0 && time.Now().Before(wait); did = pg.Did(p.Mark) {
			time.Sleep(200 * time.Millisecond)
		}
		bad, err := pg.InertDOM()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case p.Live && len(did) == 0:
			t.Errorf("%s (%s) raw did nothing the recorder saw: %s", p.Mark, p.Context, p.Text)
		case !p.Live && len(did) > 0:
			t.Errorf("%s is not marked live but did %q", p.Mark, did)
		}
		if p.DOM && len(bad) == 0 {
			t.Errorf("%s raw leaves nothing InertDOM reports", p.Mark)
		}
	}
}

// TestPayloadsEscapedByHTMLTemplateAreInert: the same contexts rendered by
// html/template (what the reports use) do nothing, and the marks still
// show as text.
func TestPayloadsEscapedByHTMLTemplateAreInert(t *testing.T) {
	b := Start(t)
	tmpl := template.Must(template.New("").Parse(`<!doctype html><html><head><title>{{.Text}}</title><style>p{color:red}</style></head>
<body><p>{{.Text}}</p><input value="{{.Text}}"><input value='{{.Text}}'><textarea>{{.Text}}</textarea><a href="{{.Text}}">link</a></body></html>`))
	var bodies []string
	for _, p := range Payloads {
		var sb strings.Builder
		if err := tmpl.Execute(&sb, p); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, sb.String())
	}
	for i, pg := range openAll(t, b, bodies) {
		p := Payloads[i]
		AssertInert(t, p.Mark+" escaped", pg, []string{"file://"})
		if !strings.Contains(pg.Text(), p.Text) {
			t.Errorf("%s escaped does not show as text: %q", p.Mark, pg.Text())
		}
	}
}
