package node

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/tier"
)

// Members is the gossip view of the grid, for GET /v1/members.
func (n *Node) Members() *api.MembersView {
	out := &api.MembersView{Node: n.cfg.Name, Members: []api.Member{}}
	for _, m := range n.gossip.members() {
		out.Members = append(out.Members, api.Member{
			Name: m.Name, Addr: m.Addr, Status: m.Status, Since: m.Since,
			Site: m.Meta.Site, Tier: m.Meta.Tier, Parent: m.Meta.Parent,
			HTTP: m.Meta.HTTP, GRPC: m.Meta.GRPC, Raft: m.Meta.Raft, Version: m.Meta.Version,
			Meta: api.GossipMeta(m.Meta),
		})
	}
	return out
}

// GossipMembers is every node gossip knows of, alive or not, sorted by name.
func (n *Node) GossipMembers() []Member { return n.gossip.members() }

// Sites is the site tree for GET /v1/sites: this site's committed registry (the district's
// holds the whole tree), with each node's health from gossip, and sites seen in gossip that are
// not registered here yet.
func (n *Node) Sites() *api.SitesView {
	bySite := map[string]*api.SiteView{}
	gossipStatus := map[string]Member{}
	for _, m := range n.gossip.members() {
		gossipStatus[m.Name] = m
	}
	if recs, err := n.state.Sites(); err == nil {
		for _, r := range recs {
			v := &api.SiteView{Site: r.Code, Tier: tier.Tier(r.Tier), Parent: r.Parent, Leader: r.Leader, Registered: true}
			for _, name := range r.Nodes {
				sn := api.SiteNode{Name: name, Status: "unknown"}
				if m, ok := gossipStatus[name]; ok {
					sn.Status, sn.HTTP, sn.GRPC = m.Status, m.Meta.HTTP, m.Meta.GRPC
				}
				v.Nodes = append(v.Nodes, sn)
			}
			bySite[r.Code] = v
		}
	}
	for _, m := range gossipStatus {
		v := bySite[m.Meta.Site]
		if v == nil {
			v = &api.SiteView{Site: m.Meta.Site, Tier: m.Meta.Tier, Parent: m.Meta.Parent}
			bySite[m.Meta.Site] = v
		}
		if !hasNode(v, m.Name) {
			v.Nodes = append(v.Nodes, api.SiteNode{Name: m.Name, Status: m.Status, HTTP: m.Meta.HTTP, GRPC: m.Meta.GRPC})
		}
	}
	if own := bySite[n.cfg.Site]; own != nil {
		id, _ := n.raft.Leader()
		own.Leader = string(id)
		if entries, err := n.state.Outbox(); err == nil {
			for to, d := range outboxDepths(slices.Values(entries)) {
				own.Outbox = append(own.Outbox, api.OutboxView{ToSite: to, Depth: d.Depth, OldestSeconds: time.Since(d.Oldest).Seconds()})
			}
			sort.Slice(own.Outbox, func(i, j int) bool { return own.Outbox[i].ToSite < own.Outbox[j].ToSite })
		}
		if st, err := n.state.Retired(); err == nil && st.Retired {
			own.Retired = st
		}
	}
	if cursors, err := n.state.FeedCursors(); err == nil {
		for child, c := range cursors {
			if v := bySite[child]; v != nil {
				fv := &api.FeedView{Cursor: c.Cursor, Head: c.Head, AppliedAt: c.AppliedAt}
				if c.Head > c.Cursor {
					fv.LagEntries = c.Head - c.Cursor
					if !c.LastAt.IsZero() {
						fv.LagSeconds = time.Since(c.LastAt).Seconds()
					}
				}
				v.Feed = fv
			}
		}
	}
	out := &api.SitesView{Sites: make([]api.SiteView, 0, len(bySite))}
	for _, v := range bySite {
		sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].Name < v.Nodes[j].Name })
		v.Health = siteHealth(v.Nodes)
		out.Sites = append(out.Sites, *v)
	}
	sort.Slice(out.Sites, func(i, j int) bool {
		li, lj := out.Sites[i].Tier.Level(), out.Sites[j].Tier.Level()
		if li != lj {
			return li < lj
		}
		return out.Sites[i].Site < out.Sites[j].Site
	})
	return out
}

func hasNode(v *api.SiteView, name string) bool {
	for _, n := range v.Nodes {
		if n.Name == name {
			return true
		}
	}
	return false
}

// siteHealth is "healthy" when every node is alive, "degraded" when a majority is, "down" else.
func siteHealth(nodes []api.SiteNode) string {
	alive := 0
	for _, n := range nodes {
		if n.Status == "alive" {
			alive++
		}
	}
	switch {
	case len(nodes) > 0 && alive == len(nodes):
		return "healthy"
	case alive*2 > len(nodes):
		return "degraded"
	}
	return "down"
}

// SetRetired retires this node's site (it refuses incoming handoffs, telling senders reason) or
// reinstates it.
func (n *Node) SetRetired(ctx context.Context, retired bool, reason string) error {
	return n.state.SetRetired(ctx, retired, reason)
}
