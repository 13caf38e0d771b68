package node

import (
	"iter"
	"maps"
	"sync"
	"time"

	"github.com/govgrid/govgrid/sitestate"
)

// outbox is the leader's in-memory view of the site's committed outbox: per target site, the
// waiting handoffs in commit order. It is filled once from committed state when a leader's
// worker starts, then kept current by the FSM's notifications of what each commit added and
// took out, so senders never scan the store (badger iterates the tombstones of every settled
// handoff, which grew costly under load). Targets are served in commit order, so no source
// starves another.
type outbox struct {
	mu     sync.Mutex
	on     bool                               // guarded by mu: a worker runs; notifications are kept
	reload bool                               // guarded by mu: the state was replaced; load it again
	queues map[string][]sitestate.OutboxEntry // guarded by mu: per target, may hold settled ids
	live   map[string]sitestate.OutboxEntry   // guarded by mu: waiting handoffs by id
	wake   chan struct{}                      // a notification arrived
}

func newOutbox() *outbox {
	return &outbox{wake: make(chan struct{}, 1)}
}

// start turns notifications on, then loads the committed outbox with load. A handoff
// committed meanwhile arrives twice (loaded and notified) and is kept once.
func (o *outbox) start(load func() ([]sitestate.OutboxEntry, error)) error {
	o.mu.Lock()
	o.on = true
	o.queues = map[string][]sitestate.OutboxEntry{}
	o.live = map[string]sitestate.OutboxEntry{}
	o.mu.Unlock()
	entries, err := load()
	if err != nil {
		return err
	}
	o.changed(entries, nil, false)
	return nil
}

// stale reports (once) that the state was replaced and the view must be loaded again.
func (o *outbox) stale() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.reload
	o.reload = false
	return r
}

// stop drops the view: a follower keeps none.
func (o *outbox) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.on, o.queues, o.live = false, nil, nil
}

// changed records a commit's additions and removals (the FSM's notification); reload says the
// whole state was replaced from a snapshot, so the view must be loaded again.
func (o *outbox) changed(added []sitestate.OutboxEntry, removed []string, reload bool) {
	o.mu.Lock()
	if !o.on {
		o.mu.Unlock()
		return
	}
	if reload {
		o.reload = true
	}
	for _, e := range added {
		if _, ok := o.live[e.ID]; !ok {
			o.live[e.ID] = e
			o.queues[e.To] = append(o.queues[e.To], e)
		}
	}
	for _, id := range removed {
		delete(o.live, id)
	}
	o.mu.Unlock()
	nudge(o.wake)
}

// next returns up to n waiting handoffs toward to, oldest first, skipping those busy says are
// being handled; it drops settled ones from the queue's head as it goes.
func (o *outbox) next(to string, n int, busy func(id string) bool) []sitestate.OutboxEntry {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.queues[to]
	for len(q) > 0 {
		if _, ok := o.live[q[0].ID]; ok {
			break
		}
		q = q[1:]
	}
	o.queues[to] = q
	var out []sitestate.OutboxEntry
	for _, e := range q {
		if len(out) == n {
			break
		}
		if _, ok := o.live[e.ID]; ok && !busy(e.ID) {
			out = append(out, e)
		}
	}
	return out
}

// drop forgets handoffs that committed state no longer holds (settled by an earlier leader).
func (o *outbox) drop(ids []string) { o.changed(nil, ids, false) }

// targets lists the sites with handoffs waiting.
func (o *outbox) targets() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, e := range o.live {
		if !seen[e.To] {
			seen[e.To] = true
			out = append(out, e.To)
		}
	}
	return out
}

// OutboxDepth is the size of the outbox toward one site.
type OutboxDepth struct {
	Depth  int
	Oldest time.Time
}

// depths counts the waiting handoffs per target and the oldest one's time.
func (o *outbox) depths() map[string]OutboxDepth {
	o.mu.Lock()
	defer o.mu.Unlock()
	return outboxDepths(maps.Values(o.live))
}

// outboxDepths counts waiting handoffs per target and finds the oldest one's time.
func outboxDepths(entries iter.Seq[sitestate.OutboxEntry]) map[string]OutboxDepth {
	out := map[string]OutboxDepth{}
	for e := range entries {
		d := out[e.To]
		d.Depth++
		if d.Oldest.IsZero() || e.Since.Before(d.Oldest) {
			d.Oldest = e.Since
		}
		out[e.To] = d
	}
	return out
}
