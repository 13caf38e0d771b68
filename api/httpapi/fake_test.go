package httpapi_test

import (
	"context"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/api/apitest"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
)

// fakeNode is an httpapi.NodeInfo.
type fakeNode struct {
	ready  bool
	why    string
	leaves int

	retires   []retireCall
	retireErr error
}

// retireCall is one call of SetRetired.
type retireCall struct {
	retired  bool
	reason   string
	deadline bool
}

func (n *fakeNode) SetRetired(ctx context.Context, retired bool, reason string) error {
	_, deadline := ctx.Deadline()
	n.retires = append(n.retires, retireCall{retired: retired, reason: reason, deadline: deadline})
	return n.retireErr
}

func (n *fakeNode) LeaveAsync() { n.leaves++ }

func (n *fakeNode) Ready() (bool, string) { return n.ready, n.why }

// Members answers testMembers.
func (n *fakeNode) Members() *api.MembersView { return testMembers() }

// Sites answers testSites.
func (n *fakeNode) Sites() *api.SitesView { return testSites() }

// testMembers is a gossip view of one node of apitest.Site.
func testMembers() *api.MembersView {
	return &api.MembersView{Node: "n1", Members: []api.Member{{
		Name: "n1", Addr: "10.0.0.1:7946", Status: "alive", Since: apitest.At.UTC(), Site: apitest.Site, Tier: tier.Community,
		Parent: apitest.Parent, HTTP: "10.0.0.1:8080", GRPC: "10.0.0.1:9090", Raft: "10.0.0.1:7000", Version: "v1",
		Meta: api.GossipMeta{Site: apitest.Site, Tier: tier.Community, Parent: apitest.Parent, GRPC: "10.0.0.1:9090",
			Raft: "10.0.0.1:7000", HTTP: "10.0.0.1:8080", Version: "v1"},
	}}}
}

// testSites is the tree as a node of apitest.Parent sees it: its own site (with its outbox, retired)
// and its child apitest.Site (with how far apitest.Parent has mirrored it).
func testSites() *api.SitesView {
	return &api.SitesView{Sites: []api.SiteView{
		{Site: apitest.Parent, Tier: tier.Township, Parent: "cd", Leader: "p1", Health: "degraded", Registered: true,
			Nodes: []api.SiteNode{
				{Name: "p1", Status: "alive", HTTP: "10.0.0.1:8080", GRPC: "10.0.0.1:9090"},
				{Name: "p2", Status: "dead"},
			},
			Outbox:  []api.OutboxView{{ToSite: "cd", Depth: 3, OldestSeconds: 1.5}},
			Retired: &sitestate.RetiredState{Retired: true, Reason: "merged into cd", Since: apitest.At.UTC()},
		},
		{Site: apitest.Site, Tier: tier.Community, Parent: apitest.Parent, Health: "down", Registered: true,
			Nodes: []api.SiteNode{{Name: "n1", Status: "unknown"}},
			Feed:  &api.FeedView{Cursor: 40, Head: 42, LagKnown: true, LagEntries: ptr(uint64(2)), LagSeconds: ptr(0.25), AppliedAt: apitest.At.UTC(), HeardAt: ptr(apitest.At.UTC()), StreamUp: true},
		},
		{Site: "cd", Tier: tier.District, Health: "healthy", Nodes: []api.SiteNode{{Name: "d1", Status: "alive"}}},
	}}
}

func ptr[T any](v T) *T { return &v }
