package raftbadger_test

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/govgrid/govgrid/replication/raftbadger"
	"github.com/hashicorp/raft"
)

// Example opens a store and wires it up the way raft.NewRaft expects: the
// same *Store serves as StableStore and, behind a LogCache, as LogStore.
func Example() {
	dir, err := os.MkdirTemp("", "raftbadger-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	cfg := raftbadger.DefaultConfig(dir)
	cfg.Logger = slog.New(slog.DiscardHandler)
	store, err := raftbadger.New(cfg)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		panic(err)
	}
	// Pass logs and store to raft.NewRaft(conf, fsm, logs, store, snaps, trans).

	if err := logs.StoreLogs([]*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("a")},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: []byte("b")},
	}); err != nil {
		panic(err)
	}
	first, _ := store.FirstIndex()
	last, _ := store.LastIndex()
	term, err := store.GetUint64([]byte("CurrentTerm"))
	fmt.Println(first, last, term, err)
	// Output: 1 2 0 not found
}
