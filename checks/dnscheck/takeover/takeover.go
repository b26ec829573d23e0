// Package takeover knows the hosting services where a name left pointing at
// an unclaimed resource can be taken over (a "dangling" CNAME), from the
// can-i-take-over-xyz list (EdOverflow and contributors, CC BY 4.0: see
// NOTICE and LICENSE), embedded: their CNAME suffixes, and the page each
// shows for a resource nobody has claimed.
package takeover

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

//go:embed fingerprints.json
var data []byte

// Service is one hosting service of the list.
type Service struct {
	Name string `json:"service"`
	// Suffixes are the CNAME suffixes of the service (domain names only:
	// the list's IP addresses and URLs are left out).
	Suffixes []string `json:"cname"`
	// Fingerprint is what the service shows for an unclaimed resource:
	// "NXDOMAIN" (the name does not resolve), "HTTP_STATUS=<code>", text
	// on the page ("" when the list gives none).
	Fingerprint string `json:"fingerprint"`
	NXDomain    bool   `json:"nxdomain"`
	// Status is the list's verdict: "Vulnerable", "Edge case" or "Not
	// vulnerable"; only the first two are takeover-prone here.
	Status     string `json:"status"`
	Vulnerable bool   `json:"vulnerable"`
	Discussion string `json:"discussion"`
}

// Prone reports whether the list counts the service as open to takeover.
func (s Service) Prone() bool { return s.Vulnerable || s.Status == "Edge case" }

// extra are suffixes the check catalogue names (docs/checks.md §1.5) that
// the list files under a service without them, by service name.
var extra = map[string][]string{
	"Microsoft Azure": {"trafficmanager.net"},
	"Github":          {"github.io"},
	"Heroku":          {"herokuapp.com"},
}

var (
	once     sync.Once
	services []Service
	loadErr  error
)

func load() {
	var all []Service
	if loadErr = json.Unmarshal(data, &all); loadErr != nil {
		loadErr = fmt.Errorf("takeover: embedded list: %w", loadErr)
		return
	}
	for _, s := range all {
		var sfx []string
		for _, c := range append(s.Suffixes, extra[s.Name]...) {
			c = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(c), "."))
			if _, err := netip.ParseAddr(c); err == nil || strings.ContainsAny(c, ":/") || !strings.Contains(c, ".") {
				continue
			}
			if _, ok := dns.IsDomainName(c); ok && !contains(sfx, c) {
				sfx = append(sfx, c)
			}
		}
		s.Suffixes = sfx
		services = append(services, s)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Services returns the list (parsed once).
func Services() ([]Service, error) {
	once.Do(load)
	return services, loadErr
}

// Match finds the takeover-prone service whose CNAME suffix host is under
// (the longest suffix wins), and the suffix. S3's regional endpoints
// (bucket.s3-website-eu-west-1.amazonaws.com, bucket.s3.eu-west-2.…) match
// AWS/S3 as checks.md's *.s3*.amazonaws.com does.
func Match(host string) (Service, string, bool) {
	all, err := Services()
	if err != nil {
		return Service{}, "", false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	var best Service
	bestSfx := ""
	for _, s := range all {
		if !s.Prone() {
			continue
		}
		for _, sfx := range s.Suffixes {
			if (host == sfx || strings.HasSuffix(host, "."+sfx)) && len(sfx) > len(bestSfx) {
				best, bestSfx = s, sfx
			}
		}
	}
	if bestSfx == "" && strings.HasSuffix(host, ".amazonaws.com") {
		labels := strings.Split(strings.TrimSuffix(host, ".amazonaws.com"), ".")
		for i, l := range labels {
			if i > 0 && strings.HasPrefix(l, "s3") {
				for _, s := range all {
					if s.Name == "AWS/S3" && s.Prone() {
						return s, "s3*.amazonaws.com", true
					}
				}
			}
		}
	}
	return best, bestSfx, bestSfx != ""
}

// HTTPStatus returns the HTTP status the fingerprint names ("HTTP_STATUS=301").
func (s Service) HTTPStatus() (int, bool) {
	v, ok := strings.CutPrefix(s.Fingerprint, "HTTP_STATUS=")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 100 && n <= 599
}

// PageFingerprint reports whether the fingerprint is text on the service's
// page (not a DNS signal, not a status, not empty).
func (s Service) PageFingerprint() bool {
	_, isStatus := s.HTTPStatus()
	return s.Fingerprint != "" && s.Fingerprint != "NXDOMAIN" && !isStatus
}

// Found reports whether the page body shows the service's fingerprint.
// The list writes alternatives as "a` `b" or "a&#124;b" (a Markdown table's
// escaped |), escapes regular-expression dots ("\.") and uses ".*" for
// "anything": each alternative's pieces between ".*" must appear in order.
func (s Service) Found(body string) bool {
	if !s.PageFingerprint() {
		return false
	}
	fp := strings.ReplaceAll(s.Fingerprint, "&#124;", "` `")
	for _, alt := range strings.Split(fp, "` `") {
		alt = strings.ReplaceAll(alt, `\`, "")
		if alt == "" {
			continue
		}
		rest, ok := body, true
		for _, piece := range strings.Split(alt, ".*") {
			i := strings.Index(rest, piece)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(piece):]
		}
		if ok {
			return true
		}
	}
	return false
}
