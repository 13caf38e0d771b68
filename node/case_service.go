package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// localOnlyKey marks a read passed to the site's leader by a follower: the receiving node answers
// for the site as its leader, and never passes it on to another node of the site.
const localOnlyKey = "x-govgrid-local"

// caseService implements api.CaseService for the front ends.
type caseService struct{ n *Node }

// SubmitCase takes in a case at this site, for a caller who may submit here; the case's first
// event names the caller.
func (s *caseService) SubmitCase(ctx context.Context, sub *casework.Submission) (*casework.Case, error) {
	claims, err := s.n.authorize(ctx, auth.ActSubmit, "")
	if err != nil {
		return nil, err
	}
	sub.Actor = claims.Actor(casework.MaxActor)
	if s.n.restoring() {
		return nil, errRestoring
	}
	c, duplicate, err := s.n.state.SubmitCase(ctx, sub)
	if err != nil {
		return nil, err
	}
	if duplicate && (c.HolderSite != s.n.cfg.Site || c.Transit != nil) {
		// A retry of a case that has left since (or is leaving): show where it is now.
		if now, err := s.getCase(ctx, c.Number); err == nil {
			now.QueryCode = c.QueryCode
			return now, nil
		}
	}
	return c, nil
}

// GetCase finds a case wherever it is held. A follower that does not have the case passes the
// whole question to its site's leader (it may lag behind the leader by a commit or two). The
// leader (or a follower that cannot reach it) answers if the site holds the case; if the site
// handed the case on, its stub (or its mirror copy) names the next holder; otherwise the case's
// origin site (named by its number) knows where it went. Each step to another site carries a hop
// count, so a chain of stubs is followed at most maxCaseHops times.
//
// "Not found" is final only when said by a leader that has confirmed it still leads its site:
// a node cut off from its leader, or a leader cut off from its followers, may hold a stale copy,
// and must not say "no such case" for one that was acknowledged. It answers unavailable instead.
//
// The caller must be allowed to read cases, and the case must be held in their subtree or have
// begun there; a role that needs no personal data reads it masked.
func (s *caseService) GetCase(ctx context.Context, number string) (*casework.Case, error) {
	claims, err := s.n.authorize(ctx, auth.ActReadCase, "")
	if err != nil {
		return nil, err
	}
	c, err := s.getCase(ctx, number)
	if err != nil {
		return nil, err
	}
	if err := s.n.mayRead(claims, c); err != nil {
		return nil, err
	}
	return forReader(claims, c), nil
}

// getCase finds a case for GetCase, for another node following it (the Cluster service's
// PeerGetCase), and for a citizen's view.
func (s *caseService) getCase(ctx context.Context, number string) (*casework.Case, error) {
	hops := hopsOf(ctx)
	c, err := s.n.state.GetCase(number)
	if err == nil {
		return s.followTransit(ctx, c, hops), nil
	}
	if !errors.Is(err, sitestate.ErrNotFound) {
		return nil, err
	}
	sure := false
	switch {
	case s.n.raft.IsLeader():
		if s.n.raft.VerifyLeader() == nil && s.n.caughtUp.Load() {
			if c, err := s.n.state.GetCase(number); err == nil { // applied meanwhile
				return s.followTransit(ctx, c, hops), nil
			}
			sure = true
		}
	case isLocalOnly(ctx):
		return nil, fmt.Errorf("%w: asked as the leader, but %s no longer leads its site", replication.ErrNoLeader, s.n.cfg.Name)
	default:
		c, err := s.askLeader(ctx, number)
		if err == nil || errors.Is(err, sitestate.ErrNotFound) {
			return c, err // the leader's answer is the site's
		}
		// The leader cannot be asked: answer from this node's copy if it knows where the case
		// went, and say unavailable, never "not found", if it does not.
	}
	notHere := err
	if !sure {
		notHere = fmt.Errorf("%w: case %s is not on %s, which cannot confirm it with its site's leader", replication.ErrNoLeader, number, s.n.cfg.Name)
	}
	if hops >= maxCaseHops {
		return nil, fmt.Errorf("%w: case %s: gave up after %d hops following it between sites", replication.ErrNoLeader, number, hops)
	}
	if st, serr := s.n.state.GetStub(number); serr == nil {
		c, err := s.n.askSite(ctx, st.Holder, number, hops+1)
		return s.orMirror(number, c, err)
	}
	if rec, merr := s.n.state.MirrorCase(number); merr == nil && rec.Case.HolderSite != s.n.cfg.Site {
		// No stub (pruned after its window, or the case is in this site's subtree): this site's
		// copy names the holder, which answers for the case (and follows it if it moved on).
		c, err := s.n.askSite(ctx, rec.Case.HolderSite, number, hops+1)
		if err == nil && c.Version < rec.Case.Version {
			c = rec.Case
		}
		return s.orMirror(number, c, err)
	}
	origin, _, _, perr := casework.ParseNumber(number)
	if perr != nil || origin == s.n.cfg.Site || hops > 0 {
		// Asked by another site, or this is the origin: not knowing the case here is the answer.
		return nil, notHere
	}
	c, err = s.n.askSite(ctx, origin, number, hops+1)
	return s.orMirror(number, c, err)
}

// followTransit shows a case on its way to another site as that site has it, if newer.
func (s *caseService) followTransit(ctx context.Context, c *casework.Case, hops int) *casework.Case {
	if c.Transit != nil && hops < maxCaseHops {
		if newer, err := s.n.askSite(ctx, c.Transit.To, c.Number, hops+1); err == nil && newer.Version > c.Version {
			return newer
		}
	}
	return c
}

// askLeader passes a query for a case to this site's leader, with the same hop count.
func (s *caseService) askLeader(ctx context.Context, number string) (*casework.Case, error) {
	leader, _ := s.n.raft.Leader()
	conn, err := dialMember(s.n.gossip, s.n.peers, string(leader))
	if leader == "" || err != nil {
		return nil, fmt.Errorf("%w: the site's leader cannot be asked", replication.ErrNoLeader)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	out := metadata.Pairs(localOnlyKey, "1")
	if v := md.Get(hopsKey); len(v) > 0 {
		out.Set(hopsKey, v[0])
	}
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, out), 5*time.Second)
	defer cancel()
	pc, err := pb.NewClusterClient(conn).PeerGetCase(ctx, &pb.GetCaseRequest{Number: number})
	if err != nil {
		return nil, fromStatus(err)
	}
	return grpcapi.CaseFromProto(pc), nil
}

// orMirror answers a case that could not be fetched from where it is (that site cannot be
// reached, or does not have it yet: a case on its way there): an ancestor, or a site the case
// passed through, answers from its mirror, the newest version it knows. A site that knows the
// case never answers "not found".
func (s *caseService) orMirror(number string, c *casework.Case, err error) (*casework.Case, error) {
	if err == nil {
		return c, nil
	}
	if rec, merr := s.n.state.MirrorCase(number); merr == nil {
		return rec.Case, nil
	}
	return nil, err
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

// askSite asks a node of site for a case, as hop number hops.
func (n *Node) askSite(ctx context.Context, site, number string, hops int) (*casework.Case, error) {
	return askCaseSite(ctx, n, site, number, hops, func(ctx context.Context, c pb.ClusterClient) (*casework.Case, error) {
		pc, err := c.PeerGetCase(ctx, &pb.GetCaseRequest{Number: number})
		if err != nil {
			return nil, err
		}
		return grpcapi.CaseFromProto(pc), nil
	})
}

// askCaseSite makes call to a node of site about case number, as hop number hops: the alive
// nodes in turn, and, if none answers, one that gossip believes dead (briefly: a reader is
// waiting). A node's "not found" or "too many attempts" is the site's answer; anything else
// tries the next node.
func askCaseSite[T any](ctx context.Context, n *Node, site, number string, hops int, call func(context.Context, pb.ClusterClient) (T, error)) (T, error) {
	var zero T
	ctx = metadata.NewOutgoingContext(ctx, metadata.Pairs(hopsKey, strconv.Itoa(hops)))
	var lastErr error
	for _, m := range n.siteMembers(site, "") {
		timeout := 5 * time.Second
		if m.Status != "alive" {
			timeout = time.Second
		}
		conn, err := n.peers.conn(m.Meta.GRPC)
		if err != nil {
			lastErr = err
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		v, err := call(cctx, pb.NewClusterClient(conn))
		cancel()
		if err == nil {
			return v, nil
		}
		n.peers.forgetIfTimedOut(conn, err)
		if status.Code(err) == codes.ResourceExhausted {
			return zero, sitestate.Errorf(sitestate.CodeRateLimited, "%s", status.Convert(err).Message())
		}
		if err = fromStatus(err); errors.Is(err, sitestate.ErrNotFound) {
			return zero, err
		}
		lastErr = err
		if m.Status != "alive" {
			break // one try of a node believed dead is enough for a reader
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no node of site %s is reachable", site)
	}
	return zero, fmt.Errorf("%w: case %s is at site %s, which cannot be reached now: %v", replication.ErrNoLeader, number, site, lastErr)
}

// MoveCase moves a case this site holds, for a caller whose roles allow the move and whose
// subtree this site is in; the move's event names the caller, whatever d.Actor says.
func (s *caseService) MoveCase(ctx context.Context, number string, d casework.Departure) (*casework.Case, error) {
	a, ok := moveActions[d.Move]
	if !ok {
		return nil, casework.FieldErrors{{Field: "move", Reason: "must be escalate, relay, handdown or return"}}
	}
	claims, err := s.n.authorize(ctx, a, "")
	if err != nil {
		return nil, err
	}
	d.Actor = claims.Actor(casework.MaxActor)
	return s.n.moveCase(ctx, number, d)
}

// ListCases lists the cases this site holds, for a caller whose subtree it is in.
func (s *caseService) ListCases(ctx context.Context, f sitestate.Filter) (*sitestate.Page, error) {
	if _, err := s.n.authorize(ctx, auth.ActListCases, ""); err != nil {
		return nil, err
	}
	return s.n.state.ListCases(f)
}

func isLocalOnly(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(localOnlyKey)) > 0
}

func raftID(name string) raft.ServerID { return raft.ServerID(name) }

// ListSubtree lists this site's mirror of its subtree, for a caller whose subtree this site is in.
func (s *caseService) ListSubtree(ctx context.Context, f sitestate.SubtreeFilter) (*sitestate.SubtreePage, error) {
	if _, err := s.n.authorize(ctx, auth.ActListCases, ""); err != nil {
		return nil, err
	}
	return s.n.state.ListSubtree(f)
}
