package mirrorbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/tier"
)

// unusedRaftAddr is the Raft address a synthetic township's member advertises: gossip metadata
// requires one, and no node ever dials another site's Raft address. Port 1 refuses at once.
const unusedRaftAddr = "127.0.0.1:1"

// synthTownship is a township as the district sees it: a gossip member advertising a gRPC
// address, whose Cluster.Feed serves a generated feed, and a registration of the township and
// its communities. It has no Raft, no store and no other service.
type synthTownship struct {
	pb.UnimplementedClusterServer
	parent string
	member string // its gossip member's name, also its "node" in the registration
	gen    *generator

	ln   net.Listener
	srv  *grpc.Server
	list *memberlist.Memberlist
	wg   sync.WaitGroup

	served  atomic.Uint64 // entries sent, re-sent ones included
	bytes   atomic.Uint64 // bytes of those entries
	genNS   atomic.Int64  // time spent building and encoding entries
	streams atomic.Int32  // feed streams opened
	acked   atomic.Uint64 // highest cursor the parent acknowledged
}

// startSynthTownship starts the township's gRPC server and gossip member and joins the grid
// through join (a gossip address). gridName must be the grid's gossip label.
func startSynthTownship(gen *generator, parent, gridName, join string) (*synthTownship, error) {
	s := &synthTownship{parent: parent, member: gen.site + "-synthetic", gen: gen}
	var err error
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	s.srv = grpc.NewServer()
	pb.RegisterClusterServer(s.srv, s)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(s.ln)
	}()
	meta, err := node.Meta{
		Site: gen.site, Tier: tier.Township, Parent: parent, GRPC: s.ln.Addr().String(), Raft: unusedRaftAddr, Version: "mirrorbench",
	}.Encode()
	if err != nil {
		s.close()
		return nil, err
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = s.member
	mc.BindAddr, mc.BindPort, mc.AdvertisePort = "127.0.0.1", 0, 0
	mc.Label = gridName
	mc.Delegate = metaDelegate(meta)
	mc.Logger = log.New(io.Discard, "", 0)
	if s.list, err = memberlist.Create(mc); err != nil {
		s.close()
		return nil, fmt.Errorf("mirrorbench: gossip member for %s: %w", gen.site, err)
	}
	if _, err := s.list.Join([]string{join}); err != nil {
		s.close()
		return nil, fmt.Errorf("mirrorbench: %s joining the grid: %w", gen.site, err)
	}
	return s, nil
}

// register sends the township's registry (itself and its communities) to the district, as a
// township's leader does (node.registerUpward).
func (s *synthTownship) register(ctx context.Context, districtGRPC string) error {
	conn, err := grpc.NewClient(districtGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	req := &pb.RegisterSitesRequest{FromSite: s.gen.site, Sites: []*pb.SiteRecord{{
		Code: s.gen.site, Tier: string(tier.Township), Parent: s.parent, Nodes: []string{s.member}, Leader: s.member,
	}}}
	for _, c := range s.gen.communities {
		name := c + "-synthetic"
		req.Sites = append(req.Sites, &pb.SiteRecord{Code: c, Tier: string(tier.Community), Parent: s.gen.site, Nodes: []string{name}, Leader: name})
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = pb.NewClusterClient(conn).RegisterSites(cctx, req)
	return err
}

func (s *synthTownship) close() {
	if s.list != nil {
		_ = s.list.Shutdown()
	}
	if s.srv != nil {
		s.srv.Stop()
	} else if s.ln != nil {
		s.ln.Close()
	}
	s.wg.Wait()
}

// Feed serves the generated feed to the parent with the protocol of node's feed endpoint
// (node/feed_endpoint.go) and its sizes: the parent's first message names its cursor, batches
// of at most node.FeedBatchEntries entries and node.FeedBatchBytes bytes follow in order, at most
// node.FeedWindow entries ahead of the last acknowledgement, and an empty batch (the head) every
// node.FeedHeartbeat while nothing is sent. It is a copy of that endpoint's loop, not the
// endpoint itself: node does not export the endpoint (it serves only the node's own
// sitestate.State), and serving a real State would mean committing every case through a
// township's Raft first, which is the work this benchmark leaves out. Trimming and resyncs,
// which the load never needs, are left out.
func (s *synthTownship) Feed(stream pb.Cluster_FeedServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetFromSite() != s.parent {
		return status.Errorf(codes.PermissionDenied, "site %s serves its feed only to its parent %q, not to %q", s.gen.site, s.parent, first.GetFromSite())
	}
	if first.GetCursor() > s.gen.total {
		return status.Errorf(codes.FailedPrecondition, "cursor %d is beyond the feed's head %d", first.GetCursor(), s.gen.total)
	}
	s.streams.Add(1)
	var acked atomic.Uint64
	acked.Store(first.GetCursor())
	s.noteAcked(first.GetCursor())
	ackCh := make(chan struct{}, 1)
	recvErr := make(chan error, 1)
	go func() {
		for {
			a, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if c := a.GetCursor(); c > acked.Load() {
				acked.Store(c)
				s.noteAcked(c)
				select {
				case ackCh <- struct{}{}:
				default:
				}
			}
		}
	}()
	next := first.GetCursor() + 1
	var carry []byte // an entry built but left out of the last batch for its size
	heartbeat := time.NewTicker(node.FeedHeartbeat)
	defer heartbeat.Stop()
	for {
		room := int64(node.FeedWindow) - (int64(next) - 1 - int64(acked.Load()))
		if room > 0 && next <= s.gen.total {
			batch, err := s.batch(&next, &carry, int(min(room, node.FeedBatchEntries)))
			if err != nil {
				return status.Error(codes.Internal, err.Error())
			}
			if err := stream.Send(batch); err != nil {
				return err
			}
			continue
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-ackCh:
		case <-heartbeat.C:
			if err := stream.Send(&pb.FeedBatch{Head: s.gen.total}); err != nil {
				return err
			}
		}
	}
}

// batch builds the next batch from *next on: at most max entries and node.FeedBatchBytes bytes (but
// at least one entry). An entry that would overflow the size is kept in *carry for the next one.
func (s *synthTownship) batch(next *uint64, carry *[]byte, max int) (*pb.FeedBatch, error) {
	t0 := time.Now()
	defer func() { s.genNS.Add(int64(time.Since(t0))) }()
	batch := &pb.FeedBatch{Head: s.gen.total}
	size := 0
	for len(batch.Entries) < max && *next <= s.gen.total {
		b := *carry
		*carry = nil
		if b == nil {
			e, err := s.gen.entry(*next)
			if err != nil {
				return nil, err
			}
			if b, err = json.Marshal(e); err != nil {
				return nil, err
			}
		}
		if size+len(b) > node.FeedBatchBytes && len(batch.Entries) > 0 {
			*carry = b
			break
		}
		size += len(b)
		batch.Entries = append(batch.Entries, b)
		*next++
	}
	s.served.Add(uint64(len(batch.Entries)))
	s.bytes.Add(uint64(size))
	return batch, nil
}

func (s *synthTownship) noteAcked(c uint64) {
	for {
		old := s.acked.Load()
		if c <= old || s.acked.CompareAndSwap(old, c) {
			return
		}
	}
}

// metaDelegate publishes a fixed node.Meta in gossip.
type metaDelegate []byte

func (d metaDelegate) NodeMeta(limit int) []byte {
	if len(d) > limit {
		return nil
	}
	return d
}
func (metaDelegate) NotifyMsg([]byte)                {}
func (metaDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (metaDelegate) LocalState(bool) []byte          { return nil }
func (metaDelegate) MergeRemoteState([]byte, bool)   {}
