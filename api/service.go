// Package api holds what govgrid's HTTP and gRPC front ends share: the small interfaces they
// need from a node, and how the node's errors map to HTTP statuses and gRPC codes. The .proto
// contract and its generated code are in govgridpb; the servers in httpapi and grpcapi. None of
// them holds business logic.
package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/govgrid/govgrid/casework"
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
	// ListSubtree lists this site's mirror of its subtree (its own cases and every descendant's),
	// newest first.
	ListSubtree(ctx context.Context, f sitestate.SubtreeFilter) (*sitestate.SubtreePage, error)
}

// Status classifies err for both front ends: the HTTP status, the gRPC code and a short
// machine-readable code for the JSON body.
func Status(err error) (httpStatus int, grpcCode codes.Code, code string) {
	var fe casework.FieldErrors
	var re *sitestate.Error
	var ce *casework.ConflictError
	switch {
	case errors.As(err, &ce):
		return http.StatusConflict, codes.FailedPrecondition, sitestate.CodeConflict
	case errors.As(err, &fe):
		return http.StatusBadRequest, codes.InvalidArgument, sitestate.CodeInvalid
	case errors.As(err, &re):
		switch re.Code {
		case sitestate.CodeInvalid:
			return http.StatusBadRequest, codes.InvalidArgument, re.Code
		case sitestate.CodeNotFound:
			return http.StatusNotFound, codes.NotFound, re.Code
		case sitestate.CodeConflict:
			return http.StatusConflict, codes.FailedPrecondition, re.Code
		case sitestate.CodeExhausted:
			return http.StatusServiceUnavailable, codes.ResourceExhausted, re.Code
		case sitestate.CodeForbidden:
			return http.StatusForbidden, codes.PermissionDenied, re.Code
		case sitestate.CodeTooLarge:
			return http.StatusRequestEntityTooLarge, codes.ResourceExhausted, re.Code
		case sitestate.CodeUnavailable:
			return http.StatusServiceUnavailable, codes.Unavailable, re.Code
		}
	case errors.Is(err, sitestate.ErrNotFound):
		return http.StatusNotFound, codes.NotFound, sitestate.CodeNotFound
	case errors.Is(err, replication.ErrNoLeader), errors.Is(err, replication.ErrNotLeader),
		errors.Is(err, replication.ErrClosed):
		return http.StatusServiceUnavailable, codes.Unavailable, "unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, codes.DeadlineExceeded, "timeout"
	case errors.Is(err, context.Canceled):
		return 499, codes.Canceled, "canceled"
	}
	return http.StatusInternalServerError, codes.Internal, "internal"
}
