package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/bench/convergebench"
	"github.com/govgrid/govgrid/bench/handoffbench"
	"github.com/govgrid/govgrid/bench/internal/benchtest"
	"github.com/govgrid/govgrid/bench/loadgen"
	"github.com/govgrid/govgrid/bench/mirrorbench"
)

func TestIntList(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"1,16,64", []int{1, 16, 64}, false},
		{" 3 , 1,", []int{3, 1}, false},
		{"", nil, true},
		{"0", nil, true},
		{"x", nil, true},
	}
	for _, tt := range tests {
		got, err := intList(tt.in)
		if (err != nil) != tt.wantErr || !equal(got, tt.want) {
			t.Errorf("intList(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--systems", "etcd, postgres,etcd", "--duration", "3s"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.systems, ",") != "etcd,postgres" || o.duration != 3*time.Second || o.warmup != 2*time.Second ||
		!equal(o.concurrency, []int{1, 16, 64}) || !equal(o.nodes, []int{1, 3}) || !o.memory || o.govgrid != "../bin/govgrid" {
		t.Errorf("unexpected options %+v", o)
	}
	for _, bad := range [][]string{{"--systems", "redis"}, {"--concurrency", "0"}, {"--duration", "0s"}, {"extra"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestRatios(t *testing.T) {
	gg := &cell{Result: &loadgen.Result{OpsPerSec: 500, P99: 4 * time.Millisecond}, CPUPerOp: 300 * time.Microsecond}
	tests := []struct {
		other *cell
		want  string
	}{
		{nil, "—"},
		{&cell{Result: &loadgen.Result{}}, "—"},
		{&cell{Result: &loadgen.Result{OpsPerSec: 1000, P99: 2 * time.Millisecond}}, "0.50×, 2.00×"},
		{&cell{Result: &loadgen.Result{OpsPerSec: 250, P99: 8 * time.Millisecond}, CPUPerOp: 150 * time.Microsecond}, "2.00×, 0.50×, 2.00×"},
	}
	for _, tt := range tests {
		if got := ratios(gg, tt.other); got != tt.want {
			t.Errorf("ratios(%+v) = %q, want %q", tt.other, got, tt.want)
		}
	}
}

func TestPrintReport(t *testing.T) {
	r := &report{
		Started:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Machine:  machine{NProc: 2, Versions: map[string]string{"etcd": "etcd Version: 3.4.23"}},
		Duration: 3 * time.Second,
		Cells: []cell{
			{System: "govgrid", Nodes: 1, Concurrency: 16, Result: &loadgen.Result{Elapsed: 3 * time.Second, OpsPerSec: 900, P50: 2 * time.Millisecond, P99: 9 * time.Millisecond}, CPUPerOp: 200 * time.Microsecond, CPUCores: 0.18},
			{System: "govgrid", Nodes: 3, Concurrency: 16, Error: "exited during startup\nlog tail"},
			{System: "etcd", Nodes: 1, Concurrency: 16, Result: &loadgen.Result{Elapsed: 3 * time.Second, OpsPerSec: 1800, P50: time.Millisecond, P99: 3 * time.Millisecond, Errors: 2, FirstError: "deadline"}, CPUPerOp: 100 * time.Microsecond, CPUCores: 0.18},
			{System: "postgres", Nodes: 1, Concurrency: 16, Result: &loadgen.Result{Elapsed: 3 * time.Second, OpsPerSec: 450, P50: 3 * time.Millisecond, P99: 18 * time.Millisecond}},
		},
		Memory: &memoryResult{IdleRSS: 30 << 20, IdleRSSAnon: 20 << 20, IdleRSSFile: 10 << 20, IdleSettled: true, Cases: 100,
			LoadedRSS: 60 << 20, LoadedRSSAnon: 25 << 20, LoadedRSSFile: 35 << 20, LoadSettled: true,
			DataDisk: 5 << 20, DataApparent: 2 << 30,
			Load: loadgen.Result{Ops: 100, Elapsed: time.Second, OpsPerSec: 100}},
	}
	out := benchtest.Printed(t, printReport, r,
		"| govgrid | 1 | 16 | 900 | 2.00 ms | 9.00 ms | 200 µs (0.18) | 0.50×, 3.00×, 2.00× | 2.00×, 0.50× |",
		"| govgrid | 3 | 16 | failed | | | | | |",
		"| etcd | 1 | 16 | 1800 | 1.00 ms | 3.00 ms | 100 µs (0.18) |  |  |",
		"govgrid × 3, concurrency 16 did not start: exited during startup\n",
		"etcd × 1, concurrency 16: 2 errors (first: deadline)",
		"- idle after start: VmRSS 30.0 MiB (RssAnon 20.0 MiB, RssFile 10.0 MiB)\n",
		"- after loading 100 cases: VmRSS 60.0 MiB (RssAnon 25.0 MiB, RssFile 35.0 MiB)\n",
		"- data directory after the load: 5.0 MiB on disk (du), 2048.0 MiB apparent\n",
		"RssFile is badger's memory-mapped tables and value logs: page cache the kernel reclaims under pressure; RssAnon is memory the process owns.\n",
		"- etcd: etcd Version: 3.4.23",
	)
	if strings.Contains(out, "interrupted") {
		t.Errorf("no cell was interrupted:\n%s", out)
	}
	if strings.Count(out, "| system |") != 1 {
		t.Errorf("want exactly one results table:\n%s", out)
	}
}

func TestParseHandoffFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !o.handoff || o.handoffInFlight != 1 || o.handoffDrain != 10000 || o.handoffDuration != 10*time.Second || o.handoffCommunities != 2 || o.handoffPartition != 30*time.Second {
		t.Errorf("handoff defaults %+v", o)
	}
	c := o.handoffConfig("dir")
	if c.InFlight != 1 || c.Drain != 10000 || c.Duration != 10*time.Second || c.Warmup != o.warmup || c.Dir != "dir" || c.Validate() != nil {
		t.Errorf("handoff config %+v", c)
	}
	o, err = parseFlags([]string{"--handoff-inflight", "8", "--handoff-drain", "500", "--handoff-duration", "3s", "--handoff-communities", "4", "--handoff-partition", "0s", "--warmup", "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if c := o.handoffConfig("d"); c.InFlight != 8 || c.Drain != 500 || c.Duration != 3*time.Second || c.Communities != 4 || c.Warmup != time.Second || c.Partition != 0 {
		t.Errorf("handoff config from flags %+v", c)
	}
	for _, bad := range [][]string{{"--handoff-inflight", "0"}, {"--handoff-drain", "0"}, {"--handoff-duration", "0s"}, {"--handoff-communities", "0"}, {"--handoff-partition", "-1s"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
	// --handoff=false skips the benchmark, and with it the checks of its sizes.
	o, err = parseFlags([]string{"--handoff=false", "--handoff-inflight", "0"})
	if err != nil || o.handoff {
		t.Errorf("--handoff=false: %+v, %v", o.handoff, err)
	}
}

func TestParseFeedsFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !o.visibility || !o.mirror || o.visibilityRate != 500 || o.visibilityDuration != 20*time.Second || o.mirrorCases != 1_000_000 ||
		o.mirrorTownships != 4 || o.mirrorPages != 200 || o.mirrorListFor != 65*time.Second {
		t.Errorf("feeds defaults %+v", o)
	}
	c := o.feedsConfig("dir")
	if !c.Visibility || !c.Mirror || c.Rate != 500 || c.Communities != 8 || c.Townships != 2 || c.MirrorCases != 1_000_000 ||
		c.Warmup != o.warmup || c.QuietMax != mirrorbench.Defaults.QuietMax || c.Dir != "dir" || c.Validate() != nil {
		t.Errorf("feeds config %+v", c)
	}
	o, err = parseFlags([]string{"--visibility-rate", "50", "--visibility-duration", "3s", "--mirror-cases", "5000", "--mirror-townships", "2", "--mirror-pages", "10", "--mirror-list-for", "0s", "--warmup", "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if c := o.feedsConfig("d"); c.Rate != 50 || c.Duration != 3*time.Second || c.MirrorCases != 5000 || c.MirrorTownships != 2 ||
		c.ListPages != 10 || c.ListSamples != 10 || c.ListFor != 0 || c.Warmup != time.Second {
		t.Errorf("feeds config from flags %+v", c)
	}
	for _, bad := range [][]string{{"--visibility-rate", "0"}, {"--visibility-duration", "0s"}, {"--mirror-cases", "0"}, {"--mirror-townships", "0"}, {"--mirror-pages", "-1"}, {"--mirror-list-for", "-1s"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
	// A phase turned off is not checked; both off skip the benchmark.
	o, err = parseFlags([]string{"--mirror=false", "--mirror-cases", "0"})
	if err != nil || o.mirror || !o.visibility {
		t.Errorf("--mirror=false: %+v, %v", o.mirror, err)
	}
	o, err = parseFlags([]string{"--mirror=false", "--visibility=false", "--visibility-rate", "0"})
	if err != nil || o.mirror || o.visibility {
		t.Errorf("both off: %v", err)
	}
}

func TestParseConvergeFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := o.converge.config("dir", nil)
	d := convergebench.Defaults
	if !o.converge.run || c.Cycles != d.Cycles || c.Cut != d.Cut || c.DayCases != d.DayCases || c.DayCut != d.DayCut || c.Dir != "dir" || c.Validate() != nil {
		t.Errorf("converge defaults %+v", c)
	}
	o, err = parseFlags([]string{"--converge-quick", "--converge-cut", "3s", "--converge-day=false"})
	if err != nil {
		t.Fatal(err)
	}
	q := convergebench.Quick
	if c := o.converge.config("d", nil); c.Cycles != q.Cycles || c.Cut != 3*time.Second || c.Day || c.DayCases != q.DayCases || c.Gap != q.Gap {
		t.Errorf("quick with flags %+v", c)
	}
	o, err = parseFlags([]string{"--converge-cycles", "25", "--converge-cut", "90s", "--converge-day-cases", "3000", "--converge-day-escalate", "500", "--converge-day-cut", "5m", "--converge-gap", "0s", "--converge-timeout", "3m"})
	if err != nil {
		t.Fatal(err)
	}
	if c := o.converge.config("d", nil); c.Cycles != 25 || c.Cut != 90*time.Second || c.DayCases != 3000 || c.DayEscalate != 500 || c.DayCut != 5*time.Minute || c.Gap != 0 || c.Timeout != 3*time.Minute {
		t.Errorf("converge config from flags %+v", c)
	}
	for _, bad := range [][]string{{"--converge-cut", "0s"}, {"--converge-cycles", "-1"}, {"--converge-day-escalate", "3000"}, {"--converge-cycles", "0", "--converge-day=false"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
	if o, err := parseFlags([]string{"--converge=false", "--converge-cut", "0s"}); err != nil || o.converge.run {
		t.Errorf("--converge=false: %v, %v", o.converge.run, err)
	}
}

func TestOnly(t *testing.T) {
	o, err := parseFlags([]string{"--only", "converge"})
	if err != nil {
		t.Fatal(err)
	}
	if o.cells || o.memory || len(o.joinPools) > 0 || o.handoff || o.visibility || o.mirror || !o.converge.run {
		t.Errorf("--only converge: %+v", o)
	}
	o, err = parseFlags([]string{"--only", "systems, feeds", "--mirror=false"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.cells || o.memory || len(o.joinPools) > 0 || o.handoff || !o.visibility || o.mirror || o.converge.run {
		t.Errorf("--only systems,feeds --mirror=false: %+v", o)
	}
	if _, err := parseFlags([]string{"--only", "etcd"}); err == nil {
		t.Error("--only accepted an unknown benchmark")
	}
	var buf bytes.Buffer
	printReport(&buf, &report{MemorySkipped: "turned off"})
	if strings.Contains(buf.String(), "| system |") || !strings.Contains(buf.String(), "No system was measured") {
		t.Errorf("a report without cells:\n%s", buf.String())
	}
}

func TestPrintSections(t *testing.T) {
	var buf bytes.Buffer
	printSections(&buf, &report{})
	if buf.Len() != 0 {
		t.Errorf("a run without the in-process benchmarks printed %q", buf.String())
	}
	r := &report{
		Handoff: &handoffbench.Result{Grid: "g", Latency: &handoffbench.LatencyResult{InFlight: 50,
			Total: handoffbench.Dist{Count: 100, P50: 8 * time.Millisecond, P99: 30 * time.Millisecond, Max: 40 * time.Millisecond}, Target: 50 * time.Millisecond, Met: true}},
		HandoffError: "handoffbench: drain: after 2m0s: about 10 of 10000 handoffs still queued",
		Feeds: &mirrorbench.Result{Visibility: &mirrorbench.VisibilityResult{Rate: 500, Communities: 8, Offered: 10000, Accepted: 10000, Sustained: true,
			Lag: mirrorbench.Dist{Count: 10000, P50: 40 * time.Millisecond, P99: 120 * time.Millisecond, Max: 300 * time.Millisecond}, Target: time.Second, Met: true}},
		FeedsError: "mirrorbench: after 30m0s only 10 of 1000000 cases mirrored",
		Converge: &convergebench.Result{Grid: "g", Target: convergebench.TargetConverge, Cycles: &convergebench.CyclesResult{Cycles: 20, Cut: time.Minute,
			Converge: convergebench.Dist{Count: 20, P50: 3 * time.Second, P99: 8 * time.Second, Max: 8 * time.Second}, Met: true}},
		ConvergeError: "convergebench: day: boom",
	}
	out := benchtest.Printed(t, printSections, r,
		"## Handoff", "| relay: p99 | 30.0 ms | ≤ 50ms | yes |", "handoff benchmark failed: handoffbench: drain",
		"## Feeds", "| visibility lag: p99 | 120 ms | ≤ 1s | yes |", "feeds benchmark failed: mirrorbench: after 30m0s",
		"## Convergence after a silent cut", "| cycles: p99 (20 converged) | 8.00 s | ≤ 10s | yes |", "convergence benchmark failed: convergebench: day: boom")
	if h, f, c := strings.Index(out, "## Handoff"), strings.Index(out, "## Feeds"), strings.Index(out, "## Convergence"); !(h < f && f < c) {
		t.Errorf("sections out of order (handoff, feeds, convergence):\n%s", out)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	benchtest.Contains(t, "JSON", string(b),
		`"handoff":{`, `"relay_latency":{"in_flight":50`, `"p99_ns":30000000`, `"handoff_error":"handoffbench: drain`,
		`"feeds":{"visibility":{`, `"lag":{"count":10000,"p50_ns":40000000,"p99_ns":120000000`, `"feeds_error":"mirrorbench: after`,
		`"converge":{"grid":"g","cycles":{"cycles":20`, `"converge":{"count":20,"p50_ns":3000000000,"p99_ns":8000000000`, `"converge_error":"convergebench: day: boom"`,
		`"target_met":true`)
}
