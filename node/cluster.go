package node

import (
	"context"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
)

// clusterServer is the Cluster service the node serves to its peers, one endpoint type per
// concern (like Consul's *_endpoint.go): forwarding and site formation, handoffs, feeds,
// configuration, registration, exports, password changes passed up to an account's site, and
// reads of a case followed from site to site.
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
	*caseEndpoint
	*certEndpoint
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
		caseEndpoint:     &caseEndpoint{cases: &caseService{n: n}},
		certEndpoint:     &certEndpoint{n: n},
	}
}

// unimplemented answers Unimplemented for RPCs of a newer version. It sits one level deeper than
// the endpoints, so their methods win.
type unimplemented struct{ pb.UnimplementedClusterServer }

// caseEndpoint answers another node that follows a case here: its reader was authorized where the
// read began (a person's token is good only at the site that signed it and beneath), so this
// answers the case itself, and a citizen's view with the request's query code.
type caseEndpoint struct{ cases *caseService }

func (e *caseEndpoint) PeerGetCase(ctx context.Context, req *pb.GetCaseRequest) (*pb.Case, error) {
	c, err := e.cases.getCase(ctx, req.GetNumber())
	if err != nil {
		return nil, grpcapi.Err(err)
	}
	return grpcapi.CaseToProto(c), nil
}

func (e *caseEndpoint) PeerGetCitizenView(ctx context.Context, req *pb.GetCitizenViewRequest) (*pb.CitizenView, error) {
	// The asking node counted its client's failures; this node counts the number's.
	v, err := e.cases.CitizenView(ctx, req.GetNumber(), req.GetQueryCode(), "")
	if err != nil {
		return nil, grpcapi.Err(err)
	}
	return grpcapi.CitizenViewToProto(v), nil
}
