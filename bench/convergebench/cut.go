package convergebench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
)

// plan is what happens during one cut.
type plan struct {
	// cut is the least time the link stays cut.
	cut time.Duration
	// communityCases are accepted at the community, escalate of them escalated;
	// townshipCases at the township, handDown of them handed down to the community.
	communityCases, escalate int
	townshipCases, handDown  int
	// seq numbers the submissions of this cut (their titles are unique across the run).
	seq int
}

// step is one clerk's action during a cut: accept a case at one side, and maybe move it.
type step struct {
	at        time.Duration // after the cut began
	community bool          // at the community (else at the township)
	move      bool          // escalate it (community) or hand it down (township)
	seq       int
}

// steps spreads the plan's acceptances evenly over the first 90% of the cut, each side's on
// its own even schedule, and picks the cases to move evenly among each side's (the moves
// follow their acceptances at once).
func (p plan) steps() []step {
	span := p.cut * 9 / 10
	var out []step
	side := func(n, moves int, community bool) {
		for i := range n {
			out = append(out, step{
				at:        span * time.Duration(i) / time.Duration(n),
				community: community,
				move:      picked(i, n, moves),
				seq:       p.seq + len(out),
			})
		}
	}
	side(p.communityCases, p.escalate, true)
	side(p.townshipCases, p.handDown, false)
	slices.SortStableFunc(out, func(a, b step) int { return int(a.at - b.at) })
	return out
}

// picked reports whether the i-th of n items is one of k spread evenly among them.
func picked(i, n, k int) bool {
	if k <= 0 {
		return false
	}
	// Item i is picked when the running count i*k/n steps up at it.
	return (i+1)*k/n != i*k/n || (k >= n)
}

// cutState is what the grid owed at the moment of healing.
type cutState struct {
	// feedBehind is the community's feed entries the township had not mirrored; outboxUp and
	// outboxDown the handoffs waiting at the community and at the township.
	feedBehind           uint64
	outboxUp, outboxDown int
}

// cutAndHeal black-holes the community from every other node, carries out the plan's steps on
// their schedule (late steps run at once), keeps the link cut for at least p.cut, then heals
// it. It returns the cases accepted, what was owed at healing, how long the link was cut and
// when it healed. On an error the link is healed before it returns.
func (g *grid) cutAndHeal(ctx context.Context, p plan) (cases []want, owed cutState, cut time.Duration, healAt time.Time, err error) {
	g.tg.BlackholeNode(g.community.Name())
	cutAt := time.Now()
	g.log.Info("convergebench: the community is black-holed", "node", g.community.Name(), "cut", p.cut)
	healed := false
	defer func() {
		if !healed {
			g.tg.Heal()
		}
	}()
	for _, s := range p.steps() {
		if err := benchkit.SleepUntil(ctx, cutAt.Add(s.at)); err != nil {
			return cases, owed, 0, healAt, err
		}
		c, err := g.act(s)
		if err != nil {
			return cases, owed, 0, healAt, err
		}
		cases = append(cases, c)
	}
	if err := benchkit.SleepUntil(ctx, cutAt.Add(p.cut)); err != nil {
		return cases, owed, 0, healAt, err
	}
	owed = g.owed()
	g.tg.Heal()
	healAt, healed = time.Now(), true
	g.log.Info("convergebench: healed", "after", healAt.Sub(cutAt), "cases", len(cases), "feed_behind", owed.feedBehind,
		"outbox_up", owed.outboxUp, "outbox_down", owed.outboxDown)
	return cases, owed, healAt.Sub(cutAt), healAt, nil
}

// act carries out one step and says where its case must end up: accepted at one side, and if
// the step moves it, escalated to the township or handed down to the community.
func (g *grid) act(s step) (want, error) {
	at, here, there, move := g.township, townshipSite, communitySite, g.handDown
	if s.community {
		at, here, there, move = g.community, communitySite, townshipSite, g.escalate
	}
	number, err := g.submit(at, s.seq)
	if err != nil {
		return want{}, err
	}
	if !s.move {
		return want{number: number, holder: here}, nil
	}
	return want{number: number, holder: there, escalated: s.community, handedDown: !s.community}, move(number)
}

// owed reads what the grid owes just before healing.
func (g *grid) owed() cutState {
	var s cutState
	head, err1 := g.community.State().FeedHead()
	cur, err2 := g.township.State().FeedCursors()
	if err1 == nil && err2 == nil && head > cur[communitySite].Cursor {
		s.feedBehind = head - cur[communitySite].Cursor
	}
	if out, err := g.community.State().Outbox(); err == nil {
		s.outboxUp = len(out)
	}
	if out, err := g.township.State().Outbox(); err == nil {
		s.outboxDown = len(out)
	}
	return s
}

// converge polls every PollInterval, from healAt until the grid has converged on cases or
// timeout has passed, and returns what it took.
func (g *grid) converge(ctx context.Context, cases []want, healAt time.Time, timeout time.Duration) (Convergence, error) {
	w := newWatch(g, cases)
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		err := w.poll(healAt)
		if err == nil {
			g.log.Info("convergebench: " + w.describe())
			return w.Convergence, nil
		}
		if time.Since(healAt) > timeout {
			w.Missing = err.Error()
			g.log.Info("convergebench: " + w.describe())
			return w.Convergence, nil
		}
		select {
		case <-ctx.Done():
			w.Missing = err.Error()
			return w.Convergence, ctx.Err()
		case <-t.C:
		}
	}
}

// describe is a one-line account of a convergence, for progress lines.
func (c Convergence) describe() string {
	if c.Missing != "" {
		return "NOT converged: " + c.Missing
	}
	return fmt.Sprintf("converged %v after healing (handoffs %v, township mirror %v, district mirror %v; feed resumed %v)",
		c.Converged.Round(time.Millisecond), c.Handoffs.Round(time.Millisecond), c.Township.Round(time.Millisecond),
		c.District.Round(time.Millisecond), c.FeedResumed.Round(time.Millisecond))
}
