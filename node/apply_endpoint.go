package node

import (
	"context"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/hashicorp/raft"
)

// raftState is what the apply endpoint needs of the node's Raft group member.
type raftState interface {
	ApplyForwarded(ctx context.Context, cmd []byte) ([]byte, error)
	HasState() (bool, error)
	Leader() (raft.ServerID, raft.ServerAddress)
	AppliedIndex() uint64
}

// applyEndpoint serves Cluster.Apply (a write forwarded by a follower of this site to its
// leader) and Cluster.RaftStatus (asked by a node forming the site).
type applyEndpoint struct {
	node, site string
	raft       raftState
}

// Apply proposes a command a follower forwarded; this node must lead the site.
func (e *applyEndpoint) Apply(ctx context.Context, req *pb.ApplyRequest) (*pb.ApplyResponse, error) {
	res, err := e.raft.ApplyForwarded(ctx, req.GetCommand())
	if err != nil {
		return nil, grpcapi.Err(err)
	}
	return &pb.ApplyResponse{Result: res}, nil
}

// RaftStatus tells whether this node already has Raft state, whom it follows and how far it has
// applied the log.
func (e *applyEndpoint) RaftStatus(ctx context.Context, _ *pb.RaftStatusRequest) (*pb.RaftStatusResponse, error) {
	has, err := e.raft.HasState()
	if err != nil {
		return nil, grpcapi.Err(err)
	}
	leader, _ := e.raft.Leader()
	return &pb.RaftStatusResponse{Node: e.node, Site: e.site, HasState: has, Leader: string(leader), AppliedIndex: e.raft.AppliedIndex()}, nil
}
