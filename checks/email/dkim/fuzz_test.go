package dkim

import "testing"

// FuzzParse: no panic; a parsed key is consistent (revoked keys carry no
// key, others carry a bounded key of a size that matches their type); an
// error is always a *Error.
func FuzzParse(f *testing.F) {
	s := Samples
	for _, seed := range []string{
		"v=DKIM1; k=rsa; p=" + s.RSA512,
		"v=DKIM1; k=rsa; p=" + s.RSA1024,
		"v=DKIM1; k=rsa; p=" + s.RSA2048,
		"v=DKIM1; k=ed25519; p=" + s.Ed25519,
		"v=DKIM1; p=",
		"v=DKIM1; h=sha1; s=email; t=y:s; n=note; p=" + s.RSA2048PKCS1,
		"garbage ;; = ;",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rec string) {
		k, err := Parse(rec)
		_ = LooksLikeKey(rec)
		if err != nil {
			if k != nil || !IsError(err) {
				t.Fatalf("Parse(%q): key %v with error %v", rec, k, err)
			}
			return
		}
		if len(k.Tags) == 0 || len(k.Tags) > MaxTags {
			t.Fatalf("%d tags", len(k.Tags))
		}
		switch {
		case k.Revoked:
			if k.Public != nil || k.Bits != 0 {
				t.Fatalf("revoked key with data: %+v", k)
			}
		case len(k.Public) == 0 || len(k.Public) > MaxKeyBytes:
			t.Fatalf("key of %d bytes", len(k.Public))
		case k.Type == KeyEd25519 && (k.Bits != 256 || len(k.Public) != 32):
			t.Fatalf("ed25519 key of %d bits, %d bytes", k.Bits, len(k.Public))
		case k.Type == KeyRSA && (k.Bits <= 0 || k.Format == ""):
			t.Fatalf("rsa key of %d bits, format %q", k.Bits, k.Format)
		case k.Type != KeyRSA && k.Type != KeyEd25519 && k.Unusable == "":
			t.Fatalf("unknown key type %q marked usable", k.Type)
		}
	})
}
