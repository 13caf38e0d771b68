package grpcapi_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api/apitest"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type env struct {
	cases  *apitest.Cases
	client pb.CasesClient
}

// newEnv serves Register(...) with a fake case service over an in-memory connection.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{cases: apitest.NewCases()}
	conn := apitest.ServeGRPC(t, func(s *grpc.Server) { grpcapi.Register(s, e.cases, nil) })
	e.client = pb.NewCasesClient(conn)
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func validRequest() *pb.SubmitCaseRequest {
	return &pb.SubmitCaseRequest{
		Kind: "application", ItemCode: "QT-0010", Title: "居住证办理", Description: "满半年",
		Applicant: &pb.Applicant{Name: "张三", IdNumber: "63010219900101123X", Phone: "13800138000"},
		Materials: []*pb.Material{{Name: "身份证复印件", Digest: strings.Repeat("ab", 32), Pages: 2}},
		RequestId: "req-1", Actor: "clerk-07", DecideTier: "township", CollectSite: "cd-dgdj-ngj",
	}
}

func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error %v, want code %v", err, code)
	}
	return st
}

func TestSubmitCase(t *testing.T) {
	e := newEnv(t)
	req := validRequest()
	got, err := e.client.SubmitCase(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetNumber() != apitest.Number || got.GetStatus() != "submitted" || got.GetQueryCode() != apitest.QueryCode ||
		got.GetHolderSite() != apitest.Site || got.GetVersion() != 1 || len(got.GetHistory()) != 1 {
		t.Errorf("answer %v", got)
	}
	subs := e.cases.Calls().Submits
	if len(subs) != 1 {
		t.Fatalf("SubmitCase called %d times", len(subs))
	}
	if want := grpcapi.SubmissionFromProto(req); !reflect.DeepEqual(subs[0], *want) {
		t.Errorf("the service got %+v, want %+v", subs[0], *want)
	}
	c := grpcapi.CaseFromProto(got)
	if err := c.VerifyHistory(); err != nil {
		t.Errorf("VerifyHistory on the answer: %v", err)
	}
	if !c.CreatedAt.Equal(apitest.At) {
		t.Errorf("created_at %v, want %v", c.CreatedAt, apitest.At)
	}
}

func TestSubmitCaseInvalid(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *pb.SubmitCaseRequest)
		fields []string
	}{
		{"no applicant", func(r *pb.SubmitCaseRequest) { r.Applicant = nil }, []string{"applicant"}},
		{"bad kind", func(r *pb.SubmitCaseRequest) { r.Kind = "x" }, []string{"kind"}},
		{"bad id number", func(r *pb.SubmitCaseRequest) { r.Applicant.IdNumber = "123" }, []string{"applicant.id_number"}},
		{"negative pages", func(r *pb.SubmitCaseRequest) { r.Materials[0].Pages = -1 }, []string{"materials[0].pages"}},
		{"several", func(r *pb.SubmitCaseRequest) { r.Title = ""; r.Applicant.Phone = "x"; r.DecideTier = "nation" },
			[]string{"title", "applicant.phone", "decide_tier"}},
		{"empty", func(r *pb.SubmitCaseRequest) { *r = pb.SubmitCaseRequest{} }, []string{"kind", "title", "applicant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			req := validRequest()
			tt.change(req)
			_, err := e.client.SubmitCase(ctx(t), req)
			st := wantCode(t, err, codes.InvalidArgument)
			for _, f := range tt.fields {
				if !strings.Contains(st.Message(), f+": ") {
					t.Errorf("message %q does not name %s", st.Message(), f)
				}
			}
			if n := e.cases.Calls().Len(); n != 0 {
				t.Errorf("the service was called %d times for an invalid request", n)
			}
		})
	}
}

func TestSubmitCaseServiceErrors(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code codes.Code
	}{
		{replication.ErrNoLeader, codes.Unavailable},
		{fmt.Errorf("forward: %w", replication.ErrNotLeader), codes.Unavailable},
		{&sitestate.Error{Code: sitestate.CodeConflict, Message: "conflict"}, codes.FailedPrecondition},
		{&sitestate.Error{Code: sitestate.CodeExhausted, Message: "no numbers left"}, codes.ResourceExhausted},
		{&sitestate.Error{Code: sitestate.CodeInvalid, Message: "unknown item"}, codes.InvalidArgument},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{errors.New("boom"), codes.Internal},
		{status.Error(codes.Aborted, "already a status"), codes.Aborted},
	} {
		t.Run(tt.err.Error(), func(t *testing.T) {
			e := newEnv(t)
			e.cases.SubmitErr = tt.err
			_, err := e.client.SubmitCase(ctx(t), validRequest())
			wantCode(t, err, tt.code)
		})
	}
}

func TestGetCase(t *testing.T) {
	e := newEnv(t)
	stored := fullCase()
	e.cases.Put(stored)
	got, err := e.client.GetCase(ctx(t), &pb.GetCaseRequest{Number: stored.Number})
	if err != nil {
		t.Fatal(err)
	}
	c := grpcapi.CaseFromProto(got)
	if c.Number != stored.Number || c.QueryCodeHash != "" || c.RequestID != "" {
		t.Errorf("got %+v", c)
	}
	if c.LastHash() != stored.LastHash() {
		t.Errorf("history hash changed on the wire")
	}
}

func TestGetCaseErrors(t *testing.T) {
	tests := []struct {
		name   string
		number string
		err    error
		code   codes.Code
		called bool
	}{
		{"malformed", "abc", nil, codes.InvalidArgument, false},
		{"empty", "", nil, codes.InvalidArgument, false},
		{"bad date", "cd-20261332-000001", nil, codes.InvalidArgument, false},
		{"not found", apitest.Number, nil, codes.NotFound, true},
		{"refused not found", apitest.Number, &sitestate.Error{Code: sitestate.CodeNotFound, Message: "no case"}, codes.NotFound, true},
		{"no leader", apitest.Number, replication.ErrNoLeader, codes.Unavailable, true},
		{"closed", apitest.Number, replication.ErrClosed, codes.Unavailable, true},
		{"canceled", apitest.Number, context.Canceled, codes.Canceled, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.cases.GetErr = tt.err
			_, err := e.client.GetCase(ctx(t), &pb.GetCaseRequest{Number: tt.number})
			st := wantCode(t, err, tt.code)
			if tt.code == codes.InvalidArgument && !strings.HasPrefix(st.Message(), "number: ") {
				t.Errorf("message %q", st.Message())
			}
			if n := len(e.cases.Calls().Gets); (n == 1) != tt.called {
				t.Errorf("GetCase called %d times, want called=%v", n, tt.called)
			}
		})
	}
}

func TestListCases(t *testing.T) {
	e := newEnv(t)
	a, b := fullCase(), fullCase()
	b.Number = "cd-20261125-000002"
	e.cases.Page = &sitestate.Page{Cases: []*casework.Case{a, b}, NextPageToken: "tok2"}
	from := time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	res, err := e.client.ListCases(ctx(t), &pb.ListCasesRequest{
		Status: "submitted", Kind: "grievance", ItemCode: "QT-1", From: from.UnixNano(), To: to.UnixNano(),
		PageSize: 7, PageToken: "tok1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetCases()) != 2 || res.GetNextPageToken() != "tok2" || res.GetCases()[1].GetNumber() != b.Number {
		t.Errorf("answer %v", res)
	}
	f := e.cases.Calls().Lists[0]
	if f.Status != "submitted" || f.Kind != casework.KindGrievance || f.ItemCode != "QT-1" || f.Limit != 7 ||
		f.PageToken != "tok1" || !f.From.Equal(from) || !f.To.Equal(to) {
		t.Errorf("filter %+v", f)
	}

	// Zero from/to mean no bound.
	if _, err := e.client.ListCases(ctx(t), &pb.ListCasesRequest{}); err != nil {
		t.Fatal(err)
	}
	if f := e.cases.Calls().Lists[1]; !f.From.IsZero() || !f.To.IsZero() || f.Limit != 0 {
		t.Errorf("empty request gave filter %+v", f)
	}

	e.cases.ListErr = &sitestate.Error{Code: sitestate.CodeInvalid, Message: "page_token is not valid"}
	_, err = e.client.ListCases(ctx(t), &pb.ListCasesRequest{PageToken: "x"})
	wantCode(t, err, codes.InvalidArgument)
}

func TestErr(t *testing.T) {
	if grpcapi.Err(nil) != nil {
		t.Errorf("Err(nil) != nil")
	}
	st := status.Error(codes.PermissionDenied, "no")
	if grpcapi.Err(st) != st {
		t.Errorf("Err changed a status error")
	}
	fe := casework.FieldErrors{{Field: "title", Reason: "is required"}}
	if got := status.Code(grpcapi.Err(fmt.Errorf("wrapped: %w", fe))); got != codes.InvalidArgument {
		t.Errorf("field errors → %v", got)
	}
}

func TestListCasesMasksIdentityNumbersAndRefusesBadFilters(t *testing.T) {
	e := newEnv(t)
	c, err := casework.Accept(grpcapi.SubmissionFromProto(validRequest()), casework.Acceptance{Number: "cd-20261125-000001", Site: "cd", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	e.cases.Page = &sitestate.Page{Cases: []*casework.Case{c}}
	resp, err := e.client.ListCases(context.Background(), &pb.ListCasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetCases()) == 0 {
		t.Fatal("the listing is empty")
	}
	for _, c := range resp.GetCases() {
		if id := c.GetApplicant().GetIdNumber(); !strings.Contains(id, "*") || len(c.GetHistory()) != 0 {
			t.Fatalf("listing shows id %q and %d events", id, len(c.GetHistory()))
		}
	}
	for _, req := range []*pb.ListCasesRequest{{Kind: "petition"}, {PageSize: -1}, {PageSize: 100000}} {
		if _, err := e.client.ListCases(context.Background(), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%v: err = %v, want InvalidArgument", req, err)
		}
	}
	if n := e.cases.Calls().Len(); n != 1 {
		t.Errorf("the service was called %d times, want once (bad filters are refused before it)", n)
	}
}

func TestListSubtreeOverGRPC(t *testing.T) {
	e := newEnv(t)
	c, err := casework.Accept(grpcapi.SubmissionFromProto(validRequest()), casework.Acceptance{Number: apitest.Number, Site: apitest.Site, At: apitest.At})
	if err != nil {
		t.Fatal(err)
	}
	e.cases.Page = &sitestate.Page{Cases: []*casework.Case{c}, NextPageToken: "tok2"}
	resp, err := e.client.ListCases(ctx(t), &pb.ListCasesRequest{Scope: "subtree", Site: apitest.Site, Tier: "community", Status: "submitted", PageSize: 5})
	if err != nil || len(resp.GetCases()) != 1 || resp.GetCases()[0].GetHistory() != nil || resp.GetNextPageToken() != "tok2" {
		t.Fatalf("subtree listing: %v %v", resp, err)
	}
	if id := resp.GetCases()[0].GetApplicant().GetIdNumber(); !strings.Contains(id, "*") {
		t.Errorf("subtree listing shows id %q", id)
	}
	calls := e.cases.Calls()
	if len(calls.Subtrees) != 1 || len(calls.Lists) != 0 {
		t.Fatalf("ListSubtree called %d times, ListCases %d, want ListSubtree once", len(calls.Subtrees), len(calls.Lists))
	}
	if f := calls.Subtrees[0]; f.Site != apitest.Site || f.Tier != "community" || f.Status != casework.StatusSubmitted || f.Limit != 5 {
		t.Errorf("filter passed on: %+v", f)
	}
	for _, bad := range []*pb.ListCasesRequest{{Scope: "all"}, {Tier: "community"}, {Scope: "subtree", Tier: "province"}, {Scope: "subtree", Site: "Bad_Site"}} {
		if _, err := e.client.ListCases(ctx(t), bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListCases(%v): %v, want InvalidArgument", bad, err)
		}
	}
	if n := e.cases.Calls().Len(); n != 1 {
		t.Errorf("the service was called %d times, want once (bad filters are refused before it)", n)
	}
	e.cases.SubtreeErr = replication.ErrNoLeader
	_, err = e.client.ListCases(ctx(t), &pb.ListCasesRequest{Scope: "subtree"})
	wantCode(t, err, codes.Unavailable)
}
