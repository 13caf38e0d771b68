package handoffbench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/tier"
)

// PollInterval is how often the arrival watcher looks at the district leader's applied index.
// Go's sleeps are about 1 ms at the least on Linux, so this is the observation's resolution.
const PollInterval = time.Millisecond

// caseTimeout is the longest one case may take to be held at the district before it counts
// as an error.
const caseTimeout = 30 * time.Second

// arrival is a case seen held at the watched site, and when.
type arrival struct {
	at time.Time
	c  *casework.Case
}

// watcher tells waiting workers when their cases are held at a site. A case can only become
// held there by an entry that the site's node applies, which advances its applied index (an
// atomic read); so the watcher reads the waiting cases only after the index moved (or a case
// was added), every PollInterval. Cases not there yet cost a key lookup that misses, the few
// that arrived one record read each. Polling every case every millisecond instead would
// cost 50 000 reads a second with 50 in flight, on the CPUs the nodes run on.
type watcher struct {
	node *node.Node
	site string

	// added is set when a case is added, for the next scan (benchkit.PollApplied).
	added atomic.Bool

	mu      sync.Mutex
	waiting map[string]chan arrival // guarded by mu
}

func newWatcher(n *node.Node) *watcher {
	return &watcher{node: n, site: n.Site(), waiting: map[string]chan arrival{}}
}

// wait returns a channel that receives the case once it is held at the site.
func (w *watcher) wait(number string) <-chan arrival {
	ch := make(chan arrival, 1)
	w.mu.Lock()
	w.waiting[number] = ch
	w.mu.Unlock()
	w.added.Store(true)
	return ch
}

// forget stops watching a case (its worker gave up).
func (w *watcher) forget(number string) {
	w.mu.Lock()
	delete(w.waiting, number)
	w.mu.Unlock()
}

// run scans until stop is closed.
func (w *watcher) run(stop <-chan struct{}) {
	var numbers []string
	benchkit.PollApplied(stop, PollInterval, w.node.Raft().AppliedIndex, &w.added, func() {
		w.mu.Lock()
		numbers = numbers[:0]
		for n := range w.waiting {
			numbers = append(numbers, n)
		}
		w.mu.Unlock()
		for _, number := range numbers {
			c, err := w.node.State().GetCase(number)
			if err != nil || !benchkit.HeldBy(c, w.site) {
				continue
			}
			now := time.Now()
			w.mu.Lock()
			ch, ok := w.waiting[number]
			delete(w.waiting, number)
			w.mu.Unlock()
			if ok {
				ch <- arrival{at: now, c: c}
			}
		}
	})
}

// relayLatency runs cfg.InFlight closed-loop workers at the first community: each submits a
// district-decided case and waits until the district leader holds it, then submits the next.
// Cases that complete inside the measured window (after the warmup) are recorded.
func (g *grid) relayLatency(ctx context.Context, cfg Config) (*LatencyResult, error) {
	res := &LatencyResult{InFlight: cfg.InFlight, Warmup: cfg.Warmup, Target: TargetRelayP99}
	community := g.communities[0]
	benchkit.Progress(cfg.Progress, "handoff: relay latency, %d in flight from %s to %s, %v warmup + %v", cfg.InFlight, community.Site(), districtSite, cfg.Warmup, cfg.Duration)
	err := g.relay(ctx, cfg, res, func(from, end time.Time, w *watcher, rec *recorder) {
		var wg sync.WaitGroup
		for worker := range cfg.InFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for seq := 0; time.Now().Before(end) && ctx.Err() == nil; seq++ {
					t0 := time.Now()
					a, err := relayOne(ctx, community, w, submission(worker*1_000_000+seq, tier.District))
					if done := time.Now(); !done.Before(from) && !done.After(end) {
						rec.add(t0, a, err)
					}
				}
			}()
		}
		wg.Wait()
	})
	return res, err
}

// relayOpenLoop submits district-decided cases at a fixed rate, spread over the communities in
// turn, whatever the grid's answers: each case's relay time runs from its scheduled start, so a
// grid that falls behind shows as latency, not as a lower rate (no coordinated omission). Cases
// scheduled inside the measured window are recorded.
func (g *grid) relayOpenLoop(ctx context.Context, cfg Config, rate float64) (*LatencyResult, error) {
	res := &LatencyResult{Rate: rate, Warmup: cfg.Warmup, Target: TargetOpenLoopP99}
	if rate <= 0 {
		return res, fmt.Errorf("handoffbench: open-loop rate must be positive")
	}
	benchkit.Progress(cfg.Progress, "handoff: open-loop relay at %.0f cases/s from %d communities, %v warmup + %v", rate, len(g.communities), cfg.Warmup, cfg.Duration)
	interval := time.Duration(float64(time.Second) / rate)
	err := g.relay(ctx, cfg, res, func(from, end time.Time, w *watcher, rec *recorder) {
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; ctx.Err() == nil; i++ {
			at := start.Add(time.Duration(i) * interval)
			if !at.Before(end) {
				break
			}
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
			community := g.communities[i%len(g.communities)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := relayOne(ctx, community, w, submission(2_000_000_000+i, tier.District))
				if !at.Before(from) {
					rec.add(at, a, err)
				}
			}()
		}
		wg.Wait()
	})
	return res, err
}

// recorder collects relay samples from many goroutines.
type recorder struct {
	mu                                    sync.Mutex
	total, toTownship, toDistrict, commit []time.Duration
	errors                                int
	firstErr                              string
}

// add records the relay of one case that started at t0.
func (r *recorder) add(t0 time.Time, a arrival, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.errors++; r.firstErr == "" {
			r.firstErr = err.Error()
		}
		return
	}
	r.total = append(r.total, a.at.Sub(t0))
	if atTownship, atDistrict, ok := arrivals(a.c); ok {
		r.toTownship = append(r.toTownship, atTownship.Sub(t0))
		r.toDistrict = append(r.toDistrict, atDistrict.Sub(atTownship))
		r.commit = append(r.commit, a.at.Sub(atDistrict))
	}
}

// relay runs load (which records what ends or starts, as it chooses, between from and end) with
// a watcher on the district leader, and summarises what it recorded into res.
func (g *grid) relay(ctx context.Context, cfg Config, res *LatencyResult, load func(from, end time.Time, w *watcher, rec *recorder)) error {
	leader := g.districtLeader()
	if leader == nil {
		return fmt.Errorf("handoffbench: the district has no leader")
	}
	w := newWatcher(leader)
	defer benchkit.Background(w.run)()
	start := time.Now()
	from, end := start.Add(cfg.Warmup), start.Add(cfg.Warmup+cfg.Duration)
	var rec recorder
	load(from, end, w, &rec)
	res.Elapsed = min(max(time.Since(from), 0), cfg.Duration)
	res.Total, res.ToTownship, res.ToDistrict, res.Commit = benchkit.Summarise(rec.total), benchkit.Summarise(rec.toTownship), benchkit.Summarise(rec.toDistrict), benchkit.Summarise(rec.commit)
	res.Errors, res.FirstError = rec.errors, rec.firstErr
	if res.Elapsed > 0 {
		res.PerSec = float64(res.Total.Count) / res.Elapsed.Seconds()
	}
	res.Met = res.Total.Count > 0 && res.Total.P99 <= res.Target
	if err := ctx.Err(); err != nil {
		return err
	}
	if res.Total.Count == 0 {
		return fmt.Errorf("handoffbench: no case reached the district in the window (%d errors, first: %s)", res.Errors, res.FirstError)
	}
	return nil
}

// relayOne submits sub at the community and waits until the watched district holds it.
func relayOne(ctx context.Context, community *node.Node, w *watcher, sub *casework.Submission) (arrival, error) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, _, err := community.State().SubmitCase(sctx, sub)
	cancel()
	if err != nil {
		return arrival{}, fmt.Errorf("submit at %s: %w", community.Site(), err)
	}
	ch := w.wait(c.Number)
	select {
	case a := <-ch:
		return a, nil
	case <-time.After(caseTimeout):
		w.forget(c.Number)
		return arrival{}, fmt.Errorf("case %s not held at %s after %v", c.Number, w.site, caseTimeout)
	case <-ctx.Done():
		w.forget(c.Number)
		return arrival{}, ctx.Err()
	}
}

// arrivals returns when the township and the district took the case in, from its history.
func arrivals(c *casework.Case) (township, district time.Time, ok bool) {
	i := slices.IndexFunc(c.History, func(e casework.Event) bool {
		return e.Type == casework.EventReceived && e.Site == townshipSite
	})
	j := slices.IndexFunc(c.History, func(e casework.Event) bool {
		return e.Type == casework.EventReceived && e.Site == districtSite
	})
	if i < 0 || j < 0 {
		return township, district, false
	}
	return c.History[i].At, c.History[j].At, true
}
