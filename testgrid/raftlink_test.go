package testgrid

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/govgrid/govgrid/tier"
)

// TestSiteCommitsPastABlackHoledFollower: a follower whose packets vanish (no reset) does not
// stop its site: the leader commits with the other follower (Raft's transport gives up on each
// call after its timeout), and once healed the follower catches up (issue 10, point 1: Raft's
// own timeouts under the silent fault).
func TestSiteCommitsPastABlackHoledFollower(t *testing.T) {
	g := New(t, Spec{Sites: []Site{{Code: "cd", Tier: tier.District, Nodes: 3}}})
	leader := g.WaitLeader("cd")
	var follower string
	for _, n := range g.SiteNodes("cd") {
		if n.Name() != leader.Name() {
			follower = n.Name()
			break
		}
	}
	g.BlackholeNode(follower)
	var last string
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := g.Leader("cd").State().SubmitCase(ctx, Submission(i))
		cancel()
		if err != nil {
			t.Fatalf("submit %d with a black-holed follower: %v", i, err)
		}
		last = c.Number
	}
	g.Heal()
	Eventually(t, 30*time.Second, func() error {
		if _, err := g.Node(follower).State().GetCase(last); err != nil {
			return fmt.Errorf("the follower has not caught up: %v", err)
		}
		return nil
	})
}
