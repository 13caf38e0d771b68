// Package grpcapi serves govgrid's gRPC services: Cases for clients and Cluster for the nodes of
// the grid, plus the standard health service and server reflection.
package grpcapi

import (
	"context"
	"time"

	"github.com/govgrid/govgrid/api"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ClusterBackend is what the Cluster service needs from the node.
type ClusterBackend interface {
	ApplyForwarded(ctx context.Context, cmd []byte) ([]byte, error)
	HasState() (bool, error)
	RegisterSites(ctx context.Context, from string, sites []replication.SiteRecord) error
	ReceiveHandoffs(ctx context.Context, from string, items []*pb.HandoffItem) ([]replication.ArrivalOutcome, error)
	ServeFeed(stream pb.Cluster_FeedServer) error
	ConfigSince(ctx context.Context, from string, known map[string]uint64) ([][]byte, error)
	ServeExport(site string, stream pb.Cluster_ExportSiteServer) error
	NodeName() string
	SiteCode() string
	LeaderName() string
}

// Register adds the Cases and Cluster services to s.
func Register(s *grpc.Server, cases api.CaseService, cluster ClusterBackend) {
	pb.RegisterCasesServer(s, &casesServer{cases: cases})
	pb.RegisterClusterServer(s, &clusterServer{b: cluster})
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

func (s *casesServer) ListCases(ctx context.Context, req *pb.ListCasesRequest) (*pb.ListCasesResponse, error) {
	f := replication.Filter{
		Status:    casework.Status(req.GetStatus()),
		Kind:      casework.Kind(req.GetKind()),
		ItemCode:  req.GetItemCode(),
		Limit:     int(req.GetPageSize()),
		PageToken: req.GetPageToken(),
	}
	if f.Kind != "" && !f.Kind.Valid() {
		return nil, status.Error(codes.InvalidArgument, "kind: must be application or grievance")
	}
	if req.GetPageSize() < 0 || req.GetPageSize() > replication.MaxPageSize {
		return nil, status.Errorf(codes.InvalidArgument, "page_size: must be 0 to %d", replication.MaxPageSize)
	}
	if req.GetFrom() != 0 {
		f.From = time.Unix(0, req.GetFrom())
	}
	if req.GetTo() != 0 {
		f.To = time.Unix(0, req.GetTo())
	}
	switch req.GetScope() {
	case "subtree":
		return s.listSubtree(ctx, replication.MirrorFilter{Filter: f, Site: req.GetSite(), Tier: req.GetTier()})
	case "", "local":
		if req.GetSite() != "" || req.GetTier() != "" {
			return nil, status.Error(codes.InvalidArgument, "scope: site and tier filter the subtree: set scope to subtree")
		}
	default:
		return nil, status.Error(codes.InvalidArgument, "scope: must be local or subtree")
	}
	page, err := s.cases.ListCases(ctx, f)
	if err != nil {
		return nil, Err(err)
	}
	out := &pb.ListCasesResponse{NextPageToken: page.NextPageToken}
	for _, c := range page.Cases {
		// Like the HTTP listing: identity numbers masked, history only in GetCase.
		pc := CaseToProto(c)
		pc.Applicant.IdNumber = casework.MaskIDNumber(pc.Applicant.IdNumber)
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

type clusterServer struct {
	pb.UnimplementedClusterServer
	b ClusterBackend
}

func (s *clusterServer) Apply(ctx context.Context, req *pb.ApplyRequest) (*pb.ApplyResponse, error) {
	res, err := s.b.ApplyForwarded(ctx, req.GetCommand())
	if err != nil {
		return nil, Err(err)
	}
	return &pb.ApplyResponse{Result: res}, nil
}

func (s *clusterServer) RaftStatus(ctx context.Context, _ *pb.RaftStatusRequest) (*pb.RaftStatusResponse, error) {
	has, err := s.b.HasState()
	if err != nil {
		return nil, Err(err)
	}
	return &pb.RaftStatusResponse{Node: s.b.NodeName(), Site: s.b.SiteCode(), HasState: has, Leader: s.b.LeaderName()}, nil
}

func (s *clusterServer) RegisterSites(ctx context.Context, req *pb.RegisterSitesRequest) (*pb.RegisterSitesResponse, error) {
	recs := make([]replication.SiteRecord, 0, len(req.GetSites()))
	for _, r := range req.GetSites() {
		recs = append(recs, replication.SiteRecord{Code: r.GetCode(), Tier: r.GetTier(), Parent: r.GetParent(), Nodes: r.GetNodes(), Leader: r.GetLeader()})
	}
	if err := s.b.RegisterSites(ctx, req.GetFromSite(), recs); err != nil {
		return nil, Err(err)
	}
	return &pb.RegisterSitesResponse{}, nil
}

func (s *clusterServer) Handoff(ctx context.Context, req *pb.HandoffRequest) (*pb.HandoffResponse, error) {
	if req.GetFromSite() == "" {
		return nil, status.Error(codes.InvalidArgument, "from_site: is required")
	}
	for _, it := range req.GetItems() {
		if it.GetId() == "" {
			return nil, status.Error(codes.InvalidArgument, "items: every handoff needs an id")
		}
	}
	out, err := s.b.ReceiveHandoffs(ctx, req.GetFromSite(), req.GetItems())
	if err != nil {
		return nil, Err(err)
	}
	resp := &pb.HandoffResponse{Acks: make([]*pb.HandoffAck, 0, len(out))}
	for _, o := range out {
		resp.Acks = append(resp.Acks, &pb.HandoffAck{Id: o.ID, Outcome: o.Outcome, Reason: o.Reason})
	}
	return resp, nil
}

func (s *clusterServer) Feed(stream pb.Cluster_FeedServer) error { return s.b.ServeFeed(stream) }

func (s *casesServer) listSubtree(ctx context.Context, f replication.MirrorFilter) (*pb.ListCasesResponse, error) {
	if f.Tier != "" {
		if _, err := tier.Parse(f.Tier); err != nil {
			return nil, status.Error(codes.InvalidArgument, "tier: must be district, township or community")
		}
	}
	if f.Site != "" && tier.ValidateSiteCode(f.Site) != nil {
		return nil, status.Error(codes.InvalidArgument, "site: is not a site code")
	}
	page, err := s.cases.ListSubtree(ctx, f)
	if err != nil {
		return nil, Err(err)
	}
	out := &pb.ListCasesResponse{NextPageToken: page.NextPageToken}
	for _, rec := range page.Records {
		pc := CaseToProto(rec.Case)
		pc.Applicant.IdNumber = casework.MaskIDNumber(pc.Applicant.IdNumber)
		pc.History = nil
		out.Cases = append(out.Cases, pc)
	}
	return out, nil
}

func (s *clusterServer) ConfigSince(ctx context.Context, req *pb.ConfigSinceRequest) (*pb.ConfigSinceResponse, error) {
	if req.GetFromSite() == "" {
		return nil, status.Error(codes.InvalidArgument, "from_site: is required")
	}
	docs, err := s.b.ConfigSince(ctx, req.GetFromSite(), req.GetKnown())
	if err != nil {
		return nil, Err(err)
	}
	return &pb.ConfigSinceResponse{Docs: docs}, nil
}

func (s *clusterServer) ExportSite(req *pb.ExportSiteRequest, stream pb.Cluster_ExportSiteServer) error {
	if req.GetSite() == "" {
		return status.Error(codes.InvalidArgument, "site: is required")
	}
	return s.b.ServeExport(req.GetSite(), stream)
}
