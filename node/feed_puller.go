package node

import (
	"context"
	"sync"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/prometheus/client_golang/prometheus"
)

// Feeds up the tree (docs/DESIGN.md, "Feeds"). A child serves its feed to its parent over a
// bidirectional stream: the parent says where it stands, the child sends batches in order, the
// parent acknowledges what it committed, and the child never runs more than FeedWindow entries
// ahead of the last acknowledgement, so a slow parent slows the stream instead of losing
// entries. The parent's leader runs one puller per child; it commits each batch with the new
// cursor in one command (sitestate.State.MirrorChild), so a new leader resumes from the
// committed cursor and a re-sent entry is skipped. The child's leader trims what its parent has
// acknowledged.
const (
	// FeedBatchEntries and FeedBatchBytes bound one batch (its case records, one at least): a
	// batch becomes one Raft entry at the parent.
	FeedBatchEntries = 256
	FeedBatchBytes   = 512 << 10
	// FeedWindow is how many entries a child sends past the parent's last acknowledgement.
	FeedWindow = 4 * FeedBatchEntries
	// FeedHeartbeat is how often a quiet feed sends an empty batch (with its head).
	FeedHeartbeat = 2 * time.Second
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

// trimFeed is leader work at the district, which has no parent to serve its feed to: drop the
// feed entries older than the last trim. (Other sites trim what their parent acknowledged, from
// the node that serves the parent's stream: see feedEndpoint.)
func (n *Node) trimFeed(stop <-chan struct{}) {
	if n.cfg.Parent != "" {
		return
	}
	t := time.NewTicker(feedTrimEvery)
	defer t.Stop()
	var trimmed uint64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		head, err := n.state.FeedHead()
		if err != nil || head <= trimmed {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.state.TrimFeed(ctx, head); err == nil {
			trimmed = head
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
		if recs, err := n.state.Sites(); err == nil {
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
	retry := retryBackoff()
	for {
		news := n.gossip.news.C()
		err := n.pullOnce(stop, child)
		select {
		case <-stop:
			return
		default:
		}
		wait := time.Duration(0)
		if err != nil {
			wait = retry.Next()
			n.logger.Debug("feed pull interrupted; reconnecting", "child", child, "in", wait, "error", err)
		} else {
			retry.Reset()
		}
		select {
		case <-stop:
			return
		case <-time.After(wait):
		case <-news:
		}
	}
}

// pullOnce runs one stream: from the committed cursor until an error or the end of leadership.
func (n *Node) pullOnce(stop <-chan struct{}, child string) error {
	cursors, err := n.state.FeedCursors()
	if err != nil {
		return err
	}
	cur := cursors[child]
	n.observeLag(child, cur)
	leader := ""
	if recs, err := n.state.Sites(); err == nil {
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
		if batch.GetResync() {
			// The child sends its whole mirror (this site's cursor is before what it keeps).
			cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
			moved, err := n.state.ResyncChild(cctx, child, batch.GetEntries(), batch.GetHead(), batch.GetResyncCursor())
			ccancel()
			if err != nil {
				return err
			}
			if moved != nil {
				cur.Cursor = moved.Cursor
			}
			n.feeds.applied.WithLabelValues(child).Add(float64(len(batch.GetEntries())))
			n.observeLag(child, cur)
			if err := stream.Send(&pb.FeedAck{Cursor: cur.Cursor}); err != nil {
				return err
			}
			continue
		}
		if len(batch.GetEntries()) == 0 {
			n.observeLag(child, cur)
			continue
		}
		// The entries pass through undecoded: the state machine reads them, and answers the
		// cursor they moved it to.
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		moved, err := n.state.MirrorChild(cctx, child, batch.GetEntries(), batch.GetHead())
		ccancel()
		if err != nil {
			return err // a gap or a lost leadership: start again from the committed cursor
		}
		n.feeds.applied.WithLabelValues(child).Add(float64(len(batch.GetEntries())))
		if moved != nil {
			cur.Cursor, cur.LastAt = moved.Cursor, moved.LastAt
		}
		n.observeLag(child, cur)
		if err := stream.Send(&pb.FeedAck{Cursor: cur.Cursor}); err != nil {
			return err
		}
	}
}

func (n *Node) observeLag(child string, cur sitestate.FeedCursor) {
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
