// Command govgrid-bench measures govgrid's write path against etcd and PostgreSQL on this
// machine and prints one markdown table, followed by govgrid's memory footprint.
//
// Every cell (system × nodes × concurrency) gets freshly started servers with empty data on
// 127.0.0.1, a warmup, and a measured window of closed-loop 1 KiB writes:
//
//	cd bench && go run ./cmd/govgrid-bench --systems etcd,postgres --duration 3s --warmup 1s
//
// bench/ is a module of its own (github.com/govgrid/govgrid/bench, with the product's module
// replaced by ../), so that the baselines' clients (etcd's, pgx, zap) stay out of the product's
// go.mod. Progress goes to stderr; the report goes to stdout (and, with --json, to a file).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govgrid/govgrid/bench/joinbench"

	"github.com/govgrid/govgrid/bench/handoffbench"
	"github.com/govgrid/govgrid/bench/loadgen"
	"github.com/govgrid/govgrid/bench/mirrorbench"
	"github.com/govgrid/govgrid/bench/systems"
)

// options are the command-line settings.
type options struct {
	govgrid     string
	etcd        string
	pgBinDir    string
	workDir     string
	duration    time.Duration
	warmup      time.Duration
	concurrency []int
	systems     []string
	nodes       []int
	memory      bool
	memoryCases int
	jsonPath    string
	keepData    bool
	joinPools   []int
	joinSamples int
	// handoff runs the handoff benchmark (in-process grid) with these sizes.
	handoff            bool
	handoffInFlight    int
	pprofDir           string
	handoffDuration    time.Duration
	handoffDrain       int
	handoffPartition   time.Duration
	handoffCommunities int
	// visibility and mirror run the feeds benchmark's phases (in-process nodes) with these sizes.
	visibility         bool
	visibilityRate     float64
	visibilityDuration time.Duration
	mirror             bool
	mirrorCases        int
	mirrorTownships    int
	mirrorPages        int
	mirrorListFor      time.Duration
	// converge runs the convergence benchmark (in-process grid, silent cuts) with these sizes.
	converge convergeOptions
	// cells is false when --only leaves out the systems' table (and with it the memory
	// measurement, which needs govgrid among the systems).
	cells bool
}

// benchmarks are the names --only takes.
var benchmarks = []string{"systems", "memory", "join", "handoff", "feeds", "converge"}

var knownSystems = []string{"govgrid", "etcd", "postgres"}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "govgrid-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep := run(ctx, opts)
	printReport(os.Stdout, rep)
	if len(rep.Join) > 0 {
		joinbench.Print(os.Stdout, rep.Join)
	}
	if rep.JoinError != "" {
		fmt.Println("\njoin benchmark failed:", rep.JoinError)
	}
	printSections(os.Stdout, rep)
	if opts.jsonPath != "" {
		if err := writeJSON(opts.jsonPath, rep); err != nil {
			fmt.Fprintln(os.Stderr, "govgrid-bench:", err)
			os.Exit(1)
		}
	}
	if ctx.Err() != nil {
		os.Exit(130)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("govgrid-bench", flag.ContinueOnError)
	fs.StringVar(&o.govgrid, "govgrid", "../bin/govgrid", "path of the govgrid binary (the default is where `make build` puts it, seen from bench/)")
	fs.StringVar(&o.etcd, "etcd", "etcd", "path of the etcd server binary")
	fs.StringVar(&o.pgBinDir, "pg-bin-dir", "", "directory of initdb and postgres (default: from PATH or /usr/lib/postgresql/*/bin)")
	fs.StringVar(&o.workDir, "workdir", "", "parent directory for the servers' data (default: $TMPDIR); it should be on the disk you mean to measure")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per cell")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warmup per cell")
	conc := fs.String("concurrency", "1,16,64", "comma-separated numbers of concurrent clients")
	sys := fs.String("systems", strings.Join(knownSystems, ","), "comma-separated systems to run: "+strings.Join(knownSystems, ", "))
	nodes := fs.String("nodes", "1,3", "comma-separated cluster sizes (postgres always runs 1)")
	fs.BoolVar(&o.memory, "memory", true, "measure the RSS of a 1-node govgrid site, idle and after loading --memory-cases cases")
	fs.IntVar(&o.memoryCases, "memory-cases", 100000, "cases to load for the memory measurement")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&o.keepData, "keep-data", false, "keep the servers' data directories and logs")
	fs.StringVar(&o.pprofDir, "pprof", "", "write a CPU profile of the measured window and an allocation profile of govgrid's first node, per govgrid cell, into this directory")
	joinPools := fs.String("join-pools", "50,200", "pool sizes for the join benchmark (in-process nodes); empty skips it")
	fs.IntVar(&o.joinSamples, "join-samples", 10, "new communities started per pool size")
	fs.BoolVar(&o.handoff, "handoff", true, "run the handoff benchmark (in-process grid): relay latency, throughput through one township, drain after a partition")
	fs.IntVar(&o.handoffInFlight, "handoff-inflight", handoffbench.Defaults.InFlight, "cases in flight for the relay latency")
	fs.DurationVar(&o.handoffDuration, "handoff-duration", handoffbench.Defaults.Duration, "measured time of the relay latency and of the throughput (each after --warmup)")
	fs.IntVar(&o.handoffDrain, "handoff-drain", handoffbench.Defaults.Drain, "handoffs queued behind a cut link, then drained")
	fs.DurationVar(&o.handoffPartition, "handoff-partition", handoffbench.Defaults.Partition, "how long the link stays cut while the drain's handoffs queue (at least the time to queue them)")
	fs.IntVar(&o.handoffCommunities, "handoff-communities", handoffbench.Defaults.Communities, "communities under the township (all submit in the throughput phase)")
	fs.BoolVar(&o.visibility, "visibility", true, "run the feeds benchmark's visibility lag (in-process grid): cases accepted at communities until in the district's mirror")
	fs.Float64Var(&o.visibilityRate, "visibility-rate", mirrorbench.Defaults.Rate, "cases per second submitted, open loop, spread over the 8 communities")
	fs.DurationVar(&o.visibilityDuration, "visibility-duration", mirrorbench.Defaults.Duration, "measured time of the visibility lag (after --warmup)")
	fs.BoolVar(&o.mirror, "mirror", true, "run the feeds benchmark's district mirror: load it through feeds, time subtree listings, read the district's memory")
	fs.IntVar(&o.mirrorCases, "mirror-cases", mirrorbench.Defaults.MirrorCases, "cases loaded into the district's mirror through feeds")
	fs.IntVar(&o.mirrorTownships, "mirror-townships", mirrorbench.Defaults.MirrorTownships, "synthetic townships whose feeds carry the mirror's cases (4 communities each)")
	fs.IntVar(&o.mirrorPages, "mirror-pages", mirrorbench.Defaults.ListPages, "subtree listing requests per kind of listing, at least (pages followed, random first pages per filter)")
	fs.DurationVar(&o.mirrorListFor, "mirror-list-for", mirrorbench.Defaults.ListFor, "least time the subtree listings go on for (over a minute takes in one of the district's value-log collections)")
	o.converge.register(fs)
	only := fs.String("only", "", "comma-separated benchmarks to run, leaving out the rest whatever their flags say: "+strings.Join(benchmarks, ", ")+" (empty: every one its flags turn on)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.converge.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.converge.set[f.Name] = true })
	o.cells = true
	var err error
	if strings.TrimSpace(*joinPools) != "" {
		if o.joinPools, err = intList(*joinPools); err != nil {
			return o, fmt.Errorf("--join-pools: %w", err)
		}
	}
	if strings.TrimSpace(*only) != "" {
		if err := o.restrictTo(*only); err != nil {
			return o, fmt.Errorf("--only: %w", err)
		}
	}
	if o.concurrency, err = intList(*conc); err != nil {
		return o, fmt.Errorf("--concurrency: %w", err)
	}
	if o.nodes, err = intList(*nodes); err != nil {
		return o, fmt.Errorf("--nodes: %w", err)
	}
	for _, s := range strings.Split(*sys, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(knownSystems, s) {
			return o, fmt.Errorf("--systems: unknown system %q (want %s)", s, strings.Join(knownSystems, ", "))
		}
		if !slices.Contains(o.systems, s) {
			o.systems = append(o.systems, s)
		}
	}
	if len(o.systems) == 0 {
		return o, fmt.Errorf("--systems: none given")
	}
	if o.duration <= 0 || o.warmup < 0 {
		return o, fmt.Errorf("--duration must be positive and --warmup not negative")
	}
	if o.handoff {
		switch {
		case o.handoffInFlight < 1:
			return o, fmt.Errorf("--handoff-inflight must be at least 1")
		case o.handoffDuration <= 0:
			return o, fmt.Errorf("--handoff-duration must be positive")
		case o.handoffDrain < 1:
			return o, fmt.Errorf("--handoff-drain must be at least 1")
		case o.handoffPartition < 0:
			return o, fmt.Errorf("--handoff-partition must not be negative")
		case o.handoffCommunities < 1 || o.handoffCommunities > 99:
			return o, fmt.Errorf("--handoff-communities must be 1 to 99")
		}
	}
	if o.visibility || o.mirror {
		c := o.feedsConfig("dir")
		if err := c.Validate(); err != nil {
			return o, fmt.Errorf("feeds benchmark: %w", err)
		}
	}
	if o.converge.run {
		if err := o.converge.config("dir", nil).Validate(); err != nil {
			return o, fmt.Errorf("convergence benchmark: %w", err)
		}
	}
	return o, nil
}

// restrictTo turns off every benchmark not named in the comma-separated list.
func (o *options) restrictTo(list string) error {
	on := map[string]bool{}
	for _, b := range strings.Split(list, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if !slices.Contains(benchmarks, b) {
			return fmt.Errorf("unknown benchmark %q (want %s)", b, strings.Join(benchmarks, ", "))
		}
		on[b] = true
	}
	o.cells = on["systems"]
	o.memory = o.memory && on["memory"]
	if !on["join"] {
		o.joinPools = nil
	}
	o.handoff = o.handoff && on["handoff"]
	o.visibility = o.visibility && on["feeds"]
	o.mirror = o.mirror && on["feeds"]
	o.converge.run = o.converge.run && on["converge"]
	return nil
}

// intList parses "1,16,64" into positive integers.
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

// run measures every cell and, if asked, govgrid's memory.
func run(ctx context.Context, o options) *report {
	rep := &report{
		Started:  time.Now(),
		Machine:  describeMachine(o),
		Duration: o.duration,
		Warmup:   o.warmup,
	}
	for _, sys := range o.systems {
		if !o.cells {
			break
		}
		nodes := o.nodes
		if sys == "postgres" {
			nodes = []int{1}
		}
		for _, n := range nodes {
			for _, c := range o.concurrency {
				if ctx.Err() != nil {
					return rep
				}
				rep.Cells = append(rep.Cells, runCell(ctx, o, sys, n, c))
			}
		}
	}
	switch {
	case !o.memory:
		rep.MemorySkipped = "turned off (--memory=false, or not in --only)"
	case !slices.Contains(o.systems, "govgrid"):
		rep.MemorySkipped = "govgrid is not in --systems"
	case ctx.Err() != nil:
		rep.MemorySkipped = "interrupted"
	default:
		rep.Memory = measureMemory(ctx, o)
	}
	for _, pool := range o.joinPools {
		if ctx.Err() != nil {
			break
		}
		logf("join: building a pool of %d in-process nodes", pool)
		dir, err := os.MkdirTemp(o.workDir, "govgrid-join-")
		if err != nil {
			rep.JoinError = err.Error()
			break
		}
		res, err := joinbench.Run(joinbench.Config{Pool: pool, Samples: o.joinSamples, Profile: "lan", Dir: dir, Progress: os.Stderr})
		os.RemoveAll(dir)
		if err != nil {
			rep.JoinError = err.Error()
			logf("join: %v", err)
			break
		}
		rep.Join = append(rep.Join, res)
	}
	if o.handoff && ctx.Err() == nil {
		runHandoff(ctx, o, rep)
	}
	if (o.visibility || o.mirror) && ctx.Err() == nil {
		runFeeds(ctx, o, rep)
	}
	if o.converge.run && ctx.Err() == nil {
		runConverge(ctx, o, rep)
	}
	return rep
}

// runFeeds runs the feeds benchmark in a temporary directory under --workdir.
func runFeeds(ctx context.Context, o options, rep *report) {
	logf("feeds: visibility lag and the district's mirror")
	rep.Feeds, rep.FeedsError = runInWorkDir(o, "feeds", func(dir string) (mirrorbench.Result, error) {
		return mirrorbench.Run(ctx, o.feedsConfig(dir))
	}, func(r mirrorbench.Result) bool { return r.Visibility != nil || r.Mirror != nil })
}

// feedsConfig sizes the feeds benchmark from the flags.
func (o options) feedsConfig(dir string) mirrorbench.Config {
	c := mirrorbench.Defaults
	c.Visibility, c.Rate, c.Duration, c.Warmup = o.visibility, o.visibilityRate, o.visibilityDuration, o.warmup
	c.Mirror, c.MirrorCases, c.MirrorTownships = o.mirror, o.mirrorCases, o.mirrorTownships
	c.ListPages, c.ListSamples, c.ListFor = o.mirrorPages, o.mirrorPages, o.mirrorListFor
	c.Dir, c.Progress = dir, os.Stderr
	return c
}

// runHandoff runs the handoff benchmark in a temporary directory under --workdir.
func runHandoff(ctx context.Context, o options, rep *report) {
	logf("handoff: starting an in-process grid")
	rep.Handoff, rep.HandoffError = runInWorkDir(o, "handoff", func(dir string) (handoffbench.Result, error) {
		return handoffbench.Run(ctx, o.handoffConfig(dir))
	}, func(r handoffbench.Result) bool { return r.Latency != nil })
}

// handoffConfig sizes the handoff benchmark from the flags.
func (o options) handoffConfig(dir string) handoffbench.Config {
	c := handoffbench.Defaults
	c.InFlight, c.Duration, c.Warmup = o.handoffInFlight, o.handoffDuration, o.warmup
	c.Drain, c.Partition, c.Communities = o.handoffDrain, o.handoffPartition, o.handoffCommunities
	c.Dir, c.Progress = dir, os.Stderr
	return c
}

// common returns the starter settings shared by every system.
func (o options) common() systems.Common {
	return systems.Common{WorkDir: o.workDir, KeepData: o.keepData}
}

// start starts system sys with the given size; concurrency sizes postgres's connection pool.
func start(ctx context.Context, o options, sys string, nodes, concurrency int) (*systems.Target, error) {
	switch sys {
	case "etcd":
		return systems.StartEtcd(ctx, systems.EtcdConfig{Common: o.common(), Binary: o.etcd, Nodes: nodes})
	case "postgres":
		return systems.StartPostgres(ctx, systems.PostgresConfig{Common: o.common(), BinDir: o.pgBinDir, PoolSize: concurrency})
	case "govgrid":
		return systems.StartGovgrid(ctx, systems.GovgridConfig{Common: o.common(), Binary: o.govgrid, Nodes: nodes, Pprof: o.pprofDir != ""})
	}
	return nil, fmt.Errorf("unknown system %q", sys)
}

// runCell starts fresh servers, drives them and stops them again.
func runCell(ctx context.Context, o options, sys string, nodes, concurrency int) cell {
	c := cell{System: sys, Nodes: nodes, Concurrency: concurrency}
	logf("%s × %d node(s), concurrency %d: starting", sys, nodes, concurrency)
	t0 := time.Now()
	tg, err := start(ctx, o, sys, nodes, concurrency)
	if err != nil {
		c.Error = err.Error()
		logf("%s × %d: start failed: %v", sys, nodes, err)
		return c
	}
	logf("  ready in %v; running %v + %v warmup", time.Since(t0).Round(time.Millisecond), o.duration, o.warmup)
	cpu := measureCPU(ctx, tg.PIDs, o.warmup, o.duration)
	profiled := func() {}
	if o.pprofDir != "" && len(tg.HTTPAddrs) > 0 {
		name := filepath.Join(o.pprofDir, fmt.Sprintf("%s-%dn-c%d", sys, nodes, concurrency))
		profiled = profile(ctx, tg.HTTPAddrs[0], name, o.warmup, o.duration)
	}
	res := loadgen.Run(ctx, loadgen.Config{Concurrency: concurrency, Duration: o.duration, Warmup: o.warmup}, tg.Op)
	profiled()
	c.Result = &res
	if used, err := cpu(); err != nil {
		logf("  server CPU not measured: %v", err)
	} else if res.Ops > 0 && res.Elapsed > 0 {
		c.CPUPerOp = used / time.Duration(res.Ops)
		c.CPUCores = used.Seconds() / res.Elapsed.Seconds()
	}
	if err := tg.Close(); err != nil {
		logf("  stop: %v", err)
	}
	logf("  %.0f ops/s, p50 %v, p99 %v, server CPU %v/op, %d errors", res.OpsPerSec, res.P50, res.P99, c.CPUPerOp, res.Errors)
	return c
}

// profile fetches a CPU profile of the node at httpAddr over the measured window (warmup from now,
// duration long) into name+".cpu.pprof"; the function it returns waits for it, then fetches an
// allocation profile into name+".allocs.pprof". Failures are logged: a profile is a diagnosis.
func profile(ctx context.Context, httpAddr, name string, warmup, duration time.Duration) func() {
	fetch := func(path, file string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+path, nil)
		if err == nil {
			var resp *http.Response
			if resp, err = http.DefaultClient.Do(req); err == nil {
				var b []byte
				b, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s: %s", resp.Status, b)
				}
				if err == nil {
					err = os.WriteFile(file, b, 0o644)
				}
			}
		}
		if err != nil {
			logf("  profile %s: %v", file, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		logf("  profiles: %v", err)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
			return
		case <-time.After(warmup):
		}
		fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(int(duration.Seconds()), 1)), name+".cpu.pprof")
	}()
	return func() {
		<-done
		fetch("/debug/pprof/allocs", name+".allocs.pprof")
	}
}

// measureCPU reads the CPU time of the processes pids (and their children) when the measured
// window opens, warmup from now, and when it closes, duration later; the function it returns waits
// for the second reading and gives the difference.
func measureCPU(ctx context.Context, pids []int, warmup, duration time.Duration) func() (time.Duration, error) {
	type reading struct {
		used time.Duration
		err  error
	}
	done := make(chan reading, 1)
	start := time.Now()
	go func() {
		at := func(d time.Duration) (time.Duration, error) {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Until(start.Add(d))):
			}
			return systems.CPUTime(pids)
		}
		from, err := at(warmup)
		if err != nil {
			done <- reading{err: err}
			return
		}
		to, err := at(warmup + duration)
		done <- reading{to - from, err}
	}()
	return func() (time.Duration, error) {
		r := <-done
		return r.used, r.err
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}
