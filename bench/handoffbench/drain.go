package handoffbench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/tier"
)

// queueWorkers is how many clients submit the drain's cases while the link is cut.
const queueWorkers = 64

// drainPoll is how often the drain checks the community's outbox: one key read.
const drainPoll = 5 * time.Millisecond

// drain cuts the first community off from the township (testgrid's Partition: gRPC, Raft and
// gossip, both ways, loudly), submits cfg.Drain township-decided cases there, which queue in its
// outbox, heals the link and times until the outbox is empty. It then checks that the township
// holds every one of them.
func (g *grid) drain(ctx context.Context, cfg Config) (*DrainResult, error) {
	res := &DrainResult{Cases: cfg.Drain, Target: TargetDrain}
	community, township := g.communities[0], g.township
	g.tg.Partition(community.Name(), township.Name())
	cutAt := time.Now()
	healed := false
	defer func() {
		if !healed {
			g.tg.Heal()
		}
	}()
	benchkit.Progress(cfg.Progress, "handoff: drain, %s cut off from %s; queueing %d township-decided cases", community.Site(), township.Site(), cfg.Drain)

	numbers := make([]string, cfg.Drain)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var submitErr error
	for range queueWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < cfg.Drain && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				c, _, err := community.State().SubmitCase(sctx, submission(i, tier.Township))
				cancel()
				if err != nil {
					mu.Lock()
					if submitErr == nil {
						submitErr = fmt.Errorf("handoffbench: submit at %s while cut off: %w", community.Site(), err)
					}
					mu.Unlock()
					return
				}
				numbers[i] = c.Number
			}
		}()
	}
	wg.Wait()
	res.Queue = time.Since(cutAt)
	if submitErr != nil {
		return res, submitErr
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	waiting, err := community.State().Outbox()
	if err != nil {
		return res, err
	}
	res.Queued = len(waiting)
	if res.Queued != cfg.Drain {
		return res, fmt.Errorf("handoffbench: %d handoffs queued toward %s while cut off, want %d", res.Queued, township.Site(), cfg.Drain)
	}
	// Handoff ids, and so the outbox, sort by case number: the first number goes first.
	slices.Sort(numbers)

	benchkit.Progress(cfg.Progress, "handoff: %d handoffs queued in %v", res.Queued, res.Queue.Round(time.Millisecond))
	if wait := time.Until(cutAt.Add(cfg.Partition)); wait > 0 {
		benchkit.Progress(cfg.Progress, "handoff: keeping the link cut for %v more", wait.Round(time.Millisecond))
		if err := benchkit.SleepUntil(ctx, cutAt.Add(cfg.Partition)); err != nil {
			return res, err
		}
	}
	benchkit.Progress(cfg.Progress, "handoff: healing the link")
	g.tg.Heal()
	healAt := time.Now()
	healed = true
	res.Cut = healAt.Sub(cutAt)
	lastReport := healAt
	err = benchkit.Until(ctx, cfg.DrainTimeout, drainPoll, func() error {
		if res.FirstArrival == 0 {
			if c, err := township.State().GetCase(numbers[0]); err == nil && benchkit.HeldBy(c, township.Site()) {
				res.FirstArrival = time.Since(healAt)
			}
		}
		out, err := community.State().Outbox()
		if err != nil {
			return err
		}
		if len(out) == 0 {
			res.Drained = time.Since(healAt)
			return nil
		}
		left := len(numbers) - position(numbers, out[0].Number)
		if time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			benchkit.Progress(cfg.Progress, "handoff:   %v after healing: about %d handoffs left", time.Since(healAt).Round(time.Millisecond), left)
		}
		return fmt.Errorf("about %d of %d handoffs still queued", left, len(numbers))
	})
	if err != nil {
		return res, fmt.Errorf("handoffbench: drain: %w", err)
	}
	if res.FirstArrival == 0 || res.FirstArrival > res.Drained {
		res.FirstArrival = res.Drained // drained between two polls
	}
	for _, number := range numbers {
		if c, err := township.State().GetCase(number); err == nil && benchkit.HeldBy(c, township.Site()) {
			res.Held++
		}
	}
	res.PerSec = float64(res.Cases) / res.Drained.Seconds()
	if d := res.Drained - res.FirstArrival; d > 0 {
		res.TransferPerSec = float64(res.Cases) / d.Seconds()
	}
	res.Met = res.Drained <= TargetDrain && res.Held == res.Cases
	if res.Held != res.Cases {
		return res, fmt.Errorf("handoffbench: the outbox drained but the township holds %d of the %d cases", res.Held, res.Cases)
	}
	return res, nil
}

// position is the index of number in sorted (where it would be, if absent).
func position(sorted []string, number string) int {
	i, _ := slices.BinarySearch(sorted, number)
	return i
}
