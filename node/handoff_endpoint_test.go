package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// fakeTree is a siteTree: epSite under epParent, with children and other known sites.
type fakeTree struct {
	children  []string
	elsewhere []string
}

// epTree is epSite with its two children; epParent is known elsewhere.
var epTree = fakeTree{children: []string{epChild, epChild2}, elsewhere: []string{epParent, "cd-other"}}

func (f fakeTree) isNeighbour(site string) bool {
	return site == epParent || slices.Contains(f.children, site)
}

func (f fakeTree) childStatus(site string) siteRelation {
	switch {
	case slices.Contains(f.children, site):
		return siteChild
	case slices.Contains(f.elsewhere, site):
		return siteElsewhere
	}
	return siteUnknown
}

// fakeHandoffs is a handoffState: it records the arrivals and answers outcomes, or err.
type fakeHandoffs struct {
	mu       sync.Mutex
	calls    [][]sitestate.Arrival
	outcomes []sitestate.ArrivalOutcome
	err      error
}

func (f *fakeHandoffs) ReceiveHandoffs(ctx context.Context, arrivals []sitestate.Arrival) ([]sitestate.ArrivalOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, arrivals)
	return f.outcomes, f.err
}

func (f *fakeHandoffs) received() [][]sitestate.Arrival {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// serveHandoff serves a handoff endpoint of epSite over state; restoring is whether the site is
// being restored.
func serveHandoff(t *testing.T, state *fakeHandoffs, restoring *atomic.Bool) pb.ClusterClient {
	return serveCluster(t, &clusterServer{handoffEndpoint: &handoffEndpoint{
		site: epSite, tree: epTree, restoring: restoring.Load, state: state,
	}})
}

func TestHandoff(t *testing.T) {
	const number = epChild + "-20261125-000001"
	items := []*pb.HandoffItem{
		{Id: number + "#2", Record: []byte(`{"number":"` + number + `"}`)},
		{Id: epChild + "-20261125-000002#5", Record: []byte(`{}`)},
		{Id: epChild + "-20261125-000003#3"},
	}
	state := &fakeHandoffs{outcomes: []sitestate.ArrivalOutcome{
		{ID: items[0].Id, Outcome: sitestate.OutcomeApplied},
		{ID: items[1].Id, Outcome: sitestate.OutcomeDuplicate},
		{ID: items[2].Id, Outcome: sitestate.OutcomeRefused, Reason: "site cd-dgdj is retired: merged into cd"},
	}}
	cl := serveHandoff(t, state, new(atomic.Bool))
	// From a child and from the parent alike: moves go both ways along the tree's edges.
	for _, from := range []string{epChild, epParent} {
		res, err := cl.Handoff(testContext(t), &pb.HandoffRequest{FromSite: from, Items: items})
		if err != nil {
			t.Fatal(err)
		}
		calls := state.received()
		got := calls[len(calls)-1]
		want := []sitestate.Arrival{
			{ID: items[0].Id, From: from, Record: items[0].Record},
			{ID: items[1].Id, From: from, Record: items[1].Record},
			{ID: items[2].Id, From: from},
		}
		if len(got) != len(want) {
			t.Fatalf("arrivals %+v, want %+v", got, want)
		}
		for i := range want {
			// The record passes through as the bytes the sender sent: the state machine reads it.
			if got[i].ID != want[i].ID || got[i].From != want[i].From || string(got[i].Record) != string(want[i].Record) || got[i].RelayTo != "" {
				t.Errorf("arrival %d = %+v, want %+v", i, got[i], want[i])
			}
		}
		wantAcks := []*pb.HandoffAck{
			{Id: items[0].Id, Outcome: "applied"},
			{Id: items[1].Id, Outcome: "duplicate"},
			{Id: items[2].Id, Outcome: "refused", Reason: "site cd-dgdj is retired: merged into cd"},
		}
		if len(res.GetAcks()) != len(wantAcks) {
			t.Fatalf("acks %v, want %v", res.GetAcks(), wantAcks)
		}
		for i, a := range res.GetAcks() {
			if !proto.Equal(a, wantAcks[i]) {
				t.Errorf("ack %d = %v, want %v", i, a, wantAcks[i])
			}
		}
	}

	// No items is a valid, empty delivery.
	state.outcomes = nil
	res, err := cl.Handoff(testContext(t), &pb.HandoffRequest{FromSite: epChild})
	if err != nil {
		t.Fatal(err)
	}
	if calls := state.received(); len(res.GetAcks()) != 0 || len(calls) != 3 || len(calls[2]) != 0 {
		t.Errorf("empty delivery: acks %v, calls %+v", res.GetAcks(), calls)
	}

	// A full batch is taken.
	full := make([]*pb.HandoffItem, defaultHandoffBatch)
	for i := range full {
		full[i] = &pb.HandoffItem{Id: fmt.Sprintf("%s-20261125-%06d#2", epChild, i+1)}
	}
	if _, err := cl.Handoff(testContext(t), &pb.HandoffRequest{FromSite: epChild, Items: full}); err != nil {
		t.Fatalf("a delivery of %d handoffs: %v", defaultHandoffBatch, err)
	}
}

func TestHandoffErrors(t *testing.T) {
	one := []*pb.HandoffItem{{Id: "a#2"}}
	tooMany := make([]*pb.HandoffItem, defaultHandoffBatch+1)
	for i := range tooMany {
		tooMany[i] = &pb.HandoffItem{Id: fmt.Sprintf("a#%d", i+2)}
	}
	tests := []struct {
		name      string
		req       *pb.HandoffRequest
		restoring bool
		err       error // the state's answer
		code      codes.Code
		msg       string // a prefix of the status message
		called    bool
	}{
		{"no from_site", &pb.HandoffRequest{Items: one}, false, nil, codes.InvalidArgument, "from_site: ", false},
		{"empty request", &pb.HandoffRequest{}, false, nil, codes.InvalidArgument, "from_site: ", false},
		{"item without id", &pb.HandoffRequest{FromSite: epChild, Items: []*pb.HandoffItem{{Record: []byte(`{}`)}}},
			false, nil, codes.InvalidArgument, "items: ", false},
		{"second item without id", &pb.HandoffRequest{FromSite: epChild, Items: []*pb.HandoffItem{{Id: "a#2"}, {}}},
			false, nil, codes.InvalidArgument, "items: ", false},
		{"too many items", &pb.HandoffRequest{FromSite: epChild, Items: tooMany},
			false, nil, codes.InvalidArgument, fmt.Sprintf("items: at most %d ", defaultHandoffBatch), false},
		// A sender this site does not (yet) know as a neighbour is told to retry, never
		// refused: a refusal would unlock the case at its holder.
		{"not a neighbour", &pb.HandoffRequest{FromSite: "cd-other", Items: one}, false, nil, codes.Unavailable, "site cd-other is not a parent or child", false},
		{"unknown sender", &pb.HandoffRequest{FromSite: "cd-new", Items: one}, false, nil, codes.Unavailable, "site cd-new is not a parent or child", false},
		{"itself", &pb.HandoffRequest{FromSite: epSite, Items: one}, false, nil, codes.Unavailable, "", false},
		{"restoring", &pb.HandoffRequest{FromSite: epChild, Items: one}, true, nil, codes.Unavailable, "", false},
		{"restoring, from a stranger", &pb.HandoffRequest{FromSite: "cd-new", Items: one}, true, nil, codes.Unavailable, "", false},
		{"not the leader", &pb.HandoffRequest{FromSite: epChild, Items: one}, false, replication.ErrNotLeader, codes.Unavailable, "", true},
		{"refused", &pb.HandoffRequest{FromSite: epChild, Items: one}, false,
			&sitestate.Error{Code: sitestate.CodeInvalid, Message: "a#2 is not a handoff id"}, codes.InvalidArgument, "a#2 is not a handoff id", true},
		{"other", &pb.HandoffRequest{FromSite: epChild, Items: one}, false, errors.New("disk on fire"), codes.Internal, "disk on fire", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := &fakeHandoffs{err: tt.err}
			var restoring atomic.Bool
			restoring.Store(tt.restoring)
			_, err := serveHandoff(t, state, &restoring).Handoff(testContext(t), tt.req)
			st := wantStatus(t, err, tt.code)
			if !strings.HasPrefix(st.Message(), tt.msg) {
				t.Errorf("message %q, want it to start with %q", st.Message(), tt.msg)
			}
			if n := len(state.received()); (n == 1) != tt.called {
				t.Errorf("ReceiveHandoffs called %d times, want called=%v", n, tt.called)
			}
		})
	}
}

// Once the restore ends, the retried delivery goes through.
func TestHandoffAfterRestore(t *testing.T) {
	state := &fakeHandoffs{outcomes: []sitestate.ArrivalOutcome{{ID: "a#2", Outcome: sitestate.OutcomeApplied}}}
	var restoring atomic.Bool
	restoring.Store(true)
	cl := serveHandoff(t, state, &restoring)
	req := &pb.HandoffRequest{FromSite: epParent, Items: []*pb.HandoffItem{{Id: "a#2"}}}
	_, err := cl.Handoff(testContext(t), req)
	wantStatus(t, err, codes.Unavailable)
	restoring.Store(false)
	res, err := cl.Handoff(testContext(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if want := []*pb.HandoffAck{{Id: "a#2", Outcome: "applied"}}; len(res.GetAcks()) != 1 || !proto.Equal(res.GetAcks()[0], want[0]) {
		t.Errorf("acks %v, want %v", res.GetAcks(), want)
	}
	if calls := state.received(); len(calls) != 1 || calls[0][0].ID != "a#2" {
		t.Errorf("arrivals %+v", calls)
	}
}
