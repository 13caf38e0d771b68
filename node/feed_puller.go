package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/replication"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Feeds up the tree (docs/DESIGN.md, "Feeds"). A child serves its feed to its parent over a
// bidirectional stream: the parent says where it stands, the child sends batches in order, the
// parent acknowledges what it committed, and the child never runs more than feedWindow entries
// ahead of the last acknowledgement, so a slow parent slows the stream instead of losing
// entries. The parent's leader runs one puller per child; it commits each batch with the new
// cursor in one command (replication.Store.MirrorChildRaw), so a new leader resumes from the
// committed cursor and a re-sent entry is skipped. The child's leader trims what its parent has
// acknowledged.
const (
	feedBatch     = 256             // entries per batch, at most
	feedBatchSize = 512 << 10       // bytes per batch, at most: a batch becomes one Raft entry
	feedWindow    = 4 * feedBatch   // entries sent and not yet acknowledged, at most
	feedHeartbeat = 2 * time.Second // an empty batch this often while the feed is quiet
	feedTrimEvery = 10 * time.Second
)

// feedMetrics show how far behind this site's mirror is, per child.
type feedMetrics struct {
	lagEntries *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
	applied    *prometheus.CounterVec
}

func newFeedMetrics(reg prometheus.Registerer) *feedMetrics {
	m := &feedMetrics{
		lagEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "govgrid_feed_lag_entries",
			Help: "Entries of a child's feed not yet mirrored here (leader only).",
		}, []string{"child"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "govgrid_feed_lag_seconds",
			Help: "How far this site's mirror of a child is behind it, in seconds (0 when caught up; leader only).",
		}, []string{"child"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govgrid_feed_entries_mirrored_total",
			Help: "Feed entries of a child committed into this site's mirror.",
		}, []string{"child"}),
	}
	reg.MustRegister(m.lagEntries, m.lagSeconds, m.applied)
	return m
}

// ServeFeed streams this site's feed to its parent.
func (n *Node) ServeFeed(stream pb.Cluster_FeedServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if n.cfg.Parent == "" || first.GetFromSite() != n.cfg.Parent {
		return status.Errorf(codes.PermissionDenied, "site %s serves its feed only to its parent %q, not to %q", n.cfg.Site, n.cfg.Parent, first.GetFromSite())
	}
	var acked atomic.Uint64
	acked.Store(first.GetCursor())
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
				n.noteFeedAcked(c)
				nudge(ackCh)
			}
		}
	}()
	n.noteFeedAcked(first.GetCursor())
	next := first.GetCursor() + 1
	heartbeat := time.NewTicker(feedHeartbeat)
	defer heartbeat.Stop()
	for {
		changed := n.store.FeedChanged()
		var entries [][]byte
		var head uint64
		if room := feedWindow - (int64(next) - 1 - int64(acked.Load())); room > 0 {
			if entries, head, err = n.store.ReadFeedRaw(next, int(min(room, feedBatch))); err != nil {
				return grpcErr(err)
			}
		}
		if len(entries) > 0 {
			batch := &pb.FeedBatch{Head: head}
			size := 0
			for _, b := range entries {
				if size += len(b); size > feedBatchSize && len(batch.Entries) > 0 {
					break
				}
				batch.Entries = append(batch.Entries, b)
				next++
			}
			if err := stream.Send(batch); err != nil {
				return err
			}
			continue
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-n.stop:
			return status.Error(codes.Unavailable, "node stopping")
		case err := <-recvErr:
			return err
		case <-changed:
		case <-ackCh:
		case <-heartbeat.C:
			_, head, err := n.store.ReadFeed(next, 0)
			if err != nil {
				return grpcErr(err)
			}
			if err := stream.Send(&pb.FeedBatch{Head: head}); err != nil {
				return err
			}
		}
	}
}

func grpcErr(err error) error {
	var re *replication.Error
	if errors.As(err, &re) && re.Code == replication.CodeConflict {
		return status.Error(codes.FailedPrecondition, re.Message)
	}
	return status.Error(codes.Unavailable, err.Error())
}

// noteFeedAcked remembers the highest entry the parent has committed, for trimming.
func (n *Node) noteFeedAcked(c uint64) {
	for {
		old := n.feedAcked.Load()
		if c <= old || n.feedAcked.CompareAndSwap(old, c) {
			return
		}
	}
}

// trimFeed is leader work: drop the feed entries the parent has acknowledged (all of them at
// the district, which has no parent to serve).
func (n *Node) trimFeed(stop <-chan struct{}) {
	t := time.NewTicker(feedTrimEvery)
	defer t.Stop()
	var trimmed uint64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		upto := n.feedAcked.Load()
		if n.cfg.Parent == "" {
			if _, head, err := n.store.ReadFeed(1, 0); err == nil {
				upto = head
			}
		}
		if upto <= trimmed {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.store.TrimFeed(ctx, upto); err == nil {
			trimmed = upto
		}
		cancel()
	}
}

// runMirror is leader work: one puller per child site registered here.
func (n *Node) runMirror(stop <-chan struct{}) {
	var wg sync.WaitGroup
	defer wg.Wait()
	pulling := map[string]bool{}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if recs, err := n.store.Sites(); err == nil {
			for _, r := range recs {
				if r.Parent != n.cfg.Site || pulling[r.Code] {
					continue
				}
				pulling[r.Code] = true
				wg.Add(1)
				go func(child string) {
					defer wg.Done()
					n.pullFeed(stop, child)
				}(r.Code)
			}
		}
		select {
		case <-stop:
			n.feeds.lagEntries.Reset()
			n.feeds.lagSeconds.Reset()
			return
		case <-t.C:
		case <-n.mirrorWake:
		}
	}
}

// pullFeed mirrors one child's feed until leadership ends, reconnecting with backoff.
func (n *Node) pullFeed(stop <-chan struct{}, child string) {
	backoff := time.Duration(0)
	for {
		err := n.pullOnce(stop, child)
		select {
		case <-stop:
			return
		default:
		}
		if err == nil {
			backoff = 0
		} else {
			backoff = min(max(2*backoff, backoffMin), backoffMax)
			n.logger.Debug("feed pull interrupted; reconnecting", "child", child, "error", err)
		}
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(float64(backoff) * (0.5 + rand.Float64()))):
		case <-n.gossip.delivery:
		}
	}
}

// pullOnce runs one stream: from the committed cursor until an error or the end of leadership.
func (n *Node) pullOnce(stop <-chan struct{}, child string) error {
	cursors, err := n.store.FeedCursors()
	if err != nil {
		return err
	}
	cur := cursors[child]
	n.observeLag(child, cur)
	leader := ""
	if recs, err := n.store.Sites(); err == nil {
		for _, r := range recs {
			if r.Code == child {
				leader = r.Leader
			}
		}
	}
	conn, err := n.dialSite(child, leader)
	if err != nil {
		return err
	}
	ctx, cancel := stopContext(stop)
	defer cancel()
	stream, err := pb.NewClusterClient(conn).Feed(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&pb.FeedAck{FromSite: n.cfg.Site, Cursor: cur.Cursor}); err != nil {
		return err
	}
	for {
		batch, err := stream.Recv()
		if err != nil {
			return err
		}
		cur.Head = max(cur.Head, batch.GetHead())
		if len(batch.GetEntries()) == 0 {
			n.observeLag(child, cur)
			continue
		}
		// Only the sequence and time are read here; the FSM decodes each entry once.
		entries := make([]struct {
			Seq uint64    `json:"seq"`
			At  time.Time `json:"at"`
		}, len(batch.GetEntries()))
		for i, b := range batch.GetEntries() {
			if err := json.Unmarshal(b, &entries[i]); err != nil {
				return fmt.Errorf("undecodable feed entry from %s: %w", child, err)
			}
		}
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		err = n.store.MirrorChildRaw(cctx, child, batch.GetEntries(), batch.GetHead())
		ccancel()
		if err != nil {
			return err // a gap or a lost leadership: start again from the committed cursor
		}
		n.feeds.applied.WithLabelValues(child).Add(float64(len(entries)))
		for _, e := range entries {
			cur.Cursor = e.Seq
			if !e.At.IsZero() {
				cur.LastAt = e.At
			}
		}
		n.observeLag(child, cur)
		if err := stream.Send(&pb.FeedAck{Cursor: cur.Cursor}); err != nil {
			return err
		}
	}
}

func (n *Node) observeLag(child string, cur replication.FeedCursor) {
	behind := float64(0)
	if cur.Head > cur.Cursor {
		behind = float64(cur.Head - cur.Cursor)
	}
	n.feeds.lagEntries.WithLabelValues(child).Set(behind)
	secs := 0.0
	if behind > 0 && !cur.LastAt.IsZero() {
		secs = time.Since(cur.LastAt).Seconds()
	}
	n.feeds.lagSeconds.WithLabelValues(child).Set(secs)
}

// ListSubtree lists the mirror, turning the filter's site and tier into the set of holder sites.
func (n *Node) ListSubtree(f replication.MirrorFilter) (*replication.MirrorPage, error) {
	if f.Site != "" || f.Tier != "" {
		f.Holders = map[string]bool{}
		tiers := map[string]string{n.cfg.Site: string(n.cfg.Tier)}
		if recs, err := n.store.Sites(); err == nil {
			for _, r := range recs {
				tiers[r.Code] = r.Tier
			}
		}
		for site, t := range tiers {
			if (f.Site == "" || f.Site == site) && (f.Tier == "" || f.Tier == t) {
				f.Holders[site] = true
			}
		}
		if f.Site != "" && f.Tier == "" {
			f.Holders[f.Site] = true // a site not registered yet may still hold mirrored cases
		}
	}
	return n.store.ListMirror(f)
}
