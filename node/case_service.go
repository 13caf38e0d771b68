package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

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
	if s.n.restoring.Load() {
		return nil, errRestoring
	}
	return s.n.store.SubmitCase(ctx, sub)
}

// GetCase finds a case wherever it is held. This site answers if it holds the case; if it
// handed the case on, its stub names the next holder; otherwise the case's origin site (named
// by its number) knows where it went. Each step asks one site and carries a hop count, so a
// chain of stubs is followed at most maxCaseHops times.
func (s *caseService) GetCase(ctx context.Context, number string) (*casework.Case, error) {
	hops := hopsOf(ctx)
	c, err := s.localCase(ctx, number)
	if err == nil {
		if c.Transit != nil && hops < maxCaseHops {
			// On its way: the target may hold it already and show a newer state.
			if newer, err := s.n.askSite(ctx, c.Transit.To, number, hops+1); err == nil && newer.Version > c.Version {
				return newer, nil
			}
		}
		return c, nil
	}
	if !errors.Is(err, replication.ErrNotFound) || isLocalOnly(ctx) {
		return nil, err
	}
	if hops >= maxCaseHops {
		return nil, fmt.Errorf("case %s: gave up after %d hops following it between sites", number, hops)
	}
	if st, serr := s.n.store.GetStub(number); serr == nil {
		c, err := s.n.askSite(ctx, st.Holder, number, hops+1)
		return s.orMirror(number, c, err)
	}
	origin, _, _, perr := casework.ParseNumber(number)
	if perr != nil || origin == s.n.cfg.Site || hops > 0 {
		// Asked by another site, or this is the origin: not knowing the case here is final.
		return nil, err
	}
	c, err = s.n.askSite(ctx, origin, number, hops+1)
	return s.orMirror(number, c, err)
}

// orMirror answers a case that could not be fetched from where it is because that site cannot
// be reached: an ancestor answers from its mirror (the newest version its subtree sent up).
func (s *caseService) orMirror(number string, c *casework.Case, err error) (*casework.Case, error) {
	if err == nil || errors.Is(err, replication.ErrNotFound) {
		return c, err
	}
	if rec, merr := s.n.store.MirrorCase(number); merr == nil {
		return rec.Case, nil
	}
	return nil, err
}

// localCase reads a case from this site: this node's replica, or, on a follower that has not
// applied it yet (acknowledged a moment ago through another node), the leader's.
func (s *caseService) localCase(ctx context.Context, number string) (*casework.Case, error) {
	c, err := s.n.store.GetCase(number)
	if !errors.Is(err, replication.ErrNotFound) || s.n.store.IsLeader() || isLocalOnly(ctx) {
		return c, err
	}
	if _, serr := s.n.store.GetStub(number); serr == nil {
		return nil, err
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

// maxCaseHops bounds how many sites one query visits: the tree has three tiers, so a case is
// found in a few hops unless it is moving fast.
const maxCaseHops = 8

const hopsKey = "x-govgrid-hops"

func hopsOf(ctx context.Context) int {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(hopsKey); len(v) > 0 {
		if n, err := strconv.Atoi(v[0]); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// askSite asks any alive node of site for a case, as hop number hops.
func (n *Node) askSite(ctx context.Context, site, number string, hops int) (*casework.Case, error) {
	ctx = metadata.NewOutgoingContext(ctx, metadata.Pairs(hopsKey, strconv.Itoa(hops)))
	var lastErr error
	for _, m := range n.siteMembers(site, "") {
		conn, err := n.peers.conn(m.Meta.GRPC)
		if err != nil {
			lastErr = err
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		pc, err := pb.NewCasesClient(conn).GetCase(cctx, &pb.GetCaseRequest{Number: number})
		cancel()
		if err == nil {
			return grpcapi.CaseFromProto(pc), nil
		}
		if err = fromStatus(err); errors.Is(err, replication.ErrNotFound) {
			return nil, err
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no node of site %s is reachable", site)
	}
	return nil, fmt.Errorf("%w: case %s is at site %s, which cannot be reached now: %v", replication.ErrNoLeader, number, site, lastErr)
}

func (s *caseService) MoveCase(ctx context.Context, number string, d casework.Departure) (*casework.Case, error) {
	return s.n.MoveCase(ctx, number, d)
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
func (b *clusterBackend) ReceiveHandoffs(ctx context.Context, from string, items []*pb.HandoffItem) ([]replication.ArrivalOutcome, error) {
	return b.n.ReceiveHandoffs(ctx, from, items)
}
func (b *clusterBackend) ServeFeed(stream pb.Cluster_FeedServer) error { return b.n.ServeFeed(stream) }
func (b *clusterBackend) ConfigSince(ctx context.Context, from string, known map[string]uint64) ([][]byte, error) {
	return b.n.ConfigSince(ctx, from, known)
}
func (b *clusterBackend) ServeExport(site string, stream pb.Cluster_ExportSiteServer) error {
	return b.n.ServeExport(site, stream)
}
func (b *clusterBackend) NodeName() string { return b.n.cfg.Name }
func (b *clusterBackend) SiteCode() string { return b.n.cfg.Site }
func (b *clusterBackend) LeaderName() string {
	id, _ := b.n.store.Leader()
	return string(id)
}

func raftID(name string) raft.ServerID { return raft.ServerID(name) }

func (s *caseService) ListSubtree(ctx context.Context, f replication.MirrorFilter) (*replication.MirrorPage, error) {
	return s.n.ListSubtree(f)
}
