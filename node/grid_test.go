package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

var threeTiers = testgrid.Spec{Sites: []testgrid.Site{
	{Code: "cd", Tier: tier.District, Nodes: 1},
	{Code: "cd-dgdj", Tier: tier.Township, Parent: "cd", Nodes: 1},
	{Code: "cd-dgdj-ngj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
}}

// waitRegistered waits until n's committed registry holds every site of want with its parent.
func waitRegistered(t *testing.T, g *testgrid.Grid, n *node.Node, want map[string]string, timeout time.Duration) {
	t.Helper()
	g.Eventually(timeout, func() error {
		recs, err := n.State().Sites()
		if err != nil {
			return err
		}
		got := map[string]sitestate.SiteRecord{}
		for _, r := range recs {
			got[r.Code] = r
		}
		for code, parent := range want {
			r, ok := got[code]
			if !ok {
				return fmt.Errorf("%s not registered at %s (has %d sites)", code, n.Site(), len(recs))
			}
			if r.Parent != parent {
				return fmt.Errorf("%s registered under %q, want %q", code, r.Parent, parent)
			}
			if r.Leader == "" || len(r.Nodes) == 0 {
				return fmt.Errorf("%s registered without leader or nodes: %+v", code, r)
			}
		}
		return nil
	})
}

func TestTreeReachesTheDistrict(t *testing.T) {
	g := testgrid.New(t, threeTiers)
	district := g.WaitLeader("cd")
	waitRegistered(t, g, district, map[string]string{"cd": "", "cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj"}, 15*time.Second)
	// The township's registry is its subtree only.
	township := g.WaitLeader("cd-dgdj")
	recs, _ := township.State().Sites()
	for _, r := range recs {
		if r.Code == "cd" {
			t.Fatal("the township registered its parent in its own subtree")
		}
	}
}

func TestOperatorAddsACommunityByStartingANode(t *testing.T) {
	g := testgrid.New(t, threeTiers)
	district := g.WaitLeader("cd")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj-ngj": "cd-dgdj"}, 15*time.Second)
	start := time.Now()
	g.Start(testgrid.Site{Code: "cd-dgdj-bgj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1}, "cd-dgdj-bgj-1")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj-bgj": "cd-dgdj"}, 10*time.Second)
	t.Logf("new community listed by the district after %v", time.Since(start))
}

func TestPlacementViolationsAreRefusedAtStart(t *testing.T) {
	g := testgrid.New(t, threeTiers)
	for _, tc := range []struct {
		site testgrid.Site
		want string
	}{
		{testgrid.Site{Code: "cd-x", Tier: tier.Community, Parent: "cd", Nodes: 1}, "must be a township"},
		{testgrid.Site{Code: "cd-y", Tier: tier.Township, Parent: "cd-dgdj", Nodes: 1}, "must be a district"},
		{testgrid.Site{Code: "xq", Tier: tier.District, Nodes: 1}, "already has a district"},
		{testgrid.Site{Code: "cd-dgdj", Tier: tier.Community, Parent: "cd-dgdj-ngj", Nodes: 1}, "already a township"},
		{testgrid.Site{Code: "cd-z", Tier: tier.Community, Nodes: 1}, "must name its parent"},
	} {
		cfg := g.Config(tc.site, tc.site.Code+"-bad")
		_, err := node.New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s (%s under %q): err = %v, want it to say %q", tc.site.Code, tc.site.Tier, tc.site.Parent, err, tc.want)
		}
	}
}

func TestGridsWithDifferentNamesNeverMerge(t *testing.T) {
	a := testgrid.New(t, testgrid.Spec{GridName: "chengdong", Sites: []testgrid.Site{{Code: "cd", Tier: tier.District, Nodes: 1}}})
	b := testgrid.New(t, testgrid.Spec{GridName: "chengxi", Sites: []testgrid.Site{{Code: "cx", Tier: tier.District, Nodes: 1}}})
	cfg := b.Config(testgrid.Site{Code: "cx-1", Tier: tier.Township, Parent: "cx", Nodes: 1}, "cx-1-1")
	cfg.Join = []string{a.Node("cd-1").Addrs().Gossip} // pointed at the wrong grid by mistake
	n, err := node.New(cfg)
	if err == nil {
		defer n.Close()
	}
	if err != nil {
		t.Fatalf("a node whose join fails keeps retrying; start failed: %v", err)
	}
	// Give gossip time to (wrongly) merge: probe and push-pull run every second or so.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range a.Node("cd-1").GossipMembers() {
			if m.Name != "cd-1" {
				t.Fatalf("grid chengdong has member %s from another grid", m.Name)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestFailedNodeIsDetected(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{
		{Code: "cd", Tier: tier.District, Nodes: 1},
		{Code: "cd-byl", Tier: tier.Township, Parent: "cd", Nodes: 1},
	}})
	g.Kill("cd-byl-1")
	g.Eventually(30*time.Second, func() error {
		for _, m := range g.Node("cd-1").GossipMembers() {
			if m.Name == "cd-byl-1" && m.Status != "dead" {
				return fmt.Errorf("cd-byl-1 is %s", m.Status)
			}
		}
		return nil
	})
}

func TestMetaAtItsSizeLimit(t *testing.T) {
	long := strings.Repeat("a", tier.MaxSiteCode)
	addr := "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535"
	m := node.Meta{Site: long, Tier: tier.Community, Parent: long, GRPC: addr, Raft: addr, HTTP: addr,
		Version: strings.Repeat("v", node.MaxVersion)}
	b, err := m.Encode()
	if err != nil {
		t.Fatalf("largest allowed meta: %v", err)
	}
	if len(b) > node.MetaMaxSize {
		t.Fatalf("largest allowed meta is %d bytes", len(b))
	}
	back, err := node.DecodeMeta(b)
	if err != nil || back != m {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	// A node with such values really gossips.
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{{Code: "cd", Tier: tier.District, Nodes: 1}}})
	cfg := g.Config(testgrid.Site{Code: strings.Repeat("b", tier.MaxSiteCode), Tier: tier.Township, Parent: "cd", Nodes: 1}, strings.Repeat("n", 64))
	cfg.Version = strings.Repeat("v", node.MaxVersion)
	n := g.StartConfig(cfg)
	g.Eventually(10*time.Second, func() error {
		for _, m := range g.Node("cd-1").GossipMembers() {
			if m.Name == n.Name() && m.Meta.Version == cfg.Version {
				return nil
			}
		}
		return fmt.Errorf("the large-meta node is not in the district's gossip view")
	})
	if _, err := (node.Meta{Site: "cd", GRPC: "x", Raft: "x", Version: strings.Repeat("v", 600)}).Encode(); err == nil {
		t.Fatal("meta over 512 bytes was accepted")
	}
}

func TestGridsWithDifferentKeysNeverMerge(t *testing.T) {
	keyA := []byte("0123456789abcdef0123456789abcdef")
	keyB := []byte("fedcba9876543210fedcba9876543210")
	a := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{{Code: "cd", Tier: tier.District, Nodes: 1}},
		Configure: func(c *node.Config) { c.GossipKey = keyA }})
	cfg := a.Config(testgrid.Site{Code: "cd-x", Tier: tier.Township, Parent: "cd", Nodes: 1}, "cd-x-1")
	cfg.GossipKey = keyB // same grid name, wrong key
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("a node whose join fails keeps retrying; start failed: %v", err)
	}
	defer n.Close()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := memberOf(a.Node("cd-1"), "cd-x-1"); ok {
			t.Fatal("a node with another gossip key joined the grid")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// With the right key it joins.
	good := a.Start(testgrid.Site{Code: "cd-y", Tier: tier.Township, Parent: "cd", Nodes: 1}, "cd-y-1")
	a.Eventually(10*time.Second, func() error {
		if _, ok := memberOf(a.Node("cd-1"), good.Name()); !ok {
			return fmt.Errorf("%s with the right key is not a member", good.Name())
		}
		return nil
	})
}

func TestFailedNodeIsReapedFromItsSite(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{{Code: "cd", Tier: tier.District, Nodes: 3}},
		Configure: func(c *node.Config) { c.ReapAfter = 2 * time.Second }})
	victim, leader := g.Follower("cd").Name(), g.WaitLeader("cd")
	g.Kill(victim)
	g.Eventually(45*time.Second, func() error {
		servers, err := leader.Raft().Servers()
		if err != nil {
			return err
		}
		for _, s := range servers {
			if string(s.ID) == victim {
				return fmt.Errorf("%s is still a voter", victim)
			}
		}
		return nil
	})
}

func TestNodeBackAtNewAddressIsReAdded(t *testing.T) {
	g := testgrid.New(t, district3)
	moved, leader := g.Follower("cd").Name(), g.WaitLeader("cd")
	g.Kill(moved)
	// A renumbered machine comes back after the grid has seen it fail; until then memberlist
	// rightly refuses a second address for a live name.
	g.Eventually(30*time.Second, func() error {
		if m, _ := memberOf(leader, moved); m.Status != "dead" || time.Since(m.Since) < 2*time.Second {
			return fmt.Errorf("%s is %s", moved, m.Status)
		}
		return nil
	})
	n := g.RestartAt(moved, "127.0.0.1:0") // same data, new Raft (and other) ports
	g.Eventually(30*time.Second, func() error {
		servers, err := leader.Raft().Servers()
		if err != nil {
			return err
		}
		for _, s := range servers {
			if string(s.ID) == moved && string(s.Address) == n.Addrs().Raft {
				return nil
			}
		}
		return fmt.Errorf("%s not a voter at its new address %s: %v", moved, n.Addrs().Raft, servers)
	})
	c := submit(t, leader, 1)
	g.Eventually(20*time.Second, func() error {
		_, err := n.State().GetCase(c.Number)
		return err
	})
}
