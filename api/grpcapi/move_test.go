package grpcapi_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/govgrid/govgrid/api/apitest"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
)

func TestMoveCase(t *testing.T) {
	tests := []struct {
		name string
		req  *pb.MoveCaseRequest
		want casework.Departure
		to   string
	}{
		{"escalate", &pb.MoveCaseRequest{Number: apitest.Number, Move: "escalate", Reason: "超出本级权限", Actor: "clerk-07"},
			casework.Departure{Move: casework.MoveEscalate, Reason: "超出本级权限", Actor: "clerk-07"}, apitest.Parent},
		{"handdown", &pb.MoveCaseRequest{Number: apitest.Number, Move: "handdown", ToSite: "cd-dgdj-ngj-a", Reason: "三日内办结", Actor: "lead-2"},
			casework.Departure{Move: casework.MoveHandDown, To: "cd-dgdj-ngj-a", Reason: "三日内办结", Actor: "lead-2"}, "cd-dgdj-ngj-a"},
		{"return", &pb.MoveCaseRequest{Number: apitest.Number, Move: "return", ToSite: "cd-dgdj-ngj-b", Reason: "材料不全"},
			casework.Departure{Move: casework.MoveReturn, To: "cd-dgdj-ngj-b", Reason: "材料不全"}, "cd-dgdj-ngj-b"},
		{"relay", &pb.MoveCaseRequest{Number: apitest.Number, Move: "relay"},
			casework.Departure{Move: casework.MoveRelay}, apitest.Parent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			got, err := e.client.MoveCase(ctx(t), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			calls := e.cases.Calls().Moves
			if len(calls) != 1 || calls[0].Number != apitest.Number || !reflect.DeepEqual(calls[0].Departure, tt.want) {
				t.Fatalf("the service got %+v, want one call for %s with %+v", calls, apitest.Number, tt.want)
			}
			tr := got.GetTransit()
			if tr.GetHandoffId() != casework.HandoffID(apitest.Number, 2) || tr.GetToSite() != tt.to || tr.GetMove() != tt.req.GetMove() {
				t.Errorf("transit %v", tr)
			}
			if got.GetNumber() != apitest.Number || got.GetHolderSite() != apitest.Site || got.GetVersion() != 2 {
				t.Errorf("answer %v", got)
			}
			c := grpcapi.CaseFromProto(got)
			if err := c.VerifyHistory(); err != nil {
				t.Errorf("VerifyHistory on the answer: %v", err)
			}
			if last := c.History[len(c.History)-1]; last.FromSite != apitest.Site || last.ToSite != tt.to || last.Note != tt.want.Reason {
				t.Errorf("last event %+v", last)
			}
		})
	}
}

func TestMoveCaseErrors(t *testing.T) {
	transit := &casework.ConflictError{Reason: "case " + apitest.Number + " is in transit to cd-dgdj"}
	tests := []struct {
		name   string
		req    *pb.MoveCaseRequest
		err    error
		code   codes.Code
		msg    string // a prefix of the status message
		called bool
	}{
		{"malformed number", &pb.MoveCaseRequest{Number: "abc", Move: "escalate"}, nil, codes.InvalidArgument, "number: ", false},
		{"no number", &pb.MoveCaseRequest{Move: "escalate"}, nil, codes.InvalidArgument, "number: ", false},
		{"bad number and bad move", &pb.MoveCaseRequest{Number: "abc", Move: "close"}, nil, codes.InvalidArgument, "number: ", false},
		{"unknown move", &pb.MoveCaseRequest{Number: apitest.Number, Move: "close"}, nil, codes.InvalidArgument, "move: ", false},
		{"no move", &pb.MoveCaseRequest{Number: apitest.Number}, nil, codes.InvalidArgument, "move: ", false},
		{"move in capitals", &pb.MoveCaseRequest{Number: apitest.Number, Move: "Escalate"}, nil, codes.InvalidArgument, "move: ", false},
		{"in transit", &pb.MoveCaseRequest{Number: apitest.Number, Move: "escalate"}, transit, codes.FailedPrecondition, transit.Reason, true},
		{"wrapped conflict", &pb.MoveCaseRequest{Number: apitest.Number, Move: "escalate"}, fmt.Errorf("depart: %w", transit),
			codes.FailedPrecondition, "depart: " + transit.Reason, true},
		{"refused conflict", &pb.MoveCaseRequest{Number: apitest.Number, Move: "return"},
			&sitestate.Error{Code: sitestate.CodeConflict, Message: "no site to return it to"}, codes.FailedPrecondition, "no site to return it to", true},
		{"unknown site", &pb.MoveCaseRequest{Number: apitest.Number, Move: "handdown", ToSite: "x"},
			&sitestate.Error{Code: sitestate.CodeNotFound, Message: "unknown site x"}, codes.NotFound, "unknown site x", true},
		{"not held", &pb.MoveCaseRequest{Number: apitest.Number, Move: "escalate"}, sitestate.ErrNotFound, codes.NotFound, "", true},
		{"field errors", &pb.MoveCaseRequest{Number: apitest.Number, Move: "handdown"},
			casework.FieldErrors{{Field: "to_site", Reason: "is required"}}, codes.InvalidArgument, "invalid request: to_site: ", true},
		{"no leader", &pb.MoveCaseRequest{Number: apitest.Number, Move: "escalate"}, replication.ErrNoLeader, codes.Unavailable, "", true},
		{"other", &pb.MoveCaseRequest{Number: apitest.Number, Move: "escalate"}, errors.New("boom"), codes.Internal, "boom", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.cases.MoveErr = tt.err
			_, err := e.client.MoveCase(ctx(t), tt.req)
			st := wantCode(t, err, tt.code)
			if !strings.HasPrefix(st.Message(), tt.msg) {
				t.Errorf("message %q, want it to start with %q", st.Message(), tt.msg)
			}
			if n := len(e.cases.Calls().Moves); (n == 1) != tt.called {
				t.Errorf("MoveCase called %d times, want called=%v", n, tt.called)
			}
		})
	}
}

func TestErrConflict(t *testing.T) {
	for _, err := range []error{
		&casework.ConflictError{Reason: "locked"},
		fmt.Errorf("depart: %w", &casework.ConflictError{Reason: "locked"}),
		&sitestate.Error{Code: sitestate.CodeConflict, Message: "locked"},
	} {
		got := grpcapi.Err(err)
		st := wantCode(t, got, codes.FailedPrecondition)
		if st.Message() != err.Error() {
			t.Errorf("message %q, want %q", st.Message(), err.Error())
		}
	}
}
