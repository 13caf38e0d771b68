package convergebench

import (
	"context"
	"fmt"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
)

// runDay measures the day, time-compressed, on a grid of its own.
func (cfg Config) runDay(ctx context.Context) (*DayResult, error) {
	res := &DayResult{}
	err := onGrid(ctx, cfg, "day", "converge: day: ", func(g *grid) error {
		benchkit.Progress(cfg.Progress, "converge: day: a silent cut of at least %v: %d cases accepted at the community, %d escalated; %d at the township, %d handed down",
			cfg.DayCut, cfg.DayCases, cfg.DayEscalate, cfg.DayTownshipCases, cfg.DayHandDown)
		p := plan{cut: cfg.DayCut, communityCases: cfg.DayCases, escalate: cfg.DayEscalate,
			townshipCases: cfg.DayTownshipCases, handDown: cfg.DayHandDown, seq: 1_000_000}
		cases, owed, cut, healAt, err := g.cutAndHeal(ctx, p)
		res.Cut = cut
		for _, c := range cases {
			switch {
			case c.escalated:
				res.CommunityCases++
				res.Escalated++
			case c.handedDown:
				res.TownshipCases++
				res.HandedDown++
			case c.holder == communitySite:
				res.CommunityCases++
			default:
				res.TownshipCases++
			}
		}
		if err != nil {
			return fmt.Errorf("convergebench: day: %w", err)
		}
		res.FeedBehind, res.OutboxUp, res.OutboxDown = owed.feedBehind, owed.outboxUp, owed.outboxDown
		benchkit.Progress(cfg.Progress, "converge: day: healed after %v; owed: %d feed entries to the township, %d handoffs up, %d down",
			cut.Round(time.Millisecond), owed.feedBehind, owed.outboxUp, owed.outboxDown)
		conv, err := g.converge(ctx, cases, healAt, cfg.Timeout)
		res.Convergence = conv
		benchkit.Progress(cfg.Progress, "converge: day: %s", conv.describe())
		if err != nil {
			return err
		}
		if conv.Missing == "" {
			res.Settled = g.settled(cfg.Progress, "converge: day: ", cases)
		}
		res.Met = conv.Missing == "" && conv.Converged <= TargetConverge && res.Settled == ""
		return nil
	})
	return res, err
}
