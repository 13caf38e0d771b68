package node

import pb "github.com/govgrid/govgrid/api/govgridpb"

// clusterServer is the Cluster service the node serves to its peers, one endpoint type per
// concern (like Consul's *_endpoint.go): forwarding and site formation, handoffs, feeds,
// configuration, registration, exports and password changes passed up to an account's site.
type clusterServer struct {
	unimplemented
	*applyEndpoint
	*handoffEndpoint
	*FeedServer
	*configEndpoint
	*registryEndpoint
	*exportEndpoint
	*linkEndpoint
	*authEndpoint
}

func (n *Node) clusterServer() *clusterServer {
	site := n.cfg.Site
	return &clusterServer{
		applyEndpoint:    &applyEndpoint{node: n.cfg.Name, site: site, raft: n.raft},
		handoffEndpoint:  &handoffEndpoint{site: site, tree: n, restoring: n.restoring, state: n.state},
		FeedServer:       &FeedServer{Site: site, Parent: n.cfg.Parent, Stop: n.stop, Logger: n.logger, Source: n.state},
		configEndpoint:   &configEndpoint{site: site, tree: n, state: n.state},
		registryEndpoint: &registryEndpoint{site: site, parent: n.cfg.Parent, tier: n.cfg.Tier, state: n.state},
		exportEndpoint:   &exportEndpoint{site: site, parent: n.cfg.Parent, tree: n, raft: n.raft, state: n.state},
		linkEndpoint:     &linkEndpoint{node: n.cfg.Name, links: n.links, raft: n.raft},
		authEndpoint:     &authEndpoint{n: n},
	}
}

// unimplemented answers Unimplemented for RPCs of a newer version. It sits one level deeper than
// the endpoints, so their methods win.
type unimplemented struct{ pb.UnimplementedClusterServer }
