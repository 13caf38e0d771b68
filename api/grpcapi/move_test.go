package grpcapi_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

func TestMoveCase(t *testing.T) {
	tests := []struct {
		name string
		req  *pb.MoveCaseRequest
		want casework.Departure
		to   string
	}{
		{"escalate", &pb.MoveCaseRequest{Number: testNumber, Move: "escalate", Reason: "超出本级权限", Actor: "clerk-07"},
			casework.Departure{Move: casework.MoveEscalate, Reason: "超出本级权限", Actor: "clerk-07"}, testParent},
		{"handdown", &pb.MoveCaseRequest{Number: testNumber, Move: "handdown", ToSite: "cd-dgdj-ngj-a", Reason: "三日内办结", Actor: "lead-2"},
			casework.Departure{Move: casework.MoveHandDown, To: "cd-dgdj-ngj-a", Reason: "三日内办结", Actor: "lead-2"}, "cd-dgdj-ngj-a"},
		{"return", &pb.MoveCaseRequest{Number: testNumber, Move: "return", ToSite: "cd-dgdj-ngj-b", Reason: "材料不全"},
			casework.Departure{Move: casework.MoveReturn, To: "cd-dgdj-ngj-b", Reason: "材料不全"}, "cd-dgdj-ngj-b"},
		{"relay", &pb.MoveCaseRequest{Number: testNumber, Move: "relay"},
			casework.Departure{Move: casework.MoveRelay}, testParent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			got, err := e.client.MoveCase(ctx(t), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			calls := e.cases.moveCalls()
			if len(calls) != 1 || calls[0].number != testNumber || !reflect.DeepEqual(calls[0].d, tt.want) {
				t.Fatalf("the service got %+v, want one call for %s with %+v", calls, testNumber, tt.want)
			}
			tr := got.GetTransit()
			if tr.GetHandoffId() != casework.HandoffID(testNumber, 2) || tr.GetToSite() != tt.to || tr.GetMove() != tt.req.GetMove() {
				t.Errorf("transit %v", tr)
			}
			if got.GetNumber() != testNumber || got.GetHolderSite() != testSite || got.GetVersion() != 2 {
				t.Errorf("answer %v", got)
			}
			c := grpcapi.CaseFromProto(got)
			if err := c.VerifyHistory(); err != nil {
				t.Errorf("VerifyHistory on the answer: %v", err)
			}
			if last := c.History[len(c.History)-1]; last.FromSite != testSite || last.ToSite != tt.to || last.Note != tt.want.Reason {
				t.Errorf("last event %+v", last)
			}
		})
	}
}

func TestMoveCaseErrors(t *testing.T) {
	transit := &casework.ConflictError{Reason: "case " + testNumber + " is in transit to cd-dgdj"}
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
		{"unknown move", &pb.MoveCaseRequest{Number: testNumber, Move: "close"}, nil, codes.InvalidArgument, "move: ", false},
		{"no move", &pb.MoveCaseRequest{Number: testNumber}, nil, codes.InvalidArgument, "move: ", false},
		{"move in capitals", &pb.MoveCaseRequest{Number: testNumber, Move: "Escalate"}, nil, codes.InvalidArgument, "move: ", false},
		{"in transit", &pb.MoveCaseRequest{Number: testNumber, Move: "escalate"}, transit, codes.FailedPrecondition, transit.Reason, true},
		{"wrapped conflict", &pb.MoveCaseRequest{Number: testNumber, Move: "escalate"}, fmt.Errorf("depart: %w", transit),
			codes.FailedPrecondition, "depart: " + transit.Reason, true},
		{"refused conflict", &pb.MoveCaseRequest{Number: testNumber, Move: "return"},
			&replication.Error{Code: replication.CodeConflict, Message: "no site to return it to"}, codes.FailedPrecondition, "no site to return it to", true},
		{"unknown site", &pb.MoveCaseRequest{Number: testNumber, Move: "handdown", ToSite: "x"},
			&replication.Error{Code: replication.CodeNotFound, Message: "unknown site x"}, codes.NotFound, "unknown site x", true},
		{"not held", &pb.MoveCaseRequest{Number: testNumber, Move: "escalate"}, replication.ErrNotFound, codes.NotFound, "", true},
		{"field errors", &pb.MoveCaseRequest{Number: testNumber, Move: "handdown"},
			casework.FieldErrors{{Field: "to_site", Reason: "is required"}}, codes.InvalidArgument, "invalid request: to_site: ", true},
		{"no leader", &pb.MoveCaseRequest{Number: testNumber, Move: "escalate"}, replication.ErrNoLeader, codes.Unavailable, "", true},
		{"other", &pb.MoveCaseRequest{Number: testNumber, Move: "escalate"}, errors.New("boom"), codes.Internal, "boom", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.cases.moveErr = tt.err
			_, err := e.client.MoveCase(ctx(t), tt.req)
			st := wantCode(t, err, tt.code)
			if !strings.HasPrefix(st.Message(), tt.msg) {
				t.Errorf("message %q, want it to start with %q", st.Message(), tt.msg)
			}
			if n := len(e.cases.moveCalls()); (n == 1) != tt.called {
				t.Errorf("MoveCase called %d times, want called=%v", n, tt.called)
			}
		})
	}
}

func TestHandoff(t *testing.T) {
	e := newEnv(t)
	items := []*pb.HandoffItem{
		{Id: testNumber + "#2", Record: []byte(`{"number":"` + testNumber + `"}`)},
		{Id: "cd-dgdj-ngj-20261125-000002#5", Record: []byte(`{}`)},
		{Id: "cd-dgdj-ngj-20261125-000003#3"},
	}
	e.cluster.outcomes = []replication.ArrivalOutcome{
		{ID: items[0].Id, Outcome: replication.OutcomeApplied},
		{ID: items[1].Id, Outcome: replication.OutcomeDuplicate},
		{ID: items[2].Id, Outcome: replication.OutcomeRefused, Reason: "site cd-dgdj is retired: merged into cd"},
	}
	res, err := e.peer.Handoff(ctx(t), &pb.HandoffRequest{FromSite: testSite, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	calls := e.cluster.handoffCalls()
	if len(calls) != 1 || calls[0].from != testSite || len(calls[0].items) != len(items) {
		t.Fatalf("ReceiveHandoffs calls %+v", calls)
	}
	for i, it := range calls[0].items {
		if !proto.Equal(it, items[i]) {
			t.Errorf("item %d reached the node as %v, want %v", i, it, items[i])
		}
	}
	want := []*pb.HandoffAck{
		{Id: items[0].Id, Outcome: "applied"},
		{Id: items[1].Id, Outcome: "duplicate"},
		{Id: items[2].Id, Outcome: "refused", Reason: "site cd-dgdj is retired: merged into cd"},
	}
	if len(res.GetAcks()) != len(want) {
		t.Fatalf("acks %v, want %v", res.GetAcks(), want)
	}
	for i, a := range res.GetAcks() {
		if !proto.Equal(a, want[i]) {
			t.Errorf("ack %d = %v, want %v", i, a, want[i])
		}
	}

	// No items is a valid, empty delivery.
	e.cluster.outcomes = nil
	res, err = e.peer.Handoff(ctx(t), &pb.HandoffRequest{FromSite: testSite})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetAcks()) != 0 || len(e.cluster.handoffCalls()) != 2 {
		t.Errorf("empty delivery: acks %v, %d calls", res.GetAcks(), len(e.cluster.handoffCalls()))
	}
}

func TestHandoffErrors(t *testing.T) {
	tests := []struct {
		name   string
		req    *pb.HandoffRequest
		err    error
		code   codes.Code
		msg    string
		called bool
	}{
		{"no from_site", &pb.HandoffRequest{Items: []*pb.HandoffItem{{Id: "a#2"}}}, nil, codes.InvalidArgument, "from_site: ", false},
		{"empty request", &pb.HandoffRequest{}, nil, codes.InvalidArgument, "from_site: ", false},
		{"item without id", &pb.HandoffRequest{FromSite: testSite, Items: []*pb.HandoffItem{{Record: []byte(`{}`)}}},
			nil, codes.InvalidArgument, "items: ", false},
		{"second item without id", &pb.HandoffRequest{FromSite: testSite, Items: []*pb.HandoffItem{{Id: "a#2"}, {}}},
			nil, codes.InvalidArgument, "items: ", false},
		{"not the leader", &pb.HandoffRequest{FromSite: testSite, Items: []*pb.HandoffItem{{Id: "a#2"}}},
			replication.ErrNotLeader, codes.Unavailable, "", true},
		{"refused", &pb.HandoffRequest{FromSite: "cd-x", Items: []*pb.HandoffItem{{Id: "a#2"}}},
			&replication.Error{Code: replication.CodeInvalid, Message: "cd-x is not a neighbour"}, codes.InvalidArgument, "cd-x is not a neighbour", true},
		{"other", &pb.HandoffRequest{FromSite: testSite, Items: []*pb.HandoffItem{{Id: "a#2"}}},
			errors.New("disk on fire"), codes.Internal, "disk on fire", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.cluster.handoffErr = tt.err
			_, err := e.peer.Handoff(ctx(t), tt.req)
			st := wantCode(t, err, tt.code)
			if !strings.HasPrefix(st.Message(), tt.msg) {
				t.Errorf("message %q, want it to start with %q", st.Message(), tt.msg)
			}
			if n := len(e.cluster.handoffCalls()); (n == 1) != tt.called {
				t.Errorf("ReceiveHandoffs called %d times, want called=%v", n, tt.called)
			}
		})
	}
}

func TestErrConflict(t *testing.T) {
	for _, err := range []error{
		&casework.ConflictError{Reason: "locked"},
		fmt.Errorf("depart: %w", &casework.ConflictError{Reason: "locked"}),
		&replication.Error{Code: replication.CodeConflict, Message: "locked"},
	} {
		got := grpcapi.Err(err)
		st := wantCode(t, got, codes.FailedPrecondition)
		if st.Message() != err.Error() {
			t.Errorf("message %q, want %q", st.Message(), err.Error())
		}
	}
}
