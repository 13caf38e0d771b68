package handoffbench

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchtest"
	"github.com/govgrid/govgrid/casework"
)

func TestRunSmall(t *testing.T) {
	cfg := Config{
		InFlight: 2, Warmup: 200 * time.Millisecond, Duration: time.Second,
		Communities: 2, Submitters: 2, Backlog: 64, Drain: 50,
	}
	res := benchtest.Run(t, 2*time.Minute, func(ctx context.Context, progress io.Writer) (Result, error) {
		cfg.Dir, cfg.Progress = t.TempDir(), progress
		return Run(ctx, cfg)
	})
	l := res.Latency
	if l == nil || l.Total.Count == 0 || l.Total.P50 <= 0 || l.Total.P99 < l.Total.P50 || l.Total.Max < l.Total.P99 || l.Errors != 0 {
		t.Fatalf("relay latency %+v", l)
	}
	if l.ToTownship.Count != l.Total.Count || l.ToTownship.P50 <= 0 || l.ToDistrict.P50 <= 0 || l.Commit.P50 <= 0 ||
		l.ToTownship.P50 > l.Total.Max || l.ToDistrict.P50 > l.Total.Max {
		t.Fatalf("relay parts %+v", l)
	}
	tp := res.Throughput
	if tp == nil || tp.TownshipArrivals <= 0 || tp.DistrictArrivals <= 0 || tp.TownshipPerSec <= 0 ||
		tp.Submitted < tp.DistrictArrivals || tp.Refused != 0 || tp.Errors != 0 {
		t.Fatalf("throughput %+v", tp)
	}
	o := res.OpenLoop
	if o == nil || o.Rate != tp.TownshipPerSec/2 || o.Target != TargetOpenLoopP99 || o.Total.Count == 0 || o.Errors != 0 || o.Total.P99 < o.Total.P50 {
		t.Fatalf("open-loop relay %+v", o)
	}
	d := res.Drain
	if d == nil || d.Target != TargetDrain || l.Target != TargetRelayP99 || d.Cases != 50 || d.Queued != 50 || d.Held != 50 || d.Drained <= 0 || d.FirstArrival <= 0 ||
		d.FirstArrival > d.Drained || d.PerSec <= 0 {
		t.Fatalf("drain %+v", d)
	}
	benchtest.Printed(t, Print, res, "## Handoff", "| relay community → township → district, 2 in flight", "| relay: p99 |", "≤ 15ms", "| relay, open loop: p99 |", "≤ 50ms",
		"through one township, 2 communities × 2 submitters", "| drain 50 queued handoffs after a ", "≤ 10s")
}

func TestConfigValidate(t *testing.T) {
	good := Defaults
	good.Dir = os.TempDir()
	benchtest.Rejects(t, good, Config.Validate, map[string]func(*Config){
		"no dir":           func(c *Config) { c.Dir = "" },
		"negative warmup":  func(c *Config) { c.Warmup = -time.Second },
		"no in flight":     func(c *Config) { c.InFlight = -1 },
		"100 communities":  func(c *Config) { c.Communities = 100 },
		"no drain":         func(c *Config) { c.Drain = -5 },
		"no backlog":       func(c *Config) { c.Backlog = -1 },
		"no drain timeout": func(c *Config) { c.DrainTimeout = -time.Second },
		"negative cut":     func(c *Config) { c.Partition = -time.Second },
	})
	// Zero sizes take the defaults; a zero warmup stays zero.
	c := Config{Dir: "x"}.withDefaults()
	if c.InFlight != 1 || c.Drain != 10000 || c.Duration != 10*time.Second || c.Warmup != 0 || c.Communities != 2 || c.Partition != 0 {
		t.Fatalf("withDefaults: %+v", c)
	}
	if _, err := Run(context.Background(), Config{InFlight: -1, Dir: "x"}); err == nil {
		t.Fatal("Run accepted a bad config")
	}
}

func TestParseCounter(t *testing.T) {
	text := `# HELP govgrid_handoffs_received_total Handoffs this site took in.
# TYPE govgrid_handoffs_received_total counter
govgrid_handoffs_received_total 1.234567e+06
govgrid_handoffs_received_total_other 5
govgrid_handoffs_refused_by_target_total 3
`
	for name, want := range map[string]int64{metricReceived: 1234567, metricRefused: 3} {
		got, err := parseCounter(bufio.NewScanner(strings.NewReader(text)), name)
		if err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", name, got, err, want)
		}
	}
	if _, err := parseCounter(bufio.NewScanner(strings.NewReader(text)), "govgrid_missing_total"); err == nil {
		t.Error("a missing metric was found")
	}
	if _, err := parseCounter(bufio.NewScanner(strings.NewReader("govgrid_x_total nope\n")), "govgrid_x_total"); err == nil {
		t.Error("a malformed value was accepted")
	}
}

func TestArrivalsFromHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &casework.Case{History: []casework.Event{
		{Type: casework.EventSubmitted, Site: communitySite(0), At: t0},
		{Type: casework.EventEscalated, Site: communitySite(0), At: t0},
		{Type: casework.EventReceived, Site: townshipSite, At: t0.Add(5 * time.Millisecond)},
		{Type: casework.EventRelayed, Site: townshipSite, At: t0.Add(5 * time.Millisecond)},
		{Type: casework.EventReceived, Site: districtSite, At: t0.Add(9 * time.Millisecond)},
	}}
	township, district, ok := arrivals(c)
	if !ok || township.Sub(t0) != 5*time.Millisecond || district.Sub(t0) != 9*time.Millisecond {
		t.Fatalf("arrivals = %v, %v, %v", township, district, ok)
	}
	c.History = c.History[:3]
	if _, _, ok := arrivals(c); ok {
		t.Fatal("a case not yet at the district has both arrivals")
	}
}

func TestPosition(t *testing.T) {
	sorted := []string{"a-000001", "a-000002", "a-000005"}
	for number, want := range map[string]int{"a-000001": 0, "a-000002": 1, "a-000003": 2, "a-000005": 2, "a-000009": 3} {
		if got := position(sorted, number); got != want {
			t.Errorf("position(%s) = %d, want %d", number, got, want)
		}
	}
}

func TestPrintWithoutPhases(t *testing.T) {
	s := benchtest.Printed(t, Print, Result{Grid: "g", Latency: &LatencyResult{InFlight: 50, Target: TargetRelayP99, Total: Dist{Count: 10, P50: 5 * time.Millisecond, P99: 60 * time.Millisecond, Max: 70 * time.Millisecond}}},
		"| 60.0 ms | ≤ 15ms | **no** |", "| 5.00 ms | | |")
	if strings.Contains(s, "drain") || strings.Contains(s, "through one township") {
		t.Errorf("report shows phases that did not run:\n%s", s)
	}
}
