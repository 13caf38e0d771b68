package replication

import (
	"errors"
	"fmt"

	"github.com/govgrid/govgrid/casework"
)

// Sentinel errors returned by Store. Check them with errors.Is.
var (
	// ErrNotLeader is returned when a write reaches a node that is not its site's leader and
	// no forwarder is configured, or the leader is unknown.
	ErrNotLeader = errors.New("replication: not the site leader")
	// ErrNoLeader is returned when the site has no leader at the moment (an election is running
	// or a majority is unreachable). The write was not applied; it is safe to retry.
	ErrNoLeader = errors.New("replication: the site has no leader")
	// ErrNotFound is returned when a case does not exist at this site.
	ErrNotFound = errors.New("replication: not found")
	// ErrCorruptCommand is returned (and logged loudly) for a log entry that does not decode.
	ErrCorruptCommand = errors.New("replication: corrupt command")
	// ErrClosed is returned by a Store after Close.
	ErrClosed = errors.New("replication: store closed")
)

// Error codes carried by Error.
const (
	CodeInvalid   = "invalid"
	CodeNotFound  = "not_found"
	CodeConflict  = "conflict"
	CodeExhausted = "exhausted"
	CodeForbidden = "forbidden"
)

// Error is a refusal decided by the FSM: the command was committed to the log but changed
// nothing. It crosses forwarding hops intact so that every node answers the same way.
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
	return &Error{Code: CodeInvalid, Message: err.Error()}
}

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
