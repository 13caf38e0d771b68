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
	leader := g.districtLeader()
	if leader == nil {
		return res, fmt.Errorf("handoffbench: the district has no leader")
	}
	community := g.communities[0]
	w := newWatcher(leader)
	defer benchkit.Background(w.run)()

	benchkit.Progress(cfg.Progress, "handoff: relay latency, %d in flight from %s to %s, %v warmup + %v", cfg.InFlight, community.Site(), districtSite, cfg.Warmup, cfg.Duration)
	start := time.Now()
	from, end := start.Add(cfg.Warmup), start.Add(cfg.Warmup+cfg.Duration)
	type sample struct {
		total, toTownship, toDistrict, commit time.Duration
		parts                                 bool // the history had both arrivals
	}
	samples := make([][]sample, cfg.InFlight)
	errs := make([]int, cfg.InFlight)
	firstErr := make([]string, cfg.InFlight)
	var wg sync.WaitGroup
	for worker := range cfg.InFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; time.Now().Before(end) && ctx.Err() == nil; seq++ {
				sub := submission(worker*1_000_000+seq, tier.District)
				t0 := time.Now()
				a, err := relayOne(ctx, community, w, sub)
				if done := time.Now(); done.Before(from) || done.After(end) {
					continue
				}
				if err != nil {
					if errs[worker]++; firstErr[worker] == "" {
						firstErr[worker] = err.Error()
					}
					continue
				}
				s := sample{total: a.at.Sub(t0)}
				atTownship, atDistrict, ok := arrivals(a.c)
				if s.parts = ok; ok {
					s.toTownship, s.toDistrict, s.commit = atTownship.Sub(t0), atDistrict.Sub(atTownship), a.at.Sub(atDistrict)
				}
				samples[worker] = append(samples[worker], s)
			}
		}()
	}
	wg.Wait()
	res.Elapsed = min(max(time.Since(from), 0), cfg.Duration)
	var total, toTownship, toDistrict, commit []time.Duration
	for worker, ss := range samples {
		for _, s := range ss {
			total = append(total, s.total)
			if s.parts {
				toTownship, toDistrict, commit = append(toTownship, s.toTownship), append(toDistrict, s.toDistrict), append(commit, s.commit)
			}
		}
		res.Errors += errs[worker]
		if res.FirstError == "" {
			res.FirstError = firstErr[worker]
		}
	}
	res.Total, res.ToTownship, res.ToDistrict, res.Commit = benchkit.Summarise(total), benchkit.Summarise(toTownship), benchkit.Summarise(toDistrict), benchkit.Summarise(commit)
	if res.Elapsed > 0 {
		res.PerSec = float64(res.Total.Count) / res.Elapsed.Seconds()
	}
	res.Met = res.Total.Count > 0 && res.Total.P99 <= TargetRelayP99
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.Total.Count == 0 {
		return res, fmt.Errorf("handoffbench: no case reached the district in the window (%d errors, first: %s)", res.Errors, res.FirstError)
	}
	return res, nil
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
