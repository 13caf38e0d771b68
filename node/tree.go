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
