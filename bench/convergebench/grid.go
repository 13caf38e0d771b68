package convergebench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/bench/internal/benchkit"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
)

// The grid's sites: benchkit's township grid, with one community.
const (
	districtSite  = benchkit.DistrictSite
	townshipSite  = benchkit.TownshipSite
	communitySite = "cd-dgdj-ngj"
)

const gridDescription = "district 3 nodes, township 1 node, community 1 node (in process, production timings)"

// requestTimeout bounds one call of the HTTP API.
const requestTimeout = 10 * time.Second

// grid is a running benchmark grid.
type grid struct {
	tg        *testgrid.Grid
	log       *slog.Logger // the benchmark's events
	township  *node.Node
	community *node.Node
	http      *http.Client
	// token is the bearer token of the harness's staff of each node's site, signed in at that
	// node (testgrid.StaffToken), by node name.
	token map[string]string
}

// startGrid starts the grid and waits until every site has a leader, the registries list the
// sites beneath them, and a first case accepted at the community is in the district's mirror:
// the feed streams and the community's connections are up, for the cuts to catch. The nodes
// stop when t's cleanups run.
func startGrid(ctx context.Context, t *benchkit.T, cfg Config) (*grid, error) {
	tg := testgrid.New(t, benchkit.GridSpec("convergebench", cfg.Logger, nil, benchkit.TownshipSites(communitySite)...))
	g := &grid{tg: tg, township: tg.SiteNodes(townshipSite)[0], community: tg.SiteNodes(communitySite)[0],
		http: &http.Client{Timeout: requestTimeout}, log: slog.New(slog.DiscardHandler),
		token: map[string]string{}}
	// The clerks' calls are signed in (see benchkit.Bearer), at the community and the township;
	// the final check reads as the same staff (testgrid.NodeGetter), at the township and
	// whichever district node leads. Signed in now, before anything is measured.
	for _, n := range append(tg.SiteNodes(districtSite), g.township, g.community) {
		g.token[n.Name()] = testgrid.StaffToken(t, n)
	}
	if cfg.Logger != nil {
		g.log = cfg.Logger.With("convergebench", true)
	}
	err := benchkit.Until(ctx, time.Minute, 20*time.Millisecond, func() error { return benchkit.TownshipListed(tg, communitySite) })
	if err != nil {
		return g, fmt.Errorf("convergebench: grid not ready: %w", err)
	}
	c, err := g.submit(g.community, 0)
	if err != nil {
		return g, err
	}
	w := newWatch(g, []want{{number: c, holder: communitySite}})
	err = benchkit.Until(ctx, time.Minute, PollInterval, func() error { return w.poll(time.Now()) })
	if err != nil {
		return g, fmt.Errorf("convergebench: the first case never reached the district: %w", err)
	}
	return g, nil
}

// onGrid runs f on a grid of its own (startGrid) whose data is under cfg.Dir/name and whose
// nodes stop when f returns; label starts the progress line that says it is starting.
func onGrid(ctx context.Context, cfg Config, name, label string, f func(g *grid) error) error {
	return benchkit.WithT(filepath.Join(cfg.Dir, name), nil, func(t *benchkit.T) error {
		benchkit.Progress(cfg.Progress, "%sstarting a grid (%s)", label, gridDescription)
		g, err := startGrid(ctx, t, cfg)
		if err != nil {
			return err
		}
		return f(g)
	})
}

// district is the district's leader, or nil.
func (g *grid) district() *node.Node { return g.tg.Leader(districtSite) }

// submit accepts a case at n over its HTTP API and returns its number; i makes it unique.
func (g *grid) submit(n *node.Node, i int) (string, error) {
	var c api.Case
	if err := g.post(n, "/v1/cases", testgrid.Submission(i), http.StatusCreated, &c); err != nil {
		return "", err
	}
	return c.Number, nil
}

// escalate escalates a case the community holds to the township, as a clerk does.
func (g *grid) escalate(number string) error {
	body := api.MoveRequest{Reason: "需街道协调"} // the actor is the signed-in account
	return g.post(g.community, "/v1/cases/"+url.PathEscape(number)+"/"+string(casework.MoveEscalate), body, http.StatusAccepted, nil)
}

// handDown hands a case the township holds down to the community.
func (g *grid) handDown(number string) error {
	body := api.MoveRequest{ToSite: communitySite, Instructions: "请社区核实"} // the actor is the signed-in account
	return g.post(g.township, "/v1/cases/"+url.PathEscape(number)+"/"+string(casework.MoveHandDown), body, http.StatusAccepted, nil)
}

// post sends body as JSON to n's HTTP API, signed in as the staff of n's site, and decodes the
// answer into out (if not nil); any status but want is an error.
func (g *grid) post(n *node.Node, path string, body any, want int, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+n.Addrs().HTTP+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.http.Do(benchkit.Bearer(req, g.token[n.Name()]))
	if err != nil {
		return fmt.Errorf("convergebench: POST %s at %s: %w", path, n.Site(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("convergebench: POST %s at %s: %w", path, n.Site(), err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("convergebench: POST %s at %s: %d %s", path, n.Site(), resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("convergebench: POST %s at %s: %w", path, n.Site(), err)
		}
	}
	return nil
}

// settleTimeout bounds the wait for the final check over the HTTP API once the state has
// converged (it reads the same state, so it should hold at once).
const settleTimeout = 30 * time.Second

// settled polls settle until it holds, for settleTimeout at most, and returns "" when it held,
// else what was still wrong, which it also writes to progress after label.
func (g *grid) settled(progress io.Writer, label string, cases []want) string {
	_, err := testgrid.Poll(settleTimeout, func() error { return g.settle(cases) })
	if err != nil {
		benchkit.Progress(progress, "%sthe final check over the HTTP API failed: %v", label, err)
		return err.Error()
	}
	return ""
}

// settle checks over the HTTP API that every case is listed exactly once by every ancestor,
// with its holder, and that every escalated case was received once (testgrid.Settlement).
func (g *grid) settle(cases []want) error {
	district := g.district()
	if district == nil {
		return fmt.Errorf("the district has no leader")
	}
	ancestors := map[string]testgrid.Getter{townshipSite: testgrid.NodeGetter(g.township), districtSite: testgrid.NodeGetter(district)}
	// Cases at the community (accepted there, or handed down) and those escalated from it to
	// the township; then the township's own, which the district's listings must show too.
	below := testgrid.Settlement{Child: communitySite, Parent: townshipSite, Ancestors: ancestors}
	own := testgrid.Settlement{Child: townshipSite, Parent: districtSite, Ancestors: ancestors}
	for _, c := range cases {
		switch {
		case c.escalated:
			below.Accepted = append(below.Accepted, c.number)
			below.Escalated = append(below.Escalated, c.number)
		case c.holder == communitySite:
			below.Accepted = append(below.Accepted, c.number)
		default:
			own.Accepted = append(own.Accepted, c.number)
		}
	}
	return errors.Join(below.Check(), own.Check())
}
