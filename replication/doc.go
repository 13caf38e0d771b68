// Package replication keeps one site's state consistent across the nodes that serve it: a
// hashicorp/raft group whose log and stable store live in badger (package raftbadger), a
// batching FSM whose state lives in a second badger database, snapshots, and forwarding of
// writes from followers to the leader.
//
// See DESIGN.md in this directory for why it is shaped the way it is.
package replication
