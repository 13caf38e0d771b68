package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/internal/metric"
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

// feedMetrics show how far behind this site's mirror is, per child, and whether that is known.
type feedMetrics struct {
	lagEntries *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
	lagKnown   *prometheus.GaugeVec
	silent     *prometheus.GaugeVec
	streamUp   *prometheus.GaugeVec
	applied    *prometheus.CounterVec
}

func newFeedMetrics(reg prometheus.Registerer) *feedMetrics {
	f := metric.With(reg)
	return &feedMetrics{
		lagEntries: f.GaugeVec("govgrid_feed_lag_entries", "Entries of a child's feed not yet mirrored here (leader only; absent while the lag is not known).", "child"),
		lagSeconds: f.GaugeVec("govgrid_feed_lag_seconds", "How far this site's mirror of a child is behind it, in seconds (leader only; absent while the lag is not known).", "child"),
		lagKnown:   f.GaugeVec("govgrid_feed_lag_known", "1 when the child was heard within its feed's silence window, 0 when not: its lag is then unknown (leader only).", "child"),
		silent:     f.GaugeVec("govgrid_feed_silent_seconds", "Seconds since this site last heard a child's feed, an entry or a heartbeat (since it leads, if never; leader only).", "child"),
		streamUp:   f.GaugeVec("govgrid_feed_stream_up", "1 while the feed stream from a child is open (leader only).", "child"),
		applied:    f.CounterVec("govgrid_feed_entries_mirrored_total", "Feed entries of a child committed into this site's mirror.", "child"),
	}
}

// publish sets the gauges of every child from the committed cursors and what the leader heard.
func (m *feedMetrics) publish(cursors map[string]sitestate.FeedCursor, live *pb.LinkStatusResponse, silence time.Duration, since time.Time) {
	now := time.Now()
	for child, c := range cursors {
		v := feedView(c, feedLinkOf(live, child), silence, now)
		heard := since
		if v.HeardAt != nil {
			heard = *v.HeardAt
		}
		m.silent.WithLabelValues(child).Set(now.Sub(heard).Seconds())
		m.streamUp.WithLabelValues(child).Set(boolGauge(v.StreamUp))
		m.lagKnown.WithLabelValues(child).Set(boolGauge(v.LagKnown))
		if v.LagKnown {
			m.lagEntries.WithLabelValues(child).Set(float64(*v.LagEntries))
			m.lagSeconds.WithLabelValues(child).Set(*v.LagSeconds)
		} else {
			m.lagEntries.DeleteLabelValues(child)
			m.lagSeconds.DeleteLabelValues(child)
		}
	}
}

func (m *feedMetrics) reset() {
	for _, g := range []*prometheus.GaugeVec{m.lagEntries, m.lagSeconds, m.lagKnown, m.silent, m.streamUp} {
		g.Reset()
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// trimFeed is leader work at the district, which has no parent to serve its feed to: drop the
// feed entries older than the last trim. (Other sites trim what their parent acknowledged, from
// the node that serves the parent's stream: see FeedServer.)
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

// runMirror is leader work: one puller per child site (registered here, or seen in gossip).
func (n *Node) runMirror(stop <-chan struct{}) {
	var wg sync.WaitGroup
	defer wg.Wait()
	pulling := map[string]bool{}
	leading := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, child := range n.children() {
			if pulling[child] {
				continue
			}
			pulling[child] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.pullFeed(stop, child)
			}()
		}
		if cursors, err := n.state.FeedCursors(); err == nil {
			n.feeds.publish(cursors, n.links.status(), n.timings.feedSilence, leading)
		}
		select {
		case <-stop:
			n.feeds.reset()
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
	// The child sends something (a batch or a heartbeat) every FeedHeartbeat: a stream that
	// hears nothing for feedSilence is on a link whose packets vanish. Cancel it and dial again.
	silent := time.AfterFunc(n.timings.feedSilence, cancel)
	defer silent.Stop()
	defer n.links.streamDown(child)
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
			if !silent.Stop() && ctx.Err() != nil {
				select {
				case <-stop:
				default:
					n.peers.forget(conn)
					return fmt.Errorf("the feed of %s was silent for %v: dialling again", child, n.timings.feedSilence)
				}
			}
			return err
		}
		silent.Reset(n.timings.feedSilence)
		n.links.heard(child, batch.GetHead())
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
			if err := stream.Send(&pb.FeedAck{Cursor: cur.Cursor}); err != nil {
				return err
			}
			continue
		}
		if len(batch.GetEntries()) == 0 {
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
			cur.Cursor = moved.Cursor
		}
		if err := stream.Send(&pb.FeedAck{Cursor: cur.Cursor}); err != nil {
			return err
		}
	}
}
