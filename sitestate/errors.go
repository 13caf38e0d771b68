package sitestate

import (
	"errors"
	"fmt"

	"github.com/govgrid/govgrid/casework"
)

// ErrNotFound is returned when a case (or another record asked for) does not exist at this site.
// Check it with errors.Is: a not-found refusal (*Error with CodeNotFound) matches it too.
var ErrNotFound = errors.New("sitestate: not found")

// Error codes carried by Error.
const (
	CodeInvalid   = "invalid"
	CodeNotFound  = "not_found"
	CodeConflict  = "conflict"
	CodeExhausted = "exhausted"
	CodeForbidden = "forbidden"
	// CodeTooLarge refuses a command that would write more than one command may: its proposer
	// splits it (see proposeInParts).
	CodeTooLarge = "too_large"
	// CodeUnavailable refuses a command the site cannot take now (it is being restored): the
	// caller tries again later.
	CodeUnavailable = "unavailable"
	// CodeRateLimited refuses a request from a caller that failed too often lately (a citizen's
	// wrong query codes): it may try again after a while.
	CodeRateLimited = "rate_limited"
	// CodeUnauthorized refuses a request without a valid sign-in: a wrong password, or a token
	// that is missing, forged, expired or revoked.
	CodeUnauthorized = "unauthorized"
)

// Error is a refusal decided by the state machine (or by a node before it proposes): the command
// was committed to the log but changed nothing. It crosses forwarding hops intact so that every
// node answers the same way.
type Error struct {
	Code    string               `json:"code"`
	Message string               `json:"message"`
	Fields  casework.FieldErrors `json:"fields,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrNotFound) true for a not-found refusal.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Code == CodeNotFound
}

// refusal turns a domain error into the Error answered for it.
func refusal(err error) *Error {
	var fe casework.FieldErrors
	if errors.As(err, &fe) {
		return &Error{Code: CodeInvalid, Message: fe.Error(), Fields: fe}
	}
	var re *Error
	if errors.As(err, &re) {
		return re
	}
	var ce *casework.ConflictError
	if errors.As(err, &ce) {
		return &Error{Code: CodeConflict, Message: ce.Reason}
	}
	var se *casework.StepError
	if errors.As(err, &se) {
		return &Error{Code: CodeConflict, Message: se.Error()}
	}
	return &Error{Code: CodeInvalid, Message: err.Error()}
}

// errorf builds an Error with a formatted message.
func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Errorf builds a refusal for the layers above the state machine (a node that refuses a request
// before proposing it answers the same way the state machine would).
func Errorf(code, format string, args ...any) *Error { return errorf(code, format, args...) }
