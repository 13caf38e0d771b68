// Package convergebench measures how soon a grid converges after a village's uplink comes back,
// the convergence benchmark of issue 10 (point 3): a community is cut from its township by a
// silent black hole (testgrid's BlackholeNode: packets vanish both ways, nothing is refused,
// as when a 4G router loses its uplink) while cases are accepted and moved on both sides: the
// community accepts cases and escalates some to the township, the township accepts cases and
// hands some down to the community. Then the link heals, and the benchmark times how long
// until
//
//   - every pending handoff is delivered: both outboxes are empty and every moved case is held,
//     not in transit, by the site it was sent to;
//   - every ancestor's mirror is complete: the township's and the district's mirrors hold every
//     case accepted on either side during the cut, at the version its holder has, with its
//     holder.
//
// Two runs, each on its own grid:
//
//   - cycles: Cycles cut/heal cycles, each cut Cut long (60 s for the issue), with the link up
//     for Gap after each convergence; the result is p50, p99 and max of the time to converge
//     over the cycles (with 20 cycles the p99 is the slowest);
//   - a day, time-compressed: one long cut in which the community accepts a busy day's cases
//     (2,000: more than the feed window of node.FeedWindow entries, and many outbox batches)
//     and escalates a few hundred, while the township accepts and hands down its own; then
//     the same measurement, and a check that nothing accepted offline is missing or doubled.
//
// The grid is in this process, started by the test grid harness (testgrid) with production
// timings (the node's defaults; Raft's timeouts unscaled): a 3-node district, a 1-node
// township and one 1-node community under it. Cases are accepted and moved over the nodes'
// HTTP API, as a clerk does; convergence is read from the nodes' state directly, every
// PollInterval, and finally checked over the HTTP API (testgrid.Settlement: each case listed
// exactly once by every ancestor, with its holder; each escalated case received once).
package convergebench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
)

// TargetConverge is issue 10's target: every pending handoff delivered and every ancestor's
// mirror complete within this long after healing, at the 99th percentile over the cycles.
const TargetConverge = 10 * time.Second

// PollInterval is how often convergence is looked at after healing: the resolution of the
// times measured.
const PollInterval = 50 * time.Millisecond

// Config sizes one run. Defaults are the sizes; Quick is a short run for tests and
// for trying the benchmark out.
type Config struct {
	// Cycles is how many cut/heal cycles are measured (0 runs none); Cut is how long each cut
	// lasts (at least: the cases accepted meanwhile take what they take); Gap is how long the
	// link stays up after a cycle converged, before the next cut.
	Cycles int
	Cut    time.Duration
	Gap    time.Duration
	// CommunityCases are accepted at the community during each cut, Escalate of them then
	// escalated to the township; TownshipCases are accepted at the township during each cut,
	// HandDown of them then handed down to the community.
	CommunityCases, Escalate int
	TownshipCases, HandDown  int
	// Timeout is the longest a cycle (or the day) waits for convergence after healing; a
	// cycle not converged by then counts as failed.
	Timeout time.Duration

	// Day runs the day, time-compressed: one cut at least DayCut long, during which the
	// community accepts DayCases cases and escalates DayEscalate of them, and the township
	// accepts DayTownshipCases and hands DayHandDown of them down.
	Day                           bool
	DayCut                        time.Duration
	DayCases, DayEscalate         int
	DayTownshipCases, DayHandDown int

	// Dir holds the nodes' data.
	Dir string
	// Progress, if set, receives a line per phase and per cycle.
	Progress io.Writer
	// Logger receives the nodes' logs, and the benchmark's own events (each cut, each
	// healing, each convergence) to read them by; nil discards them.
	Logger *slog.Logger
}

// Defaults are the sizes: 20 cycles of a 60 s cut, and a day of 2,000 cases at the
// community compressed into a 3-minute cut. The day's cut is longer than every timer on the
// path between the two sites (Linux gives up a dial after 127 s, as netfault models; a
// silently closed socket lingers 2 minutes; memberlist forgets a dead node after 30 s; the
// township re-registers every minute), so that at healing the grid is in the state a 24-hour
// cut leaves: every retry at its longest wait, every connection long dead. Nothing in the node
// runs on a longer clock within a day (pruning keeps a week).
var Defaults = Config{
	Cycles: 20, Cut: 60 * time.Second, Gap: 5 * time.Second,
	CommunityCases: 6, Escalate: 2, TownshipCases: 4, HandDown: 2,
	Timeout: 2 * time.Minute,
	Day:     true, DayCut: 3 * time.Minute,
	DayCases: 2000, DayEscalate: 300, DayTownshipCases: 200, DayHandDown: 100,
}

// Quick is a short run, for the benchmark's own test and for trying it out (govgrid-bench
// --converge-quick): 2 cycles of an 8 s cut, and a "day" of 1,100 cases (still more than the
// feed window) in a 15 s cut. Its times are not the measurement: a cut shorter than
// gRPC's keepalive (10 s, then 5 s for the answer) is healed before the nodes have given up
// on their connections, which is another case than the 60 s.
var Quick = Config{
	Cycles: 2, Cut: 8 * time.Second, Gap: time.Second,
	CommunityCases: 4, Escalate: 2, TownshipCases: 3, HandDown: 2,
	Timeout: time.Minute,
	Day:     true, DayCut: 15 * time.Second,
	DayCases: 1100, DayEscalate: 150, DayTownshipCases: 60, DayHandDown: 30,
}

// Validate reports the first size that cannot be run.
func (c Config) Validate() error {
	switch {
	case c.Cycles < 0 || (c.Cycles == 0 && !c.Day):
		return errors.New("convergebench: cycles must not be negative, and something must run (cycles or the day)")
	case c.Dir == "":
		return errors.New("convergebench: a data directory is required")
	case c.Timeout <= 0:
		return errors.New("convergebench: the convergence timeout must be positive")
	}
	if c.Cycles > 0 {
		switch {
		case c.Cut <= 0 || c.Gap < 0:
			return errors.New("convergebench: the cut must be positive and the gap not negative")
		case c.CommunityCases < 1 || c.TownshipCases < 0:
			return errors.New("convergebench: each cut needs at least one case at the community")
		case c.Escalate < 0 || c.Escalate > c.CommunityCases || c.HandDown < 0 || c.HandDown > c.TownshipCases:
			return errors.New("convergebench: escalations and hand-downs must be 0 to the cases accepted on their side")
		}
	}
	if c.Day {
		switch {
		case c.DayCut <= 0:
			return errors.New("convergebench: the day's cut must be positive")
		case c.DayCases < 1 || c.DayTownshipCases < 0:
			return errors.New("convergebench: the day needs at least one case at the community")
		case c.DayEscalate < 0 || c.DayEscalate > c.DayCases || c.DayHandDown < 0 || c.DayHandDown > c.DayTownshipCases:
			return errors.New("convergebench: the day's escalations and hand-downs must be 0 to the cases accepted on their side")
		}
	}
	return nil
}

// Dist is a distribution of times (nearest-rank percentiles), shared with the other benchmarks.
type Dist = benchkit.Dist

// Result is everything one run measured; a run that did not happen is nil.
type Result struct {
	// Grid describes the grid.
	Grid string `json:"grid"`
	// Cycles are the cut/heal cycles, Day the day, time-compressed.
	Cycles *CyclesResult `json:"cycles,omitempty"`
	Day    *DayResult    `json:"day,omitempty"`
	// Target is TargetConverge.
	Target time.Duration `json:"target_ns"`
}

// Convergence is what one healing took: every time is counted from the moment the link healed.
// A part that did not happen within the timeout is zero, and Missing says what was missing.
type Convergence struct {
	// Converged is when the last of the three parts below held.
	Converged time.Duration `json:"converged_ns"`
	// Handoffs is when both outboxes were empty and every moved case was held by its target.
	Handoffs time.Duration `json:"handoffs_ns"`
	// Township and District are when the township's and the district's mirrors held every
	// case at its holder's version.
	Township time.Duration `json:"township_mirror_ns"`
	District time.Duration `json:"district_mirror_ns"`
	// FeedResumed is when the township first committed a batch of the community's feed, and
	// FirstUp and FirstDown when the first escalated case was held at the township and the
	// first handed-down case at the community: where the waiting went.
	FeedResumed time.Duration `json:"feed_resumed_ns"`
	FirstUp     time.Duration `json:"first_up_ns"`
	FirstDown   time.Duration `json:"first_down_ns"`
	// Missing is what still was not converged at the timeout ("" once converged).
	Missing string `json:"missing,omitempty"`
}

// Cycle is one cut/heal cycle.
type Cycle struct {
	// Cut is how long the link was cut.
	Cut time.Duration `json:"cut_ns"`
	Convergence
}

// CyclesResult is the cut/heal cycles.
type CyclesResult struct {
	Cycles int           `json:"cycles"`
	Cut    time.Duration `json:"cut_ns"`
	Gap    time.Duration `json:"gap_ns"`
	// Per cut: accepted at the community, escalated of them; accepted at the township,
	// handed down of them.
	CommunityCases int `json:"community_cases_per_cut"`
	Escalate       int `json:"escalated_per_cut"`
	TownshipCases  int `json:"township_cases_per_cut"`
	HandDown       int `json:"handed_down_per_cut"`
	// Samples are the cycles in order.
	Samples []Cycle `json:"samples"`
	// Converge is the time to converge over the cycles that converged; Handoffs, Township and
	// District are its parts, FeedResumed when the feed came back.
	Converge    Dist `json:"converge"`
	Handoffs    Dist `json:"handoffs"`
	Township    Dist `json:"township_mirror"`
	District    Dist `json:"district_mirror"`
	FeedResumed Dist `json:"feed_resumed"`
	// Failed counts the cycles that did not converge within the timeout.
	Failed int `json:"failed"`
	// Settled is the final check over the HTTP API of every case of every cycle ("" when it
	// held): listed exactly once by every ancestor, with its holder; escalations received once.
	Settled string `json:"settlement_problem,omitempty"`
	// Met is whether every cycle converged, Converge.P99 is within TargetConverge and the
	// final check held.
	Met bool `json:"target_met"`
}

// DayResult is the day, time-compressed.
type DayResult struct {
	// Cut is how long the link was cut.
	Cut time.Duration `json:"cut_ns"`
	// Accepted at the community during the cut, escalated of them; accepted at the township,
	// handed down of them.
	CommunityCases int `json:"community_cases"`
	Escalated      int `json:"escalated"`
	TownshipCases  int `json:"township_cases"`
	HandedDown     int `json:"handed_down"`
	// At healing: the community's feed entries the township had not mirrored, and the
	// handoffs waiting in the community's and the township's outboxes.
	FeedBehind uint64 `json:"feed_entries_behind_at_heal"`
	OutboxUp   int    `json:"community_outbox_at_heal"`
	OutboxDown int    `json:"township_outbox_at_heal"`
	Convergence
	// Settled is the final check over the HTTP API ("" when it held): nothing accepted
	// offline missing or doubled at any ancestor, each escalation received once.
	Settled string `json:"settlement_problem,omitempty"`
	// Met is whether it converged within TargetConverge and the final check held.
	Met bool `json:"target_met"`
}

// Run measures the cycles, then the day, each on a grid of its own, stopped before the next
// starts. On an error it returns what was measured so far with the error.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	res.Grid = gridDescription
	res.Target = TargetConverge
	err = benchkit.RunPhases(ctx, cfg.Progress, "converge",
		benchkit.NewPhase("cycles", cfg.Cycles > 0, &res.Cycles, cfg.runCycles),
		benchkit.NewPhase("day", cfg.Day, &res.Day, cfg.runDay))
	return res, err
}
