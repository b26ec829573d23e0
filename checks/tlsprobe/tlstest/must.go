package tlstest

import (
	"path/filepath"
	"testing"
)

// MustCA is NewCA for tests: it fails the test on error.
func MustCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// MustIssue issues a leaf for the test, naming it host unless the leaf
// names itself (or is deliberately malformed).
func (ca *CA) MustIssue(t testing.TB, l Leaf, host string) *Issued {
	t.Helper()
	if l.Names == nil && !l.BadExtension {
		l.Names = []string{host}
	}
	is, err := ca.Issue(l)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// PeerFiles writes what an external TLS server (gnutls-serv, openssl
// s_server) needs into dir: an RSA-2048 leaf for host and its key, and
// 1024-bit DH parameters.
func PeerFiles(t testing.TB, ca *CA, dir, host string) (certFile, keyFile, dh1024 string) {
	t.Helper()
	certFile, keyFile, err := ca.MustIssue(t, Leaf{RSABits: 2048}, host).WritePEM(dir, "rsa")
	if err != nil {
		t.Fatal(err)
	}
	dh1024 = filepath.Join(dir, "dh1024.pem")
	if err := WriteDHParams(dh1024, DH1024()); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, dh1024
}
