package replication

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/govgrid/govgrid/casework"
)

// commandType is the first byte of every Raft log entry that govgrid writes.
type commandType uint8

// ignoreUnknownFlag, set in a command's type byte, lets a node that does not know the command
// skip it instead of stopping: a newer leader may then run beside older followers during a
// rolling upgrade, for commands whose effect older nodes can safely miss.
const ignoreUnknownFlag commandType = 0x80

// The command types. Numbers are part of the log format: never reuse or renumber one.
const (
	cmdSubmitCase    commandType = 1
	cmdRegisterSites commandType = 2
	cmdDepart        commandType = 3
	cmdArrive        commandType = 4
	cmdSettle        commandType = 5
	cmdRetire        commandType = 6
	cmdMirror        commandType = 7
	cmdTrimFeed      commandType = 8
	cmdConfigPut     commandType = 9
	cmdConfigSync    commandType = 10
	cmdRestore       commandType = 11
)

var commandNames = map[commandType]string{
	cmdSubmitCase: "submit-case", cmdRegisterSites: "register-sites", cmdDepart: "depart",
	cmdArrive: "arrive", cmdSettle: "settle", cmdRetire: "retire", cmdMirror: "mirror", cmdTrimFeed: "trim-feed",
	cmdConfigPut: "config-put", cmdConfigSync: "config-sync", cmdRestore: "restore",
}

func (t commandType) String() string {
	if name, ok := commandNames[t&^ignoreUnknownFlag]; ok {
		return name
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// A command is framed as: the type byte, the command's time as big-endian Unix nanoseconds
// (zero until the leader stamps it), then the payload as JSON. The time sits in a fixed header
// so that the leader can stamp it without decoding and re-encoding the payload.
const commandHeaderSize = 1 + 8

// encodeCommand frames a payload as a log entry with an unstamped time.
func encodeCommand(t commandType, payload any) ([]byte, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	out := make([]byte, commandHeaderSize, commandHeaderSize+len(body))
	out[0] = byte(t)
	return append(out, body...), nil
}

// stampCommand sets the command's time in place.
func stampCommand(cmd []byte, at time.Time) {
	binary.BigEndian.PutUint64(cmd[1:commandHeaderSize], uint64(at.UnixNano()))
}

// decodeCommand splits a log entry into its type, time and payload.
func decodeCommand(b []byte) (commandType, time.Time, []byte, error) {
	if len(b) < commandHeaderSize {
		return 0, time.Time{}, nil, fmt.Errorf("%w: %d-byte command", ErrCorruptCommand, len(b))
	}
	var at time.Time
	if n := int64(binary.BigEndian.Uint64(b[1:commandHeaderSize])); n != 0 {
		at = time.Unix(0, n)
	}
	return commandType(b[0]), at, b[commandHeaderSize:], nil
}

// submitCommand opens a case. The node that took the request fills it (the query code itself
// never enters the log, only its hash); the leader stamps the command's time.
type submitCommand struct {
	Submission casework.Submission `json:"submission"`
	Site       string              `json:"site"`
	// RelayTo, if set, escalates the new case to that site in the same commit: its decide
	// tier is above this site's. The proposing node decides it, so it is part of the log.
	RelayTo       string    `json:"relay_to,omitempty"`
	QueryCodeHash string    `json:"query_code_hash"`
	At            time.Time `json:"-"` // from the command header
}

// result is what the FSM answers for one command, encoded so that it can cross a forwarding hop.
type result struct {
	Case      *casework.Case   `json:"case,omitempty"`
	Duplicate bool             `json:"duplicate,omitempty"`
	Arrivals  []ArrivalOutcome `json:"arrivals,omitempty"`
	Config    *ConfigDoc       `json:"config,omitempty"`
	Err       *Error           `json:"error,omitempty"`
}
