package check

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
)

// ErrClass says why evidence could not be collected. It is stored with the
// evidence and shown as the reason of an unknown finding.
type ErrClass string

const (
	ErrTimeout     ErrClass = "timeout"     // no answer in time
	ErrUnreachable ErrClass = "unreachable" // connection refused, no route, dead host
	ErrDNS         ErrClass = "dns"         // SERVFAIL, REFUSED, malformed answer
	ErrBlocked     ErrClass = "blocked"     // the peer dropped or tarpitted the probe
	ErrScope       ErrClass = "scope"       // the scope guard refused the connection
	ErrNoDomain    ErrClass = "nxdomain"    // the asset's name does not exist in DNS
	ErrMalformed   ErrClass = "malformed"   // the peer answered garbage
	ErrTooLarge    ErrClass = "too-large"   // a response exceeded its bound
	ErrCanceled    ErrClass = "canceled"    // the run was interrupted
	ErrInternal    ErrClass = "internal"    // a bug: a panic or an unexpected state
	ErrOther       ErrClass = "error"
)

// Classifier is implemented by errors that know their class. It returns a
// plain string so that low-level packages (the resolver, probes) can classify
// their errors without importing this package.
type Classifier interface{ Class() string }

// ClassError wraps an error with a class.
type ClassError struct {
	Kind ErrClass
	Err  error
}

func (e *ClassError) Error() string { return e.Err.Error() }
func (e *ClassError) Unwrap() error { return e.Err }
func (e *ClassError) Class() string { return string(e.Kind) }

// Errorf-style helper: WithClass(ErrBlocked, err).
func WithClass(c ErrClass, err error) error {
	if err == nil {
		return nil
	}
	return &ClassError{Kind: c, Err: err}
}

// Classify finds the class of err: an explicit class anywhere in the chain
// wins, then well-known network and context errors.
func Classify(err error) ErrClass {
	if err == nil {
		return ""
	}
	var c Classifier
	if errors.As(err, &c) && c.Class() != "" {
		return ErrClass(c.Class())
	}
	switch {
	case errors.Is(err, context.Canceled):
		return ErrCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ECONNRESET):
		return ErrUnreachable
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTimeout
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return ErrDNS
	}
	return ErrOther
}
