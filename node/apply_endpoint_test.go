package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/govgrid/govgrid/api/apitest"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/replication"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The unit tests of the Cluster endpoints build each endpoint from small fakes of the narrow
// interface it declares and serve it, in a clusterServer, over an in-memory connection.

// The sites around the endpoints under test: this township, its district and two of its
// communities.
const (
	epSite   = "cd-dgdj"
	epParent = "cd"
	epChild  = "cd-dgdj-ngj"
	epChild2 = "cd-dgdj-xyz"
)

// serveCluster serves cs over an in-memory gRPC connection until the test ends and returns a
// client of it. Only the endpoints set in cs may be called.
func serveCluster(t *testing.T, cs *clusterServer) pb.ClusterClient {
	t.Helper()
	return pb.NewClusterClient(apitest.ServeGRPC(t, func(s *grpc.Server) { pb.RegisterClusterServer(s, cs) }))
}

// testContext is a context that ends with the test, or after ten seconds.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantStatus fails the test unless err is a gRPC status with code.
func wantStatus(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error %v, want code %v", err, code)
	}
	return st
}

// waitFor polls cond until it returns nil, and fails the test if it still does not after
// timeout (like testgrid.Eventually, which this package cannot import).
func waitFor(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeRaft is a raftState: it records the commands it is given and answers "ok:" and the
// command, or applyErr.
type fakeRaft struct {
	mu       sync.Mutex
	applied  [][]byte
	applyErr error

	hasState     bool
	stateErr     error
	leader       raft.ServerID
	appliedIndex uint64
}

func (f *fakeRaft) ApplyForwarded(ctx context.Context, cmd []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, cmd)
	if f.applyErr != nil {
		return nil, f.applyErr
	}
	return append([]byte("ok:"), cmd...), nil
}

func (f *fakeRaft) HasState() (bool, error) { return f.hasState, f.stateErr }

func (f *fakeRaft) AppliedIndex() uint64 { return f.appliedIndex }

func (f *fakeRaft) Leader() (raft.ServerID, raft.ServerAddress) {
	return f.leader, raft.ServerAddress("10.0.0.2:7000")
}

func (f *fakeRaft) appliedCommands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.applied {
		out = append(out, string(c))
	}
	return out
}

func serveApply(t *testing.T, r *fakeRaft) pb.ClusterClient {
	return serveCluster(t, &clusterServer{applyEndpoint: &applyEndpoint{node: "n1", site: epSite, raft: r}})
}

func TestApplyPassesTheCommand(t *testing.T) {
	r := &fakeRaft{}
	cl := serveApply(t, r)
	res, err := cl.Apply(testContext(t), &pb.ApplyRequest{Command: []byte("cmd")})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.GetResult()) != "ok:cmd" {
		t.Errorf("Apply = %q, want the leader's answer ok:cmd", res.GetResult())
	}
	if got := r.appliedCommands(); len(got) != 1 || got[0] != "cmd" {
		t.Errorf("commands applied %q, want [cmd]", got)
	}
}

func TestApplyErrors(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code codes.Code
	}{
		// A follower that lost the lead (or has none) is retried by the forwarder.
		{replication.ErrNotLeader, codes.Unavailable},
		{fmt.Errorf("apply: %w", replication.ErrNotLeader), codes.Unavailable},
		{replication.ErrNoLeader, codes.Unavailable},
		{replication.ErrClosed, codes.Unavailable},
		// A command only the leader proposes, forwarded by a follower.
		{fmt.Errorf("%w: mirror", replication.ErrForwardRefused), codes.PermissionDenied},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{errors.New("disk on fire"), codes.Internal},
	} {
		t.Run(tt.err.Error(), func(t *testing.T) {
			r := &fakeRaft{applyErr: tt.err}
			_, err := serveApply(t, r).Apply(testContext(t), &pb.ApplyRequest{Command: []byte("cmd")})
			wantStatus(t, err, tt.code)
			if got := r.appliedCommands(); len(got) != 1 {
				t.Errorf("commands applied %q, want one", got)
			}
		})
	}
}

func TestRaftStatus(t *testing.T) {
	for _, r := range []*fakeRaft{{hasState: true, leader: "n2", appliedIndex: 42}, {hasState: false, leader: ""}} {
		st, err := serveApply(t, r).RaftStatus(testContext(t), &pb.RaftStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetNode() != "n1" || st.GetSite() != epSite || st.GetHasState() != r.hasState || st.GetLeader() != string(r.leader) || st.GetAppliedIndex() != r.appliedIndex {
			t.Errorf("RaftStatus = %v, want node n1, site %s, has_state %v, leader %q, applied %d", st, epSite, r.hasState, r.leader, r.appliedIndex)
		}
	}
	_, err := serveApply(t, &fakeRaft{stateErr: replication.ErrClosed}).RaftStatus(testContext(t), &pb.RaftStatusRequest{})
	wantStatus(t, err, codes.Unavailable)
}
