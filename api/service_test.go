package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
)

func TestStatus(t *testing.T) {
	refusal := func(code string) error { return fmt.Errorf("apply: %w", &sitestate.Error{Code: code, Message: "m"}) }
	for _, tc := range []struct {
		name string
		err  error
		http int
		grpc codes.Code
		code string
	}{
		{"conflict", fmt.Errorf("depart: %w", &casework.ConflictError{Reason: "in transit"}), http.StatusConflict, codes.FailedPrecondition, "conflict"},
		{"field errors", casework.FieldErrors{{Field: "title", Reason: "is required"}}, http.StatusBadRequest, codes.InvalidArgument, "invalid"},
		{"refused invalid", refusal(sitestate.CodeInvalid), http.StatusBadRequest, codes.InvalidArgument, "invalid"},
		{"refused not found", refusal(sitestate.CodeNotFound), http.StatusNotFound, codes.NotFound, "not_found"},
		{"refused conflict", refusal(sitestate.CodeConflict), http.StatusConflict, codes.FailedPrecondition, "conflict"},
		{"refused exhausted", refusal(sitestate.CodeExhausted), http.StatusServiceUnavailable, codes.ResourceExhausted, "exhausted"},
		{"refused forbidden", refusal(sitestate.CodeForbidden), http.StatusForbidden, codes.PermissionDenied, "forbidden"},
		{"refused too large", refusal(sitestate.CodeTooLarge), http.StatusRequestEntityTooLarge, codes.ResourceExhausted, "too_large"},
		{"refused unavailable", refusal(sitestate.CodeUnavailable), http.StatusServiceUnavailable, codes.Unavailable, "unavailable"},
		{"refused with an unknown code", refusal("timeout"), http.StatusInternalServerError, codes.Internal, "internal"},
		{"not found", fmt.Errorf("read: %w", sitestate.ErrNotFound), http.StatusNotFound, codes.NotFound, "not_found"},
		{"no leader", replication.ErrNoLeader, http.StatusServiceUnavailable, codes.Unavailable, "unavailable"},
		{"not leader", fmt.Errorf("apply: %w", replication.ErrNotLeader), http.StatusServiceUnavailable, codes.Unavailable, "unavailable"},
		{"closed", replication.ErrClosed, http.StatusServiceUnavailable, codes.Unavailable, "unavailable"},
		{"deadline", context.DeadlineExceeded, http.StatusGatewayTimeout, codes.DeadlineExceeded, "timeout"},
		{"canceled", context.Canceled, 499, codes.Canceled, "canceled"},
		{"other", errors.New("disk on fire"), http.StatusInternalServerError, codes.Internal, "internal"},
	} {
		h, g, c := api.Status(tc.err)
		if h != tc.http || g != tc.grpc || c != tc.code {
			t.Errorf("%s: Status = %d, %v, %q; want %d, %v, %q", tc.name, h, g, c, tc.http, tc.grpc, tc.code)
		}
	}
}
