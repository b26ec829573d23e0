package dnscheck

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Bounds of a trust anchor file: anchors are a handful of records.
const (
	maxAnchorFile = 1 << 20
	maxAnchors    = 64
)

// LoadTrustAnchors reads a trust anchor file (see ParseTrustAnchors).
func LoadTrustAnchors(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAnchorFile+1))
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %s: %w", path, err)
	}
	return ParseTrustAnchors(path, b)
}

// ParseTrustAnchors reads DNSSEC trust anchors in zone-file form: DS or
// DNSKEY records, with comments, $ORIGIN and $TTL (as Unbound's
// trust-anchor-file, or `keymgr ZONE ds` output). Relative names are
// relative to the root. Every record must be a DS or DNSKEY of class IN;
// a file with none, another type, a record that does not parse or more
// than 64 records is an error naming file:line. It returns the records in
// presentation format, with lower-case owner names.
func ParseTrustAnchors(name string, b []byte) ([]string, error) {
	if len(b) > maxAnchorFile {
		return nil, fmt.Errorf("%s: more than %d bytes: not a trust anchor file", name, maxAnchorFile)
	}
	zp := dns.NewZoneParser(bytes.NewReader(b), ".", name)
	zp.SetDefaultTTL(3600)
	lines := strings.Split(string(b), "\n")
	cursor := 0
	var out []string
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		line := anchorLine(lines, &cursor, rr)
		if len(out) == maxAnchors {
			return nil, fmt.Errorf("%s:%d: more than %d records: not a trust anchor file", name, line, maxAnchors)
		}
		s, err := checkAnchor(rr)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		out = append(out, s)
	}
	if err := zp.Err(); err != nil {
		return nil, zoneError(name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s:1: no DS or DNSKEY record in it", name)
	}
	return out, nil
}

// parseAnchor parses one anchor line of a policy (absolute names).
func parseAnchor(s string) (dns.RR, error) {
	if len(s) > 8192 {
		return nil, errors.New("longer than 8192 characters")
	}
	rr, err := dns.NewRR(s)
	if err != nil {
		return nil, err
	}
	if rr == nil {
		return nil, errors.New("no record")
	}
	if _, err := checkAnchor(rr); err != nil {
		return nil, err
	}
	rr.Header().Name = dns.CanonicalName(rr.Header().Name)
	return rr, nil
}

// checkAnchor accepts a DS with a digest of its type's length, or a zone
// key DNSKEY of protocol 3.
func checkAnchor(rr dns.RR) (string, error) {
	h := rr.Header()
	if h.Class != dns.ClassINET {
		return "", fmt.Errorf("%s record of class %s: trust anchors are of class IN", dns.TypeToString[h.Rrtype], dns.ClassToString[h.Class])
	}
	switch v := rr.(type) {
	case *dns.DS:
		if _, err := hex.DecodeString(v.Digest); err != nil || v.Digest == "" {
			return "", fmt.Errorf("DS %d: the digest is not hexadecimal", v.KeyTag)
		}
		if want, ok := dsDigestLen[v.DigestType]; ok && len(v.Digest) != want {
			return "", fmt.Errorf("DS %d: the digest has %d hex digits, and one of type %d has %d", v.KeyTag, len(v.Digest), v.DigestType, want)
		}
	case *dns.DNSKEY:
		if v.Flags&dns.ZONE == 0 || v.Protocol != 3 {
			return "", fmt.Errorf("DNSKEY %d: not a zone key (flags %d, protocol %d)", v.KeyTag(), v.Flags, v.Protocol)
		}
	default:
		return "", fmt.Errorf("a %s record: a trust anchor is a DS or DNSKEY record", dns.TypeToString[h.Rrtype])
	}
	h.Name = dns.CanonicalName(h.Name)
	return rr.String(), nil
}

// dsDigestLen is the hex length of the digest of each known DS digest type.
var dsDigestLen = map[uint8]int{dns.SHA1: 40, dns.SHA256: 64, dns.GOST94: 64, dns.SHA384: 96}

// anchorLine finds the line a parsed record starts on: the first line from
// the cursor whose fields (before a comment) include the record's type.
func anchorLine(lines []string, cursor *int, rr dns.RR) int {
	t := dns.TypeToString[rr.Header().Rrtype]
	for i := *cursor; i < len(lines); i++ {
		text, _, _ := strings.Cut(lines[i], ";")
		for _, f := range strings.Fields(text) {
			if strings.EqualFold(f, t) {
				*cursor = i + 1
				return i + 1
			}
		}
	}
	return *cursor + 1
}

// zoneError turns the zone parser's error ("file: dns: msg: "tok" at line:
// L:C") into "file:L: msg" (only the message's form: no decision reads it).
func zoneError(name string, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, name+": ")
	if i := strings.LastIndex(msg, " at line: "); i >= 0 {
		pos := msg[i+len(" at line: "):]
		lineNo, _, _ := strings.Cut(pos, ":")
		if _, err := strconv.Atoi(lineNo); err == nil {
			return fmt.Errorf("%s:%s: %s", name, lineNo, msg[:i])
		}
	}
	return fmt.Errorf("%s: %s", name, msg)
}
