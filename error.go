// Package minipay holds what every minipay package shares: the error
// vocabulary. Domain packages return *Error values (or wrap them) for every
// failure a caller may branch on; package api turns them into HTTP responses
// in one place. Package ledger, which imports nothing of minipay, has its own
// error type with the same methods.
package minipay

import "errors"

// Kinds of failure. The API maps each to one HTTP status.
const (
	KindInvalid           = "invalid"            // 400: the request is malformed
	KindUnauthenticated   = "unauthenticated"    // 401: no valid key
	KindInsufficientFunds = "insufficient_funds" // 402: the payer cannot pay
	KindForbidden         = "forbidden"          // 403: the key may not do this
	KindNotFound          = "not_found"          // 404: no such object (for this key)
	KindConflict          = "conflict"           // 409: the object's state or an earlier request forbids it
	KindUnprocessable     = "unprocessable"      // 422: well-formed but not allowed by the rules
	KindRateLimited       = "rate_limited"       // 429: slow down
	KindUnavailable       = "unavailable"        // 503: shutting down or overloaded
)

// httpStatus is the HTTP status of each kind of failure: the API's JSON
// errors and the console's pages answer with the same one.
var httpStatus = map[string]int{
	KindInvalid: 400, KindUnauthenticated: 401, KindInsufficientFunds: 402, KindForbidden: 403,
	KindNotFound: 404, KindConflict: 409, KindUnprocessable: 422, KindRateLimited: 429, KindUnavailable: 503,
}

// HTTPStatus is the HTTP status that answers a failure of kind, or 0 for a
// kind this package does not define.
func HTTPStatus(kind string) int { return httpStatus[kind] }

// Error is a failure with a stable code. Compare with errors.Is against the
// package-level values; wrap with fmt.Errorf("...: %w", err) to add detail.
type Error struct {
	kind, code, msg string
	transient       bool
}

// NewError returns an error of the given kind and code.
func NewError(kind, code, msg string) *Error { return &Error{kind: kind, code: code, msg: msg} }

// NewTransientError returns an error of the given kind and code that says
// nothing lasting about the request: sent again, the same request may
// succeed (a collision with concurrent work, a shutdown). The API never
// stores such an answer for Idempotency-Key replays, so the client's retry
// with the same key runs the request again.
func NewTransientError(kind, code, msg string) *Error {
	return &Error{kind: kind, code: code, msg: msg, transient: true}
}

// Transient reports whether the error was made with NewTransientError.
func (e *Error) Transient() bool { return e.transient }

// IsTransient reports whether err, or an error it wraps, is transient.
func IsTransient(err error) bool {
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}

func (e *Error) Error() string { return e.msg }

// Code is the stable machine-readable code, such as "session_expired".
func (e *Error) Code() string { return e.code }

// Kind is the class of failure; see the Kind constants.
func (e *Error) Kind() string { return e.kind }

// FieldError ties an error to the request field it is about.
type FieldError struct {
	Field string
	Err   error
}

// Field wraps err with the name of the field at fault.
func Field(field string, err error) error { return &FieldError{Field: field, Err: err} }

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Param is the name of the field at fault.
func (e *FieldError) Param() string { return e.Field }
