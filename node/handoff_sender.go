package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/internal/backoff"
	"github.com/govgrid/govgrid/internal/metric"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/prometheus/client_golang/prometheus"
)

// Delivery of handoffs: the site leader runs one sender per target site. A sender reads the
// oldest waiting handoffs toward its target from the committed outbox, delivers them in one
// call to any node of the target (which forwards to its leader), and settles the answers in
// one commit. A failed call is retried with exponential backoff and jitter for as long as the
// handoffs wait: a timeout is never taken for a refusal, because the target may have applied
// them. A new leader starts from the committed outbox alone.
const (
	// defaultHandoffBatch is the most handoffs one delivery carries, and maxDeliveryBytes the
	// most record bytes (one at least): a delivery is one gRPC message (4 MiB at most) and
	// becomes one Raft entry at the target, which should stay near 512 KiB.
	defaultHandoffBatch = 128
	maxDeliveryBytes    = 1 << 20
	// A retry waits 50 ms to 2 s (±50 %): after a cut heals, the next try comes within
	// seconds, and gossip news wakes it sooner.
	backoffMin = 50 * time.Millisecond
	backoffMax = 2 * time.Second
	// deliverTimeout bounds one delivery (a commit at the target): a link whose packets vanish
	// costs at most this, then a retry.
	deliverTimeout = 5 * time.Second
)

// retryBackoff is the backoff of every worker that retries a peer: 50 ms to 2 s, ±50 %.
func retryBackoff() backoff.Backoff {
	return backoff.Backoff{Min: backoffMin, Max: backoffMax, Jitter: 0.5}
}

// handoffMetrics are the delivery side's instruments (the target's are in sitestate).
type handoffMetrics struct {
	depth    *prometheus.GaugeVec
	oldest   *prometheus.GaugeVec
	latency  prometheus.Histogram
	retries  prometheus.Counter
	refusals prometheus.Counter
	// failing is how long deliveries to a target have failed (0 while it answers).
	failing *prometheus.GaugeVec
}

func newHandoffMetrics(reg prometheus.Registerer) *handoffMetrics {
	f := metric.With(reg)
	return &handoffMetrics{
		depth:    f.GaugeVec("govgrid_handoff_outbox_depth", "Handoffs committed at this site and not yet settled, by target site (leader only).", "target"),
		oldest:   f.GaugeVec("govgrid_handoff_outbox_oldest_seconds", "Age of the oldest unsettled handoff, by target site (leader only): a stuck handoff shows here.", "target"),
		latency:  f.Histogram("govgrid_handoff_delivery_seconds", "Time from committing a handoff at this site to its target's answer.", 0.001, 2, 18),
		retries:  f.Counter("govgrid_handoff_retries_total", "Deliveries that failed (target unreachable, no leader, timeout) and will be retried."),
		refusals: f.Counter("govgrid_handoff_refusals_total", "Handoffs from this site that their target refused; the case was unlocked with the reason."),
		failing:  f.GaugeVec("govgrid_handoff_target_failing_seconds", "How long deliveries to a target site with handoffs waiting have failed, in seconds; 0 while it answers (leader only).", "target"),
	}
}

// runOutbox is leader work: it loads the committed outbox into memory, keeps a sender running
// for every target site with handoffs waiting, wakes them on news, and publishes depths.
func (n *Node) runOutbox(stop <-chan struct{}) {
	senders := map[string]chan struct{}{}
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		n.outbox.stop()
		n.handoffs.depth.Reset()
		n.handoffs.oldest.Reset()
	}()
	load := func() {
		if err := n.outbox.start(n.state.Outbox); err != nil {
			n.logger.Warn("could not read the outbox; retrying as news comes", "error", err)
		}
	}
	load()
	gauges := time.NewTicker(time.Second)
	defer gauges.Stop()
	for {
		if n.outbox.stale() {
			load() // the state was replaced from a snapshot
		}
		news := n.gossip.news.C()
		for _, to := range n.outbox.targets() {
			wake, ok := senders[to]
			if !ok {
				wake = make(chan struct{}, 1)
				senders[to] = wake
				wg.Add(1)
				go func() {
					defer wg.Done()
					n.sendOutbox(stop, to, wake)
				}()
			}
			nudge(wake)
		}
		select {
		case <-stop:
			return
		case <-n.outbox.wake:
		case <-news:
		case <-gauges.C:
			n.publishOutboxDepths()
		}
	}
}

func (n *Node) handoffBatch() int {
	if b := n.cfg.HandoffBatch; b > 0 && b <= defaultHandoffBatch {
		return b
	}
	return defaultHandoffBatch
}

func nudge(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (n *Node) publishOutboxDepths() {
	n.handoffs.depth.Reset()
	n.handoffs.oldest.Reset()
	n.handoffs.failing.Reset()
	live := n.links.status()
	for to, d := range n.outbox.depths() {
		n.handoffs.depth.WithLabelValues(to).Set(float64(d.Depth))
		n.handoffs.oldest.WithLabelValues(to).Set(time.Since(d.Oldest).Seconds())
		failing := 0.0
		if t := targetLinkOf(live, to); t != nil && t.GetFailingSince() != 0 {
			failing = time.Since(time.Unix(0, t.GetFailingSince())).Seconds()
		}
		n.handoffs.failing.WithLabelValues(to).Set(failing)
	}
}

// sendOutbox delivers the handoffs waiting for one target until leadership ends. Settling a
// delivered batch runs beside the next delivery; handoffs being settled are not sent again
// (if settling fails they are, and the target answers "duplicate").
func (n *Node) sendOutbox(stop <-chan struct{}, to string, wake <-chan struct{}) {
	handoffBatch := n.handoffBatch()
	var (
		mu       sync.Mutex
		settling = map[string]bool{}
		settled  = make(chan struct{}, 1)
		wg       sync.WaitGroup
		retry    = retryBackoff()
		via      string // the target node that answered last
	)
	defer wg.Wait()
	busy := func(id string) bool { mu.Lock(); defer mu.Unlock(); return settling[id] }
	for {
		batch := n.outbox.next(to, handoffBatch, busy)
		if len(batch) == 0 {
			select {
			case <-stop:
				return
			case <-wake:
			case <-settled:
			}
			continue
		}
		news := n.gossip.news.C()
		acks, answeredBy, err := n.deliver(to, batch, via)
		n.links.delivered(to, err)
		if err != nil {
			n.handoffs.retries.Inc()
			wait := retry.Next()
			n.logger.Debug("handoff delivery failed; retrying", "target", to, "handoffs", len(batch), "in", wait, "error", err)
			select {
			case <-stop:
				return
			case <-time.After(wait):
			case <-news: // the target may be back
			}
			continue
		}
		retry.Reset()
		via = answeredBy
		settlements := n.settlementsFor(batch, acks)
		if len(settlements) == 0 {
			continue
		}
		mu.Lock()
		for _, s := range settlements {
			settling[s.ID] = true
		}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
			err := n.state.SettleHandoffs(ctx, settlements)
			cancel()
			if err != nil {
				n.logger.Warn("could not settle delivered handoffs; they will be delivered again", "target", to, "error", err)
			}
			mu.Lock()
			for _, s := range settlements {
				delete(settling, s.ID)
			}
			mu.Unlock()
			nudge(settled)
		}()
	}
}

// settlementsFor turns the target's answers into settlements and observes them.
func (n *Node) settlementsFor(batch []sitestate.OutboxEntry, acks []*pb.HandoffAck) []sitestate.Settlement {
	since := map[string]time.Time{}
	for _, e := range batch {
		since[e.ID] = e.Since
	}
	out := make([]sitestate.Settlement, 0, len(acks))
	for _, a := range acks {
		t, ok := since[a.GetId()]
		if !ok {
			continue // not something we sent: ignore
		}
		s := sitestate.Settlement{ID: a.GetId()}
		switch a.GetOutcome() {
		case sitestate.OutcomeApplied, sitestate.OutcomeDuplicate:
		case sitestate.OutcomeRefused:
			s.Refused, s.Reason = true, a.GetReason()
			n.handoffs.refusals.Inc()
			n.logger.Warn("handoff refused by its target", "handoff", s.ID, "reason", s.Reason)
		default:
			continue // an answer this version does not know: deliver again later
		}
		n.handoffs.latency.Observe(time.Since(t).Seconds())
		out = append(out, s)
	}
	return out
}

// deliver sends one batch to a node of site to, trying first the node that answered last, and
// returns the acks and the node that gave them. It sends the records as stored, bytes it does
// not read, as many as fit in maxDeliveryBytes (the rest go next round).
func (n *Node) deliver(to string, batch []sitestate.OutboxEntry, prefer string) ([]*pb.HandoffAck, string, error) {
	req := &pb.HandoffRequest{FromSite: n.cfg.Site}
	var gone []string
	defer func() { n.outbox.drop(gone) }()
	size := 0
	for _, e := range batch {
		rec, ok, err := n.state.HandoffRecord(e.Number, e.ID)
		if err != nil {
			return nil, "", err
		}
		if !ok {
			gone = append(gone, e.ID) // settled already (the case came back, or an earlier leader)
			continue
		}
		if size += len(rec); size > maxDeliveryBytes && len(req.Items) > 0 {
			break
		}
		req.Items = append(req.Items, &pb.HandoffItem{Id: e.ID, Record: rec})
	}
	if len(req.Items) == 0 {
		return nil, prefer, nil
	}
	if len(gone) > 0 {
		return nil, prefer, nil // deliver the rest on the next round, without the settled ones
	}
	var lastErr error
	for _, m := range n.siteMembers(to, prefer) {
		conn, err := n.peers.conn(m.Meta.GRPC)
		if err != nil {
			lastErr = err
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
		resp, err := pb.NewClusterClient(conn).Handoff(ctx, req)
		cancel()
		if err != nil {
			n.peers.forgetIfTimedOut(conn, err)
			lastErr = fmt.Errorf("%s: %w", m.Name, err)
			continue
		}
		return resp.GetAcks(), m.Name, nil
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no node of site %s is known to gossip", to)
	}
	return nil, "", lastErr
}

// siteMembers lists the nodes of a site to try, the alive ones first (the preferred one first,
// the rest shuffled), then those gossip believes dead: after a cut heals, gossip may take a while
// to see a node back, and a call should not wait for it.
func (n *Node) siteMembers(site, prefer string) []Member {
	var alive, dead []Member
	for _, m := range n.gossip.members() {
		switch {
		case m.Meta.Site != site:
		case m.Status == "alive":
			alive = append(alive, m)
		case m.Status == "dead":
			dead = append(dead, m)
		}
	}
	rand.Shuffle(len(alive), func(i, j int) { alive[i], alive[j] = alive[j], alive[i] })
	for i, m := range alive {
		if m.Name == prefer {
			alive[0], alive[i] = alive[i], alive[0]
		}
	}
	return append(alive, dead...)
}
