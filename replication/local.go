package replication

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// Local drives a state machine without Raft: each proposal is stamped with Clock and applied
// at once as the next log entry. Tests of a state machine's commands use it (and drive several
// to stand for several sites), and so do offline tools that read a state directory. It is not
// replicated, and it keeps no log: what it applied lives only in its state database.
type Local struct {
	fsm   *fsm
	clock func() time.Time

	mu    sync.Mutex
	index uint64 // guarded by mu: the last index given to a proposal
}

// OpenLocal opens (or creates) a state database at dir for the state machine in cfg (Commands,
// Answers, Refuse and the hooks; the Raft fields are ignored); an empty dir keeps the state in
// memory. clock stamps each proposal; nil uses time.Now. The state is kept in the clear
// (cfg.EncryptionKey is ignored): only tests and tools on scratch directories use it.
func OpenLocal(dir string, cfg Config, clock func() time.Time) (*Local, error) {
	if cfg.Commands == nil || cfg.Refuse == nil {
		return nil, fmt.Errorf("replication: a local state machine needs its commands and refusal")
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
	}
	if clock == nil {
		clock = time.Now
	}
	mc := machine{commands: cfg.Commands, refuse: cfg.Refuse, onCommit: cfg.OnCommit, onRestore: cfg.OnRestore}
	f, err := newFSM(dir, nil, cfg.Logger, newMetrics(nil, func() float64 { return 0 }), mc)
	if err != nil {
		return nil, err
	}
	return &Local{fsm: f, clock: clock, index: f.applied.Load()}, nil
}

// Propose stamps cmd and applies it as the next entry, returning the state machine's answer.
func (l *Local) Propose(_ context.Context, cmd []byte) (any, error) {
	t, _, _, err := parseCommand(cmd)
	if err != nil {
		return nil, err
	}
	if _, known := l.fsm.m.commands.lookup(t); !known {
		return nil, fmt.Errorf("%w: cannot propose command type %d", ErrCorruptCommand, uint8(t))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	stamped := append([]byte(nil), cmd...)
	stampCommand(stamped, l.clock())
	l.index++
	return l.fsm.ApplyBatch([]*raft.Log{{Index: l.index, Term: 1, Type: raft.LogCommand, Data: stamped}})[0], nil
}

// ProposeIdempotent is Propose: a local state machine always has its leader.
func (l *Local) ProposeIdempotent(ctx context.Context, cmd []byte) (any, error) {
	return l.Propose(ctx, cmd)
}

// Apply applies raw log entries as Raft would hand them to the state machine (their indexes
// must rise past what was applied), for tests of batching and replay.
func (l *Local) Apply(logs []*raft.Log) []any {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.fsm.ApplyBatch(logs)
	if n := len(logs); n > 0 && logs[n-1].Index > l.index {
		l.index = logs[n-1].Index
	}
	return out
}

// View runs fn in a read transaction on the state.
func (l *Local) View(fn func(txn *badger.Txn) error) error { return l.fsm.view(fn) }

// ExportState returns every key and value of the state.
func (l *Local) ExportState() (map[string][]byte, error) { return l.fsm.exportState() }

// Panics is how many commands were refused because applying them panicked (a bug each).
func (l *Local) Panics() uint64 { return l.fsm.panics.Load() }

// AppliedIndex is the last index applied.
func (l *Local) AppliedIndex() uint64 { return l.fsm.applied.Load() }

// Snapshot writes the state as a snapshot stream to sink (the format Raft's snapshots use).
func (l *Local) Snapshot(sink raft.SnapshotSink) error {
	s, err := l.fsm.Snapshot()
	if err != nil {
		return err
	}
	defer s.Release()
	return s.Persist(sink)
}

// Restore replaces the state with a snapshot stream's.
func (l *Local) Restore(rc io.ReadCloser) error {
	if err := l.fsm.Restore(rc); err != nil {
		return err
	}
	l.mu.Lock()
	l.index = l.fsm.applied.Load()
	l.mu.Unlock()
	return nil
}

// Close closes the state database.
func (l *Local) Close() error { return l.fsm.close() }

// WriteForTest writes a key outside any command, standing for state an earlier version left
// behind. Only tests use it.
func (l *Local) WriteForTest(key, value []byte) error {
	l.fsm.mu.RLock()
	defer l.fsm.mu.RUnlock()
	return l.fsm.db.Update(func(txn *badger.Txn) error { return txn.Set(key, value) })
}
