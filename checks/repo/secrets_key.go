package repo

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// The key of the secret hashes. A secret found in a repository is never
// stored: its evidence keeps HMAC-SHA256(key, secret), so the same secret
// gives the same hash across runs and repositories (a reused credential is
// visible as such), while the hash cannot be brute-forced back to a short
// or structured secret without the key. The key is one per deployment: a
// file of 32 random bytes next to the database (SecretKeyPath), made on
// first use with mode 0600; `posture scan` and `posture demo` load it with
// LoadSecretKey and install it with SetSecretKey. A process that installs
// none (tests) uses a random key of its own: hashes are then stable within
// the process only.

const secretKeyBytes = 32

var (
	secretKeyMu sync.RWMutex
	secretKey   []byte
	secretKeyOn sync.Once
)

// SetSecretKey installs the deployment's key (at least 16 bytes).
func SetSecretKey(k []byte) error {
	if len(k) < 16 {
		return fmt.Errorf("repo: secret key: %d bytes, want at least 16", len(k))
	}
	secretKeyMu.Lock()
	defer secretKeyMu.Unlock()
	secretKey = append([]byte(nil), k...)
	return nil
}

func secretsKey() []byte {
	secretKeyOn.Do(func() {
		secretKeyMu.Lock()
		defer secretKeyMu.Unlock()
		if secretKey == nil {
			k := make([]byte, secretKeyBytes)
			rand.Read(k) // never fails (crypto/rand panics rather than return an error)
			secretKey = k
		}
	})
	secretKeyMu.RLock()
	defer secretKeyMu.RUnlock()
	return secretKey
}

// secretsHash is the keyed hash of a secret.
func secretsHash(key []byte, secret string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(secret))
	return secretsHashPrefix + hex.EncodeToString(m.Sum(nil))
}

// secretsKeyID names a key without revealing it.
func secretsKeyID(key []byte) string {
	s := sha256.Sum256(append([]byte("posture secret key id\x00"), key...))
	return hex.EncodeToString(s[:4])
}

// SecretKeyPath is where the key of the database at dbPath lives.
func SecretKeyPath(dbPath string) string { return dbPath + ".secret-key" }

// LoadSecretKey reads the key at path, or makes one (32 random bytes, mode
// 0600) if there is none.
func LoadSecretKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(b) < 16 {
			return nil, fmt.Errorf("secret key %s: %d bytes, want at least 16 (delete it to make a new one: old hashes then stop matching)", path, len(b))
		}
		return b, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("secret key: %w", err)
	}
	k := make([]byte, secretKeyBytes)
	rand.Read(k)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // made by a concurrent process
		return LoadSecretKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	if _, err := f.Write(k); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("secret key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return k, nil
}
