package tlsprobe

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Flag marks a property of a cipher suite.
type Flag uint16

const (
	FlagNULL   Flag = 1 << iota // no encryption
	FlagExport                  // export-grade (40/56-bit) key exchange or cipher
	FlagDES                     // single DES (56 or 40 bit)
	FlagRC4                     // RC4 stream cipher
	Flag3DES                    // triple DES (64-bit block, Sweet32)
	FlagAnon                    // no server authentication
	FlagCBC                     // block cipher in CBC mode
	FlagAEAD                    // GCM, CCM or ChaCha20-Poly1305
	FlagPFS                     // ephemeral key exchange (forward secrecy)
	FlagMD5                     // HMAC-MD5
	FlagSHA1                    // HMAC-SHA1
)

var flagNames = []struct {
	f    Flag
	name string
}{
	{FlagNULL, "NULL"}, {FlagExport, "EXPORT"}, {FlagDES, "DES"}, {FlagRC4, "RC4"},
	{Flag3DES, "3DES"}, {FlagAnon, "anon"}, {FlagCBC, "CBC"}, {FlagAEAD, "AEAD"},
	{FlagPFS, "PFS"}, {FlagMD5, "MD5"}, {FlagSHA1, "SHA1"},
}

func (f Flag) String() string {
	var parts []string
	for _, n := range flagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, "|")
}

// Suite is one cipher suite of the registry.
type Suite struct {
	ID   uint16
	Name string // IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
	Kx   string // RSA, DHE, ECDHE, DH, ECDH, "" for TLS 1.3 (negotiated apart)
	Auth string // RSA, DSS, ECDSA, anon, "" for TLS 1.3
	Enc  string // AES_128_GCM, 3DES_EDE_CBC, RC4_128, NULL, …
	Mac  string // SHA, SHA256, SHA384, MD5; AEAD for AEAD ciphers
	Bits int    // effective symmetric key bits (3DES: 112)
	// Flags say what the suite is: weak classes, mode, forward secrecy.
	Flags Flag
	// TLS12 suites need TLS 1.2 (SHA-2 MAC or AEAD); TLS13 suites exist
	// only in TLS 1.3.
	TLS12, TLS13 bool
}

// Has reports whether every flag of f is set.
func (s Suite) Has(f Flag) bool { return s.Flags&f == f }

// ValidAt reports whether a server may select the suite at version v.
func (s Suite) ValidAt(v Version) bool {
	switch {
	case s.TLS13:
		return v == TLS13
	case v == TLS13:
		return false
	case s.TLS12:
		return v == TLS12
	}
	return v >= SSL30
}

// KxClass is the key-exchange family that decides what a ServerKeyExchange
// carries: "DHE" (finite-field parameters), "ECDHE" (a named curve),
// "RSA_EXPORT" (a temporary RSA key) or "" (no ServerKeyExchange).
func (s Suite) KxClass() string {
	switch {
	case s.Kx == "DHE" || (s.Kx == "DH" && s.Auth == "anon"):
		return "DHE"
	case s.Kx == "ECDHE" || (s.Kx == "ECDH" && s.Auth == "anon"):
		return "ECDHE"
	case s.Kx == "RSA" && s.Has(FlagExport):
		return "RSA_EXPORT"
	}
	return ""
}

var (
	byID    = map[uint16]Suite{}
	byName  = map[string]Suite{}
	ordered []Suite // offer order: strong first, as a modern client lists them
)

func init() {
	for _, r := range registry {
		s := parseSuite(r.id, r.name)
		byID[s.ID] = s
		byName[s.Name] = s
		ordered = append(ordered, s)
	}
	sort.SliceStable(ordered, func(i, j int) bool { return offerRank(ordered[i]) < offerRank(ordered[j]) })
}

// SuiteByID looks a suite up by its IANA id.
func SuiteByID(id uint16) (Suite, bool) { s, ok := byID[id]; return s, ok }

// SuiteByName looks a suite up by its IANA name.
func SuiteByName(name string) (Suite, bool) { s, ok := byName[name]; return s, ok }

// Suites returns the registry in offer order: TLS 1.3 suites, then
// forward-secret AEAD, forward-secret CBC, static RSA, the rest, and the
// weak classes last, so that a server honouring the client's order picks
// what a modern client would get.
func Suites() []Suite { return append([]Suite(nil), ordered...) }

// SuitesAt returns the suites a server may select at version v, in offer
// order. Static (non-ephemeral, certificate-bound) DH suites are included:
// they are rare, but a server that offers them must be seen.
func SuitesAt(v Version) []Suite {
	var out []Suite
	for _, s := range ordered {
		if s.ValidAt(v) {
			out = append(out, s)
		}
	}
	return out
}

// Name returns the IANA name of a suite id, or 0xHHHH for an unknown one.
func Name(id uint16) string {
	if s, ok := byID[id]; ok {
		return s.Name
	}
	return fmt.Sprintf("0x%04X", id)
}

func offerRank(s Suite) int {
	weak := FlagNULL | FlagExport | FlagDES | FlagRC4 | Flag3DES | FlagAnon
	r := 0
	switch {
	case s.TLS13:
		r = 0
	case s.Flags&weak != 0:
		r = 90
	case s.Has(FlagPFS) && s.Has(FlagAEAD) && strings.HasPrefix(s.Enc, "AES") && !strings.Contains(s.Enc, "CCM"):
		r = 10
	case s.Has(FlagPFS) && strings.HasPrefix(s.Enc, "CHACHA20"):
		r = 11
	case s.Has(FlagPFS) && s.Has(FlagAEAD):
		r = 20
	case s.Has(FlagPFS) && strings.HasPrefix(s.Enc, "AES"):
		r = 30
	case s.Has(FlagPFS):
		r = 40
	case s.Kx == "RSA" && strings.HasPrefix(s.Enc, "AES"):
		r = 50
	default:
		r = 60
	}
	// Within a rank: ECDHE before DHE before the rest, ECDSA before RSA,
	// 128-bit before 256-bit (what browsers send), SHA-2 before SHA-1.
	switch s.Kx {
	case "ECDHE":
	case "DHE":
		r += 1
	default:
		r += 2
	}
	r *= 10
	if s.Auth == "RSA" {
		r += 1
	}
	if s.Auth != "ECDSA" && s.Auth != "RSA" && !s.TLS13 {
		r += 2
	}
	r *= 10
	if s.Bits > 128 {
		r += 1
	}
	if s.Mac == "SHA" || s.Mac == "MD5" {
		r += 2
	}
	return r
}

// parseSuite derives a suite's attributes from its IANA name:
// TLS_<kx>[_<auth>][_EXPORT[1024]]_WITH_<cipher>_<mac>, or TLS_<cipher>_<hash>
// for TLS 1.3.
func parseSuite(id uint16, name string) Suite {
	s := Suite{ID: id, Name: name}
	rest := strings.TrimPrefix(name, "TLS_")
	kxAuth, encMac, ok := strings.Cut(rest, "_WITH_")
	if !ok { // TLS 1.3: TLS_AES_128_GCM_SHA256
		s.TLS13 = true
		encMac = rest
	}
	if ok {
		if strings.Contains(kxAuth, "_EXPORT") {
			s.Flags |= FlagExport
			kxAuth = strings.Replace(strings.Replace(kxAuth, "_EXPORT1024", "", 1), "_EXPORT", "", 1)
		}
		kx, auth, _ := strings.Cut(kxAuth, "_")
		if auth == "" {
			auth = kx // TLS_RSA_WITH_…: RSA key transport, RSA certificate
		}
		s.Kx, s.Auth = kx, auth
	}
	// Split the MAC off the end; CCM suites name none (the cipher is AEAD).
	s.Enc, s.Mac = encMac, ""
	for _, m := range []string{"_SHA384", "_SHA256", "_SHA", "_MD5"} {
		if strings.HasSuffix(encMac, m) {
			s.Enc, s.Mac = strings.TrimSuffix(encMac, m), m[1:]
			break
		}
	}
	e := s.Enc
	switch {
	case strings.Contains(e, "GCM"), strings.Contains(e, "CCM"), strings.Contains(e, "POLY1305"):
		s.Flags |= FlagAEAD
		s.Mac = "AEAD"
	case strings.Contains(e, "CBC"):
		s.Flags |= FlagCBC
	}
	switch {
	case e == "NULL":
		s.Flags |= FlagNULL
	case strings.HasPrefix(e, "RC4"):
		s.Flags |= FlagRC4
	case strings.HasPrefix(e, "3DES"):
		s.Flags |= Flag3DES
	case strings.HasPrefix(e, "DES"):
		s.Flags |= FlagDES
	}
	if s.Auth == "anon" || s.Kx == "NULL" {
		s.Flags |= FlagAnon
	}
	switch {
	case s.TLS13, s.Kx == "DHE", s.Kx == "ECDHE", s.Kx == "DH" && s.Auth == "anon", s.Kx == "ECDH" && s.Auth == "anon":
		s.Flags |= FlagPFS
	}
	switch s.Mac {
	case "MD5":
		s.Flags |= FlagMD5
	case "SHA":
		s.Flags |= FlagSHA1
	}
	s.TLS12 = !s.TLS13 && (s.Mac == "SHA256" || s.Mac == "SHA384" || s.Mac == "AEAD")
	s.Bits = cipherBits(e)
	return s
}

func cipherBits(enc string) int {
	switch {
	case enc == "NULL":
		return 0
	case strings.HasPrefix(enc, "3DES"):
		return 112
	case strings.HasPrefix(enc, "DES40"):
		return 40
	case strings.HasPrefix(enc, "DES"):
		return 56
	case strings.HasPrefix(enc, "CHACHA20"):
		return 256
	case strings.HasPrefix(enc, "IDEA"), strings.HasPrefix(enc, "SEED"):
		return 128
	}
	for _, part := range strings.Split(enc, "_") {
		if n, err := strconv.Atoi(part); err == nil && n >= 40 && n <= 256 {
			return n
		}
	}
	return 0
}
