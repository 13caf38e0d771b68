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
	"github.com/govgrid/govgrid/sitestate"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc/metadata"
)

// localOnlyKey marks a read forwarded from another node of the site: answer from this node's
// replica, never forward again.
const localOnlyKey = "x-govgrid-local"

// caseService implements api.CaseService for the front ends.
type caseService struct{ n *Node }

func (s *caseService) SubmitCase(ctx context.Context, sub *casework.Submission) (*casework.Case, error) {
	if s.n.restoring() {
		return nil, errRestoring
	}
	c, duplicate, err := s.n.state.SubmitCase(ctx, sub)
	if err != nil {
		return nil, err
	}
	if duplicate && (c.HolderSite != s.n.cfg.Site || c.Transit != nil) {
		// A retry of a case that has left since (or is leaving): show where it is now.
		if now, err := s.GetCase(ctx, c.Number); err == nil {
			now.QueryCode = c.QueryCode
			return now, nil
		}
	}
	return c, nil
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
	// Not here (or this node cannot confirm it is not: err says unavailable, and becomes the
	// answer if nothing else finds the case).
	if !errors.Is(err, sitestate.ErrNotFound) && !errors.Is(err, replication.ErrNoLeader) || isLocalOnly(ctx) {
		return nil, err
	}
	if hops >= maxCaseHops {
		return nil, fmt.Errorf("case %s: gave up after %d hops following it between sites", number, hops)
	}
	if st, serr := s.n.state.GetStub(number); serr == nil {
		c, err := s.n.askSite(ctx, st.Holder, number, hops+1)
		return s.orMirror(number, c, err)
	}
	if rec, merr := s.n.state.MirrorCase(number); merr == nil && rec.Case.HolderSite != s.n.cfg.Site {
		// No stub (pruned after its window), but this site's copy says where the case went.
		next := rec.Case.HolderSite
		if rec.Case.Transit != nil {
			next = rec.Case.Transit.To
		}
		c, err := s.n.askSite(ctx, next, number, hops+1)
		if err == nil && c.Version < rec.Case.Version {
			c = rec.Case
		}
		return s.orMirror(number, c, err)
	}
	origin, _, _, perr := casework.ParseNumber(number)
	if perr != nil || origin == s.n.cfg.Site || hops > 0 {
		// Asked by another site, or this is the origin: not knowing the case here is final
		// (a 404 only when the site's leader confirmed it).
		return nil, err
	}
	c, err = s.n.askSite(ctx, origin, number, hops+1)
	return s.orMirror(number, c, err)
}

// orMirror answers a case that could not be fetched from where it is because that site cannot
// be reached: an ancestor answers from its mirror (the newest version its subtree sent up).
func (s *caseService) orMirror(number string, c *casework.Case, err error) (*casework.Case, error) {
	if err == nil || errors.Is(err, sitestate.ErrNotFound) {
		return c, err
	}
	if rec, merr := s.n.state.MirrorCase(number); merr == nil {
		return rec.Case, nil
	}
	return nil, err
}

// localCase reads a case from this site: this node's replica, or, on a follower that has not
// applied it yet (acknowledged a moment ago through another node), the leader's. It answers
// "not found" only when the site's leader confirms it: a follower that cannot reach its leader,
// or a leader cut off from its followers, may hold a stale copy, and saying "no such case" for
// one that was acknowledged would be wrong. It answers unavailable instead.
func (s *caseService) localCase(ctx context.Context, number string) (*casework.Case, error) {
	c, err := s.n.state.GetCase(number)
	if !errors.Is(err, sitestate.ErrNotFound) {
		return c, err
	}
	if _, serr := s.n.state.GetStub(number); serr == nil {
		return nil, err // handed on: the caller follows the stub
	}
	if s.n.raft.IsLeader() {
		if verr := s.n.raft.VerifyLeader(); verr != nil || !s.n.caughtUp.Load() {
			return nil, fmt.Errorf("%w: case %s is not on this node, which cannot confirm it leads its site", replication.ErrNoLeader, number)
		}
		return s.n.state.GetCase(number) // a last look: it may have been applied meanwhile
	}
	if isLocalOnly(ctx) {
		return nil, fmt.Errorf("%w: asked as the leader, but %s no longer leads its site", replication.ErrNoLeader, s.n.cfg.Name)
	}
	leader, _ := s.n.raft.Leader()
	conn, cerr := dialMember(s.n.gossip, s.n.peers, string(leader))
	if leader == "" || cerr != nil {
		return nil, fmt.Errorf("%w: case %s is not on this node, and the site's leader cannot be asked", replication.ErrNoLeader, number)
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
		if err = fromStatus(err); errors.Is(err, sitestate.ErrNotFound) {
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
	return s.n.moveCase(ctx, number, d)
}

func (s *caseService) ListCases(ctx context.Context, f sitestate.Filter) (*sitestate.Page, error) {
	return s.n.state.ListCases(f)
}

func isLocalOnly(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(localOnlyKey)) > 0
}

func raftID(name string) raft.ServerID { return raft.ServerID(name) }

func (s *caseService) ListSubtree(ctx context.Context, f sitestate.SubtreeFilter) (*sitestate.SubtreePage, error) {
	return s.n.state.ListSubtree(f)
}
