package handoffbench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// The grid's sites: benchkit's township grid.
const (
	districtSite = benchkit.DistrictSite
	townshipSite = benchkit.TownshipSite
)

// communitySite names the i-th community (0-based).
func communitySite(i int) string { return fmt.Sprintf("%s-c%02d", townshipSite, i+1) }

// grid is the running benchmark grid: the test grid harness (testgrid), with production
// timings.
type grid struct {
	tg          *testgrid.Grid
	nodes       int // how many nodes the grid started
	district    []*node.Node
	township    *node.Node
	communities []*node.Node // one node each; communities[0] is the one the drain cuts off
	http        *http.Client
}

// startGrid starts the district, the township and the communities, and waits until every site
// has a leader every node of it can reach, and the township's and the district's registries
// list every site beneath them. The nodes stop when t's cleanups run.
func startGrid(ctx context.Context, t *benchkit.T, cfg Config) (*grid, error) {
	var communities []string
	for i := range cfg.Communities {
		communities = append(communities, communitySite(i))
	}
	tg := testgrid.New(t, benchkit.GridSpec("handoffbench", cfg.Logger, nil, benchkit.TownshipSites(communities...)...))
	g := &grid{tg: tg, nodes: benchkit.DistrictNodes + 1 + cfg.Communities, http: &http.Client{Timeout: 5 * time.Second}}
	g.district = tg.SiteNodes(districtSite)
	g.township = tg.SiteNodes(townshipSite)[0]
	for _, c := range communities {
		g.communities = append(g.communities, tg.SiteNodes(c)[0])
	}
	err := benchkit.Until(ctx, time.Minute, 20*time.Millisecond, func() error {
		if err := benchkit.Ready(append(append(slices.Clone(g.district), g.township), g.communities...)...); err != nil {
			return err
		}
		return benchkit.TownshipListed(tg, communities...)
	})
	if err != nil {
		return g, fmt.Errorf("handoffbench: grid not ready: %w", err)
	}
	return g, nil
}

// districtLeader is the district node that leads its site, or nil.
func (g *grid) districtLeader() *node.Node { return g.tg.Leader(districtSite) }

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

// submission returns a valid submission (testgrid's) to be decided by tier decide; i makes its
// title unique.
func submission(i int, decide tier.Tier) *casework.Submission {
	sub := testgrid.Submission(i)
	sub.DecideTier = string(decide)
	return sub
}
