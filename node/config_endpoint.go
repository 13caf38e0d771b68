package node

import (
	"context"
	"encoding/json"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// configState is what the configuration endpoint needs of the site's state.
type configState interface {
	ConfigSince(known map[string]uint64, max int) ([]sitestate.ConfigDoc, error)
}

// configEndpoint serves Cluster.ConfigSince: configuration flowing down to a child site.
type configEndpoint struct {
	site  string
	tree  siteTree
	state configState
}

// ConfigSince serves a child site the documents it lacks: those of each owner above the
// version the child names.
func (e *configEndpoint) ConfigSince(ctx context.Context, req *pb.ConfigSinceRequest) (*pb.ConfigSinceResponse, error) {
	from := req.GetFromSite()
	if from == "" {
		return nil, status.Error(codes.InvalidArgument, "from_site: is required")
	}
	if e.tree.childStatus(from) != siteChild {
		return nil, status.Errorf(codes.PermissionDenied, "site %s serves configuration to its children, and %q is not one (yet)", e.site, from)
	}
	docs, err := e.state.ConfigSince(req.GetKnown(), configBatch)
	if err != nil {
		return nil, grpcapi.Err(err)
	}
	resp := &pb.ConfigSinceResponse{Docs: make([][]byte, 0, len(docs))}
	for _, d := range docs {
		b, err := json.Marshal(d)
		if err != nil {
			return nil, grpcapi.Err(err)
		}
		resp.Docs = append(resp.Docs, b)
	}
	return resp, nil
}
