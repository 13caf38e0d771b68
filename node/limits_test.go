package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// largestSubmission is a submission at every size limit: a description of 4,000 CJK characters
// (12 KB) and 50 materials with long names and digests, about 32 KB as a record.
func largestSubmission(i int) *casework.Submission {
	sub := testgrid.Submission(i)
	sub.Description = strings.Repeat("政", casework.MaxDescription)
	sub.Materials = nil
	for j := range casework.MaxMaterials {
		sub.Materials = append(sub.Materials, casework.Material{
			Name:   fmt.Sprintf("%s %d", strings.Repeat("材", casework.MaxName-4), j),
			Digest: strings.Repeat(fmt.Sprintf("%x", j%16), 64),
			Pages:  99,
		})
	}
	sub.DecideTier = string(tier.Township)
	return sub
}

// TestLargestRecordsAreDelivered queues a full delivery of the largest records while the target
// is cut off (128 of about 32 KB: over gRPC's 4 MiB message limit in one piece; issue 9,
// review finding 7), then heals: deliveries are bounded by bytes, so the outbox drains, and the
// township's mirror and the district's take the records too.
func TestLargestRecordsAreDelivered(t *testing.T) {
	g := testgrid.New(t, threeTiers)
	township, community := g.WaitLeader("cd-dgdj"), g.WaitLeader("cd-dgdj-ngj")
	waitRegistered(t, g, township, map[string]string{"cd-dgdj-ngj": "cd-dgdj"}, 20*time.Second)
	g.Partition(township.Name(), community.Name())
	var numbers []string
	for i := range 128 {
		numbers = append(numbers, submitWith(t, community, largestSubmission(i)).Number)
	}
	waiting, err := community.State().Outbox()
	if err != nil || len(waiting) != 128 {
		t.Fatalf("outbox while cut off: %d, %v; want 128", len(waiting), err)
	}
	g.Heal()
	waitOutboxesEmpty(t, g, []string{"cd-dgdj-ngj"}, 60*time.Second)
	for _, n := range []string{numbers[0], numbers[127]} {
		waitHeld(t, g, township, n, "cd-dgdj", 10*time.Second)
	}
	district := g.WaitLeader("cd")
	waitMirrored(t, g, district, numbers[127], 30*time.Second)
}

// TestFeedIsTrimmedAfterTheChildsLeaderChanges: acknowledgements land at whichever node serves
// the parent's stream, and the trim goes through the site's Raft from there, so a child whose
// leader changed keeps trimming (review finding 8: the old leader's own count stopped it).
func TestFeedIsTrimmedAfterTheChildsLeaderChanges(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{
		{Code: "cd", Tier: tier.District, Nodes: 1},
		{Code: "cd-dgdj", Tier: tier.Township, Parent: "cd", Nodes: 3},
	}})
	township := g.WaitLeader("cd-dgdj")
	for i := range 3 {
		submitDecided(t, township, i, "")
	}
	waitTrimmedPast := func(seq uint64) {
		t.Helper()
		g.Eventually(45*time.Second, func() error {
			l := g.Leader("cd-dgdj")
			if l == nil {
				return fmt.Errorf("no leader")
			}
			if _, _, err := l.State().ReadFeed(seq, 1, 1<<20); err == nil {
				return fmt.Errorf("feed entry %d is still kept at %s", seq, l.Name())
			}
			return nil
		})
	}
	waitTrimmedPast(3)
	g.Kill(township.Name())
	next := g.WaitLeader("cd-dgdj")
	for i := 3; i < 6; i++ {
		submitDecided(t, next, i, "")
	}
	head, err := next.State().FeedHead()
	if err != nil {
		t.Fatal(err)
	}
	waitTrimmedPast(head)
}
