// Package joinbench measures how long an operator waits, after starting a new community node,
// until the district's tree lists it: the grid issue's "time to listed" benchmark. The pool is
// in-process nodes (real gossip, Raft, gRPC on loopback), each community its own site, started
// by the test grid harness (testgrid) with production timings.
package joinbench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// Config sizes one measurement.
type Config struct {
	// Pool is the number of nodes in the grid before the measured joins (at least 12: the
	// district and ten townships, the rest communities).
	Pool int
	// Samples is how many new communities are started, one after another.
	Samples int
	// Profile is the gossip profile, "lan" or "wan".
	Profile string
	// Dir holds the nodes' data.
	Dir string
	// Progress, if set, receives a line per phase.
	Progress io.Writer
}

// Result is one pool size's measurement.
type Result struct {
	Pool    int             `json:"pool"`
	Profile string          `json:"profile"`
	Samples []time.Duration `json:"samples_ns"`
	Median  time.Duration   `json:"median_ns"`
	Max     time.Duration   `json:"max_ns"`
	// HeapPerNode is the Go heap in use divided by the nodes running, after the joins.
	HeapPerNode uint64 `json:"heap_per_node_bytes"`
	// RSSPerNode is the process's resident memory divided by the nodes running.
	RSSPerNode uint64 `json:"rss_per_node_bytes"`
	// StartPool is how long building the pool took.
	StartPool time.Duration `json:"start_pool_ns"`
}

const townships = 10

// Run builds the pool, then starts cfg.Samples new communities and times each until the
// district's committed registry lists it. Every node is stopped before it returns.
func Run(cfg Config) (res Result, err error) {
	if cfg.Pool < townships+2 || cfg.Samples < 1 {
		return res, fmt.Errorf("joinbench: pool must be at least %d and samples at least 1", townships+2)
	}
	res = Result{Pool: cfg.Pool, Profile: cfg.Profile}
	err = benchkit.WithT(cfg.Dir, nil, func(t *benchkit.T) error { return run(t, cfg, &res) })
	return res, err
}

// run is Run on a pool, started by the test grid harness with production timings, whose nodes
// stop when t's cleanups run.
func run(t *benchkit.T, cfg Config, res *Result) error {
	township := func(i int) string { return fmt.Sprintf("t%02d", i%townships) }
	sites := []testgrid.Site{{Code: "cd", Tier: tier.District, Nodes: 1}}
	for i := range townships {
		sites = append(sites, testgrid.Site{Code: township(i), Tier: tier.Township, Parent: "cd", Nodes: 1})
	}
	for i := 0; len(sites) < cfg.Pool; i++ {
		sites = append(sites, testgrid.Site{Code: fmt.Sprintf("%s-c%03d", township(i), i), Tier: tier.Community, Parent: township(i), Nodes: 1})
	}
	t0 := time.Now()
	g := testgrid.New(t, benchkit.GridSpec("joinbench", nil, func(c *node.Config) { c.GossipProfile = cfg.Profile }, sites...))
	district := g.SiteNodes("cd")[0]
	// The pool is ready when the district lists every site of it (one node per site).
	if err := waitListed(district, cfg.Pool, 5*time.Minute); err != nil {
		return fmt.Errorf("joinbench: pool of %d never fully registered: %w", cfg.Pool, err)
	}
	res.StartPool = time.Since(t0)
	progress(cfg.Progress, "pool of %d nodes registered at the district in %v", cfg.Pool, res.StartPool.Round(time.Millisecond))

	for s := range cfg.Samples {
		site := testgrid.Site{Code: fmt.Sprintf("%s-new%02d", township(s), s), Tier: tier.Community, Parent: township(s), Nodes: 1}
		begin := time.Now()
		g.Start(site, fmt.Sprintf("new%02d-1", s))
		if err := waitSite(district, site.Code, time.Minute); err != nil {
			return err
		}
		res.Samples = append(res.Samples, time.Since(begin))
		progress(cfg.Progress, "  new community %s listed after %v", site.Code, res.Samples[s].Round(time.Millisecond))
	}
	sorted := slices.Clone(res.Samples)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	res.Median, res.Max = sorted[len(sorted)/2], sorted[len(sorted)-1]

	nodes := uint64(cfg.Pool + cfg.Samples)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapPerNode = ms.HeapInuse / nodes
	if rss, err := selfRSS(); err == nil {
		res.RSSPerNode = rss / nodes
	}
	return nil
}

func waitListed(district *node.Node, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		recs, err := district.State().Sites()
		if err == nil && len(recs) >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d sites listed after %v", len(recs), want, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitSite(district *node.Node, site string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		recs, _ := district.State().Sites()
		for _, r := range recs {
			if r.Code == site {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("joinbench: %s not listed at the district after %v", site, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func selfRSS() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	var size, resident uint64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		return 0, err
	}
	return resident * uint64(os.Getpagesize()), nil
}

func progress(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// Print writes results as a markdown table.
func Print(w io.Writer, results []Result) {
	fmt.Fprintln(w, "\n## Join: new community node started → listed in the district's tree")
	fmt.Fprintln(w, "\n| pool | profile | samples | median | max | pool built in | heap/node | RSS/node |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		fmt.Fprintf(w, "| %d | %s | %d | %v | %v | %v | %.1f MiB | %.1f MiB |\n", r.Pool, r.Profile, len(r.Samples),
			r.Median.Round(time.Millisecond), r.Max.Round(time.Millisecond), r.StartPool.Round(time.Second),
			float64(r.HeapPerNode)/(1<<20), float64(r.RSSPerNode)/(1<<20))
	}
}
