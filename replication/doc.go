// Package replication keeps one site's state consistent across the nodes that serve it: a
// hashicorp/raft group whose log and stable store live in hashicorp/raft-wal, a batching FSM
// whose state lives in a badger database, snapshots, and forwarding of writes from followers to
// the leader. Package raftbadger is the log store of earlier versions, kept to convert their
// data directories.
//
// See DESIGN.md in this directory for why it is shaped the way it is.
package replication
