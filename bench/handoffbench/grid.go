package handoffbench

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// The grid's sites.
const (
	districtSite  = "cd"
	townshipSite  = "cd-dgdj"
	districtNodes = 3
)

// communitySite names the i-th community (0-based).
func communitySite(i int) string { return fmt.Sprintf("%s-c%02d", townshipSite, i+1) }

// grid is the running benchmark grid.
type grid struct {
	nodes       []*node.Node // every node, in start order
	district    []*node.Node
	township    *node.Node
	communities []*node.Node // one node each; communities[0] is the one the drain cuts off
	// cutCommunity and cutTownship are the links policies of communities[0] and the township.
	cutCommunity, cutTownship *cutter
	http                      *http.Client
}

// cutter is a netfault.Allow that refuses a set of addresses while a cut is on. Reading it is
// one atomic load, so the links it guards cost nothing measurable while they are up.
type cutter struct {
	blocked atomic.Pointer[map[string]bool]
}

func (c *cutter) allow(addr string) bool {
	m := c.blocked.Load()
	return m == nil || !(*m)[addr]
}

// cut refuses every address of peer (gRPC, Raft, gossip) until heal.
func (c *cutter) cut(peer *node.Node) {
	a := peer.Addrs()
	c.blocked.Store(&map[string]bool{a.GRPC: true, a.Raft: true, a.Gossip: true})
}

func (c *cutter) heal() { c.blocked.Store(nil) }

// startGrid starts the district, the township and the communities, and waits until every site
// has a leader every node of it can reach, and the township's and the district's registries
// list every site beneath them. A grid is returned (to be closed) even on an error.
func startGrid(ctx context.Context, cfg Config) (*grid, error) {
	g := &grid{cutCommunity: new(cutter), cutTownship: new(cutter), http: &http.Client{Timeout: 5 * time.Second}}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	start := func(name, site string, t tier.Tier, parent string, expect int, links *cutter) (*node.Node, error) {
		c := node.DefaultConfig()
		c.Name, c.Site, c.Tier, c.Parent = name, site, t, parent
		c.DataDir = filepath.Join(cfg.Dir, name)
		c.HTTPAddr, c.GRPCAddr, c.RaftAddr, c.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		c.GridName = "handoffbench"
		c.BootstrapExpect = expect
		c.Logger = logger
		if links != nil {
			c.Network = testgrid.Network(links.allow)
		}
		if len(g.nodes) > 0 {
			c.Join = []string{g.nodes[0].Addrs().Gossip}
		}
		n, err := node.New(c)
		if err != nil {
			return nil, fmt.Errorf("handoffbench: start %s: %w", name, err)
		}
		g.nodes = append(g.nodes, n)
		return n, nil
	}
	for i := range districtNodes {
		n, err := start(fmt.Sprintf("cd-%d", i+1), districtSite, tier.District, "", districtNodes, nil)
		if err != nil {
			return g, err
		}
		g.district = append(g.district, n)
	}
	var err error
	if g.township, err = start("dgdj-1", townshipSite, tier.Township, districtSite, 1, g.cutTownship); err != nil {
		return g, err
	}
	for i := range cfg.Communities {
		var links *cutter
		if i == 0 {
			links = g.cutCommunity
		}
		n, err := start(fmt.Sprintf("c%02d-1", i+1), communitySite(i), tier.Community, townshipSite, 1, links)
		if err != nil {
			return g, err
		}
		g.communities = append(g.communities, n)
	}
	children := map[string]bool{}
	for i := range cfg.Communities {
		children[communitySite(i)] = true
	}
	err = benchkit.Until(ctx, time.Minute, 20*time.Millisecond, func() error {
		for _, site := range [][]*node.Node{g.district, {g.township}, g.communities} {
			for _, n := range site {
				if ok, why := n.Ready(); !ok {
					return fmt.Errorf("%s not ready: %s", n.Name(), why)
				}
			}
		}
		if err := benchkit.Listed(g.township, children); err != nil {
			return err
		}
		leader := g.districtLeader()
		if leader == nil {
			return fmt.Errorf("the district has no leader")
		}
		return benchkit.Listed(leader, mergeKeys(children, townshipSite))
	})
	if err != nil {
		return g, fmt.Errorf("handoffbench: grid not ready: %w", err)
	}
	return g, nil
}

func mergeKeys(m map[string]bool, more ...string) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	for _, k := range more {
		out[k] = true
	}
	return out
}

// districtLeader is the district node that leads its site, or nil.
func (g *grid) districtLeader() *node.Node {
	for _, n := range g.district {
		if n.Raft().IsLeader() {
			return n
		}
	}
	return nil
}

// close stops every node, all at once.
func (g *grid) close() {
	var wg sync.WaitGroup
	for _, n := range g.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); _ = n.Close() }()
	}
	wg.Wait()
}

// waitQuiet waits until no community and not the township has a handoff waiting, so that one
// phase's leftovers do not run into the next.
func (g *grid) waitQuiet(ctx context.Context, timeout time.Duration) error {
	return benchkit.Until(ctx, timeout, 20*time.Millisecond, func() error {
		for _, n := range append([]*node.Node{g.township}, g.communities...) {
			out, err := n.State().Outbox()
			if err != nil {
				return err
			}
			if len(out) > 0 {
				return fmt.Errorf("%s still has handoffs waiting (oldest %s)", n.Site(), out[0].ID)
			}
		}
		return nil
	})
}

// counter reads a counter (without labels) from a node's /metrics.
func (g *grid) counter(n *node.Node, name string) (int64, error) {
	resp, err := g.http.Get("http://" + n.Addrs().HTTP + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics at %s: %s", n.Name(), resp.Status)
	}
	return parseCounter(bufio.NewScanner(resp.Body), name)
}

// parseCounter finds "name value" in Prometheus's text format.
func parseCounter(sc *bufio.Scanner, name string) (int64, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		return int64(f), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// Metric names read from the nodes (replication's instruments).
const (
	metricReceived = "govgrid_handoffs_received_total"
	metricRefused  = "govgrid_handoffs_refused_by_target_total"
)

// submission returns a valid submission to be decided by tier decide; i makes its title unique.
func submission(i int, decide tier.Tier) *casework.Submission {
	return &casework.Submission{
		Kind: casework.KindApplication, ItemCode: "GA-001", Title: fmt.Sprintf("户籍证明 %d", i),
		Description: "开具户籍证明", Actor: "窗口 3", DecideTier: string(decide),
		Applicant: &casework.Applicant{Name: "张三", IDNumber: "630102199001011234", Phone: "13800000000"},
		Materials: []casework.Material{{Name: "身份证复印件"}},
	}
}

// heldAt reports whether c is held by site and not in transit.
func heldAt(c *casework.Case, site string) bool {
	return c != nil && c.HolderSite == site && c.Transit == nil
}
