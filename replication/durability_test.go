package replication

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// openKVStore opens a one-node Store of the kv machine at dir and waits until it leads.
func openKVStore(t *testing.T, dir string) *Store {
	t.Helper()
	return openKVStoreWith(t, dir, nil)
}

// openKVStoreWith is openKVStore with configure applied to the configuration (if not nil).
func openKVStoreWith(t *testing.T, dir string, configure func(*Config)) *Store {
	t.Helper()
	cfg := DefaultConfig()
	kvc := (&kv{}).config()
	cfg.NodeID, cfg.DataDir, cfg.RaftAddr = "n1", dir, "127.0.0.1:0"
	cfg.Commands, cfg.Answers, cfg.Refuse, cfg.Logger = kvc.Commands, kvc.Answers, kvc.Refuse, kvc.Logger
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	if configure != nil {
		configure(&cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Bootstrap([]raft.Server{{ID: "n1", Address: raft.ServerAddress(s.RaftAddr())}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !s.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("the one-node store did not become leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	return s
}

func kvState(t *testing.T, s *Store) map[string][]byte {
	t.Helper()
	m, err := s.ExportState()
	if err != nil {
		t.Fatal(err)
	}
	delete(m, string(KeyApplied))
	return m
}

func setKeys(t *testing.T, s *Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		a, err := s.Propose(context.Background(), NewCommand(kvSet, []byte(fmt.Sprintf("key%d=%d", i, i))))
		if err != nil || a.(*kvAnswer).Refused() {
			t.Fatalf("set %d: %v %v", i, a, err)
		}
	}
}

// TestStateIsRebuiltAfterTheMachineRestarted: a power cut can leave the unsynced state database
// torn (a change lost below an applied index that survived). The node cannot tell from the
// files, so after an unclean stop across a restart of the machine it rebuilds the state from the
// snapshot and the Raft log; after a clean stop, or a crash of the process alone, it keeps it.
func TestStateIsRebuiltAfterTheMachineRestarted(t *testing.T) {
	dir := t.TempDir()
	s := openKVStore(t, dir)
	setKeys(t, s, 0, 40)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	setKeys(t, s, 40, 80) // after the snapshot: only in the log
	want := kvState(t, s)
	if _, err := os.Stat(filepath.Join(dir, stateOpenMarker)); err != nil {
		t.Fatalf("no open marker while the state is open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, stateOpenMarker)); !os.IsNotExist(err) {
		t.Fatalf("a clean close left the open marker: %v", err)
	}

	// A power cut: the machine comes back with another boot id, and the state's files are torn
	// (here: every state file emptied, which no page-granular loss could do worse).
	if err := os.WriteFile(filepath.Join(dir, stateOpenMarker), []byte("another-boot\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Truncate(filepath.Join(dir, "state", e.Name()), 0); err != nil {
			t.Fatal(err)
		}
	}
	s2 := openKVStore(t, dir)
	deadline := time.Now().Add(10 * time.Second)
	for !maps.EqualFunc(kvState(t, s2), want, bytes.Equal) {
		if time.Now().After(deadline) {
			t.Fatalf("state after the power cut: %d keys, want the %d keys acknowledged before it", len(kvState(t, s2)), len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenMarkerOfThisBootKeepsTheState(t *testing.T) {
	if len(bootID()) == 0 {
		t.Skip("no boot id on this system: every unclean stop rebuilds the state")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o750); err != nil {
		t.Fatal(err)
	}
	sentinel := filepath.Join(dir, "state", "kept")
	if err := os.WriteFile(sentinel, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	// A crash of the process alone (kill -9): the marker names this boot.
	if err := os.WriteFile(filepath.Join(dir, stateOpenMarker), append(bootID(), '\n'), 0o640); err != nil {
		t.Fatal(err)
	}
	logger := (&kv{}).config().Logger
	discarded, err := checkStateAfterStop(dir, logger)
	if err != nil || discarded {
		t.Fatalf("discarded %v, %v: the state of a process that crashed on a running machine is whole", discarded, err)
	}
	if _, err := os.Stat(sentinel); err != nil {
		t.Fatal("the state was touched")
	}
	// Another boot: thrown away.
	if err := os.WriteFile(filepath.Join(dir, stateOpenMarker), []byte("x\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if discarded, err := checkStateAfterStop(dir, logger); err != nil || !discarded {
		t.Fatalf("discarded %v, %v after a restart of the machine", discarded, err)
	}
	if _, err := os.Stat(sentinel); !os.IsNotExist(err) {
		t.Fatal("the torn state is still there")
	}
}
