package node

// The site tree as this node sees it: its committed registry and gossip.

// isNeighbour reports whether site is this site's parent or one of its children (registered
// here, or seen in gossip naming this site as its parent).
func (n *Node) isNeighbour(site string) bool {
	if site == "" || site == n.cfg.Site {
		return false
	}
	if site == n.cfg.Parent {
		return true
	}
	return n.childStatus(site) == siteChild
}

type siteRelation int

const (
	siteUnknown siteRelation = iota
	siteChild
	siteElsewhere
)

// childStatus tells whether site is a child of this site, another known site, or unknown.
func (n *Node) childStatus(site string) siteRelation {
	rel := siteUnknown
	if recs, err := n.state.Sites(); err == nil {
		for _, r := range recs {
			if r.Code == site {
				if r.Parent == n.cfg.Site {
					return siteChild
				}
				rel = siteElsewhere
			}
		}
	}
	for _, m := range n.gossip.members() {
		if m.Meta.Site == site {
			if m.Meta.Parent == n.cfg.Site {
				return siteChild
			}
			rel = siteElsewhere
		}
	}
	return rel
}

// children lists this site's children: those in its registry and those gossip shows naming it
// as their parent (a child not registered yet, or a registry being restored).
func (n *Node) children() []string {
	seen := map[string]bool{}
	var out []string
	add := func(site string) {
		if site != "" && site != n.cfg.Site && !seen[site] {
			seen[site] = true
			out = append(out, site)
		}
	}
	if recs, err := n.state.Sites(); err == nil {
		for _, r := range recs {
			if r.Parent == n.cfg.Site {
				add(r.Code)
			}
		}
	}
	for _, m := range n.gossip.members() {
		if m.Meta.Parent == n.cfg.Site && m.Status != "left" {
			add(m.Meta.Site)
		}
	}
	return out
}
