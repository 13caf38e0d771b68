package replication

import (
	"encoding/binary"
	"fmt"
	"time"
)

// CommandType is the first byte of every Raft log entry a state machine writes. Its numbers are
// part of the log format: never reuse or renumber one.
type CommandType uint8

// IgnoreUnknown, set in a command's type byte, lets a node that does not know the command skip
// it instead of stopping: a newer leader may then run beside older followers during a rolling
// upgrade, for commands whose effect older nodes can safely miss.
const IgnoreUnknown CommandType = 0x80

// CommandHeaderSize is the size of a command's frame before its payload: the type byte and the
// command's time as big-endian Unix nanoseconds (zero until the leader stamps it). The time sits
// in a fixed header so that the leader can stamp it without decoding the payload.
const CommandHeaderSize = 1 + 8

// NewCommand frames a payload as a log entry of type t with an unstamped time.
func NewCommand(t CommandType, payload []byte) []byte {
	out := make([]byte, CommandHeaderSize, CommandHeaderSize+len(payload))
	out[0] = byte(t)
	return append(out, payload...)
}

// stampCommand sets the command's time in place.
func stampCommand(cmd []byte, at time.Time) {
	binary.BigEndian.PutUint64(cmd[1:CommandHeaderSize], uint64(at.UnixNano()))
}

// parseCommand splits a log entry into its type, time and payload. The time is in UTC, so the
// bytes a command writes never depend on a node's time zone.
func parseCommand(b []byte) (CommandType, time.Time, []byte, error) {
	if len(b) < CommandHeaderSize {
		return 0, time.Time{}, nil, fmt.Errorf("%w: %d-byte command", ErrCorruptCommand, len(b))
	}
	var at time.Time
	if n := int64(binary.BigEndian.Uint64(b[1:CommandHeaderSize])); n != 0 {
		at = time.Unix(0, n).UTC()
	}
	return CommandType(b[0]), at, b[CommandHeaderSize:], nil
}

// Applier applies one command's payload. It reads and writes the state through tx, whose writes
// reach the state only if the command is not refused. It returns the answer for the proposer:
// a refusal is an answer (see Refusal), never an error. A non-nil error means the storage
// failed, and stops the node: applying the rest of the log without this command would let this
// node's state part from its peers'.
type Applier func(tx *Tx, payload []byte) (answer any, err error)

// Refusal is implemented by answers that refuse their command: the command was committed but
// changed nothing. Refused reports whether this answer is one.
type Refusal interface {
	Refused() bool
}

// Commands is the registry of a state machine's commands: each type has a name and an applier.
// Register every command before the Store opens; the registry is read-only afterwards.
type Commands struct {
	byType map[CommandType]command
}

type command struct {
	name  string
	apply Applier
	// leaderOnly: proposed only by the leader's own workers, never forwarded by a follower.
	leaderOnly bool
}

// Register adds command type t. It panics on a type registered twice or one with the
// IgnoreUnknown bit, as a programming error found at start.
func (c *Commands) Register(t CommandType, name string, apply Applier) {
	if t&IgnoreUnknown != 0 {
		panic(fmt.Sprintf("replication: command type %d carries the ignore-unknown bit", uint8(t)))
	}
	if c.byType == nil {
		c.byType = map[CommandType]command{}
	}
	if old, ok := c.byType[t]; ok {
		panic(fmt.Sprintf("replication: command type %d registered twice (%s, %s)", uint8(t), old.name, name))
	}
	c.byType[t] = command{name: name, apply: apply}
}

// LeaderOnly marks command type t (registered) as one only the leader's own workers propose:
// Store.ApplyForwarded refuses it when a follower forwards it (a node of the site, even one that
// the site's certificate admits, cannot inject a leader's bookkeeping: mirrored entries,
// configuration from the parent, settlements, pruning).
func (c *Commands) LeaderOnly(t CommandType) {
	cmd, ok := c.byType[t]
	if !ok {
		panic(fmt.Sprintf("replication: command type %d is not registered", uint8(t)))
	}
	cmd.leaderOnly = true
	c.byType[t] = cmd
}

func (c *Commands) lookup(t CommandType) (command, bool) {
	cmd, ok := c.byType[t&^IgnoreUnknown]
	return cmd, ok
}

// Name is the registered name of t, for logs and metrics.
func (c *Commands) Name(t CommandType) string {
	if cmd, ok := c.lookup(t); ok {
		return cmd.name
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// StampedCommand frames a payload as a log entry of type t stamped with at: for tests and tools
// that write a log by hand (a leader stamps the commands it proposes itself).
func StampedCommand(t CommandType, payload []byte, at time.Time) []byte {
	cmd := NewCommand(t, payload)
	stampCommand(cmd, at)
	return cmd
}
