package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/testgrid"
)

func TestPartitionedLeaderIsReplacedAndCatchesUp(t *testing.T) {
	g := testgrid.New(t, district3)
	old := g.WaitLeader("cd")
	var majority []*node.Node
	for _, n := range g.SiteNodes("cd") {
		if n != old {
			majority = append(majority, n)
		}
	}
	g.Isolate(old.Name())

	// The majority elects a new leader and keeps taking writes.
	var c string
	g.Eventually(20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cs, _, err := majority[0].State().SubmitCase(ctx, testgrid.Submission(1))
		if err != nil {
			return err
		}
		c = cs.Number
		return nil
	})
	if id, _ := majority[1].Raft().Leader(); string(id) == old.Name() {
		t.Fatal("the majority still follows the cut-off leader")
	}
	// The cut-off node cannot commit anything.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, _, err := old.State().SubmitCase(ctx, testgrid.Submission(2))
	cancel()
	if err == nil {
		t.Fatal("a node cut off from its site's majority acknowledged a write")
	}

	g.Heal()
	g.Eventually(30*time.Second, func() error {
		if _, err := old.State().GetCase(c); err != nil {
			return fmt.Errorf("the healed node lacks %s: %v", c, err)
		}
		for _, n := range g.SiteNodes("cd") {
			if ok, why := n.Ready(); !ok {
				return fmt.Errorf("%s: %s", n.Name(), why)
			}
		}
		return nil
	})
}

func TestCutOffCommunityKeepsAcceptingAndRejoins(t *testing.T) {
	g := testgrid.New(t, threeTiers)
	district := g.WaitLeader("cd")
	community := g.WaitLeader("cd-dgdj-ngj")
	g.Isolate(community.Name())

	// The district sees the community's node fail ...
	g.Eventually(30*time.Second, func() error {
		m, ok := memberOf(district, community.Name())
		if !ok || m.Status != "dead" {
			return fmt.Errorf("district sees %s as %+v", community.Name(), m.Status)
		}
		return nil
	})
	// ... while the community, a site of its own, keeps accepting cases.
	for i := range 5 {
		submit(t, community, i)
	}
	g.Heal()
	g.Eventually(30*time.Second, func() error {
		m, ok := memberOf(district, community.Name())
		if !ok || m.Status != "alive" {
			return fmt.Errorf("after healing the district sees %s as %v", community.Name(), m.Status)
		}
		return nil
	})
}

func memberOf(n *node.Node, name string) (node.Member, bool) {
	for _, m := range n.GossipMembers() {
		if m.Name == name {
			return m, true
		}
	}
	return node.Member{}, false
}
