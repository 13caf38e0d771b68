package sitestate

import (
	"encoding/json"
	"fmt"

	"github.com/govgrid/govgrid/replication"
)

// The command types of a site's log. The numbers are part of the log format: never reuse or
// renumber one. Each command's payload type and applier are registered in the file of its
// capability (an init there calls register); adding a command touches that file and this list.
const (
	cmdSubmitCase    replication.CommandType = 1  // submit.go
	cmdRegisterSites replication.CommandType = 2  // registry.go
	cmdDepart        replication.CommandType = 3  // handoff.go
	cmdArrive        replication.CommandType = 4  // handoff.go
	cmdSettle        replication.CommandType = 5  // handoff.go
	cmdRetire        replication.CommandType = 6  // handoff.go
	cmdMirror        replication.CommandType = 7  // mirror.go
	cmdTrimFeed      replication.CommandType = 8  // feed.go
	cmdConfigPut     replication.CommandType = 9  // config.go
	cmdConfigSync    replication.CommandType = 10 // config.go
	cmdRestore       replication.CommandType = 11 // restore.go
	cmdPrune         replication.CommandType = 12 // prune.go
	cmdSubmitCasePB  replication.CommandType = 13 // submit.go: cmdSubmitCase's payload as protobuf
	cmdConfigPutMany replication.CommandType = 14 // config.go: several of this site's documents at once
	cmdSiteKey       replication.CommandType = 15 // sitekey.go
	cmdAudit         replication.CommandType = 16 // audit.go
	cmdCaseStep      replication.CommandType = 17 // steps.go: a step of a case's life
	cmdJoinToken     replication.CommandType = 18 // jointoken.go: issue, revoke or spend a join token
)

// registration is one command as registered by its capability's file.
type registration struct {
	t     replication.CommandType
	name  string
	apply func(m *machine) replication.Applier
}

// registry holds every registration, filled by the init functions of the capability files.
var registry []registration

// register adds a command whose payload is the JSON of C, applied by apply. A payload that does
// not decode is refused (the command changes nothing).
func register[C any](t replication.CommandType, name string, apply func(m *machine, tx *replication.Tx, c *C) (*Answer, error)) {
	registerDecoded(t, name, func(payload []byte) (*C, error) {
		c := new(C)
		return c, json.Unmarshal(payload, c)
	}, apply)
}

// registerDecoded adds a command whose payload decode turns into a C, applied by apply. A payload
// that does not decode is refused (the command changes nothing).
func registerDecoded[C any](t replication.CommandType, name string, decode func([]byte) (*C, error), apply func(m *machine, tx *replication.Tx, c *C) (*Answer, error)) {
	registry = append(registry, registration{t: t, name: name, apply: func(m *machine) replication.Applier {
		return func(tx *replication.Tx, payload []byte) (any, error) {
			c, err := decode(payload)
			if err != nil {
				return refuse(errorf(CodeInvalid, "%s command does not decode: %v", name, err)), nil
			}
			return apply(m, tx, c)
		}
	}})
}

// leaderOnly are the commands only the leader's workers propose (the feed puller's mirror, the
// configuration from the parent, the handoff sender's settlements, pruning): a follower's
// forwarded one is refused.
var leaderOnly = []replication.CommandType{cmdMirror, cmdConfigSync, cmdSettle, cmdPrune}

// commands binds every registered command to m.
func (m *machine) commands() *replication.Commands {
	var cs replication.Commands
	for _, r := range registry {
		cs.Register(r.t, r.name, r.apply(m))
	}
	for _, t := range leaderOnly {
		cs.LeaderOnly(t)
	}
	return &cs
}

// commandName is a command type's name, for tests and logs.
func commandName(t replication.CommandType) string {
	for _, r := range registry {
		if r.t == t {
			return r.name
		}
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}
