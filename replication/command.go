package replication

import (
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
	cmdSubmitCase commandType = 1
)

func (t commandType) String() string {
	switch t &^ ignoreUnknownFlag {
	case cmdSubmitCase:
		return "submit-case"
	default:
		return fmt.Sprintf("command(%d)", uint8(t))
	}
}

// encodeCommand frames a payload as a log entry: the type byte, then the payload as JSON.
func encodeCommand(t commandType, payload any) ([]byte, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1, 1+len(body))
	out[0] = byte(t)
	return append(out, body...), nil
}

// decodeCommand splits a log entry into its type and payload.
func decodeCommand(b []byte) (commandType, []byte, error) {
	if len(b) == 0 {
		return 0, nil, fmt.Errorf("%w: empty command", ErrCorruptCommand)
	}
	return commandType(b[0]), b[1:], nil
}

// submitCommand opens a case. The node that took the request sets QueryCodeHash (the code
// itself never enters the log); the leader fills Site and At before proposing it.
type submitCommand struct {
	Submission    casework.Submission `json:"submission"`
	Site          string              `json:"site,omitempty"`
	At            time.Time           `json:"at"`
	QueryCodeHash string              `json:"query_code_hash"`
}

// result is what the FSM answers for one command, encoded so that it can cross a forwarding hop.
type result struct {
	Case      *casework.Case `json:"case,omitempty"`
	Duplicate bool           `json:"duplicate,omitempty"`
	Err       *Error         `json:"error,omitempty"`
}
