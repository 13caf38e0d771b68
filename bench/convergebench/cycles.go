package convergebench

import (
	"context"
	"fmt"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
)

// runCycles measures cfg.Cycles cut/heal cycles on a grid of their own.
func (cfg Config) runCycles(ctx context.Context) (*CyclesResult, error) {
	res := &CyclesResult{Cycles: cfg.Cycles, Cut: cfg.Cut, Gap: cfg.Gap,
		CommunityCases: cfg.CommunityCases, Escalate: cfg.Escalate, TownshipCases: cfg.TownshipCases, HandDown: cfg.HandDown}
	err := onGrid(ctx, cfg, "cycles", "converge: ", func(g *grid) error {
		benchkit.Progress(cfg.Progress, "converge: %d cycles: a %v silent cut of the community (%d cases accepted there, %d escalated; %d at the township, %d handed down), healed, then %v up",
			cfg.Cycles, cfg.Cut, cfg.CommunityCases, cfg.Escalate, cfg.TownshipCases, cfg.HandDown, cfg.Gap)
		var all []want
		for i := range cfg.Cycles {
			p := plan{cut: cfg.Cut, communityCases: cfg.CommunityCases, escalate: cfg.Escalate,
				townshipCases: cfg.TownshipCases, handDown: cfg.HandDown, seq: 1_000_000 * (i + 1)}
			cases, _, cut, healAt, err := g.cutAndHeal(ctx, p)
			all = append(all, cases...)
			if err != nil {
				return fmt.Errorf("convergebench: cycle %d: %w", i+1, err)
			}
			conv, err := g.converge(ctx, cases, healAt, cfg.Timeout)
			res.Samples = append(res.Samples, Cycle{Cut: cut, Convergence: conv})
			benchkit.Progress(cfg.Progress, "converge: cycle %d/%d (cut %v): %s", i+1, cfg.Cycles, cut.Round(time.Millisecond), conv.describe())
			if err != nil {
				return err
			}
			if err := benchkit.SleepUntil(ctx, time.Now().Add(cfg.Gap)); err != nil {
				return err
			}
		}
		res.summarise()
		res.Settled = g.settled(cfg.Progress, "converge: ", all)
		res.Met = res.Failed == 0 && res.Converge.Count > 0 && res.Converge.P99 <= TargetConverge && res.Settled == ""
		return nil
	})
	return res, err
}

// summarise computes the distributions of the converged cycles and counts the others.
func (r *CyclesResult) summarise() {
	var total, handoffs, township, district, feed []time.Duration
	r.Failed = 0
	for _, s := range r.Samples {
		if s.Missing != "" {
			r.Failed++
			continue
		}
		total = append(total, s.Converged)
		handoffs = append(handoffs, s.Handoffs)
		township = append(township, s.Township)
		district = append(district, s.District)
		if s.FeedResumed > 0 {
			feed = append(feed, s.FeedResumed)
		}
	}
	r.Converge, r.Handoffs, r.Township, r.District = benchkit.Summarise(total), benchkit.Summarise(handoffs), benchkit.Summarise(township), benchkit.Summarise(district)
	r.FeedResumed = benchkit.Summarise(feed)
}
