package tlscheck

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/tlsprobe"
)

// Verdict is one rule's judgement, before it becomes a Finding. Severity
// is set only when it differs from the rule's default (expiry warnings).
type Verdict struct {
	Outcome  check.Outcome
	Severity check.Severity
	Message  string
	Reason   string // error class of an unknown
}

// Finding turns a verdict into a finding of catalogue id id.
func (v Verdict) Finding(id string) check.Finding {
	return check.Finding{CheckID: id, Rule: Rule(id), Outcome: v.Outcome, Severity: v.Severity, Message: v.Message, Reason: v.Reason}
}

func pass(format string, a ...any) Verdict {
	return Verdict{Outcome: check.Pass, Message: fmt.Sprintf(format, a...)}
}
func warn(format string, a ...any) Verdict {
	return Verdict{Outcome: check.Warn, Message: fmt.Sprintf(format, a...)}
}
func fail(format string, a ...any) Verdict {
	return Verdict{Outcome: check.Fail, Message: fmt.Sprintf(format, a...)}
}
func na(format string, a ...any) Verdict {
	return Verdict{Outcome: check.NA, Message: fmt.Sprintf(format, a...)}
}

func unknownOf(vr tlsprobe.VersionResult) Verdict {
	reason := string(vr.ErrorClass)
	if reason == "" {
		reason = string(check.ErrOther)
	}
	return Verdict{Outcome: check.Unknown, Reason: reason,
		Message: fmt.Sprintf("could not tell whether %v is accepted: %s", vr.Version, vr.Error)}
}

// Silent reports whether the server gave no TLS answer at all: nothing was
// accepted, and every hello it was sent met a closed connection (or an
// error), never an alert or a ServerHello. A TLS server that refuses a
// version says so with an alert; a port that closes on every hello, the
// full TLS 1.2 and 1.3 offers included (a filter, a tarpit that gives up,
// a service that is not TLS, a front end with no certificate for the
// name), tells nothing about its TLS, so no rule can be judged: without
// this, "no version accepted" would fail tls.min-version.
func Silent(r *tlsprobe.Report) bool {
	closed := false
	for _, vr := range r.Versions {
		switch {
		case vr.State == tlsprobe.Accepted:
			return false
		case vr.State != tlsprobe.Refused, vr.Inferred:
		case vr.Refusal != "connection closed":
			return false
		default:
			closed = true
		}
	}
	return closed
}

// EvalNoSSL: SSLv2 or SSLv3 accepted fails.
func EvalNoSSL(r *tlsprobe.Report) Verdict {
	var accepted []string
	var unk *tlsprobe.VersionResult
	for _, v := range []tlsprobe.Version{tlsprobe.SSL20, tlsprobe.SSL30} {
		vr := r.Version(v)
		switch vr.State {
		case tlsprobe.Accepted:
			accepted = append(accepted, describe(vr))
		case tlsprobe.Refused:
		default:
			if unk == nil {
				unk = &vr
			}
		}
	}
	switch {
	case len(accepted) > 0:
		return fail("the server accepts %s", strings.Join(accepted, " and "))
	case unk != nil:
		return unknownOf(*unk)
	}
	return pass("SSLv2 and SSLv3 are refused")
}

// describe names a version and its accepted suites for a message.
func describe(vr tlsprobe.VersionResult) string {
	if vr.Version == tlsprobe.SSL20 {
		return fmt.Sprintf("SSLv2 (%d cipher kinds)", len(vr.SSLv2Ciphers))
	}
	names := make([]string, 0, len(vr.Suites))
	for _, s := range vr.Suites {
		names = append(names, s.String())
	}
	return fmt.Sprintf("%v (%s)", vr.Version, clipList(names, 4))
}

func clipList(xs []string, n int) string {
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:n], ", ") + fmt.Sprintf(" and %d more", len(xs)-n)
}

// EvalMinVersion (web): the lowest accepted version must be TLS 1.2 or
// 1.3; anything lower accepted fails.
func EvalMinVersion(r *tlsprobe.Report) Verdict {
	for _, v := range []tlsprobe.Version{tlsprobe.SSL20, tlsprobe.SSL30, tlsprobe.TLS10, tlsprobe.TLS11} {
		vr := r.Version(v)
		if vr.State == tlsprobe.Accepted {
			return fail("the lowest version accepted is %s; TLS 1.0 and 1.1 must be refused", describe(vr))
		}
	}
	for _, v := range []tlsprobe.Version{tlsprobe.TLS10, tlsprobe.TLS11} {
		if vr := r.Version(v); vr.State != tlsprobe.Refused {
			return unknownOf(vr)
		}
	}
	switch {
	case r.Accepts(tlsprobe.TLS12):
		return pass("TLS 1.0 and 1.1 are refused; the lowest version accepted is TLS 1.2")
	case r.Accepts(tlsprobe.TLS13):
		return pass("only TLS 1.3 is accepted")
	}
	for _, v := range []tlsprobe.Version{tlsprobe.TLS12, tlsprobe.TLS13} {
		if vr := r.Version(v); vr.State != tlsprobe.Refused {
			return unknownOf(vr)
		}
	}
	return fail("no protocol version is accepted: neither TLS 1.2 nor TLS 1.3")
}

// EvalTLS13: absent is informational (warn at severity info: never fail).
func EvalTLS13(r *tlsprobe.Report) Verdict {
	vr := r.Version(tlsprobe.TLS13)
	switch vr.State {
	case tlsprobe.Accepted:
		return pass("TLS 1.3 is offered (%s)", clipList(suiteNames(vr.Suites), 5))
	case tlsprobe.Refused:
		v := warn("TLS 1.3 is not offered (%s)", vr.Refusal)
		v.Severity = check.Info
		return v
	}
	return unknownOf(vr)
}

func suiteNames(ids []tlsprobe.SuiteID) []string {
	out := make([]string, len(ids))
	for i, s := range ids {
		out[i] = s.String()
	}
	return out
}

// WeakClass says how a suite fails tls.weak-ciphers: "fail" (NULL, EXPORT,
// single DES, RC4 with MD5, and on web hosts also RC4, 3DES and
// anonymous), "warn" (RC4-SHA, 3DES and anonymous on SMTP, checks.md §1.1
// and §3.1.7: opportunistic SMTP does not authenticate the server anyway),
// or "".
func WeakClass(s tlsprobe.Suite, smtp bool) string {
	switch {
	case s.Has(tlsprobe.FlagNULL), s.Has(tlsprobe.FlagExport), s.Has(tlsprobe.FlagDES),
		s.Has(tlsprobe.FlagRC4) && s.Has(tlsprobe.FlagMD5):
		return "fail"
	case s.Has(tlsprobe.FlagRC4), s.Has(tlsprobe.Flag3DES), s.Has(tlsprobe.FlagAnon):
		if smtp {
			return "warn"
		}
		return "fail"
	}
	return ""
}

// EvalWeakCiphers judges every accepted suite at every version.
func EvalWeakCiphers(r *tlsprobe.Report, smtp bool) Verdict {
	var fails, warns []string
	seen := map[string]bool{}
	var unk *tlsprobe.VersionResult
	for _, vr := range r.Versions {
		if vr.Version == tlsprobe.SSL20 && vr.State == tlsprobe.Accepted {
			fails = append(fails, "SSLv2 ciphers")
		}
		for _, id := range vr.Suites {
			s, ok := id.Suite()
			if !ok || seen[s.Name] {
				continue
			}
			switch WeakClass(s, smtp) {
			case "fail":
				seen[s.Name] = true
				fails = append(fails, s.Name)
			case "warn":
				seen[s.Name] = true
				warns = append(warns, s.Name)
			}
		}
		if (vr.State == tlsprobe.Unknown || (vr.State == tlsprobe.Accepted && !vr.Complete)) && unk == nil {
			v := vr
			unk = &v
		}
	}
	switch {
	case len(fails) > 0:
		return fail("weak suites accepted: %s", clipList(append(fails, warns...), 6))
	case len(warns) > 0:
		return warn("weak suites accepted: %s", clipList(warns, 6))
	case unk != nil:
		u := unknownOf(*unk)
		u.Message = fmt.Sprintf("no weak suite seen, but %v could not be fully tested: %s", unk.Version, unk.Error)
		return u
	}
	return pass("no NULL, EXPORT, DES, RC4, 3DES or anonymous suite is accepted at any version")
}

// modernClient is a current browser's TLS 1.2 offer, in its order: what
// "a full modern client list" means for tls.cipher-preference.
var modernClient = []uint16{
	0xC02B, 0xC02F, 0xCCA9, 0xCCA8, 0xC02C, 0xC030, // ECDHE AES-GCM, ChaCha20
	0xC00A, 0xC009, 0xC013, 0xC014, // ECDHE AES-CBC-SHA
	0x009E, 0x009F, // DHE-RSA AES-GCM
	0x009C, 0x009D, 0x002F, 0x0035, // RSA
}

// goodChoice: forward secret with an AEAD cipher, or ECDHE with AES-CBC
// and a SHA-2 MAC (Mail Check's PASS list).
func goodChoice(s tlsprobe.Suite) bool {
	if WeakClass(s, false) != "" {
		return false
	}
	if s.TLS13 || (s.Has(tlsprobe.FlagPFS) && s.Has(tlsprobe.FlagAEAD)) {
		return true
	}
	return s.Kx == "ECDHE" && strings.HasPrefix(s.Enc, "AES") && (s.Mac == "SHA256" || s.Mac == "SHA384")
}

// ModernChoice is the suite the server would pick for a modern client at
// version v: the first of its own order that the client offers when it
// imposes one, else the client's first that it accepts; failing both, its
// pick from our full offer.
func ModernChoice(r *tlsprobe.Report, v tlsprobe.Version) (tlsprobe.Suite, bool) {
	vr := r.Version(v)
	if len(vr.Suites) == 0 {
		return tlsprobe.Suite{}, false
	}
	pick := vr.Suites[0]
	if r.Preference == "server" && r.PreferenceVersion == v {
		for _, id := range vr.Suites {
			if slices.Contains(modernClient, uint16(id)) {
				pick = id
				break
			}
		}
	} else {
		for _, id := range modernClient {
			if slices.Contains(vr.Suites, tlsprobe.SuiteID(id)) {
				pick = tlsprobe.SuiteID(id)
				break
			}
		}
	}
	s, ok := pick.Suite()
	return s, ok
}

// EvalCipherPreference judges the suite a modern client gets over TLS 1.2
// (or the highest version below it the server speaks).
func EvalCipherPreference(r *tlsprobe.Report) Verdict {
	for _, v := range []tlsprobe.Version{tlsprobe.TLS12, tlsprobe.TLS11, tlsprobe.TLS10, tlsprobe.SSL30} {
		vr := r.Version(v)
		switch vr.State {
		case tlsprobe.Unknown:
			return unknownOf(vr)
		case tlsprobe.Refused:
			continue
		}
		s, ok := ModernChoice(r, v)
		if !ok {
			return Verdict{Outcome: check.Unknown, Reason: string(check.ErrOther), Message: "accepted suites not recognised"}
		}
		order := "follows the client's order"
		switch r.Preference {
		case "server":
			order = "imposes its own order"
		case "mixed":
			order = "follows neither its own nor the client's order consistently"
		case "":
			order = "was not tested for a suite order of its own"
		}
		where := ""
		if v != tlsprobe.TLS12 {
			where = fmt.Sprintf(" (TLS 1.2 is refused; judged at %v)", v)
		}
		if goodChoice(s) {
			return pass("a modern client gets %s%s; the server %s", s.Name, where, order)
		}
		return warn("a modern client gets %s%s, which lacks forward secrecy or an AEAD/SHA-2 cipher; the server %s", s.Name, where, order)
	}
	if r.Accepts(tlsprobe.TLS13) {
		return na("TLS 1.2 and below are refused; every TLS 1.3 suite is forward secret and AEAD")
	}
	if vr := r.Version(tlsprobe.TLS13); vr.State == tlsprobe.Unknown {
		return unknownOf(vr)
	}
	return na("no protocol version is accepted")
}

// EvalDHGroup: every DH prime seen when a DHE suite was chosen must have
// at least minBits.
func EvalDHGroup(r *tlsprobe.Report, minBits int) Verdict {
	dhe := false
	for _, vr := range r.Versions {
		for _, id := range vr.Suites {
			if s, ok := id.Suite(); ok && s.KxClass() == "DHE" {
				dhe = true
			}
		}
	}
	switch {
	case !dhe:
		return na("no finite-field DHE suite is accepted")
	case len(r.DHBits) == 0:
		return Verdict{Outcome: check.Unknown, Reason: string(check.ErrMalformed), Message: "DHE suites are accepted but no DH parameters were seen"}
	case r.DHBits[0] < minBits:
		return fail("DHE uses a %d-bit group (sizes seen: %v); %d bits or more are needed", r.DHBits[0], r.DHBits, minBits)
	}
	return pass("DHE uses groups of %v bits", r.DHBits)
}
