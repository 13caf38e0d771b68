package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
	"github.com/prometheus/client_golang/prometheus"
)

// Delivery of handoffs: the site leader runs one sender per target site. A sender reads the
// oldest waiting handoffs toward its target from the committed outbox, delivers them in one
// call to any node of the target (which forwards to its leader), and settles the answers in
// one commit. A failed call is retried with exponential backoff and jitter for as long as the
// handoffs wait: a timeout is never taken for a refusal, because the target may have applied
// them. A new leader starts from the committed outbox alone.
const (
	// defaultHandoffBatch is the most handoffs one delivery carries: it keeps the target's
	// Raft entry well under the 512 KiB that would delay heartbeats.
	defaultHandoffBatch = 128
	backoffMin          = 50 * time.Millisecond
	backoffMax          = 5 * time.Second
	deliverTimeout      = 10 * time.Second
)

// handoffMetrics are the delivery side's instruments (the target's are in replication).
type handoffMetrics struct {
	depth    *prometheus.GaugeVec
	oldest   *prometheus.GaugeVec
	latency  prometheus.Histogram
	retries  prometheus.Counter
	refusals prometheus.Counter
}

func newHandoffMetrics(reg prometheus.Registerer) *handoffMetrics {
	m := &handoffMetrics{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "govgrid_handoff_outbox_depth",
			Help: "Handoffs committed at this site and not yet settled, by target site (leader only).",
		}, []string{"target"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "govgrid_handoff_outbox_oldest_seconds",
			Help: "Age of the oldest unsettled handoff, by target site (leader only): a stuck handoff shows here.",
		}, []string{"target"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govgrid_handoff_delivery_seconds",
			Help:    "Time from committing a handoff at this site to its target's answer.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "govgrid_handoff_retries_total",
			Help: "Deliveries that failed (target unreachable, no leader, timeout) and will be retried.",
		}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "govgrid_handoff_refusals_total",
			Help: "Handoffs from this site that their target refused; the case was unlocked with the reason.",
		}),
	}
	reg.MustRegister(m.depth, m.oldest, m.latency, m.retries, m.refusals)
	return m
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
	if err := n.outbox.start(func() ([]replication.OutboxEntry, error) { return n.store.Outbox("", 0) }); err != nil {
		n.logger.Warn("could not read the outbox; retrying as news comes", "error", err)
	}
	gauges := time.NewTicker(time.Second)
	defer gauges.Stop()
	for {
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
		case <-n.gossip.delivery:
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
	for to, d := range n.outbox.depths() {
		n.handoffs.depth.WithLabelValues(to).Set(float64(d.Depth))
		n.handoffs.oldest.WithLabelValues(to).Set(time.Since(d.Oldest).Seconds())
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
		backoff  time.Duration
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
		acks, answeredBy, err := n.deliver(to, batch, via)
		if err != nil {
			n.handoffs.retries.Inc()
			backoff = min(max(2*backoff, backoffMin), backoffMax)
			wait := time.Duration(float64(backoff) * (0.5 + rand.Float64())) // jitter: 0.5x to 1.5x
			n.logger.Debug("handoff delivery failed; retrying", "target", to, "handoffs", len(batch), "in", wait, "error", err)
			select {
			case <-stop:
				return
			case <-time.After(wait):
			case <-n.gossip.delivery: // the target may be back
			}
			continue
		}
		backoff, via = 0, answeredBy
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
			err := n.store.SettleHandoffs(ctx, settlements)
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
func (n *Node) settlementsFor(batch []replication.OutboxEntry, acks []*pb.HandoffAck) []replication.Settlement {
	since := map[string]time.Time{}
	for _, e := range batch {
		since[e.ID] = e.Since
	}
	out := make([]replication.Settlement, 0, len(acks))
	for _, a := range acks {
		t, ok := since[a.GetId()]
		if !ok {
			continue // not something we sent: ignore
		}
		s := replication.Settlement{ID: a.GetId()}
		switch a.GetOutcome() {
		case replication.OutcomeApplied, replication.OutcomeDuplicate:
		case replication.OutcomeRefused:
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
// returns the acks and the node that gave them.
func (n *Node) deliver(to string, batch []replication.OutboxEntry, prefer string) ([]*pb.HandoffAck, string, error) {
	req := &pb.HandoffRequest{FromSite: n.cfg.Site}
	var gone []string
	defer func() { n.outbox.drop(gone) }()
	for _, e := range batch {
		c, err := n.store.CaseRecord(e.Number)
		if err != nil || c.Transit == nil || c.Transit.HandoffID != e.ID {
			gone = append(gone, e.ID) // settled already (the case came back, or an earlier leader)
			continue
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, "", err
		}
		req.Items = append(req.Items, &pb.HandoffItem{Id: e.ID, Record: b})
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
			lastErr = fmt.Errorf("%s: %w", m.Name, err)
			continue
		}
		return resp.GetAcks(), m.Name, nil
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no node of site %s is alive in gossip", to)
	}
	return nil, "", lastErr
}

// siteMembers lists the alive nodes of a site, the preferred one first, the rest shuffled.
func (n *Node) siteMembers(site, prefer string) []Member {
	var out []Member
	for _, m := range n.gossip.members() {
		if m.Meta.Site == site && m.Status == "alive" {
			out = append(out, m)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for i, m := range out {
		if m.Name == prefer {
			out[0], out[i] = out[i], out[0]
		}
	}
	return out
}

// ReceiveHandoffs commits handoffs delivered by a neighbouring site. A sender that is not a
// neighbour (yet: a new child may not be registered) is told to retry, never refused: a
// refusal would unlock the case at its holder.
func (n *Node) ReceiveHandoffs(ctx context.Context, from string, items []*pb.HandoffItem) ([]replication.ArrivalOutcome, error) {
	if n.restoring.Load() {
		return nil, errRestoring // retried by the sender once the site is whole again
	}
	if !n.isNeighbour(from) {
		return nil, &replication.Error{Code: replication.CodeConflict, Message: fmt.Sprintf("site %s is not a parent or child of %s (yet): moves go along tree edges", from, n.cfg.Site)}
	}
	if len(items) > defaultHandoffBatch {
		// One delivery becomes one command, which must fit in one badger transaction.
		return nil, &replication.Error{Code: replication.CodeInvalid, Message: fmt.Sprintf("at most %d handoffs per delivery", defaultHandoffBatch)}
	}
	arrivals := make([]replication.Arrival, 0, len(items))
	for _, it := range items {
		a := replication.Arrival{ID: it.GetId(), From: from}
		c := new(casework.Case)
		if err := json.Unmarshal(it.GetRecord(), c); err == nil {
			a.Case = c // an undecodable record arrives without a case and is refused
		}
		arrivals = append(arrivals, a)
	}
	return n.store.ReceiveHandoffs(ctx, arrivals)
}

// isNeighbour reports whether site is this site's parent or one of its children (registered
// here, or seen in gossip naming this site as its parent).
func (n *Node) isNeighbour(site string) bool {
	if site == "" || site == n.cfg.Site {
		return false
	}
	if site == n.cfg.Parent {
		return true
	}
	return n.childStatus(site) == siteChild
}

type siteRelation int

const (
	siteUnknown siteRelation = iota
	siteChild
	siteElsewhere
)

// childStatus tells whether site is a child of this site, another known site, or unknown.
func (n *Node) childStatus(site string) siteRelation {
	rel := siteUnknown
	if recs, err := n.store.Sites(); err == nil {
		for _, r := range recs {
			if r.Code == site {
				if r.Parent == n.cfg.Site {
					return siteChild
				}
				rel = siteElsewhere
			}
		}
	}
	for _, m := range n.gossip.members() {
		if m.Meta.Site == site {
			if m.Meta.Parent == n.cfg.Site {
				return siteChild
			}
			rel = siteElsewhere
		}
	}
	return rel
}

// relayTarget is the site a case must go on to from here: the parent, while the tier that must
// decide the case is above this one.
func (n *Node) relayTarget(decideTier string) string {
	t, err := tier.Parse(decideTier)
	if decideTier == "" || err != nil || n.cfg.Parent == "" {
		return ""
	}
	if t.Level() < n.cfg.Tier.Level() {
		return n.cfg.Parent
	}
	return ""
}

// moveTarget resolves and checks where a move sends a case: along a tree edge, to a known site.
func (n *Node) moveTarget(number string, d casework.Departure) (string, error) {
	invalid := func(format string, args ...any) error {
		return &replication.Error{Code: replication.CodeInvalid, Message: fmt.Sprintf(format, args...)}
	}
	switch d.Move {
	case casework.MoveEscalate, casework.MoveRelay:
		if n.cfg.Parent == "" {
			return "", invalid("%s is the district: there is no higher site to %s to", n.cfg.Site, d.Move)
		}
		if d.To != "" && d.To != n.cfg.Parent {
			return "", invalid("%s goes to the parent site %s, not %s: moves go along tree edges", d.Move, n.cfg.Parent, d.To)
		}
		if d.Move == casework.MoveRelay {
			c, err := n.store.GetCase(number)
			if err == nil && n.childStatus(c.CameFrom()) != siteChild {
				return "", &replication.Error{Code: replication.CodeConflict, Message: fmt.Sprintf(
					"case %s was not received from a lower site: relay forwards cases from below, use escalate", number)}
			}
		}
		return n.cfg.Parent, nil
	case casework.MoveHandDown:
		if d.To == "" {
			return "", casework.FieldErrors{{Field: "to_site", Reason: "is required: the child site to hand the case down to"}}
		}
		switch n.childStatus(d.To) {
		case siteChild:
			return d.To, nil
		case siteElsewhere:
			return "", invalid("site %s is not a child of %s: moves go along tree edges", d.To, n.cfg.Site)
		}
		if d.To == n.cfg.Parent {
			return "", invalid("site %s is the parent of %s: hand down goes to a child, use escalate", d.To, n.cfg.Site)
		}
		return "", &replication.Error{Code: replication.CodeNotFound, Message: fmt.Sprintf("unknown site %s", d.To)}
	case casework.MoveReturn:
		c, err := n.store.GetCase(number)
		if err != nil {
			return "", n.whyNotHeld(number, err)
		}
		from := c.CameFrom()
		if from == "" {
			return "", &replication.Error{Code: replication.CodeConflict, Message: fmt.Sprintf("case %s was accepted at %s: there is no site to return it to", number, n.cfg.Site)}
		}
		if d.To != "" && d.To != from {
			return "", invalid("return goes back to %s, where the case came from, not %s", from, d.To)
		}
		return from, nil
	}
	return "", casework.FieldErrors{{Field: "move", Reason: "must be escalate, relay, handdown or return"}}
}

// MoveCase moves a case this site holds to a neighbouring site.
func (n *Node) MoveCase(ctx context.Context, number string, d casework.Departure) (*casework.Case, error) {
	d.Site = n.cfg.Site
	to, err := n.moveTarget(number, d)
	if err != nil {
		return nil, err
	}
	d.To = to
	return n.store.MoveCase(ctx, number, d)
}

// whyNotHeld explains a failed local read of a case this site was asked to change: it was
// handed on (a conflict naming the holder), or it is not here.
func (n *Node) whyNotHeld(number string, err error) error {
	if !errors.Is(err, replication.ErrNotFound) {
		return err
	}
	if st, serr := n.store.GetStub(number); serr == nil {
		return &replication.Error{Code: replication.CodeConflict, Message: fmt.Sprintf(
			"case %s was handed on to %s: only the holder changes it", number, st.Holder)}
	}
	return &replication.Error{Code: replication.CodeNotFound, Message: fmt.Sprintf("case %s is not held at %s", number, n.cfg.Site)}
}
