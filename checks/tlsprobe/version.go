package tlsprobe

import (
	"fmt"
	"strings"
)

// Version is a protocol version as it appears on the wire.
type Version uint16

const (
	SSL20 Version = 0x0002
	SSL30 Version = 0x0300
	TLS10 Version = 0x0301
	TLS11 Version = 0x0302
	TLS12 Version = 0x0303
	TLS13 Version = 0x0304
)

// Versions lists every version the prober tests, oldest first.
var Versions = []Version{SSL20, SSL30, TLS10, TLS11, TLS12, TLS13}

func (v Version) String() string {
	switch v {
	case SSL20:
		return "SSLv2"
	case SSL30:
		return "SSLv3"
	case TLS10:
		return "TLS1.0"
	case TLS11:
		return "TLS1.1"
	case TLS12:
		return "TLS1.2"
	case TLS13:
		return "TLS1.3"
	}
	return fmt.Sprintf("0x%04X", uint16(v))
}

// MarshalText stores versions by name in evidence.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (v *Version) UnmarshalText(b []byte) error {
	for _, x := range Versions {
		if strings.EqualFold(x.String(), string(b)) {
			*v = x
			return nil
		}
	}
	var n uint16
	if _, err := fmt.Sscanf(string(b), "0x%04X", &n); err != nil {
		return fmt.Errorf("tlsprobe: unknown version %q", b)
	}
	*v = Version(n)
	return nil
}

// known reports whether the prober can speak v.
func (v Version) known() bool { return v >= SSL30 && v <= TLS13 }

// SuiteID is a suite id that is stored in evidence by IANA name.
type SuiteID uint16

func (s SuiteID) String() string { return Name(uint16(s)) }

// Suite returns the registry entry; ok is false for an id the registry
// does not know.
func (s SuiteID) Suite() (Suite, bool) { return SuiteByID(uint16(s)) }

func (s SuiteID) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *SuiteID) UnmarshalText(b []byte) error {
	if x, ok := SuiteByName(string(b)); ok {
		*s = SuiteID(x.ID)
		return nil
	}
	var n uint16
	if _, err := fmt.Sscanf(string(b), "0x%04X", &n); err != nil {
		return fmt.Errorf("tlsprobe: unknown cipher suite %q", b)
	}
	*s = SuiteID(n)
	return nil
}

// Group is a named group (elliptic curve or finite-field group).
type Group uint16

// Named groups (IANA "TLS Supported Groups").
const (
	GroupSecp256r1 Group = 23
	GroupSecp384r1 Group = 24
	GroupSecp521r1 Group = 25
	GroupX25519    Group = 29
	GroupX448      Group = 30
	GroupFFDHE2048 Group = 256
	GroupFFDHE3072 Group = 257
	GroupFFDHE4096 Group = 258
)

var groupNames = map[Group]string{
	1: "sect163k1", 2: "sect163r1", 3: "sect163r2", 4: "sect193r1", 5: "sect193r2",
	6: "sect233k1", 7: "sect233r1", 8: "sect239k1", 9: "sect283k1", 10: "sect283r1",
	11: "sect409k1", 12: "sect409r1", 13: "sect571k1", 14: "sect571r1", 15: "secp160k1",
	16: "secp160r1", 17: "secp160r2", 18: "secp192k1", 19: "secp192r1", 20: "secp224k1",
	21: "secp224r1", 22: "secp256k1", 23: "secp256r1", 24: "secp384r1", 25: "secp521r1",
	26: "brainpoolP256r1", 27: "brainpoolP384r1", 28: "brainpoolP512r1",
	29: "x25519", 30: "x448", 256: "ffdhe2048", 257: "ffdhe3072", 258: "ffdhe4096",
	259: "ffdhe6144", 260: "ffdhe8192", 0x11EC: "X25519MLKEM768",
}

func (g Group) String() string {
	if n, ok := groupNames[g]; ok {
		return n
	}
	return fmt.Sprintf("group-0x%04X", uint16(g))
}

func (g Group) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

func (g *Group) UnmarshalText(b []byte) error {
	for k, n := range groupNames {
		if n == string(b) {
			*g = k
			return nil
		}
	}
	var n uint16
	if _, err := fmt.Sscanf(string(b), "group-0x%04X", &n); err != nil {
		return fmt.Errorf("tlsprobe: unknown group %q", b)
	}
	*g = Group(n)
	return nil
}
