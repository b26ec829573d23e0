package webcheck

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

// SoftwareOutdated is the id of the end-of-life fingerprint (docs/checks.md
// §1.3), judged by web.https on the final page of the https:// chain.
const SoftwareOutdated = "web.software.outdated"

// eolTableDate is the date the end-of-life table was compiled: a branch
// it lists as supported may have ended since.
const eolTableDate = "2025-07-01"

// eolBranch is one release branch and the day its vendor's security
// support ended ("" while supported at eolTableDate).
type eolBranch struct {
	branch string // "7.4", "2.2", "8" (a major version for Drupal and Joomla)
	eol    string // YYYY-MM-DD
}

// eolProduct is one product's branches, oldest first, and where they come
// from. A version older than the first branch ended no later than it.
type eolProduct struct {
	// backported: Linux distributions package the product and backport
	// security fixes under the upstream version number (Debian's nginx
	// 1.22, RHEL 8's PHP 7.4), so a header naming an ended upstream branch
	// does not prove the server unpatched: it warns, never fails.
	backported bool
	name       string
	source     string
	branches   []eolBranch
}

// eolTable is the embedded end-of-life table, dated eolTableDate.
var eolTable = map[string]eolProduct{
	"php": {backported: true, name: "PHP", source: "php.net/eol.php and php.net/supported-versions.php", branches: []eolBranch{
		{"5.2", "2011-01-06"}, {"5.3", "2014-08-14"}, {"5.4", "2015-09-03"}, {"5.5", "2016-07-21"}, {"5.6", "2018-12-31"},
		{"7.0", "2019-01-10"}, {"7.1", "2019-12-01"}, {"7.2", "2020-11-30"}, {"7.3", "2021-12-06"}, {"7.4", "2022-11-28"},
		{"8.0", "2023-11-26"}, {"8.1", "2025-12-31"}, {"8.2", "2026-12-31"}, {"8.3", "2027-12-31"}, {"8.4", "2028-12-31"}}},
	"apache": {backported: true, name: "Apache httpd", source: "httpd.apache.org: 1.3, 2.0 and 2.2 end-of-life announcements with their final releases", branches: []eolBranch{
		{"1.3", "2010-02-03"}, {"2.0", "2013-07-10"}, {"2.2", "2017-07-11"}, {"2.4", ""}}},
	"nginx": {backported: true, name: "nginx", source: "nginx.org/en/download.html: only the latest stable and mainline branches are supported; a branch ends when the next of its kind is released", branches: []eolBranch{
		{"1.22", "2023-04-11"}, {"1.23", "2023-05-23"}, {"1.24", "2024-04-23"}, {"1.25", "2024-05-29"}, {"1.26", "2025-04-23"},
		{"1.27", "2025-06-24"}, {"1.28", ""}, {"1.29", ""}}},
	"iis": {name: "Microsoft IIS", source: "Microsoft lifecycle of the Windows Server release that ships it (IIS 10.0 ships with several: not judged)", branches: []eolBranch{
		{"5.0", "2010-07-13"}, {"6.0", "2015-07-14"}, {"7.0", "2020-01-14"}, {"7.5", "2020-01-14"}, {"8.0", "2023-10-10"}, {"8.5", "2023-10-10"}, {"10.0", ""}}},
	"aspnet": {name: "ASP.NET (.NET Framework)", source: "Microsoft lifecycle of .NET Framework 1.0 and 1.1 (1.1 SP1 last, with Windows Server 2003; the 2.0.50727 and 4.0.30319 runtimes are shared by supported releases: not judged)", branches: []eolBranch{
		{"1.0", "2009-07-14"}, {"1.1", "2015-07-14"}}},
	"wordpress": {name: "WordPress", source: "make.wordpress.org/security: security updates for 4.1 to 4.6 ended on 2022-12-01; later branches still get backports", branches: []eolBranch{
		{"4.6", "2022-12-01"}, {"4.7", ""}}},
	"drupal": {name: "Drupal", source: "drupal.org/about/core/policies/core-release-cycles/schedule", branches: []eolBranch{
		{"6", "2016-02-24"}, {"7", "2025-01-05"}, {"8", "2021-11-02"}, {"9", "2023-11-01"}, {"10", ""}, {"11", ""}}},
	"joomla": {name: "Joomla!", source: "joomla.org end-of-life announcements for 2.5, 3 and 4", branches: []eolBranch{
		{"2", "2014-12-31"}, {"3", "2023-08-17"}, {"4", "2025-10-17"}, {"5", ""}}},
}

// softwareFact is one product and version a page names.
type softwareFact struct {
	product string // eolTable key
	version string // as sent, digits and dots
	where   string // "Server", "X-Powered-By", "meta generator" …
}

// softwareVersion reads the leading dotted version of s ("8.1.2-1ubuntu"
// → "8.1.2"); "" without one.
func softwareVersion(s string) string {
	i, dots := 0, 0
	for i < len(s) && i < 32 {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && i > 0 && s[i-1] != '.' && dots < 4:
			dots++
		default:
			return strings.TrimSuffix(s[:i], ".")
		}
		i++
	}
	return strings.TrimSuffix(s[:i], ".")
}

// softwareProducts maps a product token (lower case) to a table key.
var softwareProducts = map[string]string{
	"php": "php", "apache": "apache", "nginx": "nginx", "microsoft-iis": "iis",
}

// softwareFromHeaders reads products with versions from Server and
// X-Powered-By (product/version tokens outside comments) and
// X-AspNet-Version.
func softwareFromHeaders(h webfetch.Headers) []softwareFact {
	var out []softwareFact
	for _, name := range []string{"Server", "X-Powered-By"} {
		for _, v := range h.Values(name) {
			depth := 0
			var tok strings.Builder
			flush := func() {
				t := tok.String()
				tok.Reset()
				p, ver, ok := strings.Cut(t, "/")
				if !ok {
					return
				}
				key, known := softwareProducts[strings.ToLower(p)]
				if ver = softwareVersion(ver); known && ver != "" && len(out) < 8 {
					out = append(out, softwareFact{key, ver, name})
				}
			}
			for i := 0; i < len(v) && i < 1024; i++ {
				switch c := v[i]; {
				case c == '(':
					flush()
					depth++
				case c == ')':
					if depth > 0 {
						depth--
					}
				case depth > 0:
				case c == ' ' || c == '\t' || c == ',':
					flush()
				default:
					tok.WriteByte(c)
				}
			}
			flush()
		}
	}
	if v := softwareVersion(strings.TrimSpace(h.Get("X-Aspnet-Version"))); v != "" {
		out = append(out, softwareFact{"aspnet", v, "X-AspNet-Version"})
	}
	return out
}

// Bounds of the generator scan.
const (
	softwareMaxBody  = 256 << 10 // bytes of the body searched
	softwareMaxMetas = 64        // meta elements looked at
	softwareMaxTag   = 2 << 10   // bytes of one meta element
)

// htmlMetas returns the attributes of every <meta> element in the start
// of body (softwareMaxBody bytes, softwareMaxMetas elements): HTML
// attribute names are case-insensitive, values in double, single or no
// quotes.
func htmlMetas(body []byte) []map[string]string {
	if len(body) > softwareMaxBody {
		body = body[:softwareMaxBody]
	}
	// ASCII lower case, byte for byte (bytes.ToLower would change the
	// length of invalid UTF-8, and the offsets index body).
	lower := make([]byte, len(body))
	for i, c := range body {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	var out []map[string]string
	for off := 0; len(out) < softwareMaxMetas; {
		i := bytes.Index(lower[off:], []byte("<meta"))
		if i < 0 {
			break
		}
		start := off + i + len("<meta")
		if start < len(lower) && !strings.ContainsRune(" \t\n\r\f/>", rune(lower[start])) {
			off = start // <metadata>, not <meta>
			continue
		}
		end := bytes.IndexByte(lower[start:min(len(lower), start+softwareMaxTag)], '>')
		if end < 0 {
			end = min(len(lower), start+softwareMaxTag) - start
		}
		out = append(out, softwareAttrs(string(body[start:start+end])))
		off = start + end
	}
	return out
}

// softwareGenerators returns the content of every <meta name="generator">
// in the start of body.
func softwareGenerators(body []byte) []string {
	var out []string
	for _, attrs := range htmlMetas(body) {
		if strings.EqualFold(attrs["name"], "generator") && attrs["content"] != "" {
			out = append(out, attrs["content"])
		}
	}
	return out
}

// softwareAttrs parses the attributes of a start tag's inside (bounded by
// the caller): names lower-cased, the first of a name kept.
func softwareAttrs(s string) map[string]string {
	out := map[string]string{}
	white := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '/' }
	for i := 0; i < len(s); {
		for i < len(s) && white(s[i]) {
			i++
		}
		j := i
		for j < len(s) && !white(s[j]) && s[j] != '=' {
			j++
		}
		if j == i {
			i++
			continue
		}
		name := strings.ToLower(s[i:j])
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		value := ""
		if j < len(s) && s[j] == '=' {
			j++
			for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
				j++
			}
			switch {
			case j < len(s) && (s[j] == '"' || s[j] == '\''):
				q := s[j]
				k := strings.IndexByte(s[j+1:], q)
				if k < 0 {
					value, j = s[j+1:], len(s)
				} else {
					value, j = s[j+1:j+1+k], j+2+k
				}
			default:
				k := j
				for k < len(s) && !white(s[k]) {
					k++
				}
				value, j = s[j:k], k
			}
		}
		if _, dup := out[name]; !dup {
			out[name] = value
		}
		i = j
	}
	return out
}

// softwareFromGenerator reads a CMS and version from a generator value:
// "WordPress 6.4.2", "Drupal 7 (https://www.drupal.org)", "Joomla! 3.9 -
// Open Source Content Management".
func softwareFromGenerator(g string) (softwareFact, bool) {
	for _, p := range []struct{ prefix, key string }{{"wordpress", "wordpress"}, {"drupal", "drupal"}, {"joomla!", "joomla"}, {"joomla", "joomla"}} {
		if len(g) > len(p.prefix) && strings.EqualFold(g[:len(p.prefix)], p.prefix) {
			if v := softwareVersion(strings.TrimLeft(g[len(p.prefix):], " ")); v != "" {
				return softwareFact{p.key, v, "meta generator"}, true
			}
			return softwareFact{}, false
		}
	}
	return softwareFact{}, false
}

// eolJudge finds a version's branch in the table: its end of life ("" when
// supported as of the table), and whether the table can tell. A version
// with fewer parts than the product's branches (Apache/2) cannot be
// placed; one older than every branch ended no later than the first; one
// newer than every branch is supported when the last branch was at the
// table's date; one between branches is not judged.
func eolJudge(f softwareFact) (branch, eol string, known bool) {
	p := eolTable[f.product]
	if len(p.branches) == 0 {
		return "", "", false
	}
	parts := strings.Split(f.version, ".")
	if len(parts) < len(strings.Split(p.branches[0].branch, ".")) {
		return "", "", false
	}
	num := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 1 << 30
		}
		return n
	}
	// cmp compares the version with a branch on the branch's length.
	cmp := func(b string) int {
		for i, x := range strings.Split(b, ".") {
			if d := num(parts[i]) - num(x); d != 0 {
				return d
			}
		}
		return 0
	}
	for i, b := range p.branches {
		switch c := cmp(b.branch); {
		case c == 0:
			return b.branch, b.eol, true
		case c < 0 && i == 0:
			return "older than " + b.branch, b.eol, b.eol != ""
		case c < 0:
			return "", "", false
		}
	}
	last := p.branches[len(p.branches)-1]
	if last.eol == "" || last.eol > eolTableDate {
		return "newer than " + last.branch, "", true
	}
	return "", "", false
}

// evaluateSoftware judges web.software.outdated on the final page.
func evaluateSoftware(h *webfetch.Hop, at time.Time) check.Finding {
	x := check.Finding{CheckID: SoftwareOutdated, Rule: "software-supported"}
	facts := softwareFromHeaders(h.Headers)
	if h.Body != nil {
		for _, g := range softwareGenerators(h.Body.Data) {
			if f, ok := softwareFromGenerator(g); ok && len(facts) < 16 {
				facts = append(facts, f)
			}
		}
	}
	day := at.UTC().Format("2006-01-02")
	if at.IsZero() {
		day = eolTableDate
	}
	var ended, current, unjudged []string
	vendorEnded := false // an ended branch no distribution backports to
	for _, f := range facts {
		p := eolTable[f.product]
		seen := fmt.Sprintf("%s %s (%s)", p.name, hdrClip(f.version), f.where)
		branch, eol, known := eolJudge(f)
		switch {
		case !known:
			unjudged = append(unjudged, seen)
		case eol != "" && eol <= day:
			note := ""
			if p.backported {
				note = "; distributions backport fixes to their packages of it under the upstream version, so check whether this is one and its vendor still supports it"
			} else {
				vendorEnded = true
			}
			ended = append(ended, fmt.Sprintf("%s: upstream branch %s reached end of life on %s (source: %s%s)", seen, branch, eol, p.source, note))
		case eol != "":
			current = append(current, fmt.Sprintf("%s: supported until %s", seen, eol))
		default:
			current = append(current, fmt.Sprintf("%s: branch %s supported", seen, branch))
		}
	}
	where := hdrWhere(h)
	switch {
	case vendorEnded:
		x.Outcome = check.Fail
		x.Message = fmt.Sprintf("%s runs end-of-life software: %s (table of %s)", where, strings.Join(ended, "; "), eolTableDate)
	case len(ended) > 0:
		x.Outcome = check.Warn
		x.Message = fmt.Sprintf("%s names an end-of-life upstream branch: %s (table of %s)", where, strings.Join(ended, "; "), eolTableDate)
	case len(current) > 0:
		x.Outcome = check.Pass
		x.Message = fmt.Sprintf("%s names %s (end-of-life table of %s)", where, strings.Join(current, "; "), eolTableDate)
	default:
		x.Outcome = check.NA
		x.Message = fmt.Sprintf("%s names no software version the end-of-life table (of %s) can judge", where, eolTableDate)
		if len(unjudged) > 0 {
			x.Message += ": " + strings.Join(unjudged, "; ")
		}
	}
	return x
}
