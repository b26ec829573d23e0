package webcheck

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webfetch"
)

func TestParseSetCookieReadsAsBrowsersDo(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		in   string
		want Cookie
		err  bool
	}{
		{in: "sid=abc; Secure; HttpOnly; SameSite=Lax; Path=/", want: Cookie{Name: "sid", Value: "abc", Secure: true, HTTPOnly: true, SameSite: SameSiteLax, Path: "/", HasPath: true}},
		// Attribute names are case-insensitive; values trimmed.
		{in: " a = b ;secure ; HTTPONLY;samesite = STRICT", want: Cookie{Name: "a", Value: "b", Secure: true, HTTPOnly: true, SameSite: SameSiteStrict}},
		// The last attribute of a name wins, an unknown SameSite is Default.
		{in: "a=b; SameSite=None; SameSite=Lax", want: Cookie{Name: "a", Value: "b", SameSite: SameSiteLax}},
		{in: "a=b; SameSite=Lax; SameSite=bogus", want: Cookie{Name: "a", Value: "b", SameSite: SameSiteDefault}},
		{in: "a=b; Max-Age=10; Max-Age=-1", want: Cookie{Name: "a", Value: "b", MaxAge: i64(-1)}},
		// An invalid Max-Age is ignored; the earlier valid one stays.
		{in: "a=b; Max-Age=10; Max-Age=1x", want: Cookie{Name: "a", Value: "b", MaxAge: i64(10)}},
		{in: "a=b; Max-Age=+5", want: Cookie{Name: "a", Value: "b"}},
		{in: "a=b; Domain=.Example.NHS.uk", want: Cookie{Name: "a", Value: "b", Domain: "example.nhs.uk"}},
		// No "=": an empty name and the whole pair as the value.
		{in: "justvalue; Secure", want: Cookie{Value: "justvalue", Secure: true}},
		{in: "a=b=c", want: Cookie{Name: "a", Value: "b=c"}},
		{in: "a=b; " + "Secure=" + strings.Repeat("x", 2000), want: Cookie{Name: "a", Value: "b"}},
		{in: "=; Secure", err: true},
		{in: "a=b\x01; Secure", err: true},
		{in: "a=" + strings.Repeat("v", 4096), err: true},
	} {
		got, err := ParseSetCookie(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParseSetCookie(%q) error %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if tc.err {
			continue
		}
		if got.Name != tc.want.Name || got.Value != tc.want.Value || got.Secure != tc.want.Secure || got.HTTPOnly != tc.want.HTTPOnly ||
			got.SameSite != tc.want.SameSite || got.Domain != tc.want.Domain || got.Path != tc.want.Path || got.HasPath != tc.want.HasPath ||
			(got.MaxAge == nil) != (tc.want.MaxAge == nil) || (got.MaxAge != nil && *got.MaxAge != *tc.want.MaxAge) {
			t.Errorf("ParseSetCookie(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestCookieDatesFollowTheCookieDateAlgorithm(t *testing.T) {
	d := func(y int, m time.Month, day, h, min, s int) time.Time {
		return time.Date(y, m, day, h, min, s, 0, time.UTC)
	}
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"Wed, 09 Jun 2021 10:18:14 GMT", d(2021, 6, 9, 10, 18, 14), true},
		{"Wednesday, 09-Jun-21 10:18:14 GMT", d(2021, 6, 9, 10, 18, 14), true},
		{"Wed Jun  9 10:18:14 2021", d(2021, 6, 9, 10, 18, 14), true},
		{"Thu, 01 Jan 1970 00:00:00 GMT", d(1970, 1, 1, 0, 0, 0), true},
		{"01 jan 99 1:2:3", d(1999, 1, 1, 1, 2, 3), true},
		{"Sat, 30 Feb 2030 00:00:00 GMT", time.Time{}, false},
		{"Sat, 01 Feb 1600 00:00:00 GMT", time.Time{}, false},
		{"Sat, 01 Feb 2030 24:00:00 GMT", time.Time{}, false},
		{"tomorrow", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, ok := parseCookieDate(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseCookieDate(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCookieAuthNames(t *testing.T) {
	for name, want := range map[string]bool{
		"JSESSIONID": true, "PHPSESSID": true, "ASP.NET_SessionId": true, "connect.sid": true, "laravel_session": true,
		".AspNetCore.Cookies": true, "__Host-sid": true, "auth_token": true, "jwt": true, "app_sid": true,
		"SESS3f8a9c": true, "SSESS3f8a9c": true, "ci_session": true, "MoodleSession": true, "sessid": true, "id_token": true,
		"assessment_pref": false, "XSRF-TOKEN": false, "csrftoken": false, ".AspNetCore.Antiforgery.x1": false, "_ga": false, "inside": false, "theme": false,
	} {
		if got := cookieAuthName(name); got != want {
			t.Errorf("cookieAuthName(%q) = %v, want %v", name, got, want)
		}
	}
}

// cookieEvidence is a host whose http:// chain answers a redirect with
// httpCookies and whose https:// page sets httpsCookies.
func cookieEvidence(httpCookies, httpsCookies []string) Evidence {
	hop := func(url string, status int, cookies []string) webfetch.Hop {
		h := http.Header{}
		for _, c := range cookies {
			h.Add("Set-Cookie", c)
		}
		return webfetch.Hop{URL: url, TLS: strings.HasPrefix(url, "https:"), Status: status, Headers: webfetch.BoundHeaders(h)}
	}
	page := hop("https://www.example.nhs.uk/", 200, httpsCookies)
	return Evidence{Host: "www.example.nhs.uk",
		HTTP: Chain{Result: webfetch.Result{End: webfetch.EndFinal,
			Hops: []webfetch.Hop{hop("http://www.example.nhs.uk/", 301, httpCookies), page}}},
		HTTPS: Chain{Result: webfetch.Result{End: webfetch.EndFinal, Hops: []webfetch.Hop{page}}}}
}

func TestCookieVerdicts(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		http, https   []string
		want          check.Outcome
		wantInMessage string
	}{
		{"no cookies", nil, nil, check.Pass, "no cookie"},
		{"good session cookie, judged once", nil, []string{"__Host-sid=1; Secure; HttpOnly; SameSite=Lax; Path=/"}, check.Pass, "1 cookie set"},
		{"persistent non-auth cookie needs only Secure", nil, []string{"theme=dark; Secure; Max-Age=86400"}, check.Pass, ""},
		{"cookie without Secure", nil, []string{"theme=dark; Max-Age=86400"}, check.Fail, "no Secure"},
		{"session cookie without HttpOnly", nil, []string{"JSESSIONID=1; Secure; SameSite=Strict"}, check.Fail, "HttpOnly"},
		{"persistent auth cookie without HttpOnly", nil, []string{"auth=1; Secure; SameSite=Lax; Max-Age=86400"}, check.Fail, "HttpOnly"},
		{"session cookie SameSite=None", nil, []string{"sid=1; Secure; HttpOnly; SameSite=None"}, check.Fail, "SameSite=None"},
		{"session cookie without SameSite", nil, []string{"sid=1; Secure; HttpOnly"}, check.Warn, "without SameSite"},
		{"csrf token may be read by scripts", nil, []string{"XSRF-TOKEN=1; Secure; SameSite=Lax"}, check.Pass, ""},
		{"cookie on the http redirect", []string{"tracking=1; Max-Age=3600"}, nil, check.Fail, "plain HTTP"},
		{"secure cookie set over http is ignored", []string{"tracking=1; Secure; Max-Age=3600"}, nil, check.Pass, "ignored"},
		{"deletion by max-age is not judged", nil, []string{"sid=; Max-Age=0"}, check.Pass, "deletion"},
		{"deletion by expires is not judged", nil, []string{"sid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"}, check.Pass, "deletion"},
		{"future expires is persistent", nil, []string{"theme=1; Secure; Expires=Fri, 01 Jan 2100 00:00:00 GMT"}, check.Pass, ""},
		{"max-age beats a past expires", nil, []string{"theme=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=100"}, check.Fail, "no Secure"},
		{"__Secure- prefix without Secure is rejected", nil, []string{"__Secure-sid=1; HttpOnly"}, check.Pass, "ignored"},
		{"__Host- prefix with Domain is rejected", nil, []string{"__Host-sid=1; Secure; HttpOnly; Path=/; Domain=example.nhs.uk"}, check.Pass, "ignored"},
		{"SameSite=None without Secure is rejected", nil, []string{"sid=1; HttpOnly; SameSite=None"}, check.Pass, "ignored"},
		{"control characters are rejected", nil, []string{"sid=1\x7f"}, check.Pass, "ignored"},
		{"worst of several", nil, []string{"a=1; Secure; HttpOnly", "b=1; Secure; Max-Age=5; HttpOnly; SameSite=Lax", "c=1; Max-Age=5"}, check.Fail, `"c"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := evaluateCookies(cookieEvidence(tc.http, tc.https), at)
			if got.Outcome != tc.want || !strings.Contains(got.Message, tc.wantInMessage) {
				t.Errorf("%s = %s (%s), want %s with %q", Cookies, got.Outcome, got.Message, tc.want, tc.wantInMessage)
			}
		})
	}
}

func TestTooManyCookiesIsUnknownUnlessOneFails(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var good []string
	for range webfetch.MaxCookies + 1 {
		good = append(good, "theme=1; Secure; Max-Age=5")
	}
	if got := evaluateCookies(cookieEvidence(nil, good), at); got.Outcome != check.Unknown || got.Reason != string(check.ErrTooLarge) {
		t.Errorf("clipped good cookies: %s (%s) %s", got.Outcome, got.Reason, got.Message)
	}
	bad := append([]string{"theme=1"}, good...)
	if got := evaluateCookies(cookieEvidence(nil, bad), at); got.Outcome != check.Fail {
		t.Errorf("clipped cookies with a bad one: %s %s", got.Outcome, got.Message)
	}
}
