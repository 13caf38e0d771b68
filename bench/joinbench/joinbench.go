// Package joinbench measures how long an operator waits, after starting a new community node,
// until the district's tree lists it: the grid issue's "time to listed" benchmark. The pool is
// in-process nodes (real gossip, Raft, gRPC on loopback), each community its own site.
package joinbench

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/govgrid/govgrid/node"
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
	var nodes []*node.Node
	defer func() {
		for _, n := range slices.Backward(nodes) {
			n.Close()
		}
	}()
	start := func(name, site string, t tier.Tier, parent string) (*node.Node, error) {
		c := node.DefaultConfig()
		c.Name, c.Site, c.Tier, c.Parent = name, site, t, parent
		c.DataDir = filepath.Join(cfg.Dir, name)
		c.HTTPAddr, c.GRPCAddr, c.RaftAddr, c.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		c.GridName, c.GossipProfile = "joinbench", cfg.Profile
		c.Logger = slog.New(slog.DiscardHandler)
		if len(nodes) > 0 {
			c.Join = []string{nodes[0].Addrs().Gossip}
		}
		n, err := node.New(c)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
		return n, nil
	}
	t0 := time.Now()
	district, err := start("cd-1", "cd", tier.District, "")
	if err != nil {
		return res, err
	}
	for i := range townships {
		if _, err := start(fmt.Sprintf("t%02d-1", i), fmt.Sprintf("t%02d", i), tier.Township, "cd"); err != nil {
			return res, err
		}
	}
	for i := 0; len(nodes) < cfg.Pool; i++ {
		if _, err := start(fmt.Sprintf("c%03d-1", i), fmt.Sprintf("t%02d-c%03d", i%townships, i), tier.Community, fmt.Sprintf("t%02d", i%townships)); err != nil {
			return res, err
		}
	}
	// The pool is ready when the district lists every site of it (one node per site).
	if err := waitListed(district, cfg.Pool, 5*time.Minute); err != nil {
		return res, fmt.Errorf("joinbench: pool of %d never fully registered: %w", cfg.Pool, err)
	}
	res.StartPool = time.Since(t0)
	progress(cfg.Progress, "pool of %d nodes registered at the district in %v", cfg.Pool, res.StartPool.Round(time.Millisecond))

	for s := range cfg.Samples {
		site := fmt.Sprintf("t%02d-new%02d", s%townships, s)
		begin := time.Now()
		if _, err := start(fmt.Sprintf("new%02d-1", s), site, tier.Community, fmt.Sprintf("t%02d", s%townships)); err != nil {
			return res, err
		}
		if err := waitSite(district, site, time.Minute); err != nil {
			return res, err
		}
		res.Samples = append(res.Samples, time.Since(begin))
		progress(cfg.Progress, "  new community %s listed after %v", site, res.Samples[s].Round(time.Millisecond))
	}
	sorted := slices.Clone(res.Samples)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	res.Median, res.Max = sorted[len(sorted)/2], sorted[len(sorted)-1]

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapPerNode = ms.HeapInuse / uint64(len(nodes))
	if rss, err := selfRSS(); err == nil {
		res.RSSPerNode = rss / uint64(len(nodes))
	}
	return res, nil
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
