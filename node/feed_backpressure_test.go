package node_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/node"
	"github.com/govgrid/govgrid/pki"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
)

// TestFeedWaitsForASlowParent reads a community's feed as its parent would, without
// acknowledging: the community sends one window of entries and then only heartbeats, and sends
// more only as acknowledgements come. Nothing is skipped: entries arrive in order, no gap.
func TestFeedWaitsForASlowParent(t *testing.T) {
	g := testgrid.New(t, testgrid.Spec{Sites: []testgrid.Site{
		{Code: "cd-dgdj-ngj", Tier: tier.Community, Parent: "cd-dgdj", Nodes: 1},
	}})
	community := g.WaitLeader("cd-dgdj-ngj")
	const cases = 1500
	for i := range cases {
		submitDecided(t, community, i, "")
	}
	conn := g.PeerConn(pki.Identity{Site: "cd-dgdj", Node: "cd-dgdj-1"}, community.Addrs().GRPC)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := pb.NewClusterClient(conn).Feed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.FeedAck{FromSite: "cd-dgdj", Cursor: 0}); err != nil {
		t.Fatal(err)
	}
	var got uint64
	// readUntilIdle reads batches until a heartbeat (an empty batch) says the community waits.
	readUntilIdle := func() {
		t.Helper()
		for {
			b, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if len(b.GetEntries()) == 0 {
				return
			}
			for _, raw := range b.GetEntries() {
				var e sitestate.FeedEntry
				if err := json.Unmarshal(raw, &e); err != nil {
					t.Fatal(err)
				}
				if got++; e.Seq != got {
					t.Fatalf("entry %d arrived as number %d: a gap or a repeat", e.Seq, got)
				}
			}
		}
	}
	readUntilIdle()
	if window := uint64(node.FeedWindow); got != window {
		t.Fatalf("without acknowledgements the community sent %d entries, want one window of %d", got, node.FeedWindow)
	}
	if err := stream.Send(&pb.FeedAck{Cursor: 500}); err != nil {
		t.Fatal(err)
	}
	readUntilIdle()
	if got != cases {
		t.Fatalf("after acknowledging 500 the community has sent %d entries in all, want all %d", got, cases)
	}
	// Another node claiming to be the parent of another site is refused.
	other, err := pb.NewClusterClient(conn).Feed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = other.Send(&pb.FeedAck{FromSite: "cd-byl", Cursor: 0})
	if _, err := other.Recv(); err == nil {
		t.Fatal("a site that is not the parent was served the feed")
	}
}
