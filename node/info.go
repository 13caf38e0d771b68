package node

import (
	"context"
	"sort"
	"time"

	"github.com/govgrid/govgrid/replication"

	"github.com/govgrid/govgrid/tier"
)

// Members is the gossip view of the grid, for GET /v1/members.
func (n *Node) Members() any {
	return struct {
		Node    string   `json:"node"`
		Members []Member `json:"members"`
	}{n.cfg.Name, n.gossip.members()}
}

// GossipMembers is every node gossip knows of, alive or not, sorted by name.
func (n *Node) GossipMembers() []Member { return n.gossip.members() }

// SiteNode is one node of a site in GET /v1/sites.
type SiteNode struct {
	Name   string `json:"name"`
	Status string `json:"status"` // alive, dead or left (gossip); unknown if not in gossip
	HTTP   string `json:"http,omitempty"`
	GRPC   string `json:"grpc,omitempty"`
}

// SiteView is one site of the tree as this node knows it.
type SiteView struct {
	Site   string    `json:"site"`
	Tier   tier.Tier `json:"tier"`
	Parent string    `json:"parent,omitempty"`
	Leader string    `json:"leader,omitempty"`
	// Health is healthy (every node alive), degraded (a majority alive) or down.
	Health string     `json:"health"`
	Nodes  []SiteNode `json:"nodes"`
	// Registered is true when the site is in this node's committed registry (the district's
	// holds the whole tree; a township's its subtree); false when it is only seen in gossip.
	Registered bool `json:"registered"`
	// Outbox lists, for this node's own site only, the handoffs waiting per target: a stuck
	// handoff (its target unreachable, or not answering) shows here and on /metrics.
	Outbox []OutboxView `json:"outbox,omitempty"`
	// Retired is set, for this node's own site only, while it refuses incoming handoffs.
	Retired *replication.RetiredState `json:"retired,omitempty"`
	// Feed is set for this site's children: how far this site's mirror is behind them.
	Feed *FeedView `json:"feed,omitempty"`
}

// FeedView is how far this site has mirrored a child's feed.
type FeedView struct {
	Cursor     uint64    `json:"cursor"`
	Head       uint64    `json:"head"`
	LagEntries uint64    `json:"lag_entries"`
	LagSeconds float64   `json:"lag_seconds"`
	AppliedAt  time.Time `json:"applied_at"`
}

// OutboxView is the outbox toward one target site.
type OutboxView struct {
	ToSite        string  `json:"to_site"`
	Depth         int     `json:"depth"`
	OldestSeconds float64 `json:"oldest_seconds"`
}

// Sites is the site tree for GET /v1/sites: this site's committed registry (the district's
// holds the whole tree), with each node's health from gossip, and sites seen in gossip that are
// not registered here yet.
func (n *Node) Sites() any {
	bySite := map[string]*SiteView{}
	gossipStatus := map[string]Member{}
	for _, m := range n.gossip.members() {
		gossipStatus[m.Name] = m
	}
	if recs, err := n.store.Sites(); err == nil {
		for _, r := range recs {
			v := &SiteView{Site: r.Code, Tier: tier.Tier(r.Tier), Parent: r.Parent, Leader: r.Leader, Registered: true}
			for _, name := range r.Nodes {
				sn := SiteNode{Name: name, Status: "unknown"}
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
			v = &SiteView{Site: m.Meta.Site, Tier: m.Meta.Tier, Parent: m.Meta.Parent}
			bySite[m.Meta.Site] = v
		}
		if !v.hasNode(m.Name) {
			v.Nodes = append(v.Nodes, SiteNode{Name: m.Name, Status: m.Status, HTTP: m.Meta.HTTP, GRPC: m.Meta.GRPC})
		}
	}
	if own := bySite[n.cfg.Site]; own != nil {
		id, _ := n.store.Leader()
		own.Leader = string(id)
		if depths, err := n.store.OutboxDepths(); err == nil {
			for to, d := range depths {
				own.Outbox = append(own.Outbox, OutboxView{ToSite: to, Depth: d.Depth, OldestSeconds: time.Since(d.Oldest).Seconds()})
			}
			sort.Slice(own.Outbox, func(i, j int) bool { return own.Outbox[i].ToSite < own.Outbox[j].ToSite })
		}
		if st, err := n.store.Retired(); err == nil && st.Retired {
			own.Retired = st
		}
	}
	if cursors, err := n.store.FeedCursors(); err == nil {
		for child, c := range cursors {
			if v := bySite[child]; v != nil {
				fv := &FeedView{Cursor: c.Cursor, Head: c.Head, AppliedAt: c.AppliedAt}
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
	out := make([]SiteView, 0, len(bySite))
	for _, v := range bySite {
		sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].Name < v.Nodes[j].Name })
		v.Health = siteHealth(v.Nodes)
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool {
		li, lj := out[i].Tier.Level(), out[j].Tier.Level()
		if li != lj {
			return li < lj
		}
		return out[i].Site < out[j].Site
	})
	return struct {
		Sites []SiteView `json:"sites"`
	}{out}
}

func (v *SiteView) hasNode(name string) bool {
	for _, n := range v.Nodes {
		if n.Name == name {
			return true
		}
	}
	return false
}

// siteHealth is "healthy" when every node is alive, "degraded" when a majority is, "down" else.
func siteHealth(nodes []SiteNode) string {
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
	return n.store.SetRetired(ctx, retired, reason)
}
