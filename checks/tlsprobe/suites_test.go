package tlsprobe_test

import (
	"crypto/tls"
	"testing"

	"github.com/nhsx/posture/checks/tlsprobe"
)

func TestRegistryAgreesWithGoCryptoTLS(t *testing.T) {
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		s, ok := tlsprobe.SuiteByID(cs.ID)
		if !ok || s.Name != cs.Name {
			t.Errorf("%#04x: registry has %q, crypto/tls %q", cs.ID, s.Name, cs.Name)
		}
	}
}

func TestSuiteAttributesFromIANAName(t *testing.T) {
	cases := []struct {
		name          string
		kx, auth, enc string
		mac           string
		bits          int
		flags         tlsprobe.Flag
		tls12, tls13  bool
	}{
		{"TLS_RSA_WITH_RC4_128_MD5", "RSA", "RSA", "RC4_128", "MD5", 128, tlsprobe.FlagRC4 | tlsprobe.FlagMD5, false, false},
		{"TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", "RSA", "RSA", "DES40_CBC", "SHA", 40, tlsprobe.FlagExport | tlsprobe.FlagDES | tlsprobe.FlagCBC | tlsprobe.FlagSHA1, false, false},
		{"TLS_DH_anon_WITH_AES_256_GCM_SHA384", "DH", "anon", "AES_256_GCM", "AEAD", 256, tlsprobe.FlagAnon | tlsprobe.FlagAEAD | tlsprobe.FlagPFS, true, false},
		{"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE", "RSA", "3DES_EDE_CBC", "SHA", 112, tlsprobe.Flag3DES | tlsprobe.FlagCBC | tlsprobe.FlagPFS | tlsprobe.FlagSHA1, false, false},
		{"TLS_RSA_WITH_NULL_SHA256", "RSA", "RSA", "NULL", "SHA256", 0, tlsprobe.FlagNULL, true, false},
		{"TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", "ECDHE", "ECDSA", "AES_128_CCM_8", "AEAD", 128, tlsprobe.FlagAEAD | tlsprobe.FlagPFS, true, false},
		{"TLS_CHACHA20_POLY1305_SHA256", "", "", "CHACHA20_POLY1305", "AEAD", 256, tlsprobe.FlagAEAD | tlsprobe.FlagPFS, false, true},
		{"TLS_RSA_EXPORT1024_WITH_RC4_56_SHA", "RSA", "RSA", "RC4_56", "SHA", 56, tlsprobe.FlagExport | tlsprobe.FlagRC4 | tlsprobe.FlagSHA1, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := tlsprobe.SuiteByName(tc.name)
			if !ok {
				t.Fatal("not in the registry")
			}
			if s.Kx != tc.kx || s.Auth != tc.auth || s.Enc != tc.enc || s.Mac != tc.mac || s.Bits != tc.bits ||
				s.Flags != tc.flags || s.TLS12 != tc.tls12 || s.TLS13 != tc.tls13 {
				t.Errorf("got kx=%s auth=%s enc=%s mac=%s bits=%d flags=%v tls12=%v tls13=%v", s.Kx, s.Auth, s.Enc, s.Mac, s.Bits, s.Flags, s.TLS12, s.TLS13)
			}
		})
	}
}

func TestOfferOrderPutsModernSuitesFirstAndWeakLast(t *testing.T) {
	at := tlsprobe.SuitesAt(tlsprobe.TLS12)
	if at[0].Name != "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" {
		t.Errorf("first offered %s", at[0].Name)
	}
	weak := tlsprobe.FlagNULL | tlsprobe.FlagExport | tlsprobe.FlagDES | tlsprobe.FlagRC4 | tlsprobe.Flag3DES | tlsprobe.FlagAnon
	seenWeak := false
	for _, s := range at {
		if s.Flags&weak != 0 {
			seenWeak = true
		} else if seenWeak {
			t.Fatalf("%s offered after a weak suite", s.Name)
		}
	}
}
