package mirrorbench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// The visibility grid's district.
const visDistrict = "cd"

// PollInterval is how often the watcher looks at the district leader's applied index. Go's
// sleeps are about 1 ms at the least on Linux, so this is the observation's resolution.
const PollInterval = time.Millisecond

// submitTimeout bounds one submit call.
const submitTimeout = 10 * time.Second

func townshipSite(i int) string { return fmt.Sprintf("%s-t%d", visDistrict, i+1) }

// communitySite names the i-th community (0-based); communities go round-robin to townships.
func communitySite(i, townships int) string {
	return fmt.Sprintf("%s-c%02d", townshipSite(i%townships), i+1)
}

// visGrid is the running visibility grid.
type visGrid struct {
	district    *node.Node
	townships   []*node.Node
	communities []*node.Node
}

// startVisGrid starts the district, the townships and the communities (one node each) with the
// test grid harness and production timings, and waits until each site has a leader and the
// district's registry lists every site. The nodes stop when t's cleanups run.
func startVisGrid(ctx context.Context, t *benchkit.T, cfg Config) (*visGrid, error) {
	sites := []testgrid.Site{{Code: visDistrict, Tier: tier.District, Nodes: 1}}
	want := map[string]bool{}
	for i := range cfg.Townships {
		sites = append(sites, testgrid.Site{Code: townshipSite(i), Tier: tier.Township, Parent: visDistrict, Nodes: 1})
		want[townshipSite(i)] = true
	}
	for i := range cfg.Communities {
		sites = append(sites, testgrid.Site{Code: communitySite(i, cfg.Townships), Tier: tier.Community, Parent: townshipSite(i % cfg.Townships), Nodes: 1})
		want[communitySite(i, cfg.Townships)] = true
	}
	tg := testgrid.New(t, benchkit.GridSpec(mirrorGrid, cfg.Logger, nil, sites...))
	g := &visGrid{district: tg.SiteNodes(visDistrict)[0]}
	for i := range cfg.Townships {
		g.townships = append(g.townships, tg.SiteNodes(townshipSite(i))[0])
	}
	for i := range cfg.Communities {
		g.communities = append(g.communities, tg.SiteNodes(communitySite(i, cfg.Townships))[0])
	}
	err := benchkit.Until(ctx, time.Minute, 20*time.Millisecond, func() error {
		if err := benchkit.Ready(append(append([]*node.Node{g.district}, g.townships...), g.communities...)...); err != nil {
			return err
		}
		return benchkit.Listed(g.district, want)
	})
	if err != nil {
		return g, fmt.Errorf("mirrorbench: grid not ready: %w", err)
	}
	return g, nil
}

// pendingCase is a case accepted at a community and not yet seen in the district's mirror.
type pendingCase struct {
	number    string
	community int
	start     time.Time // the submit call's start
	measured  bool      // submitted in the measured window
	seen      time.Time
	rec       *sitestate.MirrorRecord
}

// watcher finds accepted cases in the district's mirror. A case can only get there by an entry
// the district applies, which advances its applied index (an atomic read), so the watcher looks
// only after the index moved (or cases were added), every PollInterval. A community's cases
// reach the district in the order the community committed them, which is the order of their
// numbers (the community's feed, the township's mirror and feed, the district's mirror all keep
// it), so per community it checks the pending cases in number order and stops at the first
// one missing: a scan costs one lookup per case found plus one per community.
type watcher struct {
	node *node.Node
	// added is set when a case is added, for the next scan (benchkit.PollApplied).
	added atomic.Bool

	mu      sync.Mutex
	pending []map[string]*pendingCase // guarded by mu: per community, by number
	seen    []*pendingCase            // guarded by mu
}

func newWatcher(district *node.Node, communities int) *watcher {
	w := &watcher{node: district, pending: make([]map[string]*pendingCase, communities)}
	for i := range w.pending {
		w.pending[i] = map[string]*pendingCase{}
	}
	return w
}

func (w *watcher) add(p *pendingCase) {
	w.mu.Lock()
	w.pending[p.community][p.number] = p
	w.mu.Unlock()
	w.added.Store(true)
}

// waiting counts the pending cases (the measured ones only, with measuredOnly).
func (w *watcher) waiting(measuredOnly bool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, m := range w.pending {
		for _, p := range m {
			if p.measured || !measuredOnly {
				n++
			}
		}
	}
	return n
}

// run scans until stop is closed.
func (w *watcher) run(stop <-chan struct{}) {
	var order [][]*pendingCase
	benchkit.PollApplied(stop, PollInterval, w.node.Raft().AppliedIndex, &w.added, func() {
		w.mu.Lock()
		order = order[:0]
		for _, m := range w.pending {
			ps := make([]*pendingCase, 0, len(m))
			for _, p := range m {
				ps = append(ps, p)
			}
			order = append(order, ps)
		}
		w.mu.Unlock()
		var found []*pendingCase
		for _, ps := range order {
			slices.SortFunc(ps, func(a, b *pendingCase) int { return strings.Compare(a.number, b.number) })
			for _, p := range ps {
				rec, err := w.node.State().MirrorCase(p.number)
				if err != nil {
					break
				}
				p.seen, p.rec = time.Now(), rec
				found = append(found, p)
			}
		}
		if len(found) == 0 {
			return
		}
		w.mu.Lock()
		for _, p := range found {
			delete(w.pending[p.community], p.number)
		}
		w.seen = append(w.seen, found...)
		w.mu.Unlock()
	})
}

// waitDrained waits until no case (no measured case, with measuredOnly) is pending, or timeout.
func (w *watcher) waitDrained(ctx context.Context, measuredOnly bool, timeout time.Duration) error {
	return benchkit.Until(ctx, timeout, 5*time.Millisecond, func() error {
		if n := w.waiting(measuredOnly); n > 0 {
			return fmt.Errorf("%d cases not in the district's mirror", n)
		}
		return nil
	})
}

// runVisibility builds the grid and measures the visibility lag under cfg.Rate.
func (cfg Config) runVisibility(ctx context.Context) (*VisibilityResult, error) {
	return benchkit.Measure(filepath.Join(cfg.Dir, "visibility"), func(t *benchkit.T) (*VisibilityResult, error) {
		return measureVisibility(ctx, t, cfg)
	})
}

// measureVisibility is runVisibility on a grid whose nodes stop when t's cleanups run.
func measureVisibility(ctx context.Context, t *benchkit.T, cfg Config) (*VisibilityResult, error) {
	res := &VisibilityResult{Rate: cfg.Rate, Warmup: cfg.Warmup, Target: TargetVisibilityP99, Townships: cfg.Townships, Communities: cfg.Communities,
		Grid: fmt.Sprintf("district 1 node, %d townships of 1 node, %d communities of 1 node (%d per township)",
			cfg.Townships, cfg.Communities, (cfg.Communities+cfg.Townships-1)/cfg.Townships)}
	benchkit.Progress(cfg.Progress, "feeds: visibility: starting an in-process grid (%s)", res.Grid)
	t0 := time.Now()
	g, err := startVisGrid(ctx, t, cfg)
	if err != nil {
		return res, err
	}
	w := newWatcher(g.district, len(g.communities))
	defer benchkit.Background(w.run)()

	// One case per community, waited for at the district: every puller is connected before
	// anything is timed (a puller starts when its child is registered, up to 2 s later).
	for i, n := range g.communities {
		sctx, cancel := context.WithTimeout(ctx, submitTimeout)
		c, _, err := n.State().SubmitCase(sctx, randomSubmission(rand.New(rand.NewPCG(0, uint64(i))), "prime"))
		cancel()
		if err != nil {
			return res, fmt.Errorf("mirrorbench: submit at %s: %w", n.Site(), err)
		}
		w.add(&pendingCase{number: c.Number, community: i, start: time.Now()})
	}
	if err := w.waitDrained(ctx, false, time.Minute); err != nil {
		return res, fmt.Errorf("mirrorbench: the first cases never reached the district: %w", err)
	}
	res.Setup = time.Since(t0)
	benchkit.Progress(cfg.Progress, "feeds: visibility: grid ready in %v; %.0f cases/s over %d communities, %v warmup + %v",
		res.Setup.Round(time.Millisecond), cfg.Rate, len(g.communities), cfg.Warmup, cfg.Duration)
	w.mu.Lock()
	w.seen = nil
	w.mu.Unlock()

	var (
		mu          sync.Mutex
		submitLat   []time.Duration
		inFlight    atomic.Int64
		maxInFlight atomic.Int64
		wg          sync.WaitGroup
	)
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	start := time.Now()
	from, end := start.Add(cfg.Warmup), start.Add(cfg.Warmup+cfg.Duration)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if !at.Before(end) {
			break
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		}
		measured := !at.Before(from)
		if measured {
			res.Offered++
			res.MaxSlip = max(res.MaxSlip, time.Since(at))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
			}
			k := i % len(g.communities)
			sub := randomSubmission(rand.New(rand.NewPCG(1, uint64(i))), fmt.Sprint(i))
			sub.RequestID = "" // the store draws one, as for a clerk's submission
			t0 := time.Now()
			sctx, cancel := context.WithTimeout(ctx, submitTimeout)
			c, _, err := g.communities[k].State().SubmitCase(sctx, sub)
			cancel()
			took := time.Since(t0)
			if measured {
				mu.Lock()
				if err != nil {
					if res.Errors++; res.FirstError == "" {
						res.FirstError = fmt.Sprintf("submit at %s: %v", g.communities[k].Site(), err)
					}
				} else {
					res.Accepted++
					submitLat = append(submitLat, took)
				}
				mu.Unlock()
			}
			if err == nil {
				w.add(&pendingCase{number: c.Number, community: k, start: t0, measured: measured})
			}
		}()
	}
	wg.Wait()
	res.Elapsed = min(max(time.Since(from), 0), cfg.Duration)
	res.MaxInFlight = int(maxInFlight.Load())
	if res.Elapsed > 0 {
		res.AcceptedPerSec = float64(res.Accepted) / res.Elapsed.Seconds()
	}
	res.Sustained = res.Offered > 0 && float64(res.Accepted) >= 0.99*float64(res.Offered) && res.MaxSlip <= res.Target
	drainErr := w.waitDrained(ctx, true, cfg.SettleTimeout)
	res.Unseen = w.waiting(true)

	w.mu.Lock()
	seen := slices.Clone(w.seen)
	w.mu.Unlock()
	var lag, accept, toTownship, toDistrict, seenPart []time.Duration
	for _, p := range seen {
		if !p.measured {
			continue
		}
		lag = append(lag, p.seen.Sub(p.start))
		res.Settle = max(res.Settle, p.seen.Sub(end))
		created, atDistrict := p.rec.Case.CreatedAt, p.rec.MirroredAt
		township := g.townships[p.community%len(g.townships)]
		trec, err := township.State().MirrorCase(p.number)
		if err != nil {
			continue
		}
		accept = append(accept, created.Sub(p.start))
		toTownship = append(toTownship, trec.MirroredAt.Sub(created))
		toDistrict = append(toDistrict, atDistrict.Sub(trec.MirroredAt))
		seenPart = append(seenPart, p.seen.Sub(atDistrict))
	}
	res.Submit = benchkit.Summarise(submitLat)
	res.Lag = benchkit.Summarise(lag)
	res.Accept, res.ToTownship, res.ToDistrict, res.Seen = benchkit.Summarise(accept), benchkit.Summarise(toTownship), benchkit.Summarise(toDistrict), benchkit.Summarise(seenPart)
	res.Met = res.Lag.Count > 0 && res.Unseen == 0 && res.Lag.P99 <= res.Target
	benchkit.Progress(cfg.Progress, "feeds: visibility: %d cases accepted (%.0f/s of %.0f offered), lag p50 %v, p99 %v, max %v; %d unseen",
		res.Accepted, res.AcceptedPerSec, cfg.Rate, res.Lag.P50, res.Lag.P99, res.Lag.Max, res.Unseen)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.Lag.Count == 0 {
		return res, fmt.Errorf("mirrorbench: no case of the window reached the district (%d errors, first: %s)", res.Errors, res.FirstError)
	}
	if drainErr != nil {
		benchkit.Progress(cfg.Progress, "feeds: visibility: %v", drainErr)
	}
	return res, nil
}
