package node

import (
	"context"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// handoffState is what the handoff endpoint needs of the site's state.
type handoffState interface {
	ReceiveHandoffs(ctx context.Context, arrivals []sitestate.Arrival) ([]sitestate.ArrivalOutcome, error)
}

// siteTree is what the endpoints need to know of the tree around this site (the node answers
// from its committed registry and gossip).
type siteTree interface {
	// isNeighbour reports whether site is this site's parent or one of its children.
	isNeighbour(site string) bool
	// childStatus tells whether site is a child of this site, another known site, or unknown.
	childStatus(site string) siteRelation
}

// handoffEndpoint serves Cluster.Handoff: handoffs delivered by a neighbouring site.
type handoffEndpoint struct {
	site      string
	tree      siteTree
	restoring func() bool
	state     handoffState
}

// Handoff commits delivered handoffs and answers one ack per handoff. A sender that is not a
// neighbour (yet: a new child may not be registered) is told to retry, never refused: a refusal
// would unlock the case at its holder. The records pass through undecoded: the state machine
// reads them.
func (e *handoffEndpoint) Handoff(ctx context.Context, req *pb.HandoffRequest) (*pb.HandoffResponse, error) {
	from := req.GetFromSite()
	if from == "" {
		return nil, status.Error(codes.InvalidArgument, "from_site: is required")
	}
	if len(req.GetItems()) > defaultHandoffBatch {
		return nil, status.Errorf(codes.InvalidArgument, "items: at most %d handoffs per delivery", defaultHandoffBatch)
	}
	for _, it := range req.GetItems() {
		if it.GetId() == "" {
			return nil, status.Error(codes.InvalidArgument, "items: every handoff needs an id")
		}
	}
	if e.restoring() {
		return nil, grpcapi.Err(errRestoring) // retried by the sender once the site is whole again
	}
	if !e.tree.isNeighbour(from) {
		return nil, status.Errorf(codes.Unavailable, "site %s is not a parent or child of %s (yet): moves go along tree edges", from, e.site)
	}
	arrivals := make([]sitestate.Arrival, 0, len(req.GetItems()))
	for _, it := range req.GetItems() {
		arrivals = append(arrivals, sitestate.Arrival{ID: it.GetId(), From: from, Record: it.GetRecord()})
	}
	out, err := e.state.ReceiveHandoffs(ctx, arrivals)
	if err != nil {
		return nil, grpcapi.Err(err)
	}
	resp := &pb.HandoffResponse{Acks: make([]*pb.HandoffAck, 0, len(out))}
	for _, o := range out {
		resp.Acks = append(resp.Acks, &pb.HandoffAck{Id: o.ID, Outcome: o.Outcome, Reason: o.Reason})
	}
	return resp, nil
}
