// Package api holds what govgrid's HTTP and gRPC front ends share: the small interfaces they
// need from a node, and how the node's errors map to HTTP statuses and gRPC codes. The .proto
// contract and its generated code are in govgridpb; the servers in httpapi and grpcapi. None of
// them holds business logic.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/catalog"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
)

// CaseService is what the front ends need to serve cases. The node implements it: writes are
// forwarded to the site leader, reads answered from the local replica (or the leader's).
type CaseService interface {
	SubmitCase(ctx context.Context, sub *casework.Submission) (*casework.Case, error)
	GetCase(ctx context.Context, number string) (*casework.Case, error)
	ListCases(ctx context.Context, f sitestate.Filter) (*sitestate.Page, error)
	// MoveCase sends a case this site holds to a neighbour (d.Move, d.To, d.Actor, d.Reason;
	// the node fills the rest) and returns it locked, in transit.
	MoveCase(ctx context.Context, number string, d casework.Departure) (*casework.Case, error)
	// TakeStep takes a step of the life of a case this site holds (r.Step and what it records;
	// the node fills who, where and when) and returns the case.
	TakeStep(ctx context.Context, number string, r casework.StepRequest) (*casework.Case, error)
	// StepsFor says which steps of a case the caller may take now, at this site.
	StepsFor(ctx context.Context, number string) (*StepsAnswer, error)
	// ListSubtree lists this site's mirror of its subtree (its own cases and every descendant's),
	// newest first.
	ListSubtree(ctx context.Context, f sitestate.SubtreeFilter) (*sitestate.SubtreePage, error)
	// CitizenView answers the bearer of a case's query code: sitestate.ErrNotFound alike for an
	// unknown number and a wrong code, a CodeRateLimited refusal after too many failures from
	// client (its address; "" for another node passing a citizen's request on).
	CitizenView(ctx context.Context, number, code, client string) (*casework.CitizenView, error)
}

// NewRequestID names one failed request in the node's log and in its answer (an internal error's
// text goes to the log, never to the caller).
func NewRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// refusals maps the code of a refusal (sitestate.Error) to its HTTP status and gRPC code; the
// errors Status recognises by type map through it too.
var refusals = map[string]struct {
	http int
	grpc codes.Code
}{
	sitestate.CodeInvalid:      {http.StatusBadRequest, codes.InvalidArgument},
	sitestate.CodeNotFound:     {http.StatusNotFound, codes.NotFound},
	sitestate.CodeConflict:     {http.StatusConflict, codes.FailedPrecondition},
	sitestate.CodeExhausted:    {http.StatusServiceUnavailable, codes.ResourceExhausted},
	sitestate.CodeForbidden:    {http.StatusForbidden, codes.PermissionDenied},
	sitestate.CodeTooLarge:     {http.StatusRequestEntityTooLarge, codes.ResourceExhausted},
	sitestate.CodeUnavailable:  {http.StatusServiceUnavailable, codes.Unavailable},
	sitestate.CodeRateLimited:  {http.StatusTooManyRequests, codes.ResourceExhausted},
	sitestate.CodeUnauthorized: {http.StatusUnauthorized, codes.Unauthenticated},
}

// Status classifies err for both front ends: the HTTP status, the gRPC code and a short
// machine-readable code for the JSON body. A refusal with a code it does not know is internal.
func Status(err error) (httpStatus int, grpcCode codes.Code, code string) {
	var fe casework.FieldErrors
	var re *sitestate.Error
	var ce *casework.ConflictError
	var cp catalog.Problems
	switch {
	case errors.As(err, &cp):
		code = sitestate.CodeInvalid
	case errors.As(err, &ce):
		code = sitestate.CodeConflict
	case errors.As(err, &fe):
		code = sitestate.CodeInvalid
	case errors.As(err, &re):
		code = re.Code
	case errors.Is(err, sitestate.ErrNotFound):
		code = sitestate.CodeNotFound
	case errors.Is(err, replication.ErrNoLeader), errors.Is(err, replication.ErrNotLeader),
		errors.Is(err, replication.ErrClosed):
		code = sitestate.CodeUnavailable
	case errors.Is(err, replication.ErrForwardRefused):
		code = sitestate.CodeForbidden
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, codes.DeadlineExceeded, "timeout"
	case errors.Is(err, context.Canceled):
		return 499, codes.Canceled, "canceled"
	}
	if r, ok := refusals[code]; ok {
		return r.http, r.grpc, code
	}
	return http.StatusInternalServerError, codes.Internal, "internal"
}
