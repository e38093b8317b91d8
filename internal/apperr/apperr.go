// Package apperr defines customs' application error: a code that says what
// kind of failure happened and a message that is safe to show to the caller.
//
// Every protocol maps the codes once: the registry to OCI error codes, the
// JSON API to HTTP statuses, admission to allowed:false, the CLI to exit codes.
// Internal details (wrapped errors) go to logs only, never to clients.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Application error codes.
const (
	ENOTFOUND     = "not_found"    // the thing asked for does not exist
	EINVALID      = "invalid"      // the request is malformed or breaks a rule
	ECONFLICT     = "conflict"     // the request conflicts with current state
	EUNAUTHORIZED = "unauthorized" // no or bad credentials
	EDENIED       = "denied"       // authenticated, but not allowed
	ETOOLARGE     = "too_large"    // a body or resource exceeds a limit
	EUNAVAILABLE  = "unavailable"  // a dependency is temporarily unavailable
	EINTERNAL     = "internal"     // a bug or an unexpected failure
	EUNSUPPORTED  = "unsupported"  // the operation or content type is not supported
	ERANGE        = "range"        // a byte range or offset is not satisfiable
)

// Error is an application error. Code is one of the E* constants; Message is
// meant for the caller; Detail optionally carries a protocol-specific subcode
// (for example the OCI error code "DIGEST_INVALID") that refines Code; Err is
// the underlying cause, logged but never shown.
type Error struct {
	Code    string
	Detail  string
	Message string
	Err     error
	// RetryAfter, when positive, is how long the caller should wait before
	// trying again; protocols that can say so answer it (HTTP Retry-After).
	RetryAfter time.Duration
}

// Error implements error. It includes the cause, so it is for logs.
func (e *Error) Error() string {
	s := e.Code
	if e.Detail != "" {
		s += "/" + e.Detail
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given code and message whose cause is err.
func Wrap(err error, code, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// WithDetail returns a copy of e with Detail set to detail.
func (e *Error) WithDetail(detail string) *Error {
	c := *e
	c.Detail = detail
	return &c
}

// Code returns the code of the first *Error in err's chain, EINTERNAL for any
// other non-nil error, and "" for nil.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// Detail returns the Detail of the first *Error in err's chain, or "".
func Detail(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Detail
	}
	return ""
}

// Message returns the caller-safe message of the first *Error in err's chain,
// or a generic message for any other error.
func Message(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error"
}

// RetryAfter returns the RetryAfter of the first *Error in err's chain, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// Is reports whether err carries the given code.
func Is(err error, code string) bool { return err != nil && Code(err) == code }
