package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/nhsx/posture/reports/dashboard"
)

// behind is what Protect guards in these tests: it answers 200 "inside".
var behind = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("inside")) })

func passwordFile(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func hash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestProtectRefusesUnsafeSettings: beyond loopback, some authentication is
// required; the two kinds together, or an unusable password file, are
// refused too.
func TestProtectRefusesUnsafeSettings(t *testing.T) {
	good := passwordFile(t, "alice:"+hash(t, "s3cret"))
	cases := []struct {
		name string
		a    dashboard.Auth
		ok   bool
	}{
		{"loopback v4 without auth", dashboard.Auth{Listen: "127.0.0.1:8080"}, true},
		{"loopback v6 without auth", dashboard.Auth{Listen: "[::1]:8080"}, true},
		{"localhost without auth", dashboard.Auth{Listen: "localhost:8080"}, true},
		{"every interface without auth", dashboard.Auth{Listen: ":8080"}, false},
		{"any address without auth", dashboard.Auth{Listen: "0.0.0.0:8080"}, false},
		{"public address without auth", dashboard.Auth{Listen: "192.0.2.10:8080"}, false},
		{"a name without auth", dashboard.Auth{Listen: "posture.example.nhs.uk:8080"}, false},
		{"not an address", dashboard.Auth{Listen: "8080"}, false},
		{"every interface with trusted header", dashboard.Auth{Listen: ":8080", TrustedHeader: "X-Forwarded-User"}, true},
		{"every interface with password file", dashboard.Auth{Listen: ":8080", BasicAuthFile: good}, true},
		{"both", dashboard.Auth{Listen: ":8080", TrustedHeader: "X-Forwarded-User", BasicAuthFile: good}, false},
		{"bad header name", dashboard.Auth{Listen: ":8080", TrustedHeader: "X-User: a"}, false},
		{"missing password file", dashboard.Auth{Listen: ":8080", BasicAuthFile: filepath.Join(t.TempDir(), "none")}, false},
		{"plain-text password", dashboard.Auth{Listen: ":8080", BasicAuthFile: passwordFile(t, "alice:s3cret")}, false},
		{"no user in file", dashboard.Auth{Listen: ":8080", BasicAuthFile: passwordFile(t, "# nobody")}, false},
		{"line without colon", dashboard.Auth{Listen: ":8080", BasicAuthFile: passwordFile(t, "alice")}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := dashboard.Protect(behind, c.a)
			if c.ok != (err == nil) {
				t.Fatalf("Protect(%+v): err %v, want ok %v", c.a, err, c.ok)
			}
			if c.ok && h == nil {
				t.Fatal("no handler")
			}
		})
	}
}

// TestLoopbackWithoutAuthServesAnyone: on loopback, nothing is asked.
func TestLoopbackWithoutAuthServesAnyone(t *testing.T) {
	h, err := dashboard.Protect(behind, dashboard.Auth{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "inside" {
		t.Errorf("status %d %q", rec.Code, rec.Body.String())
	}
}

// TestTrustedHeaderIsRequired: without the proxy's header (or with it
// empty), 401; with it, the page.
func TestTrustedHeaderIsRequired(t *testing.T) {
	h, err := dashboard.Protect(behind, dashboard.Auth{Listen: ":8080", TrustedHeader: "x-forwarded-user"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value string
		set   bool
		want  int
	}{
		{"", false, http.StatusUnauthorized},
		{"", true, http.StatusUnauthorized},
		{"   ", true, http.StatusUnauthorized},
		{"alice@example.nhs.uk", true, http.StatusOK},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if c.set {
			r.Header.Set("X-Forwarded-User", c.value)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != c.want {
			t.Errorf("header %q (set %v): status %d, want %d", c.value, c.set, rec.Code, c.want)
		}
		if rec.Code != http.StatusOK && strings.Contains(rec.Body.String(), "inside") {
			t.Errorf("header %q: refused but served the page", c.value)
		}
	}
}

// TestBasicAuthChecksUserAndPassword against an htpasswd-style file with
// bcrypt hashes ($2a$ from Go, $2y$ as htpasswd -B writes them).
func TestBasicAuthChecksUserAndPassword(t *testing.T) {
	bob := hash(t, "hunter2")
	bob2y := "$2y$" + strings.TrimPrefix(bob, "$2a$")
	file := passwordFile(t, "# posture dashboard users", "", "alice:"+hash(t, "s3cret"), "bob:"+bob2y)
	h, err := dashboard.Protect(behind, dashboard.Auth{Listen: "0.0.0.0:8080", BasicAuthFile: file})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		user, pass string
		basic      bool
		want       int
	}{
		{"no credentials", "", "", false, http.StatusUnauthorized},
		{"right user and password", "alice", "s3cret", true, http.StatusOK},
		{"right again (remembered)", "alice", "s3cret", true, http.StatusOK},
		{"htpasswd -B hash", "bob", "hunter2", true, http.StatusOK},
		{"wrong password", "alice", "s3cret!", true, http.StatusUnauthorized},
		{"another user's password", "alice", "hunter2", true, http.StatusUnauthorized},
		{"unknown user", "mallory", "s3cret", true, http.StatusUnauthorized},
		{"user prefix", "alic", "s3cret", true, http.StatusUnauthorized},
		{"user case", "Alice", "s3cret", true, http.StatusUnauthorized},
		{"empty password", "alice", "", true, http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if c.basic {
				r.SetBasicAuth(c.user, c.pass)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != c.want {
				t.Fatalf("status %d, want %d", rec.Code, c.want)
			}
			if c.want == http.StatusUnauthorized {
				if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("401 without a Basic challenge: %q", rec.Header().Get("WWW-Authenticate"))
				}
				if strings.Contains(rec.Body.String(), "inside") {
					t.Error("refused but served the page")
				}
			}
		})
	}
}

// TestProtectedDashboardStillSendsSecurityHeaders: a refusal is a page of
// the dashboard too.
func TestProtectedDashboardStillSendsSecurityHeaders(t *testing.T) {
	h, err := dashboard.Protect(behind, dashboard.Auth{Listen: ":1", TrustedHeader: "X-Forwarded-User"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Header().Get("Content-Security-Policy") == "" || rec.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("401 without the security headers: %v", rec.Header())
	}
}
