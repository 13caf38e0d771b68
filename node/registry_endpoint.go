package node

import (
	"context"
	"crypto/ed25519"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// registryState is what the registry endpoint needs of the site's state.
type registryState interface {
	RegisterSites(ctx context.Context, sites []sitestate.SiteRecord) error
	Sites() ([]sitestate.SiteRecord, error)
}

// registryEndpoint serves Cluster.RegisterSites: a child site registering its subtree.
type registryEndpoint struct {
	site, parent string
	tier         tier.Tier
	state        registryState
}

// RegisterSites validates the records a child site sends and commits them in this site's
// registry: the child's own record must name this site as parent with the tier below this one,
// and every other record must hang, tier by tier, under the child.
func (e *registryEndpoint) RegisterSites(ctx context.Context, req *pb.RegisterSitesRequest) (*pb.RegisterSitesResponse, error) {
	from := req.GetFromSite()
	recs := make([]sitestate.SiteRecord, 0, len(req.GetSites()))
	for _, r := range req.GetSites() {
		if k := r.GetPublicKey(); len(k) != 0 && len(k) != ed25519.PublicKeySize {
			return nil, status.Errorf(codes.InvalidArgument, "site %q: a public key is %d bytes", r.GetCode(), ed25519.PublicKeySize)
		}
		recs = append(recs, sitestate.SiteRecord{Code: r.GetCode(), Tier: r.GetTier(), Parent: r.GetParent(), Nodes: r.GetNodes(), Leader: r.GetLeader(),
			Retired: r.GetRetired(), RetiredReason: r.GetRetiredReason(), PublicKey: r.GetPublicKey()})
	}
	known, err := e.state.Sites()
	if err != nil {
		return nil, grpcapi.Err(err)
	}
	registered := map[string]sitestate.SiteRecord{}
	for _, r := range known {
		registered[r.Code] = r
	}
	byCode := map[string]sitestate.SiteRecord{}
	for _, r := range recs {
		switch old, ok := registered[r.Code]; {
		case byCode[r.Code].Code != "":
			return nil, status.Errorf(codes.InvalidArgument, "registration from %q names site %q twice", from, r.Code)
		case r.Code == e.site || r.Code == e.parent && e.parent != "":
			return nil, status.Errorf(codes.InvalidArgument, "registration from %q names %q, which is not in its subtree", from, r.Code)
		case ok && old.Parent != r.Parent:
			return nil, status.Errorf(codes.InvalidArgument, "site %q is registered here under %q, not %q: a site does not move in the tree", r.Code, old.Parent, r.Parent)
		}
		byCode[r.Code] = r
	}
	self, ok := byCode[from]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "registration from %q lacks its own record", from)
	}
	childTier := map[tier.Tier]tier.Tier{tier.District: tier.Township, tier.Township: tier.Community}
	if self.Parent != e.site || tier.Tier(self.Tier) != childTier[e.tier] {
		return nil, status.Errorf(codes.InvalidArgument, "site %q (%s, parent %q) cannot hang under %q, a %s: its parent must be a %s",
			from, self.Tier, self.Parent, e.site, e.tier, tier.Tier(self.Tier).ParentTierName())
	}
	for _, r := range recs {
		if r.Code == from {
			continue
		}
		parent, ok := byCode[r.Parent]
		if !ok || tier.Tier(r.Tier) != childTier[tier.Tier(parent.Tier)] {
			return nil, status.Errorf(codes.InvalidArgument, "site %q does not hang under %q's subtree", r.Code, from)
		}
	}
	if err := e.state.RegisterSites(ctx, recs); err != nil {
		return nil, grpcapi.Err(err)
	}
	return &pb.RegisterSitesResponse{}, nil
}
