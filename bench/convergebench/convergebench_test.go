package convergebench

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchtest"
	"github.com/govgrid/govgrid/node"
)

// TestRunQuick runs the benchmark in its quick mode: it must converge and find every case,
// whatever the times (they are the benchmark's to report, not this test's to judge).
func TestRunQuick(t *testing.T) {
	cfg := Quick
	res := benchtest.Run(t, 5*time.Minute, func(ctx context.Context, progress io.Writer) (Result, error) {
		cfg.Dir, cfg.Progress = t.TempDir(), progress
		return Run(ctx, cfg)
	})
	c := res.Cycles
	if c == nil || len(c.Samples) != cfg.Cycles || c.Failed != 0 || c.Converge.Count != cfg.Cycles || c.Settled != "" {
		t.Fatalf("cycles %+v", c)
	}
	for i, s := range c.Samples {
		if s.Cut < cfg.Cut || s.Converged <= 0 || s.Converged < s.Handoffs || s.Converged < s.Township || s.Converged < s.District ||
			s.Handoffs <= 0 || s.Township <= 0 || s.District <= 0 || s.FeedResumed <= 0 || s.FirstUp <= 0 || s.FirstDown <= 0 {
			t.Errorf("cycle %d: %+v", i+1, s)
		}
	}
	d := res.Day
	if d == nil || d.Missing != "" || d.Settled != "" || d.Converged <= 0 || d.Cut < cfg.DayCut ||
		d.CommunityCases != cfg.DayCases || d.Escalated != cfg.DayEscalate || d.TownshipCases != cfg.DayTownshipCases || d.HandedDown != cfg.DayHandDown {
		t.Fatalf("day %+v", d)
	}
	// The day must owe more than one feed window and more than one delivery batch up.
	if d.FeedBehind <= node.FeedWindow || d.OutboxUp != cfg.DayEscalate || d.OutboxDown != cfg.DayHandDown {
		t.Errorf("day owed %d feed entries, %d handoffs up, %d down at healing", d.FeedBehind, d.OutboxUp, d.OutboxDown)
	}
	benchtest.Printed(t, Print, res, "## Convergence after a silent cut", "| 2 cycles, each cut for 8s", "| cycles: p99 (2 converged) |", "≤ 10s",
		"| cycles not converged within the timeout | 0 of 2 | 0 | yes |", "| a day, time-compressed into one cut of ", "1100 cases at the community, 150 escalated")
}

func TestSteps(t *testing.T) {
	p := plan{cut: 10 * time.Second, communityCases: 4, escalate: 2, townshipCases: 3, handDown: 1, seq: 100}
	steps := p.steps()
	if len(steps) != 7 {
		t.Fatalf("%d steps, want 7", len(steps))
	}
	var atCommunity, escalated, atTownship, handedDown int
	seqs := map[int]bool{}
	for i, s := range steps {
		if i > 0 && s.at < steps[i-1].at {
			t.Errorf("step %d at %v comes before step %d at %v", i, s.at, i-1, steps[i-1].at)
		}
		if s.at < 0 || s.at >= 9*time.Second {
			t.Errorf("step %d at %v, outside the first 90%% of the cut", i, s.at)
		}
		seqs[s.seq] = true
		switch {
		case s.community:
			atCommunity++
			if s.move {
				escalated++
			}
		default:
			atTownship++
			if s.move {
				handedDown++
			}
		}
	}
	if atCommunity != 4 || escalated != 2 || atTownship != 3 || handedDown != 1 || len(seqs) != 7 {
		t.Fatalf("steps %+v", steps)
	}
}

func TestPicked(t *testing.T) {
	for _, tt := range []struct{ n, k, want int }{{10, 3, 3}, {2000, 300, 300}, {5, 0, 0}, {5, 5, 5}, {4, 9, 4}, {1, 1, 1}} {
		got := 0
		for i := range tt.n {
			if picked(i, tt.n, tt.k) {
				got++
			}
		}
		if got != tt.want {
			t.Errorf("picked %d of %d asking %d, want %d", got, tt.n, tt.k, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	quick := Quick
	quick.Dir = "x"
	if err := quick.Validate(); err != nil {
		t.Errorf("quick: %v", err)
	}
	good := Defaults
	good.Dir = "x"
	benchtest.Rejects(t, good, Config.Validate, map[string]func(*Config){
		"no dir":                   func(c *Config) { c.Dir = "" },
		"nothing to run":           func(c *Config) { c.Cycles, c.Day = 0, false },
		"no cut":                   func(c *Config) { c.Cut = 0 },
		"more escalated":           func(c *Config) { c.Escalate = c.CommunityCases + 1 },
		"more handed down":         func(c *Config) { c.HandDown = c.TownshipCases + 1 },
		"no timeout":               func(c *Config) { c.Timeout = 0 },
		"no day cut":               func(c *Config) { c.DayCut = 0 },
		"more escalated in a day":  func(c *Config) { c.DayEscalate = c.DayCases + 1 },
		"no community cases a day": func(c *Config) { c.DayCases = 0 },
	})
}

func TestPrint(t *testing.T) {
	r := Result{Grid: "g", Target: TargetConverge,
		Cycles: &CyclesResult{Cycles: 20, Cut: time.Minute, Gap: 5 * time.Second, CommunityCases: 6, Escalate: 2, TownshipCases: 4, HandDown: 2,
			Samples:  make([]Cycle, 20),
			Converge: Dist{Count: 19, P50: 3 * time.Second, P99: 12 * time.Second, Max: 12 * time.Second}, Failed: 1},
		Day: &DayResult{Cut: 3 * time.Minute, CommunityCases: 2000, Escalated: 300, TownshipCases: 200, HandedDown: 100,
			Convergence: Convergence{Converged: 4 * time.Second}, Met: true},
	}
	r.Cycles.Samples[4].Missing = "district's mirror: 3 of 10"
	benchtest.Printed(t, Print, r,
		"| 20 cycles, each cut for 1m0s (6 cases at the community, 2 escalated; 4 at the township, 2 handed down): time to converge after healing, p50 | 3.00 s | | |",
		"| cycles: p99 (19 converged) | 12.00 s | ≤ 10s | **no** |",
		"| cycles not converged within the timeout | 1 of 20 | 0 | **no** |",
		"- cycle 5: not converged: district's mirror: 3 of 10",
		"with 20 cycles the p99 is the slowest",
		"| a day, time-compressed into one cut of 3m0s (2000 cases at the community, 300 escalated; 200 at the township, 100 handed down): time to converge | 4.00 s | ≤ 10s | yes |",
	)
	if rankP99(20) != 20 || rankP99(100) != 99 || rankP99(200) != 198 || rankP99(1) != 1 {
		t.Errorf("rankP99: %d %d %d %d", rankP99(20), rankP99(100), rankP99(200), rankP99(1))
	}
}
