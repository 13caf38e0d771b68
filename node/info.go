package node

import (
	"sort"

	"github.com/govgrid/govgrid/tier"
)

// Members is the gossip view of the grid, for GET /v1/members.
func (n *Node) Members() any {
	return struct {
		Node    string   `json:"node"`
		Members []Member `json:"members"`
	}{n.cfg.Name, n.gossip.members()}
}

// SiteNode is one node of a site in GET /v1/sites.
type SiteNode struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	HTTP   string `json:"http"`
	GRPC   string `json:"grpc"`
	Voter  bool   `json:"voter"`
}

// SiteView is one site as this node sees it.
type SiteView struct {
	Site   string     `json:"site"`
	Tier   tier.Tier  `json:"tier"`
	Parent string     `json:"parent,omitempty"`
	Leader string     `json:"leader,omitempty"`
	Health string     `json:"health"`
	Nodes  []SiteNode `json:"nodes"`
}

// Sites is the site tree as gossip shows it, for GET /v1/sites. The leader is known for this
// node's own site (from Raft); for other sites the tree comes from the district's registry in
// a later step, and leaders are left empty here.
func (n *Node) Sites() any {
	bySite := map[string]*SiteView{}
	for _, m := range n.gossip.members() {
		v := bySite[m.Meta.Site]
		if v == nil {
			v = &SiteView{Site: m.Meta.Site, Tier: m.Meta.Tier, Parent: m.Meta.Parent}
			bySite[m.Meta.Site] = v
		}
		v.Nodes = append(v.Nodes, SiteNode{Name: m.Name, Status: m.Status, HTTP: m.Meta.HTTP, GRPC: m.Meta.GRPC})
	}
	if own := bySite[n.cfg.Site]; own != nil {
		id, _ := n.store.Leader()
		own.Leader = string(id)
		if servers, err := n.store.Servers(); err == nil {
			voters := map[string]bool{}
			for _, s := range servers {
				voters[string(s.ID)] = true
			}
			for i := range own.Nodes {
				own.Nodes[i].Voter = voters[own.Nodes[i].Name]
			}
		}
	}
	out := make([]SiteView, 0, len(bySite))
	for _, v := range bySite {
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

// siteHealth is "healthy" when every node is alive, "degraded" when a majority is, "down" else.
func siteHealth(nodes []SiteNode) string {
	alive := 0
	for _, n := range nodes {
		if n.Status == "alive" {
			alive++
		}
	}
	switch {
	case alive == len(nodes):
		return "healthy"
	case alive*2 > len(nodes):
		return "degraded"
	}
	return "down"
}
