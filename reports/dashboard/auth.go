package dashboard

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Auth says who may read the dashboard.
type Auth struct {
	// Listen is the address the dashboard listens on ("127.0.0.1:8080").
	// On a loopback address with neither TrustedHeader nor BasicAuthFile,
	// anyone who can reach it may read it.
	Listen string
	// TrustedHeader names a request header that a reverse proxy sets to
	// the authenticated user (X-Forwarded-User, X-Auth-Request-Email):
	// requests without it are refused. Only safe behind a proxy that
	// authenticates every request and removes the header from what
	// clients send, and with the dashboard reachable only through it.
	TrustedHeader string
	// BasicAuthFile is an htpasswd-style file of user:bcrypt-hash lines
	// (htpasswd -B); '#' starts a comment line. Read once by Protect.
	BasicAuthFile string
}

// Protect wraps the dashboard in the access control a says. It refuses
// (error) a non-loopback Listen with no authentication, a TrustedHeader
// and BasicAuthFile together, and a password file it cannot use.
func Protect(h http.Handler, a Auth) (http.Handler, error) {
	switch {
	case a.TrustedHeader != "" && a.BasicAuthFile != "":
		return nil, errors.New("dashboard: choose one of a trusted header and a password file, not both")
	case a.TrustedHeader != "":
		name := http.CanonicalHeaderKey(strings.TrimSpace(a.TrustedHeader))
		if name == "" || strings.ContainsAny(name, " :\r\n") {
			return nil, fmt.Errorf("dashboard: trusted header %q is not a header name", a.TrustedHeader)
		}
		return trustedHeader{h, name}, nil
	case a.BasicAuthFile != "":
		users, err := readPasswords(a.BasicAuthFile)
		if err != nil {
			return nil, err
		}
		return &basicAuth{next: h, users: users, ok: map[[32]byte]time.Time{}, slots: make(chan struct{}, 2)}, nil
	}
	loop, err := loopback(a.Listen)
	if err != nil {
		return nil, err
	}
	if !loop {
		return nil, fmt.Errorf("dashboard: listening on %q, beyond this machine, needs authentication: a trusted header set by an authenticating reverse proxy, or a password file", a.Listen)
	}
	return h, nil
}

// loopback reports whether a listen address reaches this machine only. An
// empty host (":8080") listens on every interface.
func loopback(listen string) (bool, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false, fmt.Errorf("dashboard: listen address %q: %w", listen, err)
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

type trustedHeader struct {
	next http.Handler
	name string
}

func (t trustedHeader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.TrimSpace(r.Header.Get(t.name)) == "" {
		securityHeaders(w.Header())
		http.Error(w, "authentication required (the reverse proxy did not say who you are)", http.StatusUnauthorized)
		return
	}
	t.next.ServeHTTP(w, r)
}

type passwordEntry struct {
	user string
	hash []byte
}

func readPasswords(path string) ([]passwordEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dashboard: password file: %w", err)
	}
	var users []passwordEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("dashboard: password file %s:%d: want user:bcrypt-hash", path, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("dashboard: password file %s:%d: user %q: not a bcrypt hash (make one with htpasswd -B): %w", path, n, user, err)
		}
		users = append(users, passwordEntry{user, []byte(hash)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dashboard: password file %s: %w", path, err)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("dashboard: password file %s names no user", path)
	}
	return users, nil
}

// okFor is how long a verified user:password pair is remembered, so that a
// page view does not cost a bcrypt comparison per request.
const okFor = 5 * time.Minute

type basicAuth struct {
	next  http.Handler
	users []passwordEntry
	mu    sync.Mutex
	ok    map[[32]byte]time.Time // sha256(user \0 password) → verified until
	// slots bounds the bcrypt comparisons running at once, so that a flood
	// of guesses queues instead of taking every core.
	slots chan struct{}
}

// dummyHash keeps a request for an unknown user as slow as one for a known
// user with a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("posture-dashboard-no-such-user"), bcrypt.DefaultCost)

func (b *basicAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || !b.check(r.Context(), user, pass) {
		securityHeaders(w.Header())
		w.Header().Set("WWW-Authenticate", `Basic realm="posture", charset="UTF-8"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	b.next.ServeHTTP(w, r)
}

func (b *basicAuth) check(ctx context.Context, user, pass string) bool {
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	now := time.Now()
	b.mu.Lock()
	until, seen := b.ok[key]
	b.mu.Unlock()
	if seen && now.Before(until) {
		return true
	}
	// Every user is compared, in constant time, so that the time taken
	// does not say which users exist or how much of a name matched.
	hash := dummyHash
	found := 0
	for _, e := range b.users {
		if subtle.ConstantTimeCompare([]byte(e.user), []byte(user)) == 1 {
			hash, found = e.hash, 1
		}
	}
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	match := bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil
	<-b.slots
	if found == 0 || !match {
		return false
	}
	b.mu.Lock()
	if len(b.ok) >= 256 { // bounded: forget everything rather than grow
		clear(b.ok)
	}
	b.ok[key] = now.Add(okFor)
	b.mu.Unlock()
	return true
}
