package node

import (
	"encoding/json"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// exportState is what the export endpoint needs of the site's state.
type exportState interface {
	ExportSite(site string) (*sitestate.SiteExport, error)
	Sites() ([]sitestate.SiteRecord, error)
}

// leaderState is what an endpoint that must answer from the whole committed state needs of the
// node's Raft member.
type leaderState interface {
	IsLeader() bool
	Barrier(timeout time.Duration) error
}

// exportEndpoint serves Cluster.ExportSite: what this site knows of a lost neighbour (its child,
// or its parent), for its restore.
type exportEndpoint struct {
	site, parent string
	tree         siteTree
	raft         leaderState
	state        exportState
}

// exportBytes bounds one chunk of an export (its records, one at least): a chunk is one gRPC
// message (4 MiB at most).
const exportBytes = 1 << 20

// ExportSite streams what this site's mirror holds of a neighbour being restored, in chunks. It
// answers only at the leader, after a barrier, so that it sends everything this site committed:
// a lagging follower would give a restored site a cursor behind the parent's and lose entries.
func (e *exportEndpoint) ExportSite(req *pb.ExportSiteRequest, stream pb.Cluster_ExportSiteServer) error {
	site := req.GetSite()
	if site == "" {
		return status.Error(codes.InvalidArgument, "site: is required")
	}
	asParent := e.tree.childStatus(site) == siteChild
	if !asParent && (site != e.parent || e.parent == "") {
		return status.Errorf(codes.PermissionDenied, "site %q is neither a child nor the parent of %s: only a neighbour helps restore a site", site, e.site)
	}
	if !e.raft.IsLeader() {
		return status.Errorf(codes.Unavailable, "%s: not the leader of the site: ask its leader", e.site)
	}
	if err := e.raft.Barrier(10 * time.Second); err != nil {
		return grpcapi.Err(err)
	}
	exp, err := e.state.ExportSite(site)
	if err != nil {
		return grpcapi.Err(err)
	}
	first := &pb.ExportChunk{Total: uint64(len(exp.Records))}
	if asParent {
		// What only a parent knows: the site's place in its feed, its registry record and its
		// children. (A child has the configuration the site owned.)
		first.FeedCursor = exp.FeedCursor
		if exp.Site != nil {
			if first.Site, err = json.Marshal(exp.Site); err != nil {
				return err
			}
		}
		recs, err := e.state.Sites()
		if err != nil {
			return grpcapi.Err(err)
		}
		for _, r := range recs {
			if r.Parent == site {
				first.Children = append(first.Children, r.Code)
			}
		}
	} else {
		for _, d := range exp.Config {
			b, err := json.Marshal(d)
			if err != nil {
				return err
			}
			first.Config = append(first.Config, b)
		}
	}
	chunk, size := first, 0
	for _, rec := range exp.Records {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if size+len(b) > exportBytes && len(chunk.Records) > 0 {
			if err := stream.Send(chunk); err != nil {
				return err
			}
			chunk, size = &pb.ExportChunk{Total: uint64(len(exp.Records))}, 0
		}
		chunk.Records, size = append(chunk.Records, b), size+len(b)
	}
	return stream.Send(chunk)
}
