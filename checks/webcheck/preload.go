package webcheck

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/nhsx/posture/checks/check"
)

// web.hsts.preload (docs/checks.md §1.2, §3.2 decision 10): whether the
// estate domain is on Chromium's HSTS preload list, or ready to be.
//
// The list is data with a date: data/hsts-preload-2026-06-01.tsv.gz is
// embedded (Chromium's list, BSD 3-Clause: data/NOTICE), parsed once on
// first use; --hsts-preload FILE points a scan (check.Env.Lists) or a
// reeval (the web policy section) at a newer copy of the same format.
// Collect records what the list said of the host, with the list's date;
// Evaluate judges that stored fact.

// PreloadListName is the list's key in check.Env.Lists.
const PreloadListName = "hsts-preload"

// HSTSPreload is the catalogue id.
const HSTSPreload = "web.hsts.preload"

// preloadMinMaxAge is hstspreload's hstsMinimumMaxAge (header.go): one
// year, whatever the policy's hsts_min_max_age.
const preloadMinMaxAge = 31536000

// preloadMaxRedirects is hstspreload's maxRedirects (redirects.go).
const preloadMaxRedirects = 3

// Bounds on a preload list file (hostile input only in that an operator
// may point at the wrong file: still bounded).
const (
	preloadMaxBytes   = 64 << 20 // decoded
	preloadMaxEntries = 2_000_000
	preloadMaxLine    = 512
)

//go:embed data/hsts-preload-2026-06-01.tsv.gz
var preloadEmbedded []byte

// EmbeddedPreloadDate is the embedded list's date (its header line's; a
// test keeps them equal), for help texts that must not parse the list.
const EmbeddedPreloadDate = "2026-06-01"

var refPreloadList = check.Ref{Standard: "Chromium HSTS preload list", Section: "net/http/transport_security_state_static.json (force-https entries; include_subdomains)",
	URL: "https://hstspreload.org/"}

var preloadRule = check.Meta{ID: HSTSPreload, Rule: "hsts-preload", Title: "HSTS preload status is recorded", Severity: check.Info,
	Description: "Record only (info: never counted against posture). On the estate domain itself (the apex host), whether Chromium's HSTS preload list lists it, or a parent with include_subdomains (the list's date is in the message: an embedded copy, or --hsts-preload FILE), passes; so does a host that is preload-ready but not yet listed: one Strict-Transport-Security header with max-age of at least 31536000, includeSubDomains and preload on the first HTTPS response, http:// redirecting first to https on the same host (or port 80 closed), at most 3 redirects on either chain and none to http. A header asking for preload on a host that is not ready warns (a submission would be refused). A host that neither is listed nor asks for preload is not applicable (NHSBSA: avoid preload unless you intend to submit). Other hosts are not applicable; the message says when a preloaded parent covers them.",
	Remediation: "If the whole domain and every subdomain serve HTTPS, send \"Strict-Transport-Security: max-age=31536000; includeSubDomains; preload\" from the apex, redirect http:// to https:// on the apex first, and submit the domain at https://hstspreload.org/; otherwise remove the preload directive.",
	Standards: []check.Ref{refSMHTTPS, refHSTSPreload, refPreloadList,
		{Standard: "NHSBSA playbook", Section: `src/security/security-headers.md: "Avoid using preload unless you intend to submit"`, Status: "secondary"}}}

// PreloadList is a dated copy of Chromium's HSTS preload list: listed
// host → whether its entry includes subdomains. It implements check.List
// (Lookup returns "1" or "0").
type PreloadList struct {
	date  string
	hosts map[string]bool
}

// Date is the list's date, YYYY-MM-DD, from its header line.
func (l *PreloadList) Date() string { return l.date }

// Len is the number of entries.
func (l *PreloadList) Len() int { return len(l.hosts) }

// Lookup implements check.List: the entry of host exactly.
func (l *PreloadList) Lookup(host string) (string, bool) {
	sub, ok := l.hosts[host]
	if !ok {
		return "", false
	}
	if sub {
		return "1", true
	}
	return "0", true
}

// embeddedPreload parses the embedded list once, on first use.
var embeddedPreload = sync.OnceValues(func() (*PreloadList, error) {
	return ParsePreload("embedded hsts-preload list", bytes.NewReader(preloadEmbedded))
})

// EmbeddedPreload returns the list posture embeds.
func EmbeddedPreload() (*PreloadList, error) { return embeddedPreload() }

// LoadPreload reads a preload list file (gzip or plain text).
func LoadPreload(path string) (*PreloadList, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hsts-preload: %w", err)
	}
	defer f.Close()
	return ParsePreload(path, f)
}

var preloadDate = regexp.MustCompile(`\b(\d{4})-(\d{2})-(\d{2})\b`)

// ParsePreload parses a preload list: optionally gzip-compressed text
// whose first line is a header ("# …" with the list's date, YYYY-MM-DD),
// then one entry a line, "host<TAB>1" (the entry includes subdomains) or
// "host<TAB>0"; blank lines and further "#" lines are skipped. Hosts are
// lower-case names of letters, digits, '-', '_' and '.', listed once.
// Errors name the input and the line (name:line: …).
func ParsePreload(name string, r io.Reader) (*PreloadList, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	lr := &io.LimitedReader{R: br, N: preloadMaxBytes + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, preloadMaxLine), preloadMaxLine)
	l := &PreloadList{hosts: make(map[string]bool, 100_000)}
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			m := preloadDate.FindStringSubmatch(line)
			if !strings.HasPrefix(line, "#") || m == nil || m[2] < "01" || m[2] > "12" || m[3] < "01" || m[3] > "31" {
				return nil, fmt.Errorf("%s:1: the first line must be a header comment with the list's date (# … YYYY-MM-DD …)", name)
			}
			l.date = m[0]
			continue
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		host, flag, ok := strings.Cut(line, "\t")
		if !ok || (flag != "0" && flag != "1") {
			return nil, fmt.Errorf("%s:%d: want host<TAB>1 or host<TAB>0, got %q", name, n, preloadClip(line))
		}
		if err := preloadHostValid(host); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		if _, dup := l.hosts[host]; dup {
			return nil, fmt.Errorf("%s:%d: %s is listed twice", name, n, host)
		}
		if len(l.hosts) == preloadMaxEntries {
			return nil, fmt.Errorf("%s:%d: more than %d entries", name, n, preloadMaxEntries)
		}
		l.hosts[host] = flag == "1"
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: a line longer than %d bytes", name, n+1, preloadMaxLine)
		}
		return nil, fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("%s:%d: more than %d bytes", name, n, preloadMaxBytes)
	}
	if n == 0 {
		return nil, fmt.Errorf("%s:1: empty: the first line must be a header comment with the list's date", name)
	}
	if len(l.hosts) == 0 {
		return nil, fmt.Errorf("%s:%d: no entries", name, n)
	}
	return l, nil
}

func preloadHostValid(h string) error {
	if h == "" || len(h) > 253 || h[0] == '.' || h[len(h)-1] == '.' || strings.Contains(h, "..") {
		return fmt.Errorf("%q is not a host name", preloadClip(h))
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q is not a lower-case host name (byte 0x%02x)", preloadClip(h), c)
		}
	}
	return nil
}

func preloadClip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// PreloadFact is what a preload list said of a host.
//
// Schema (JSON): {"date": the list's date, "source": "embedded" or
// "operator", "entry"?: the listed name that covers the host (the host,
// or a parent listed with include_subdomains; absent: not covered),
// "include_subdomains"?: the entry's flag}.
type PreloadFact struct {
	Date              string `json:"date"`
	Source            string `json:"source"`
	Entry             string `json:"entry,omitempty"`
	IncludeSubdomains bool   `json:"include_subdomains,omitempty"`
}

// preloadLookup finds the entry that covers host: its own, else the
// nearest parent listed with include_subdomains (a parent listed without
// it covers only itself).
func preloadLookup(l check.List, source, host string) *PreloadFact {
	f := &PreloadFact{Date: l.Date(), Source: source}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if v, ok := l.Lookup(host); ok {
		f.Entry, f.IncludeSubdomains = host, v == "1"
		return f
	}
	name := host
	for range 127 {
		_, parent, ok := strings.Cut(name, ".")
		if !ok || parent == "" {
			break
		}
		if v, ok := l.Lookup(parent); ok && v == "1" {
			f.Entry, f.IncludeSubdomains = parent, true
			return f
		}
		name = parent
	}
	return f
}

// collectPreload looks the host up in the operator's list (env) or the
// embedded one.
func collectPreload(env *check.Env, host string) (*PreloadFact, error) {
	if l, ok := env.List(PreloadListName); ok {
		return preloadLookup(l, "operator", host), nil
	}
	l, err := EmbeddedPreload()
	if err != nil {
		return nil, check.WithClass(check.ErrInternal, fmt.Errorf("hsts-preload: %w", err))
	}
	return preloadLookup(l, "embedded", host), nil
}

// preloadFactFor is the fact Evaluate judges: looked up again in the
// policy's list when reeval was given one (--hsts-preload), else the
// stored fact, else (evidence of version 1, before the lookup was
// recorded) the embedded list.
func preloadFactFor(ev Evidence, pol Policy) (*PreloadFact, string) {
	switch {
	case pol.Preload != nil:
		f := preloadLookup(pol.Preload, "operator", ev.Host)
		note := ""
		if ev.Preload != nil && ev.Preload.Date != f.Date {
			note = fmt.Sprintf(" (re-judged against the list of %s; the scan recorded the list of %s)", f.Date, ev.Preload.Date)
		}
		return f, note
	case ev.Preload != nil:
		return ev.Preload, ""
	}
	if l, err := EmbeddedPreload(); err == nil {
		return preloadLookup(l, "embedded", ev.Host), " (the scan recorded no lookup: looked up in the embedded list)"
	}
	return nil, ""
}

// preloadCovered describes a fact's entry ("" when not covered).
func (f *PreloadFact) covered(host string) string {
	switch {
	case f == nil || f.Entry == "":
		return ""
	case f.Entry == host && f.IncludeSubdomains:
		return fmt.Sprintf("%s is on Chromium's HSTS preload list as of %s, with include_subdomains", host, f.Date)
	case f.Entry == host:
		return fmt.Sprintf("%s is on Chromium's HSTS preload list as of %s, without include_subdomains (its subdomains are not covered)", host, f.Date)
	}
	return fmt.Sprintf("%s is covered by the entry of %s on Chromium's HSTS preload list as of %s (include_subdomains)", host, f.Entry, f.Date)
}

// evaluatePreload judges web.hsts.preload. avail is web.https.available's
// finding.
func evaluatePreload(a check.Asset, ev Evidence, avail check.Finding, pol Policy) check.Finding {
	x := check.Finding{CheckID: HSTSPreload, Rule: preloadRule.Rule}
	fact, note := preloadFactFor(ev, pol)
	if fact == nil {
		x.Outcome, x.Reason, x.Message = check.Unknown, string(check.ErrInternal), "could not tell: the preload list could not be read"
		return x
	}
	if !isApex(a) {
		x.Outcome = check.NA
		x.Message = fmt.Sprintf("%s is not the estate domain %s: preload is judged on the apex", a.Name, a.Domain)
		if c := fact.covered(ev.Host); c != "" {
			x.Message += "; " + c + ": browsers with the list use HTTPS for it without asking"
		}
		x.Message += note
		return x
	}
	if c := fact.covered(ev.Host); c != "" {
		x.Outcome, x.Message = check.Pass, c+note
		if avail.Outcome != check.Pass {
			x.Message += "; but " + avail.Message
		}
		return x
	}
	notListed := fmt.Sprintf("%s is not on Chromium's HSTS preload list as of %s", ev.Host, fact.Date) + note
	switch avail.Outcome {
	case check.Unknown:
		x.Outcome, x.Reason = check.Unknown, avail.Reason
		x.Message = notListed + "; whether it is preload-ready could not be told: " + strings.TrimPrefix(avail.Message, "could not tell: ")
		return x
	case check.Fail, check.NA:
		x.Outcome, x.Message = check.NA, notListed+", and serves no HTTPS"
		return x
	}
	asked, issues, unknown := preloadReadiness(ev)
	switch {
	case unknown != "":
		x.Outcome, x.Reason = check.Unknown, string(check.ErrOther)
		x.Message = notListed + "; whether it is preload-ready could not be told: " + unknown
	case !asked:
		x.Outcome = check.NA
		x.Message = notListed + ", and its HSTS header does not ask for preload (record only)"
		if len(issues) > 0 {
			x.Message += "; preload would also need: " + strings.Join(issues, "; ")
		}
	case len(issues) == 0:
		x.Outcome = check.Pass
		x.Message = notListed + ", but it is preload-ready (hstspreload's requirements are met): submit it at https://hstspreload.org/"
	default:
		x.Outcome = check.Warn
		x.Message = notListed + "; its HSTS header asks for preload, but a submission would be refused: " + strings.Join(issues, "; ")
	}
	return x
}

// isApex reports whether the asset is its estate domain's own host.
func isApex(a check.Asset) bool {
	return a.Domain != "" && strings.EqualFold(strings.TrimSuffix(a.Name, "."), strings.TrimSuffix(a.Domain, "."))
}

// preloadReadiness applies hstspreload's requirements (header.go,
// redirects.go) to the recorded chains: asked says the header has the
// preload directive; issues are the unmet requirements; unknown is set
// when the HTTP chain could not be fetched (so redirects cannot be told).
func preloadReadiness(ev Evidence) (asked bool, issues []string, unknown string) {
	h := answered(&ev.HTTPS)
	sts := h.Headers["Strict-Transport-Security"]
	switch {
	case sts.Count == 0:
		issues = append(issues, fmt.Sprintf("%s sends no Strict-Transport-Security header", h.URL))
	case sts.Count > 1:
		issues = append(issues, fmt.Sprintf("%s sends %d Strict-Transport-Security headers (one is required)", h.URL, sts.Count))
	default:
		p, err := ParseHSTS(sts.Values[0])
		switch {
		case err != nil:
			issues = append(issues, fmt.Sprintf("its Strict-Transport-Security header does not parse: %v", err))
		default:
			asked = p.Preload
			issues = append(issues, preloadHeaderIssues(p)...)
		}
	}
	// HTTP: closed is acceptable (hstspreload only warns,
	// redirects.http.does_not_exist); else the first answer redirects to
	// https on the same host, whose answer carries a preloadable header.
	if !ev.HTTP.Refused {
		hh := answered(&ev.HTTP)
		switch {
		case hh == nil:
			msg, _ := failure(&ev.HTTP)
			return asked, issues, msg
		case hh.Next == "":
			issues = append(issues, fmt.Sprintf("http://%s/ does not redirect (status %d)", ev.Host, hh.Status))
		default:
			if s, host := hostOfURL(hh.Next); s != "https" || host != ev.Host {
				issues = append(issues, fmt.Sprintf("http://%s/ redirects first to %s, not to https on the same host", ev.Host, hh.Next))
			} else if len(ev.HTTP.Hops) > 1 && !ev.HTTP.Hops[1].Failed() {
				h1 := &ev.HTTP.Hops[1]
				if s := h1.Headers["Strict-Transport-Security"]; s.Count == 1 {
					if p, err := ParseHSTS(s.Values[0]); err != nil || len(preloadHeaderIssues(p)) > 0 {
						issues = append(issues, fmt.Sprintf("the first redirect's target, %s, does not send a preloadable HSTS header", h1.URL))
					}
				} else {
					issues = append(issues, fmt.Sprintf("the first redirect's target, %s, does not send one HSTS header", h1.URL))
				}
			}
		}
	}
	for _, c := range []*Chain{&ev.HTTP, &ev.HTTPS} {
		if c.Refused {
			continue
		}
		r := chainRedirects(c)
		if r.count > preloadMaxRedirects {
			issues = append(issues, fmt.Sprintf("%s takes more than %d redirects", c.URL, preloadMaxRedirects))
		}
		if r.insecure != "" {
			issues = append(issues, fmt.Sprintf("%s redirects to http: %s", c.URL, r.insecure))
		}
	}
	return asked, issues, ""
}

// preloadHeaderIssues are hstspreload's header requirements a parsed
// header misses.
func preloadHeaderIssues(p HSTS) []string {
	var out []string
	if p.MaxAge < preloadMinMaxAge {
		out = append(out, fmt.Sprintf("max-age %d is below %d", p.MaxAge, preloadMinMaxAge))
	}
	if !p.IncludeSubDomains {
		out = append(out, "no includeSubDomains")
	}
	if !p.Preload {
		out = append(out, "no preload directive")
	}
	return out
}
