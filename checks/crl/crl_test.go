package crl

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nhsx/posture/checks/check"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, cn string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{c, key}
}

func (ca testCA) crl(t *testing.T, revoked ...int64) []byte {
	t.Helper()
	var es []x509.RevocationListEntry
	for _, s := range revoked {
		es = append(es, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: es}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestFetchReadsListsAndClassifiesFailures(t *testing.T) {
	ca, other := newCA(t, "ca"), newCA(t, "other")
	der := ca.crl(t, 42, 7)
	pemCRL := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	mux := http.NewServeMux()
	mux.HandleFunc("/ca.crl", func(w http.ResponseWriter, r *http.Request) { w.Write(der) })
	mux.HandleFunc("/ca.pem", func(w http.ResponseWriter, r *http.Request) { w.Write(pemCRL) })
	mux.HandleFunc("/garbage.crl", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>not a CRL</html>")) })
	mux.HandleFunc("/big.crl", func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range MaxSize/len(chunk) + 1 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/slow.crl", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		name, path, class string
		timeout           time.Duration
	}{
		{"a DER list parses", "/ca.crl", "", 0},
		{"a PEM list parses", "/ca.pem", "", 0},
		{"garbage is malformed", "/garbage.crl", ClassMalformed, 0},
		{"a list over the limit is too large", "/big.crl", ClassTooLarge, 0},
		{"a 404 is unreachable", "/missing.crl", ClassUnreachable, 0},
		{"a silent server times out", "/slow.crl", ClassTimeout, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			l, err := Fetch(ctx, srv.Client(), srv.URL+tt.path)
			if tt.class != "" {
				if err == nil || Class(err) != tt.class {
					t.Fatalf("err = %v (class %q), want class %q", err, Class(err), tt.class)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if at, ok := l.Revoked(big.NewInt(42)); !ok || !at.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("serial 42: listed %v at %v", ok, at)
			}
			if _, ok := l.Revoked(big.NewInt(43)); ok {
				t.Error("serial 43 is listed")
			}
			if err := l.CheckSignatureFrom(ca.cert); err != nil {
				t.Errorf("signature by the CA: %v", err)
			}
			if err := l.CheckSignatureFrom(other.cert); err == nil {
				t.Error("signature verifies with another CA's key")
			}
			if l.NextUpdate.IsZero() || l.Size == 0 {
				t.Errorf("next update %v, size %d", l.NextUpdate, l.Size)
			}
		})
	}
}

func TestFetchRefusesNonHTTPURLs(t *testing.T) {
	_, err := Fetch(context.Background(), http.DefaultClient, "ldap://ldap.example/cn=CA?certificateRevocationList")
	if Class(err) != ClassUnsupported {
		t.Fatalf("err = %v, want class %q", err, ClassUnsupported)
	}
}

func TestCacheFetchesEachURLOnceForManyCallers(t *testing.T) {
	der := newCA(t, "ca").crl(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.HasSuffix(r.URL.Path, "/gone.crl") {
			http.NotFound(w, r)
			return
		}
		time.Sleep(50 * time.Millisecond) // let the callers pile up
		w.Write(der)
	}))
	defer srv.Close()
	c := &Cache{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.Get(context.Background(), srv.Client(), srv.URL+"/a.crl"); err != nil {
				t.Error(err)
			}
			if _, err := c.Get(context.Background(), srv.Client(), srv.URL+"/gone.crl"); err == nil {
				t.Error("gone.crl: no error")
			}
		})
	}
	wg.Wait()
	if n := hits.Load(); n != 2 {
		t.Errorf("%d requests for 2 URLs asked 20 times each", n)
	}
}

func TestCacheKeepsAtMostMaxEntries(t *testing.T) {
	der := newCA(t, "ca").crl(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(der)
	}))
	defer srv.Close()
	c := &Cache{Max: 2}
	for _, p := range []string{"/1", "/2", "/3", "/1"} {
		if _, err := c.Get(context.Background(), srv.Client(), srv.URL+p); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.m) != 2 || hits.Load() != 4 {
		t.Errorf("%d entries after %d fetches; want 2 entries, /1 fetched again after eviction", len(c.m), hits.Load())
	}
}

func TestSourceServesListsAsTheContractsCRL(t *testing.T) {
	ca := newCA(t, "ca")
	der := ca.crl(t, 42)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/gone.crl" {
			http.NotFound(w, r)
			return
		}
		w.Write(der)
	}))
	defer srv.Close()
	tests := []struct {
		name  string
		src   check.CRLSource
		path  string
		class string
		hits  int64 // requests after two calls
	}{
		{"a cached source fetches once", Source{Client: srv.Client(), Cache: &Cache{}}, "/a.crl", "", 1},
		{"a nil cache fetches every time", Source{Client: srv.Client()}, "/a.crl", "", 2},
		{"a missing list keeps its class", Source{Client: srv.Client(), Cache: &Cache{}}, "/gone.crl", ClassUnreachable, 1},
		{"no client is not fetched", Source{}, "/a.crl", ClassNotFetched, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.Store(0)
			for range 2 {
				l, err := tt.src.CRL(context.Background(), srv.URL+tt.path)
				if tt.class != "" {
					if l != nil || string(check.Classify(err)) != tt.class {
						t.Fatalf("list %v, err %v (class %q), want class %q", l, err, check.Classify(err), tt.class)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if _, listed := l.Revoked(big.NewInt(42)); !listed {
					t.Error("serial 42 not listed")
				}
				if this, next := l.Updates(); this.IsZero() || !next.After(this) || l.Bytes() != len(der) {
					t.Errorf("updates %v %v, %d bytes", this, next, l.Bytes())
				}
				if err := l.CheckSignatureFrom(ca.cert); err != nil {
					t.Error(err)
				}
			}
			if n := hits.Load(); n != tt.hits {
				t.Errorf("%d requests, want %d", n, tt.hits)
			}
		})
	}
}
