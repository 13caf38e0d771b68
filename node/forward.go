package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// peers keeps one gRPC connection per peer address, shared by every call to that peer.
type peers struct {
	network Network                     // nil: the host's network
	calls   grpc.UnaryClientInterceptor // nil: calls go out as they are
	timings linkTimings
	tls     *peerTLS // nil: plain text (Config.InsecurePeers)

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // guarded by mu
}

func newPeers(network Network, calls grpc.UnaryClientInterceptor, timings linkTimings, t *peerTLS) *peers {
	return &peers{network: network, calls: calls, timings: timings, tls: t, conns: map[string]*grpc.ClientConn{}}
}

func (p *peers) conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	creds := insecure.NewCredentials()
	if p.tls != nil {
		creds = credentials.NewTLS(p.tls.grpcClient())
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// gRPC's default reconnect backoff grows to two minutes: after a long partition the
		// first handoff would wait that long though gossip already sees the peer back.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		// A peer whose packets vanish is noticed by the pings, not hours later by TCP.
		p.timings.clientKeepalive(),
	}
	if p.network != nil {
		opts = append(opts, grpc.WithContextDialer(p.network.Dial))
	}
	if p.calls != nil {
		opts = append(opts, grpc.WithUnaryInterceptor(p.calls))
	}
	c, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	p.conns[addr] = c
	return c, nil
}

// forget closes c and drops it from the cache, if it is still there, so that the next call to
// its peer dials afresh. Callers forget a connection on which a stream fell silent or a call ran
// out of time: after a silent cut such a connection may be dead at the other end while this
// end waits for gRPC's keepalive (up to 15 s) to notice, and a fresh dial works at once.
func (p *peers) forget(c *grpc.ClientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, cached := range p.conns {
		if cached == c {
			delete(p.conns, addr)
			c.Close()
			return
		}
	}
}

// forgetIfTimedOut forgets c when err says the call ran out of time.
func (p *peers) forgetIfTimedOut(c *grpc.ClientConn, err error) {
	if status.Code(err) == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded) {
		p.forget(c)
	}
}

func (p *peers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conns {
		c.Close()
		delete(p.conns, addr)
	}
}

// forwarder sends writes to the site leader over gRPC; it implements replication.Forwarder.
type forwarder struct {
	gossip *gossip
	peers  *peers
}

// dialMember returns the shared connection to a member's gRPC address, or ErrNoLeader (retry
// later) when gossip does not show it alive.
func dialMember(g *gossip, p *peers, name string) (*grpc.ClientConn, error) {
	m, ok := g.member(name)
	if !ok || m.Status != "alive" {
		return nil, fmt.Errorf("%w: %s is not reachable through gossip", replication.ErrNoLeader, name)
	}
	return p.conn(m.Meta.GRPC)
}

func (f *forwarder) Forward(ctx context.Context, leader raft.ServerID, cmd []byte) ([]byte, error) {
	conn, err := dialMember(f.gossip, f.peers, string(leader))
	if err != nil {
		return nil, err
	}
	resp, err := pb.NewClusterClient(conn).Apply(ctx, &pb.ApplyRequest{Command: cmd})
	if err != nil {
		f.peers.forgetIfTimedOut(conn, err)
		return nil, fromStatus(err)
	}
	return resp.GetResult(), nil
}

// fromStatus turns a peer's gRPC error back into the node error it stands for, so that callers
// can tell "retry elsewhere" from "refused".
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable, codes.Aborted:
		// The peer is down, lost leadership or was never the leader: the write was not
		// applied, or was applied under its request id; retrying is safe.
		return fmt.Errorf("%w: %s", replication.ErrNoLeader, st.Message())
	case codes.NotFound:
		return fmt.Errorf("%w: %s", sitestate.ErrNotFound, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s", context.DeadlineExceeded, st.Message())
	case codes.Canceled:
		return fmt.Errorf("%w: %s", context.Canceled, st.Message())
	}
	return err
}

// dialSite returns the shared connection to an alive node of site, prefer (a node name) if it
// is alive, else any.
func (n *Node) dialSite(site, prefer string) (*grpc.ClientConn, error) {
	members := n.siteMembers(site, prefer)
	if len(members) == 0 {
		return nil, fmt.Errorf("no node of site %s is alive in gossip", site)
	}
	return n.peers.conn(members[0].Meta.GRPC)
}

// stopContext is a context cancelled when stop closes (or cancel is called).
func stopContext(stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, cancel
}
