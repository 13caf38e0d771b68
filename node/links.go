package node

import (
	"context"
	"sync"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// A link between sites can fail silently: a village's 4G router loses its uplink, and packets
// vanish without a reset, so a connection stays "open" and a stream waits forever. Every
// long-lived path therefore has a clock: gRPC keepalive on every connection (both ends), a
// receive deadline on every stream (a feed stream that hears nothing, not even a heartbeat, for
// feedSilence is cancelled and dialled again), and a deadline on every call. And what the node
// reports of a link is what it heard, when: a child not heard from within the window has an
// unknown lag, never a lag of zero.

// linkTimings are how soon the node gives up on a silent link, by gossip profile. A child sends
// a heartbeat every FeedHeartbeat whatever its profile, so any parent's silence limit fits it.
type linkTimings struct {
	// keepaliveTime and keepaliveTimeout are gRPC's client keepalive: a ping after that long
	// without activity, and the connection closed if no answer comes in the timeout. (gRPC
	// raises a client's time below 10 s to 10 s.)
	keepaliveTime, keepaliveTimeout time.Duration
	// feedSilence is how long a parent's feed stream may hear nothing before it is cancelled
	// and dialled again; it is also the window within which a child's lag is known.
	feedSilence time.Duration
	// raftTransport bounds each Raft RPC between the nodes of a site.
	raftTransport time.Duration
}

func timingsFor(profile string) linkTimings {
	if profile == "wan" {
		return linkTimings{keepaliveTime: 20 * time.Second, keepaliveTimeout: 10 * time.Second, feedSilence: 5 * FeedHeartbeat, raftTransport: 10 * time.Second}
	}
	return linkTimings{keepaliveTime: 10 * time.Second, keepaliveTimeout: 5 * time.Second, feedSilence: 3 * FeedHeartbeat, raftTransport: 5 * time.Second}
}

// clientKeepalive is the keepalive of every connection this node dials to a peer.
func (t linkTimings) clientKeepalive() grpc.DialOption {
	return grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: t.keepaliveTime, Timeout: t.keepaliveTimeout, PermitWithoutStream: true})
}

// serverKeepalive lets peers ping as often as any profile does (a stricter policy answers a
// client's pings with GOAWAY "too_many_pings"), and pings idle peers itself.
func (t linkTimings) serverKeepalive() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: t.keepaliveTime, Timeout: t.keepaliveTimeout}),
	}
}

// links is what this node, while it leads its site, heard of its links: each child's feed
// stream and each handoff target. It is live knowledge, lost with leadership, and never stored.
type links struct {
	mu      sync.Mutex
	feeds   map[string]*feedLink   // guarded by mu: by child
	targets map[string]*targetLink // guarded by mu: by target site
}

type feedLink struct {
	heardAt time.Time // the last batch or heartbeat
	head    uint64    // the child's newest entry, as it last said
	up      bool      // a stream is open
}

type targetLink struct {
	answeredAt   time.Time // the target's last answer to a delivery
	failingSince time.Time // the first failure since the last answer
	lastErr      string
}

func newLinks() *links {
	return &links{feeds: map[string]*feedLink{}, targets: map[string]*targetLink{}}
}

func (l *links) feed(child string) *feedLink {
	f := l.feeds[child]
	if f == nil {
		f = &feedLink{}
		l.feeds[child] = f
	}
	return f
}

// heard records that child's stream delivered something now, naming its head.
func (l *links) heard(child string, head uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.feed(child)
	f.heardAt, f.up, f.head = time.Now(), true, max(f.head, head)
}

// streamDown records that child's stream ended.
func (l *links) streamDown(child string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.feed(child).up = false
}

// delivered records a delivery's outcome toward a target site.
func (l *links) delivered(site string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.targets[site]
	if t == nil {
		t = &targetLink{}
		l.targets[site] = t
	}
	if err == nil {
		t.answeredAt, t.failingSince, t.lastErr = time.Now(), time.Time{}, ""
		return
	}
	if t.failingSince.IsZero() {
		t.failingSince = time.Now()
	}
	t.lastErr = err.Error()
}

// reset forgets everything: leadership ended.
func (l *links) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.feeds)
	clear(l.targets)
}

// status is the links as LinkStatus answers them.
func (l *links) status() *pb.LinkStatusResponse {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := &pb.LinkStatusResponse{}
	for child, f := range l.feeds {
		out.Feeds = append(out.Feeds, &pb.FeedLink{Child: child, HeardAt: nanos(f.heardAt), StreamUp: f.up, Head: f.head})
	}
	for site, t := range l.targets {
		out.Targets = append(out.Targets, &pb.TargetLink{Site: site, AnsweredAt: nanos(t.answeredAt), FailingSince: nanos(t.failingSince), LastError: t.lastErr})
	}
	return out
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// linkEndpoint serves Cluster.LinkStatus.
type linkEndpoint struct {
	node  string
	links *links
	raft  interface{ IsLeader() bool }
}

// LinkStatus answers what this node heard of its site's links while it led; a follower knows
// nothing live and says so (an empty leader).
func (e *linkEndpoint) LinkStatus(ctx context.Context, _ *pb.LinkStatusRequest) (*pb.LinkStatusResponse, error) {
	if !e.raft.IsLeader() {
		return &pb.LinkStatusResponse{}, nil
	}
	out := e.links.status()
	out.Leader = e.node
	return out, nil
}

// leaderLinks is the live status of this site's links, from this node if it leads, else from the
// leader (nil when it cannot be asked: then nothing live is known).
func (n *Node) leaderLinks() *pb.LinkStatusResponse {
	if n.raft.IsLeader() {
		return n.links.status()
	}
	leader, _ := n.raft.Leader()
	conn, err := dialMember(n.gossip, n.peers, string(leader))
	if leader == "" || err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := pb.NewClusterClient(conn).LinkStatus(ctx, &pb.LinkStatusRequest{})
	if err != nil || st.GetLeader() == "" {
		return nil
	}
	return st
}
