package testgrid

import "go.uber.org/goleak"

// IgnoreLeaks is what goleak.VerifyTestMain must let pass in the tests of an in-process grid,
// with a package's own options (more) after it: goroutines that belong to the process, not to a
// node, or that end on their own shortly after a node stops.
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testgrid.IgnoreLeaks()...) }
func IgnoreLeaks(more ...goleak.Option) []goleak.Option {
	return append([]goleak.Option{
		// The HTTP client's idle connections belong to the process, not to a node.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// memberlist.Shutdown does not wait for a probe already in flight; it ends at its
		// ack timeout (half a second) on its own.
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		// hashicorp/raft (v1.8.0) never answers an Apply future still queued in its applyCh
		// when the node shuts down (ApplyLog's future has no ShutdownCh, unlike restore and
		// snapshot futures), so replication's waiter for it stays blocked after its caller gave
		// up on its context: one goroutine per apply in flight at a node's Close, never more.
		goleak.IgnoreAnyFunction("github.com/govgrid/govgrid/replication.(*Store).applyLocal.func1"),
		// netfault's late duplicates (SetFaults) are sent in the background up to MaxDelay
		// after the call, and time out on their own.
		goleak.IgnoreAnyFunction("github.com/govgrid/govgrid/netfault.(*Faults).UnaryClientInterceptor.func1.1"),
	}, more...)
}
