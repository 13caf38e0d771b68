// Package grpcapi serves govgrid's client gRPC service, Cases, and converts between its messages
// and the domain's types. (The node serves the Cluster service between nodes itself, and the
// standard health service and reflection.)
package grpcapi

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/govgrid/govgrid/api"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Authenticator verifies a bearer token: the node implements it.
type Authenticator interface {
	Authenticate(token string) (*auth.Claims, error)
}

// Register adds the Cases service to s. (The Cluster service between nodes is the node's own:
// see package node.) Every call but GetCitizenView needs metadata "authorization: Bearer <token>"
// (Unauthenticated without a valid one); its claims go to the node in the call's context, and
// the node decides what the caller may do, as for HTTP. With a nil authn (a front end tested
// alone) nothing is checked.
func Register(s *grpc.Server, cases api.CaseService, authn Authenticator) {
	pb.RegisterCasesServer(s, &casesServer{cases: cases, authn: authn})
}

// signedIn returns ctx with the claims of the call's bearer token, or an Unauthenticated error.
func (s *casesServer) signedIn(ctx context.Context) (context.Context, error) {
	if s.authn == nil {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var tok string
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			tok = strings.TrimSpace(t)
		}
	}
	if tok == "" {
		return nil, status.Error(codes.Unauthenticated, "sign in first: metadata authorization: Bearer <token> (POST /v1/auth/login)")
	}
	c, err := s.authn.Authenticate(tok)
	if err != nil {
		return nil, Err(err)
	}
	return auth.NewContext(ctx, c), nil
}

// Err converts a node error into a gRPC status error with the matching code.
func Err(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	_, code, _ := api.Status(err)
	return status.Error(code, err.Error())
}

type casesServer struct {
	pb.UnimplementedCasesServer
	cases api.CaseService
	authn Authenticator
}

func (s *casesServer) SubmitCase(ctx context.Context, req *pb.SubmitCaseRequest) (*pb.Case, error) {
	ctx, err := s.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	sub := SubmissionFromProto(req)
	if err := sub.Validate(); err != nil {
		return nil, Err(err)
	}
	c, err := s.cases.SubmitCase(ctx, sub)
	if err != nil {
		return nil, Err(err)
	}
	return CaseToProto(c), nil
}

func (s *casesServer) GetCase(ctx context.Context, req *pb.GetCaseRequest) (*pb.Case, error) {
	ctx, err := s.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := casework.ParseNumber(req.GetNumber()); err != nil {
		return nil, status.Error(codes.InvalidArgument, "number: is not a case number (<site>-<yyyymmdd>-<6 digits>)")
	}
	c, err := s.cases.GetCase(ctx, req.GetNumber())
	if err != nil {
		return nil, Err(err)
	}
	return CaseToProto(c), nil
}

func (s *casesServer) GetCitizenView(ctx context.Context, req *pb.GetCitizenViewRequest) (*pb.CitizenView, error) {
	if _, _, _, err := casework.ParseNumber(req.GetNumber()); err != nil {
		return nil, status.Error(codes.InvalidArgument, "number: is not a case number (<site>-<yyyymmdd>-<6 digits>)")
	}
	v, err := s.cases.CitizenView(ctx, req.GetNumber(), req.GetQueryCode(), citizenClient(ctx))
	if err != nil {
		return nil, Err(err)
	}
	return CitizenViewToProto(v), nil
}

// citizenClient is the address a citizen's request came from, for counting its failures. (Nodes
// pass a citizen's request on through the Cluster service, not this one, so every caller here
// is counted.)
func citizenClient(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			return host
		}
		return p.Addr.String()
	}
	return "unknown"
}

func (s *casesServer) ListCases(ctx context.Context, req *pb.ListCasesRequest) (*pb.ListCasesResponse, error) {
	ctx, err := s.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	lr := api.ListRequest{
		Scope: req.GetScope(), Status: req.GetStatus(), Kind: req.GetKind(), ItemCode: req.GetItemCode(),
		Site: req.GetSite(), Tier: req.GetTier(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	}
	if req.GetFrom() != 0 {
		lr.From = time.Unix(0, req.GetFrom()).UTC()
	}
	if req.GetTo() != 0 {
		lr.To = time.Unix(0, req.GetTo()).UTC()
	}
	f, subtree, err := lr.Check()
	if err != nil {
		return nil, Err(err)
	}
	out := &pb.ListCasesResponse{}
	var cases []*casework.Case
	if subtree {
		page, err := s.cases.ListSubtree(ctx, f)
		if err != nil {
			return nil, Err(err)
		}
		out.NextPageToken = page.NextPageToken
		for _, rec := range page.Records {
			cases = append(cases, rec.Case)
		}
	} else {
		page, err := s.cases.ListCases(ctx, f.Filter)
		if err != nil {
			return nil, Err(err)
		}
		out.NextPageToken, cases = page.NextPageToken, page.Cases
	}
	for _, c := range cases {
		// Like the HTTP listing: identity numbers and phones masked, history only in GetCase.
		pc := CaseToProto(c)
		pc.Applicant.IdNumber = casework.MaskIDNumber(pc.Applicant.IdNumber)
		pc.Applicant.Phone = casework.MaskPhone(pc.Applicant.Phone)
		pc.History = nil
		out.Cases = append(out.Cases, pc)
	}
	return out, nil
}

func (s *casesServer) MoveCase(ctx context.Context, req *pb.MoveCaseRequest) (*pb.Case, error) {
	ctx, err := s.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := casework.ParseNumber(req.GetNumber()); err != nil {
		return nil, status.Error(codes.InvalidArgument, "number: is not a case number (<site>-<yyyymmdd>-<6 digits>)")
	}
	d := casework.Departure{Move: casework.Move(req.GetMove()), To: req.GetToSite(), Actor: req.GetActor(), Reason: req.GetReason()}
	if !d.Move.Valid() {
		return nil, status.Error(codes.InvalidArgument, "move: must be escalate, relay, handdown or return")
	}
	c, err := s.cases.MoveCase(ctx, req.GetNumber(), d)
	if err != nil {
		return nil, Err(err)
	}
	return CaseToProto(c), nil
}

func (s *casesServer) TakeStep(ctx context.Context, req *pb.TakeStepRequest) (*pb.Case, error) {
	ctx, err := s.signedIn(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := casework.ParseNumber(req.GetNumber()); err != nil {
		return nil, status.Error(codes.InvalidArgument, "number: is not a case number (<site>-<yyyymmdd>-<6 digits>)")
	}
	if !casework.Step(req.GetStep()).Valid() {
		return nil, status.Error(codes.InvalidArgument, "step: is not a step of a case's life")
	}
	c, err := s.cases.TakeStep(ctx, req.GetNumber(), StepFromProto(req))
	if err != nil {
		return nil, Err(err)
	}
	return CaseToProto(c), nil
}
