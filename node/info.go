package node

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/govgrid/govgrid/api"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/sitestate"
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
	live := n.leaderLinks()
	if own := bySite[n.cfg.Site]; own != nil {
		id, _ := n.raft.Leader()
		own.Leader = string(id)
		if entries, err := n.state.Outbox(); err == nil {
			for to, d := range outboxDepths(slices.Values(entries)) {
				own.Outbox = append(own.Outbox, outboxView(to, d, targetLinkOf(live, to)))
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
				v.Feed = feedView(c, feedLinkOf(live, child), n.timings.feedSilence, time.Now())
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

// feedView is how far this site is behind a child: the committed cursor, and what its leader
// heard (link, nil when nothing live is known). The lag is known only when the child was heard
// within the silence window: a child cut off silently is never shown as caught up.
func feedView(c sitestate.FeedCursor, link *pb.FeedLink, silence time.Duration, now time.Time) *api.FeedView {
	v := &api.FeedView{Cursor: c.Cursor, Head: c.Head, AppliedAt: c.AppliedAt}
	if link != nil {
		v.Head, v.StreamUp = max(v.Head, link.GetHead()), link.GetStreamUp()
		if link.GetHeardAt() != 0 {
			heard := time.Unix(0, link.GetHeardAt()).UTC()
			v.HeardAt = &heard
			v.LagKnown = now.Sub(heard) <= silence
		}
	}
	if v.LagKnown {
		lag, secs := uint64(0), 0.0
		if v.Head > v.Cursor {
			lag = v.Head - v.Cursor
			if !c.LastAt.IsZero() {
				secs = now.Sub(c.LastAt).Seconds()
			}
		}
		v.LagEntries, v.LagSeconds = &lag, &secs
	}
	return v
}

// outboxView is the outbox toward one target with what the leader heard of it.
func outboxView(to string, d OutboxDepth, link *pb.TargetLink) api.OutboxView {
	v := api.OutboxView{ToSite: to, Depth: d.Depth, OldestSeconds: time.Since(d.Oldest).Seconds()}
	if link != nil {
		if t := link.GetAnsweredAt(); t != 0 {
			at := time.Unix(0, t).UTC()
			v.AnsweredAt = &at
		}
		if t := link.GetFailingSince(); t != 0 {
			at := time.Unix(0, t).UTC()
			v.FailingSince, v.LastError = &at, link.GetLastError()
		}
	}
	return v
}

func feedLinkOf(live *pb.LinkStatusResponse, child string) *pb.FeedLink {
	for _, f := range live.GetFeeds() {
		if f.GetChild() == child {
			return f
		}
	}
	return nil
}

func targetLinkOf(live *pb.LinkStatusResponse, site string) *pb.TargetLink {
	for _, t := range live.GetTargets() {
		if t.GetSite() == site {
			return t
		}
	}
	return nil
}
