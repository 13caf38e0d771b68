package handoffbench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/tier"
)

// backlogPoll is how often the throughput phase reads the district's arrival counter to keep the
// backlog under its cap.
const backlogPoll = 10 * time.Millisecond

// throughput has cfg.Submitters closed-loop submitters at every community open district-decided
// cases, each of which the township takes in and hands on in one commit, while no more than
// about cfg.Backlog cases are accepted and not yet held at the district. After the warmup it
// counts, over cfg.Duration, the arrivals the township's and the district's leaders commit.
// Then it waits until every case submitted is held at the district.
func (g *grid) throughput(ctx context.Context, cfg Config) (*ThroughputResult, error) {
	res := &ThroughputResult{Communities: cfg.Communities, Submitters: cfg.Submitters, Backlog: cfg.Backlog, Warmup: cfg.Warmup}
	district := g.districtLeader()
	if district == nil {
		return res, fmt.Errorf("handoffbench: the district has no leader")
	}
	// read reads a counter; the first failure is kept and ends the phase once it is measured.
	var readErr error
	read := func(n *node.Node, name string) int64 {
		v, err := g.counter(n, name)
		if err != nil && readErr == nil {
			readErr = fmt.Errorf("handoffbench: %w", err)
		}
		return v
	}
	received0, err := g.counter(district, metricReceived)
	if err != nil {
		return res, fmt.Errorf("handoffbench: %w", err)
	}
	refused0 := read(g.township, metricRefused) + read(district, metricRefused)

	var submitted, delivered atomic.Int64
	var errCount atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var scrape, submit sync.WaitGroup
	scrape.Add(1)
	go func() {
		defer scrape.Done()
		t := time.NewTicker(backlogPoll)
		defer t.Stop()
		for {
			if v, err := g.counter(district, metricReceived); err == nil {
				delivered.Store(v - received0)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	benchkit.Progress(cfg.Progress, "handoff: throughput, %d communities × %d submitters, backlog ≤ %d, %v warmup + %v",
		cfg.Communities, cfg.Submitters, cfg.Backlog, cfg.Warmup, cfg.Duration)
	for k, community := range g.communities {
		for s := range cfg.Submitters {
			submit.Add(1)
			go func() {
				defer submit.Done()
				for seq := 0; ; seq++ {
					select {
					case <-stop:
						return
					default:
					}
					if submitted.Load()-delivered.Load() >= int64(cfg.Backlog) {
						time.Sleep(time.Millisecond)
						continue
					}
					submitted.Add(1)
					sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					_, _, err := community.State().SubmitCase(sctx, submission((k*1000+s)*1_000_000+seq, tier.District))
					cancel()
					if err != nil {
						submitted.Add(-1)
						if errCount.Add(1) == 1 {
							firstErr.Store(err.Error())
						}
						if ctx.Err() != nil {
							return
						}
						time.Sleep(10 * time.Millisecond)
					}
				}
			}()
		}
	}
	stopAll := func() {
		close(stop)
		submit.Wait()
		scrape.Wait()
	}
	if err := benchkit.SleepUntil(ctx, time.Now().Add(cfg.Warmup)); err != nil {
		stopAll()
		return res, err
	}
	t1, town1, dist1 := time.Now(), read(g.township, metricReceived), read(district, metricReceived)
	if err := benchkit.SleepUntil(ctx, time.Now().Add(cfg.Duration)); err != nil {
		stopAll()
		return res, err
	}
	t2, town2, dist2 := time.Now(), read(g.township, metricReceived), read(district, metricReceived)
	stopAll()
	if readErr != nil {
		return res, readErr
	}
	res.Elapsed = t2.Sub(t1)
	res.TownshipArrivals, res.DistrictArrivals = town2-town1, dist2-dist1
	res.TownshipPerSec = float64(res.TownshipArrivals) / res.Elapsed.Seconds()
	res.DistrictPerSec = float64(res.DistrictArrivals) / res.Elapsed.Seconds()
	res.Submitted, res.Errors = submitted.Load(), errCount.Load()
	if s, ok := firstErr.Load().(string); ok {
		res.FirstError = s
	}

	// Every case of the phase must reach the district before the drain starts.
	settle := time.Now()
	err = benchkit.Until(ctx, 2*time.Minute, 10*time.Millisecond, func() error {
		v, err := g.counter(district, metricReceived)
		if err != nil {
			return err
		}
		if got := v - received0; got < res.Submitted {
			return fmt.Errorf("%d of %d cases held at the district", got, res.Submitted)
		}
		return nil
	})
	res.Settle = time.Since(settle)
	res.Refused = read(g.township, metricRefused) + read(district, metricRefused) - refused0
	if err == nil {
		err = readErr
	}
	if err != nil {
		return res, fmt.Errorf("handoffbench: throughput phase did not settle: %w", err)
	}
	if res.Refused > 0 {
		return res, fmt.Errorf("handoffbench: %d handoffs refused in the throughput phase", res.Refused)
	}
	return res, nil
}
