package dkim

import (
	"strings"
	"testing"
)

func TestParseReadsKeySizesAndTypes(t *testing.T) {
	s := Samples
	for _, tc := range []struct {
		name, rec string
		typ       string
		bits      int
		format    string
	}{
		{"rsa 512", "v=DKIM1; k=rsa; p=" + s.RSA512, "rsa", 512, "spki"},
		{"rsa 1024 without v or k", "p=" + s.RSA1024, "rsa", 1024, "spki"},
		{"rsa 2048", "v=DKIM1; p=" + s.RSA2048, "rsa", 2048, "spki"},
		{"rsa 4096 split with spaces", "v=DKIM1; k=rsa; p=" + s.RSA4096[:300] + " " + s.RSA4096[300:], "rsa", 4096, "spki"},
		{"rsa 2048 as PKCS #1", "v=DKIM1; k=rsa; p=" + s.RSA2048PKCS1, "rsa", 2048, "pkcs1"},
		{"rsa without padding", "v=DKIM1; p=" + strings.TrimRight(s.RSA512, "="), "rsa", 512, "spki"},
		{"ed25519", "v=DKIM1; k=ed25519; p=" + s.Ed25519, "ed25519", 256, "raw"},
		{"key type in capitals", "v=DKIM1; k=ED25519; p=" + s.Ed25519, "ed25519", 256, "raw"},
		{"folding whitespace and trailing separator", " v = DKIM1 ;\th=sha256 ; p=" + s.RSA2048 + " ; ", "rsa", 2048, "spki"},
		{"unknown tags are ignored", "v=DKIM1; x_custom=1; n=notes here; p=" + s.RSA2048, "rsa", 2048, "spki"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Parse(tc.rec)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if k.Type != tc.typ || k.Bits != tc.bits || k.Format != tc.format || k.Revoked || k.Unusable != "" {
				t.Errorf("got type %s, %d bits, format %s, revoked %v, unusable %q; want %s, %d, %s",
					k.Type, k.Bits, k.Format, k.Revoked, k.Unusable, tc.typ, tc.bits, tc.format)
			}
		})
	}
}

func TestParseEmptyPublicKeyIsRevoked(t *testing.T) {
	for _, rec := range []string{"v=DKIM1; p=", "v=DKIM1; k=rsa; p= ;", "p="} {
		k, err := Parse(rec)
		if err != nil || !k.Revoked || k.Public != nil {
			t.Errorf("Parse(%q) = %+v, %v; want a revoked key", rec, k, err)
		}
	}
}

func TestParseRejectsWhatVerifiersDiscard(t *testing.T) {
	s := Samples
	for _, tc := range []struct{ name, rec, reason string }{
		{"no p", "v=DKIM1; k=rsa", "no p="},
		{"v not first", "k=rsa; v=DKIM1; p=" + s.RSA2048, "not the first"},
		{"other version", "v=DKIM2; p=" + s.RSA2048, "must be DKIM1"},
		{"not base64", "v=DKIM1; p=not*base64!", "not base64"},
		{"garbage key bytes", "v=DKIM1; p=AAAA", "RSA public key"},
		{"duplicate tag", "v=DKIM1; p=" + s.RSA2048 + "; p=", "twice"},
		{"part without =", "v=DKIM1; rsa; p=" + s.RSA2048, "not tag=value"},
		{"bad tag name", "v=DKIM1; 1k=rsa; p=" + s.RSA2048, "tag name"},
		{"ed25519 of wrong length", "v=DKIM1; k=ed25519; p=" + s.RSA512, "bytes"},
		{"rsa type with an ed25519 key", "v=DKIM1; k=rsa; p=" + s.Ed25519, "RSA public key"},
		{"control character", "v=DKIM1; n=a\x01b; p=" + s.RSA2048, "character"},
		{"empty", "", "empty"},
		{"too long", "v=DKIM1; p=" + strings.Repeat("A", MaxRecordLen), "limit"},
		{"empty key type", "v=DKIM1; k=; p=" + s.RSA2048, "k= is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Parse(tc.rec)
			if err == nil {
				t.Fatalf("Parse(%.60q) = %+v, want an error", tc.rec, k)
			}
			if !IsError(err) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q, want a *Error mentioning %q", err, tc.reason)
			}
		})
	}
}

func TestParseMarksKeysVerifiersCannotUse(t *testing.T) {
	s := Samples
	for _, tc := range []struct{ name, rec, reason string }{
		{"unknown key type", "v=DKIM1; k=dsa; p=" + s.RSA2048, "k=dsa"},
		{"sha1 only", "v=DKIM1; h=sha1; p=" + s.RSA2048, "sha256"},
		{"not for email", "v=DKIM1; s=other; p=" + s.RSA2048, "not for email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Parse(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(k.Unusable, tc.reason) {
				t.Errorf("Unusable %q, want it to mention %q", k.Unusable, tc.reason)
			}
		})
	}
	for _, rec := range []string{"v=DKIM1; h=sha1:sha256; s=email:*; p=" + s.RSA2048, "v=DKIM1; s=*; p=" + s.RSA2048} {
		if k, err := Parse(rec); err != nil || k.Unusable != "" {
			t.Errorf("Parse(%.40q): %v, unusable %q; want a usable key", rec, err, k.Unusable)
		}
	}
}

func TestParseReadsTestingFlag(t *testing.T) {
	k, err := Parse("v=DKIM1; t=y:s; p=" + Samples.RSA2048)
	if err != nil || !k.Testing() {
		t.Fatalf("t=y:s: %v, testing %v", err, k.Testing())
	}
	k, _ = Parse("v=DKIM1; t=s; p=" + Samples.RSA2048)
	if k.Testing() {
		t.Error("t=s read as testing")
	}
}

func TestLooksLikeKey(t *testing.T) {
	for s, want := range map[string]bool{
		"v=DKIM1; p=":                   true,
		"V=dkim1 ; k=rsa":               true,
		"k=rsa; p=MIGf":                 true,
		"p=":                            true,
		"v=spf1 -all":                   false,
		"google-site-verification=abc":  false,
		"v=DMARC1; p=reject":            true, // has a p= tag: meant as a key, and broken
		"some text without tags at all": false,
	} {
		if got := LooksLikeKey(s); got != want {
			t.Errorf("LooksLikeKey(%q) = %v, want %v", s, got, want)
		}
	}
}
