// Package dkim parses DKIM key records, the TXT records published at
// <selector>._domainkey.<domain> (RFC 6376 §3.6.1, with the ed25519 key type
// of RFC 8463), the way verifiers read them: a tag-list (RFC 6376 §3.2) with
// an optional v=DKIM1 that must come first, a key type (k=, rsa by
// default), and the public key data (p=, base64; empty = revoked). It does
// no I/O.
package dkim

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Bounds against hostile records.
const (
	// MaxRecordLen bounds the record text parsed: a 16384-bit RSA key is
	// about 2,800 characters of base64, so anything longer is not a key
	// anyone publishes.
	MaxRecordLen = 16384
	// MaxTags bounds the tags of one record (RFC 6376 defines 7).
	MaxTags = 64
	// MaxKeyBytes bounds the decoded public key (a 32768-bit RSA key's
	// SubjectPublicKeyInfo is under 4,200 bytes).
	MaxKeyBytes = 8192
)

// Key types (k=).
const (
	KeyRSA     = "rsa"     // RFC 6376 §3.6.1 (the default)
	KeyEd25519 = "ed25519" // RFC 8463 §4.2
)

// Key is a parsed key record. Absent tags are "" or nil, so what was
// published can be told from the defaults.
type Key struct {
	Tags    []Tag  // in order, as published
	Version string // v= ("" when absent: DKIM1 by default)
	// Type is k= in lower case, "rsa" when absent.
	Type     string
	Hashes   []string // h=, lower case (nil: every algorithm)
	Services []string // s=, lower case (nil: *)
	Flags    []string // t=, lower case
	// Revoked: p= is empty (RFC 6376 §3.6.1: the key has been revoked).
	Revoked bool
	// Public is the decoded p= (nil when revoked).
	Public []byte
	// Bits is the key size: the RSA modulus length, 256 for Ed25519.
	Bits int
	// Format says how an RSA key was encoded: "spki" (SubjectPublicKeyInfo,
	// what openssl and every DKIM tool publish) or "pkcs1" (a bare
	// RSAPublicKey, which RFC 6376's text describes); "raw" for Ed25519.
	Format string
	// Unusable says why verifiers cannot use the key although the record
	// parses (an unknown key type, no hash algorithm they may use, a key
	// not for email); "" when it is usable.
	Unusable string
}

// Tag is one tag=value pair, the value with its folding whitespace kept.
type Tag struct{ Name, Value string }

// Testing reports t=y: the domain is testing DKIM, and verifiers must treat
// its signed mail as unsigned (RFC 6376 §3.6.1).
func (k *Key) Testing() bool { return contains(k.Flags, "y") }

// Error is a record that verifiers cannot use at all.
type Error struct{ Reason string }

func (e *Error) Error() string { return "dkim: " + e.Reason }

func fail(format string, a ...any) (*Key, error) {
	return nil, &Error{Reason: fmt.Sprintf(format, a...)}
}

// LooksLikeKey reports whether s is meant as a DKIM key record: it starts
// with v=DKIM1 or has a p= tag. A TXT record that does not (a verification
// token, an SPF record answered by a wildcard) is not a key at all.
func LooksLikeKey(s string) bool {
	if len(s) > MaxRecordLen {
		s = s[:MaxRecordLen]
	}
	t := strings.TrimLeft(s, " \t\r\n")
	if v, _, _ := strings.Cut(t, ";"); strings.EqualFold(strings.ReplaceAll(v, " ", ""), "v=DKIM1") {
		return true
	}
	for _, part := range strings.Split(s, ";") {
		name, _, ok := strings.Cut(part, "=")
		if ok && strings.Trim(name, " \t\r\n") == "p" {
			return true
		}
	}
	return false
}

// Parse reads a key record (the TXT record's strings joined).
func Parse(s string) (*Key, error) {
	if len(s) > MaxRecordLen {
		return fail("record of %d characters (limit %d)", len(s), MaxRecordLen)
	}
	tags, err := tagList(s)
	if err != nil {
		return nil, err
	}
	k := &Key{Tags: tags, Type: KeyRSA}
	var p *string
	for i, t := range tags {
		switch t.Name {
		case "v":
			// RFC 6376 §3.6.1: if present, v= must be first and DKIM1;
			// records with any other value must be discarded.
			if i != 0 {
				return fail("v= is not the first tag")
			}
			if t.Value != "DKIM1" {
				return fail("v=%s: the version must be DKIM1", clip(t.Value))
			}
			k.Version = t.Value
		case "k":
			k.Type = strings.ToLower(t.Value)
			if k.Type == "" {
				return fail("k= is empty")
			}
		case "h":
			k.Hashes = list(t.Value)
		case "s":
			k.Services = list(t.Value)
		case "t":
			k.Flags = list(t.Value)
		case "p":
			v := t.Value
			p = &v
		}
		// n= (notes), g= (RFC 4871 granularity, since removed) and
		// unknown tags are ignored (RFC 6376 §3.2).
	}
	if p == nil {
		return fail("no p= tag (the public key is required)")
	}
	b64 := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, *p)
	if b64 == "" {
		k.Revoked = true
		return k, nil
	}
	if len(b64) > base64.StdEncoding.EncodedLen(MaxKeyBytes) {
		return fail("p= of %d characters: larger than any key (limit %d bytes)", len(b64), MaxKeyBytes)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// Some publish the key without its '=' padding; verifiers
		// built on lenient decoders accept it.
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "=")); err != nil {
			return fail("p= is not base64")
		}
	}
	if len(raw) == 0 {
		return fail("p= is not base64")
	}
	k.Public = raw
	switch k.Type {
	case KeyRSA:
		if err := k.rsaKey(raw); err != nil {
			return nil, err
		}
	case KeyEd25519:
		// RFC 8463 §4.2: the raw 32-byte public key, not wrapped in a
		// SubjectPublicKeyInfo.
		if len(raw) != 32 {
			if pk, err := x509.ParsePKIXPublicKey(raw); err == nil && isEd25519(pk) {
				return fail("k=ed25519 with the key wrapped in a SubjectPublicKeyInfo: RFC 8463 wants the bare 32-byte key")
			}
			return fail("k=ed25519 with a key of %d bytes (RFC 8463: 32)", len(raw))
		}
		k.Bits, k.Format = 256, "raw"
	default:
		k.Unusable = fmt.Sprintf("key type k=%s is not one verifiers know (rsa, ed25519)", clip(k.Type))
	}
	k.Unusable = first(k.Unusable, k.usable())
	return k, nil
}

func (k *Key) rsaKey(raw []byte) error {
	var pub *rsa.PublicKey
	if pk, err := x509.ParsePKIXPublicKey(raw); err == nil {
		r, ok := pk.(*rsa.PublicKey)
		if !ok {
			return &Error{Reason: fmt.Sprintf("k=rsa but p= holds a %s key", keyKind(pk))}
		}
		pub, k.Format = r, "spki"
	} else if r, err := x509.ParsePKCS1PublicKey(raw); err == nil {
		pub, k.Format = r, "pkcs1"
	} else {
		return &Error{Reason: "p= does not hold an RSA public key"}
	}
	k.Bits = pub.N.BitLen()
	if pub.E < 3 || pub.E%2 == 0 {
		return &Error{Reason: fmt.Sprintf("RSA public exponent %d is not a valid exponent", pub.E)}
	}
	return nil
}

func keyKind(pk any) string {
	switch pk.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return "non-RSA"
}

func isEd25519(pk any) bool {
	_, ok := pk.(ed25519.PublicKey)
	return ok
}

// usable says why verifiers will not use a key that parses.
func (k *Key) usable() string {
	if k.Services != nil && !contains(k.Services, "*") && !contains(k.Services, "email") {
		return fmt.Sprintf("s=%s: the key is not for email", clip(strings.Join(k.Services, ":")))
	}
	// RFC 8301 §3.1: verifiers must not accept rsa-sha1, so a key limited
	// to sha1 verifies no signature.
	if k.Hashes != nil && !contains(k.Hashes, "sha256") {
		return fmt.Sprintf("h=%s: the key allows no sha256 signatures, and verifiers refuse rsa-sha1 (RFC 8301 §3.1)", clip(strings.Join(k.Hashes, ":")))
	}
	return ""
}

// tagList splits a tag-list (RFC 6376 §3.2): tag=value pairs separated by
// ';', with an optional ';' at the end. Whitespace around names and values
// is folding whitespace. A part that is not tag=value, a tag name that is
// not ALPHA *(ALPHA / DIGIT / "_"), a value with characters outside
// VALCHAR, or a tag given twice makes the whole list invalid. Empty parts
// (";;") are tolerated, as verifiers do.
func tagList(s string) ([]Tag, error) {
	var out []Tag
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		if strings.Trim(part, " \t\r\n") == "" {
			continue
		}
		if len(out) == MaxTags {
			return nil, &Error{Reason: fmt.Sprintf("more than %d tags", MaxTags)}
		}
		name, value, ok := strings.Cut(part, "=")
		name, value = strings.Trim(name, " \t\r\n"), strings.Trim(value, " \t\r\n")
		if !ok {
			return nil, &Error{Reason: fmt.Sprintf("%q is not tag=value", clip(strings.Trim(part, " \t\r\n")))}
		}
		if !validName(name) {
			return nil, &Error{Reason: fmt.Sprintf("tag name %q is not a letter followed by letters, digits or _", clip(name))}
		}
		for _, c := range []byte(value) {
			if !(c >= 0x21 && c <= 0x7e || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
				return nil, &Error{Reason: fmt.Sprintf("the value of %s= has a character verifiers do not accept (0x%02x)", name, c)}
			}
		}
		if seen[name] {
			return nil, &Error{Reason: fmt.Sprintf("tag %s= appears twice (RFC 6376 §3.2: the record is invalid)", name)}
		}
		seen[name] = true
		out = append(out, Tag{Name: name, Value: value})
	}
	if len(out) == 0 {
		return nil, &Error{Reason: "empty record"}
	}
	return out, nil
}

func validName(n string) bool {
	if n == "" || !(n[0] >= 'a' && n[0] <= 'z' || n[0] >= 'A' && n[0] <= 'Z') {
		return false
	}
	for _, c := range []byte(n) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// list splits a colon-separated value (h=, s=, t=), lower case, without
// whitespace or empty items.
func list(v string) []string {
	out := []string{}
	for _, it := range strings.Split(v, ":") {
		if it = strings.ToLower(strings.Trim(it, " \t\r\n")); it != "" {
			out = append(out, it)
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// clip shortens hostile text quoted in a reason.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// IsError reports whether err is a record verifiers cannot use.
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
