package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// siteCopy is what a site holds, for comparing before a loss and after a restore.
type siteCopy struct {
	cases map[string]string // number -> the whole record, JSON
	stubs map[string]string // number -> holder
}

func copyOf(t *testing.T, s *sitestate.State, numbers []string) siteCopy {
	t.Helper()
	out := siteCopy{cases: map[string]string{}, stubs: map[string]string{}}
	for _, n := range numbers {
		if c, err := s.GetCase(n); err == nil {
			b, _ := json.Marshal(c)
			out.cases[n] = string(b)
		} else if st, err := s.GetStub(n); err == nil {
			out.stubs[n] = st.Holder
		}
	}
	return out
}

func TestLostCommunityIsRestoredFromItsParent(t *testing.T) {
	g := testgrid.New(t, threeTiers)
	township, community := g.WaitLeader("cd-dgdj"), g.WaitLeader("cd-dgdj-ngj")
	waitRegistered(t, g, township, map[string]string{"cd-dgdj-ngj": "cd-dgdj"}, 20*time.Second)

	// The community's life before the loss: cases kept, cases escalated, one handed back down.
	var numbers []string
	for i := range 12 {
		decide := []tier.Tier{"", tier.Township, tier.District}[i%3]
		numbers = append(numbers, submitDecided(t, community, i, decide).Number)
	}
	waitOutboxesEmpty(t, g, []string{"cd", "cd-dgdj", "cd-dgdj-ngj"}, 30*time.Second)
	back := numbers[1] // decided by the township: held there now
	if code := testgrid.PostJSON(t, township, "/v1/cases/"+back+"/handdown", api.MoveRequest{ToSite: "cd-dgdj-ngj", Instructions: "请社区补充材料"}, nil); code != 202 {
		t.Fatalf("handdown: %d", code)
	}
	waitOutboxesEmpty(t, g, []string{"cd", "cd-dgdj", "cd-dgdj-ngj"}, 30*time.Second)
	// Wait until the township has mirrored the community's whole feed: the restore can give
	// back only what reached the parent.
	g.Eventually(20*time.Second, func() error {
		head, err := community.State().FeedHead()
		if err != nil {
			return err
		}
		cur, _ := township.State().FeedCursors()
		if cur["cd-dgdj-ngj"].Cursor != head {
			return fmt.Errorf("township mirrored %d of %d", cur["cd-dgdj-ngj"].Cursor, head)
		}
		return nil
	})
	before := copyOf(t, community.State(), numbers)
	if len(before.cases) != 5 || len(before.stubs) != 7 {
		t.Fatalf("before the loss the community holds %d cases and %d stubs, want 5 and 7", len(before.cases), len(before.stubs))
	}

	// The community's only node and its disk are lost; a fresh machine restores it.
	g.Kill(community.Name())
	var progress atomic.Int64
	cfg := g.Config(testgrid.Site{Code: "cd-dgdj-ngj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1}, "cd-dgdj-ngj-new")
	cfg.RestoreFromParent = true
	cfg.RestoreProgress = func(done, total int) { progress.Store(int64(done)) }
	fresh := g.StartConfig(cfg)
	g.Eventually(30*time.Second, func() error {
		if fresh.Restoring() {
			return fmt.Errorf("still restoring (%d done)", progress.Load())
		}
		if ok, why := fresh.Ready(); !ok {
			return fmt.Errorf("not ready: %s", why)
		}
		return nil
	})
	after := copyOf(t, fresh.State(), numbers)
	for n, rec := range before.cases {
		if after.cases[n] != rec {
			t.Fatalf("case %s after the restore:\n%s\nbefore:\n%s", n, after.cases[n], rec)
		}
	}
	for n, holder := range before.stubs {
		if after.stubs[n] != holder {
			t.Fatalf("stub of %s after the restore points to %q, before to %q", n, after.stubs[n], holder)
		}
	}
	if len(after.cases) != len(before.cases) || len(after.stubs) != len(before.stubs) || progress.Load() == 0 {
		t.Fatalf("restored %d cases and %d stubs (progress %d), had %d and %d", len(after.cases), len(after.stubs), progress.Load(), len(before.cases), len(before.stubs))
	}

	// New numbers never collide with old ones, and the site is back in its place: its new
	// cases reach the parent's mirror, a case it held moves on, and one sent back down arrives.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := fresh.State().SubmitCase(ctx, testgrid.Submission(99))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range numbers {
		if n == c.Number {
			t.Fatalf("the restored site gave number %s again", n)
		}
	}
	g.Eventually(20*time.Second, func() error {
		if _, err := township.State().MirrorCase(c.Number); err != nil {
			return fmt.Errorf("township lacks the restored site's new case: %v", err)
		}
		return nil
	})
	if code := testgrid.PostJSON(t, fresh, "/v1/cases/"+back+"/return", api.MoveRequest{Reason: "材料已补充"}, nil); code != 202 {
		t.Fatalf("return after the restore: %d", code)
	}
	held := waitHeld(t, g, fresh, back, "cd-dgdj", 20*time.Second)
	if err := held.VerifyHistory(); err != nil || held.History[len(held.History)-1].Type != casework.EventReceived {
		t.Fatalf("history after the restore and a return: %v %v", err, eventTypes(held))
	}
}

// TestRestoreInterruptedByALeaderChangeIsFinished loses a three-node community with its disks.
// The fresh node that restores it cannot reach the parent at first, so the restore is begun and
// not finished when the site's two other fresh nodes join it (they are taken in during the
// restore, and refuse cases like it). Then that node is lost too: the new leader finishes the
// restore from what was committed (issue 9, point 4). Afterwards every node has the community's
// cases back, and its new numbers are in the restore reserve.
func TestRestoreInterruptedByALeaderChangeIsFinished(t *testing.T) {
	spec := testgrid.Spec{Sites: []testgrid.Site{
		{Code: "cd", Tier: tier.District, Nodes: 1},
		{Code: "cd-dgdj", Tier: tier.Township, Parent: "cd", Nodes: 1},
		{Code: "cd-dgdj-ngj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 3},
	}}
	g := testgrid.New(t, spec)
	township, community := g.WaitLeader("cd-dgdj"), g.WaitLeader("cd-dgdj-ngj")
	waitRegistered(t, g, township, map[string]string{"cd-dgdj-ngj": "cd-dgdj"}, 20*time.Second)
	var numbers []string
	for i := range 6 {
		numbers = append(numbers, submitDecided(t, community, i, "").Number)
	}
	for _, n := range numbers {
		waitMirrored(t, g, township, n, 30*time.Second)
	}

	for _, n := range g.SiteNodes("cd-dgdj-ngj") {
		g.Kill(n.Name())
	}
	site := testgrid.Site{Code: "cd-dgdj-ngj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1}
	g.Partition("ngj-new-1", township.Name())
	cfg := g.Config(site, "ngj-new-1")
	cfg.RestoreFromParent = true
	first := g.StartConfig(cfg)
	// The new node bootstraps only once gossip has declared the killed nodes of its site dead
	// (a dead node and a partitioned one look the same): about 10 s idle, and gossip's failure
	// detection slows down on a loaded machine (it took over 30 s with the whole suite running).
	g.Eventually(90*time.Second, func() error {
		if g.Leader("cd-dgdj-ngj") != first {
			return fmt.Errorf("the restoring node does not lead its site yet")
		}
		if st, err := first.State().Restored(); err != nil || !st.Restoring {
			return fmt.Errorf("the restore has not begun: %+v %v", st, err)
		}
		return nil
	})
	others := []*node.Node{g.Start(site, "ngj-new-2"), g.Start(site, "ngj-new-3")}
	g.Eventually(30*time.Second, func() error {
		for _, n := range others {
			if !n.Restoring() {
				return fmt.Errorf("%s has not joined the restoring site", n.Name())
			}
		}
		// New nodes join as non-voters and are promoted once they have caught up; only voters
		// can elect the leader that finishes the restore.
		if voters := countVoters(t, first); voters != 3 {
			return fmt.Errorf("the restoring site has %d voters, want 3", voters)
		}
		return nil
	})
	if !first.Restoring() {
		t.Fatal("the restore ended while the parent was cut off")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := others[0].State().SubmitCase(ctx, testgrid.Submission(70)); err == nil {
		t.Fatal("a node of a site being restored accepted a case")
	}

	g.Kill(first.Name())
	waitRestored(t, g, others, numbers, 60*time.Second)
	c := submitDecided(t, g.WaitLeader("cd-dgdj-ngj"), 71, "")
	if _, _, seq, _ := casework.ParseNumber(c.Number); seq < 900_000 {
		t.Fatalf("the restored community issued %s: numbers of its restore day start at 900000", c.Number)
	}
}

// waitRestored waits until none of nodes is restoring and each has every case of numbers.
func waitRestored(t *testing.T, g *testgrid.Grid, nodes []*node.Node, numbers []string, timeout time.Duration) {
	t.Helper()
	g.Eventually(timeout, func() error {
		for _, n := range nodes {
			if n.Restoring() {
				return fmt.Errorf("%s: still restoring", n.Name())
			}
			for _, number := range numbers {
				if _, err := n.State().GetCase(number); err != nil {
					return fmt.Errorf("%s lacks %s: %v", n.Name(), number, err)
				}
			}
		}
		return nil
	})
}
