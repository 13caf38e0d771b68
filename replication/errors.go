package replication

import "errors"

// Sentinel errors returned by Store. Check them with errors.Is.
var (
	// ErrNotLeader is returned when a write reaches a node that is not its group's leader and
	// no forwarder is configured.
	ErrNotLeader = errors.New("replication: not the leader")
	// ErrNoLeader is returned when the group has no leader at the moment (an election is
	// running or a majority is unreachable). The write was not applied; it is safe to retry.
	ErrNoLeader = errors.New("replication: no leader")
	// ErrCorruptCommand is returned (and logged loudly) for a log entry that does not decode,
	// and for a proposal of a command type this node does not know.
	ErrCorruptCommand = errors.New("replication: corrupt command")
	// ErrForwardRefused refuses a forwarded command that only the leader proposes.
	ErrForwardRefused = errors.New("replication: command refused from a follower")
	// ErrCommandTooLarge is wrapped by the refusal of a command that would write more than
	// MaxCommandWrites keys or MaxCommandBytes bytes: its proposer should split it.
	ErrCommandTooLarge = errors.New("replication: command too large")
	// ErrClosed is returned by a Store after Close.
	ErrClosed = errors.New("replication: store closed")
)
