// Package crl fetches and caches certificate revocation lists. CRLs are CA
// infrastructure, fetched with the configured-service client (not through
// the scope guard), and many certificates share one, so a run keeps one
// Cache for every host. Source is the check.CRLSource the scanner hands to
// checks.
package crl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/nhsx/posture/checks/check"
)

const (
	// MaxSize bounds one CRL: the largest public CRLs are a few MiB.
	MaxSize = 20 << 20
	// Timeout bounds one fetch.
	Timeout = 15 * time.Second
	// DefaultEntries bounds a Cache: distinct CRL URLs kept per run.
	DefaultEntries = 256
)

// Error classes of a fetch.
const (
	ClassTimeout     = "timeout"
	ClassUnreachable = "unreachable" // connect, DNS or HTTP status
	ClassTooLarge    = "too-large"
	ClassMalformed   = "malformed"
	ClassUnsupported = "unsupported" // not an http(s) URL
)

// Error is a failed fetch with its class.
type Error struct {
	Kind string // one of the Class constants
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Class implements check's Classifier.
func (e *Error) Class() string { return e.Kind }

// List is a fetched, parsed CRL. Its signature is not checked on fetch:
// CheckSignatureFrom does that against the certificate's issuer.
type List struct {
	URL        string
	Size       int
	ThisUpdate time.Time
	NextUpdate time.Time

	rl      *x509.RevocationList // entries dropped: revoked holds them
	revoked map[string]time.Time // serial (hex) → revocation time
	mu      sync.Mutex
	sigs    map[[32]byte]error // issuer certificate hash → CheckSignatureFrom
}

// Revoked says whether serial is listed, and since when.
func (l *List) Revoked(serial *big.Int) (time.Time, bool) {
	t, ok := l.revoked[serial.Text(16)]
	return t, ok
}

// Len is the number of listed certificates.
func (l *List) Len() int { return len(l.revoked) }

// Updates are the list's thisUpdate and nextUpdate (zero if absent).
func (l *List) Updates() (this, next time.Time) { return l.ThisUpdate, l.NextUpdate }

// Bytes is the size fetched.
func (l *List) Bytes() int { return l.Size }

// CheckSignatureFrom verifies the CRL's signature with issuer's key,
// remembering the answer per issuer (a large RSA-signed CRL is costly to
// hash again for every host).
func (l *List) CheckSignatureFrom(issuer *x509.Certificate) error {
	k := sha256.Sum256(issuer.Raw)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err, ok := l.sigs[k]; ok {
		return err
	}
	err := l.rl.CheckSignatureFrom(issuer)
	if l.sigs == nil {
		l.sigs = map[[32]byte]error{}
	}
	l.sigs[k] = err
	return err
}

// Parse reads a CRL in DER (or PEM, which some CAs serve).
func Parse(url string, b []byte) (*List, error) {
	der := b
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		blk, _ := pem.Decode(bytes.TrimSpace(b))
		if blk == nil {
			return nil, &Error{ClassMalformed, errors.New("crl: PEM without a block")}
		}
		der = blk.Bytes
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, &Error{ClassMalformed, fmt.Errorf("crl: parse: %w", err)}
	}
	l := &List{URL: url, Size: len(b), ThisUpdate: rl.ThisUpdate.UTC(), NextUpdate: rl.NextUpdate.UTC(),
		revoked: make(map[string]time.Time, len(rl.RevokedCertificateEntries))}
	for _, e := range rl.RevokedCertificateEntries {
		l.revoked[e.SerialNumber.Text(16)] = e.RevocationTime.UTC()
	}
	rl.RevokedCertificateEntries, rl.RevokedCertificates = nil, nil //nolint:staticcheck // dropped to save memory
	l.rl = rl
	return l, nil
}

// Fetch GETs url with client, bounded by MaxSize and Timeout, and parses it.
func Fetch(ctx context.Context, client *http.Client, url string) (*List, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, &Error{ClassUnsupported, fmt.Errorf("crl: %s: not an http(s) URL", url)}
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &Error{ClassUnsupported, fmt.Errorf("crl: %w", err)}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, &Error{classify(ctx, err), fmt.Errorf("crl: %w", err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{ClassUnreachable, fmt.Errorf("crl: get %s: HTTP %d", url, resp.StatusCode)}
	}
	if resp.ContentLength > MaxSize {
		return nil, &Error{ClassTooLarge, fmt.Errorf("crl: %s: %d bytes, more than the limit of %d", url, resp.ContentLength, MaxSize)}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return nil, &Error{classify(ctx, err), fmt.Errorf("crl: read %s: %w", url, err)}
	}
	if len(b) > MaxSize {
		return nil, &Error{ClassTooLarge, fmt.Errorf("crl: %s: more than the limit of %d bytes", url, MaxSize)}
	}
	return Parse(url, b)
}

func classify(ctx context.Context, err error) string {
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return ClassTimeout
	}
	return ClassUnreachable
}

// Class is err's class (ClassUnreachable when it has none).
func Class(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ClassUnreachable
}

// ClassNotFetched: the source has no HTTP client.
const ClassNotFetched = "not-fetched"

// Source fetches CRLs with Client through Cache (nil: no caching). It is
// the check.CRLSource of a run.
type Source struct {
	Client *http.Client
	Cache  *Cache
}

// CRL implements check.CRLSource.
func (s Source) CRL(ctx context.Context, url string) (check.CRL, error) {
	if s.Client == nil {
		return nil, &Error{ClassNotFetched, fmt.Errorf("crl: %s: no HTTP client for CA services", url)}
	}
	l, err := s.Cache.Get(ctx, s.Client, url)
	if err != nil {
		return nil, err
	}
	return l, nil
}

var _ check.CRL = (*List)(nil)

// Cache remembers fetched CRLs (and failures) by URL for one run, and makes
// one fetch of a URL however many hosts ask at once. The zero value is
// ready; a nil *Cache fetches every time.
type Cache struct {
	Max int // entries kept; 0: DefaultEntries

	mu    sync.Mutex
	m     map[string]result
	order []string // oldest first, for eviction
	sf    singleflight.Group
}

type result struct {
	l   *List
	err error
}

// Get returns the CRL at url, fetched with client on first use. The fetch
// outlives a caller that gives up (others may be waiting for it), bounded
// by Timeout.
func (c *Cache) Get(ctx context.Context, client *http.Client, url string) (*List, error) {
	if c == nil {
		return Fetch(ctx, client, url)
	}
	c.mu.Lock()
	r, ok := c.m[url]
	c.mu.Unlock()
	if ok {
		return r.l, r.err
	}
	ch := c.sf.DoChan(url, func() (any, error) {
		l, err := Fetch(context.WithoutCancel(ctx), client, url)
		c.put(url, result{l, err})
		return l, err
	})
	select {
	case <-ctx.Done():
		return nil, &Error{ClassTimeout, fmt.Errorf("crl: get %s: %w", url, ctx.Err())}
	case res := <-ch:
		l, _ := res.Val.(*List)
		return l, res.Err
	}
}

func (c *Cache) put(url string, r result) {
	max := c.Max
	if max <= 0 {
		max = DefaultEntries
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]result{}
	}
	if _, ok := c.m[url]; !ok {
		c.order = append(c.order, url)
	}
	c.m[url] = r
	for len(c.order) > max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
}
