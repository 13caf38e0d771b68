// Package grpcapi serves govgrid's client gRPC service, Cases, and converts between its messages
// and the domain's types. (The node serves the Cluster service between nodes itself, and the
// standard health service and reflection.)
package grpcapi

import (
	"context"
	"net"
	"time"

	"github.com/govgrid/govgrid/api"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/casework"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Register adds the Cases service to s. (The Cluster service between nodes is the node's own:
// see package node.)
func Register(s *grpc.Server, cases api.CaseService) {
	pb.RegisterCasesServer(s, &casesServer{cases: cases})
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
}

func (s *casesServer) SubmitCase(ctx context.Context, req *pb.SubmitCaseRequest) (*pb.Case, error) {
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

// citizenClient is the address a citizen's request came from, for counting its failures; ""
// when another node passes a citizen's request on (that node counted the client; failures still
// count per number here). Until nodes present certificates (issue 15) a client could claim to
// be a node, and only the per-number count holds it back.
func citizenClient(ctx context.Context) string {
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("x-govgrid-hops")) > 0 {
		return ""
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			return host
		}
		return p.Addr.String()
	}
	return "unknown"
}

func (s *casesServer) ListCases(ctx context.Context, req *pb.ListCasesRequest) (*pb.ListCasesResponse, error) {
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
