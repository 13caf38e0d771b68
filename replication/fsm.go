package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// KeyApplied holds the last Raft index applied, written in the same badger transaction as the
// changes of the entries up to it. The state machine must not write it.
var KeyApplied = []byte("m/applied")

// machine is what the FSM frame needs of the state machine it drives.
type machine struct {
	commands  *Commands
	refuse    func(err error) any
	onCommit  func(effects []any)
	onRestore func()
}

// fsm is the frame of a state machine on badger. It is kept off Store's public API so that only
// Raft calls its methods. It implements raft.BatchingFSM: a batch of committed entries is applied
// in one badger transaction together with the new applied index, so a crash leaves either all of
// a batch or none of it, and replay skips every entry at or below the stored index. Each
// command's writes go through a Tx and reach the transaction only if the command is not refused.
type fsm struct {
	dir     string
	key     []byte // the state's encryption key; nil in the clear
	logger  *slog.Logger
	metrics *metrics
	m       machine

	// mu guards db: Restore swaps it under the write lock; readers and snapshots hold the read lock.
	mu sync.RWMutex
	db *badger.DB

	applied atomic.Uint64 // last applied index, mirrored from the DB for cheap reads
	panics  atomic.Uint64 // commands refused because their applier panicked
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(dir string, key []byte, logger *slog.Logger, m *metrics, mc machine) (*fsm, error) {
	if dir != "" {
		if err := finishInterruptedRestore(dir); err != nil {
			return nil, err
		}
	}
	db, err := openStateDB(dir, logger, key)
	if errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		return nil, fmt.Errorf("open state %s: %w (%v)", dir, ErrEncryptionKey, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", dir, err)
	}
	if db.MaxBatchCount() <= MaxCommandWrites+1 || db.MaxBatchSize() <= MaxCommandBytes+64 {
		db.Close()
		return nil, fmt.Errorf("state database takes transactions of %d writes and %d bytes: less than one command's limit", db.MaxBatchCount(), db.MaxBatchSize())
	}
	f := &fsm{dir: dir, key: key, logger: logger, metrics: m, m: mc, db: db}
	idx, err := readApplied(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	f.applied.Store(idx)
	return f, nil
}

func readApplied(db *badger.DB) (uint64, error) {
	var idx uint64
	err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(KeyApplied)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("%w: applied index of %d bytes", ErrCorruptCommand, len(v))
			}
			idx = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return idx, err
}

// Apply applies one entry; Raft uses ApplyBatch, this is here to satisfy raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries and returns one answer per entry (nil for the
// configuration, no-op and barrier entries Raft also passes in). It commits them in as few
// badger transactions as fit, each a whole prefix of the log with its applied index.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	start := time.Now()
	out := make([]any, len(logs))
	f.mu.RLock()
	defer f.mu.RUnlock()

	b := &batch{f: f, txn: f.db.NewTransaction(true), last: f.applied.Load()}
	defer func() { b.txn.Discard() }()
	for i, l := range logs {
		if l.Index <= b.last {
			// Already applied before a crash or restart: replay is a no-op, and no caller
			// waits for an answer (futures exist only for entries above the applied index).
			continue
		}
		if l.Type == raft.LogCommand {
			out[i] = b.apply(l)
		}
		b.last = l.Index
	}
	b.commit()
	f.metrics.observeApply(len(logs), time.Since(start))
	if len(b.committed) > 0 && f.m.onCommit != nil {
		f.m.onCommit(b.committed)
	}
	return out
}

// batch is one ApplyBatch call's progress: the open transaction, the write sets flushed into it
// (kept so that the transaction can be rebuilt when it overflows), and the effects committed.
type batch struct {
	f   *fsm
	txn *badger.Txn
	// last is the index of the last entry fully applied (into txn or before it).
	last      uint64
	flushed   []*Tx
	committed []any
}

func (b *batch) apply(l *raft.Log) any {
	f := b.f
	t, at, payload, err := parseCommand(l.Data)
	if err != nil {
		f.logger.Error("undecodable log entry", "index", l.Index, "error", err)
		return b.refuse(errors.New("the entry is not a command"))
	}
	cmd, known := f.m.commands.lookup(t)
	switch {
	case !known && t&IgnoreUnknown != 0:
		f.logger.Warn("skipping an unknown command from a newer version", "index", l.Index, "type", uint8(t))
		return nil
	case !known:
		// Written by a newer version without the ignore flag (a leader never proposes a type
		// it does not know): this node must not go on with a state that differs from its
		// peers'. Stop loudly so the operator upgrades it.
		panic(fmt.Sprintf("replication: entry %d has unknown command type %d: upgrade this node", l.Index, uint8(t)))
	case at.IsZero():
		return b.refuse(errors.New("the command carries no time"))
	}
	tx := &Tx{txn: b.txn, at: at, index: l.Index, writes: map[string]write{}}
	answer, err := b.run(cmd, tx, payload)
	if err != nil {
		// A storage failure: applying the rest of the log without this entry would let this
		// node's state diverge. Stop; a restart replays from the applied index.
		f.logger.Error("apply failed: stopping", "index", l.Index, "command", cmd.name, "error", err)
		panic(fmt.Sprintf("replication: apply of entry %d (%s) failed: %v", l.Index, cmd.name, err))
	}
	if r, ok := answer.(Refusal); ok && r.Refused() {
		f.metrics.refused.WithLabelValues(cmd.name).Inc()
		return answer
	}
	if tx.badKey != "" {
		return b.refuse(fmt.Errorf("the %s command would write %s", cmd.name, tx.badKey))
	}
	if n, size := tx.cost(); n > MaxCommandWrites || size > MaxCommandBytes {
		return b.refuse(fmt.Errorf("%w: the %s command would write %d keys and %d bytes, at most %d and %d", ErrCommandTooLarge, cmd.name, n, size, MaxCommandWrites, MaxCommandBytes))
	}
	b.flush(tx)
	return answer
}

// run calls the applier, turning a panic into a refusal: a bug that a command can trigger must
// not stop every replica of the site on the same entry, again on every replay. The command's
// writes are dropped with it; the panic is logged with its stack and counted.
func (b *batch) run(cmd command, tx *Tx, payload []byte) (answer any, err error) {
	defer func() {
		if p := recover(); p != nil {
			b.f.logger.Error("command panicked: refused", "index", tx.index, "command", cmd.name, "panic", p, "stack", string(debug.Stack()))
			b.f.metrics.panics.Inc()
			b.f.panics.Add(1)
			answer, err = b.f.m.refuse(fmt.Errorf("the %s command could not be applied (an internal error, logged at index %d)", cmd.name, tx.index)), nil
		}
	}()
	return cmd.apply(tx, payload)
}

func (b *batch) refuse(err error) any {
	b.f.metrics.refused.WithLabelValues("invalid").Inc()
	return b.f.m.refuse(err)
}

// flush moves a command's writes into the transaction. When the transaction cannot take them,
// it is rebuilt without them from the write sets flushed before and committed up to the previous
// entry, and the command goes into a fresh one: every commit is a whole prefix of the log.
func (b *batch) flush(tx *Tx) {
	if err := b.put(tx); err == nil {
		b.flushed = append(b.flushed, tx)
		return
	} else if !errors.Is(err, badger.ErrTxnTooBig) {
		panic(fmt.Sprintf("replication: write entry %d: %v", tx.index, err))
	}
	b.txn.Discard()
	b.txn = b.f.db.NewTransaction(true)
	for _, prev := range b.flushed {
		if err := b.put(prev); err != nil {
			panic(fmt.Sprintf("replication: rewrite entry %d: %v", prev.index, err))
		}
	}
	b.commit()
	if err := b.put(tx); err != nil {
		// Cannot happen: a fresh transaction takes more than one command's limit (newFSM).
		panic(fmt.Sprintf("replication: write entry %d alone: %v", tx.index, err))
	}
	b.flushed = append(b.flushed, tx)
}

func (b *batch) put(tx *Tx) error {
	for k, w := range tx.writes {
		var err error
		if w.deleted {
			err = b.txn.Delete([]byte(k))
		} else {
			err = b.txn.Set([]byte(k), w.value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// commit writes the applied index into the open transaction, commits it, and starts a new one.
// A failed commit stops the node, for the same reason as a failed apply.
func (b *batch) commit() {
	if b.last == b.f.applied.Load() {
		return
	}
	if err := b.txn.Set(KeyApplied, u64(b.last)); err != nil {
		panic(fmt.Sprintf("replication: write applied index %d: %v", b.last, err))
	}
	if err := b.txn.Commit(); err != nil {
		panic(fmt.Sprintf("replication: commit up to entry %d: %v", b.last, err))
	}
	b.f.applied.Store(b.last)
	for _, tx := range b.flushed {
		b.committed = append(b.committed, tx.effects...)
	}
	b.flushed = nil
	b.txn = b.f.db.NewTransaction(true)
}

// Snapshot syncs the state database and pins a read transaction: the snapshot is exactly the
// state at the index Raft gives it. Persist streams it while Raft goes on applying.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	if err := f.db.Sync(); err != nil {
		f.mu.RUnlock()
		return nil, fmt.Errorf("sync state before snapshot: %w", err)
	}
	// The read lock is held until Release, so a Restore cannot close the DB under Persist.
	return &fsmSnapshot{txn: f.db.NewTransaction(false), release: f.mu.RUnlock, metrics: f.metrics}, nil
}

// Restore replaces the whole state with a snapshot's. It builds the new database beside the
// current one and swaps directories only once it is complete and verified.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.dir + restoreSuffix
	if err := loadSnapshot(rc, tmp, f.logger, f.key); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if err := f.swapIn(); err != nil {
		return err
	}
	if f.m.onRestore != nil {
		f.m.onRestore()
	}
	return nil
}

func (f *fsm) swapIn() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("restore snapshot: close state: %w", err)
	}
	if err := swapInRestored(f.dir); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	db, err := openStateDB(f.dir, f.logger, f.key)
	if err != nil {
		return fmt.Errorf("restore snapshot: reopen state: %w", err)
	}
	f.db = db
	idx, err := readApplied(db)
	if err != nil {
		return err
	}
	f.applied.Store(idx)
	f.logger.Info("state restored from snapshot", "applied_index", idx)
	return nil
}

func (f *fsm) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.db.Close()
}

// view runs fn in a read transaction on the current state.
func (f *fsm) view(fn func(txn *badger.Txn) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.db.View(fn)
}

// runValueLogGC rewrites state value-log files that are at least half garbage, until none is.
func (f *fsm) runValueLogGC() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for range 16 {
		err := f.db.RunValueLogGC(0.5)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func sprintf(format string, args ...any) string {
	return strings.TrimRight(fmt.Sprintf(format, args...), "\n")
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// exportState returns every key and value of this node's state, for determinism tests and
// diagnostics. It reads one consistent view.
func (f *fsm) exportState() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := f.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().KeyCopy(nil))] = v
		}
		return nil
	})
	return out, err
}
