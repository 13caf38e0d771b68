package node

import (
	"context"
	"errors"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc/metadata"
)

// localOnlyKey marks a read forwarded from another node of the site: answer from this node's
// replica, never forward again.
const localOnlyKey = "x-govgrid-local"

// caseService implements api.CaseService for the front ends.
type caseService struct{ n *Node }

func (s *caseService) SubmitCase(ctx context.Context, sub *casework.Submission) (*casework.Case, error) {
	return s.n.store.SubmitCase(ctx, sub)
}

// GetCase answers from this node's replica. A follower that has not applied the case yet (it
// was acknowledged a moment ago through another node) asks the leader before saying 404.
func (s *caseService) GetCase(ctx context.Context, number string) (*casework.Case, error) {
	c, err := s.n.store.GetCase(number)
	if !errors.Is(err, replication.ErrNotFound) || s.n.store.IsLeader() || isLocalOnly(ctx) {
		return c, err
	}
	leader, _ := s.n.store.Leader()
	conn, cerr := dialMember(s.n.gossip, s.n.peers, string(leader))
	if leader == "" || cerr != nil {
		return nil, err
	}
	ctx = metadata.AppendToOutgoingContext(ctx, localOnlyKey, "1")
	pc, perr := pb.NewCasesClient(conn).GetCase(ctx, &pb.GetCaseRequest{Number: number})
	if perr != nil {
		return nil, fromStatus(perr)
	}
	return grpcapi.CaseFromProto(pc), nil
}

func (s *caseService) ListCases(ctx context.Context, f replication.Filter) (*replication.Page, error) {
	return s.n.store.ListCases(f)
}

func isLocalOnly(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(localOnlyKey)) > 0
}

// clusterBackend implements grpcapi.ClusterBackend.
type clusterBackend struct{ n *Node }

func (b *clusterBackend) ApplyForwarded(ctx context.Context, cmd []byte) ([]byte, error) {
	return b.n.store.ApplyForwarded(ctx, cmd)
}
func (b *clusterBackend) HasState() (bool, error) { return b.n.store.HasState() }
func (b *clusterBackend) RegisterSites(ctx context.Context, from string, recs []replication.SiteRecord) error {
	return b.n.RegisterSites(ctx, from, recs)
}
func (b *clusterBackend) NodeName() string { return b.n.cfg.Name }
func (b *clusterBackend) SiteCode() string { return b.n.cfg.Site }
func (b *clusterBackend) LeaderName() string {
	id, _ := b.n.store.Leader()
	return string(id)
}

func raftID(name string) raft.ServerID { return raft.ServerID(name) }
