package replication

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// fsm is the site's state machine. It is kept off Store's public API so that only Raft calls
// its methods. It implements raft.BatchingFSM: a batch of committed entries is applied in one
// badger transaction together with the new applied index, so a crash leaves either all of a
// batch or none of it, and replay skips every entry at or below the stored index.
type fsm struct {
	dir     string
	loc     *time.Location
	logger  *slog.Logger
	metrics *metrics

	// mu guards db: Restore swaps it under the write lock; readers and snapshots hold the read lock.
	mu sync.RWMutex
	db *badger.DB

	applied atomic.Uint64 // last applied index, mirrored from the DB for cheap reads

	// onSitesChanged, if set, is called after a batch that changed the site registry.
	onSitesChanged func()
	sitesChanged   bool // set during a batch; only the FSM goroutine touches it

	// onOutboxChanged, if set, is called after a batch that added to or settled the outbox,
	// with what it added (in commit order) and the ids it took out.
	onOutboxChanged func(added []OutboxEntry, removed []string)
	outboxAdded     []OutboxEntry // during a batch; only the FSM goroutine touches them
	outboxRemoved   []string
	stats           batchStats // only the FSM goroutine touches it

	// feedAppended is set during a batch that grew the feed; feedCh is closed (and replaced)
	// after such a batch, waking feed readers.
	feedAppended bool
	feedMu       sync.Mutex
	feedCh       chan struct{} // guarded by feedMu
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(dir string, loc *time.Location, logger *slog.Logger, m *metrics) (*fsm, error) {
	if err := finishInterruptedRestore(dir); err != nil {
		return nil, err
	}
	db, err := openStateDB(dir, logger)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", dir, err)
	}
	f := &fsm{dir: dir, loc: loc, logger: logger, metrics: m, db: db}
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
		item, err := txn.Get(keyApplied)
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

// ApplyBatch applies committed entries in one transaction and returns one response per entry,
// including the configuration and no-op entries Raft also passes in.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	start := time.Now()
	out := make([]any, len(logs))
	f.mu.RLock()
	defer f.mu.RUnlock()

	txn := f.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	committed := f.applied.Load()
	last := committed // the last entry applied into txn
	first := 0        // logs[first:] hold every entry applied into txn
	for i, l := range logs {
		if l.Index <= last {
			// Already applied before a crash or restart: replay is a no-op, and no caller
			// waits for an answer (futures exist only for entries above the applied index).
			continue
		}
		if l.Type == raft.LogCommand {
			res, err := f.applyCommand(txn, l)
			if errors.Is(err, badger.ErrTxnTooBig) && last > committed {
				// txn cannot take this entry, and holds part of it already. Throw txn away,
				// apply the entries before this one again (same state, same results) and
				// commit them, then apply this entry in a fresh transaction: every commit is
				// a whole prefix of the log.
				txn.Discard()
				f.stats = batchStats{}
				f.outboxAdded, f.outboxRemoved = nil, nil
				txn = f.db.NewTransaction(true)
				f.redo(txn, logs[first:i], out[first:i], committed)
				f.commit(txn, last)
				committed, first = last, i
				txn = f.db.NewTransaction(true)
				res, err = f.applyCommand(txn, l)
			}
			if err != nil {
				// A storage failure inside the FSM cannot be answered: applying the rest of
				// the log without this entry would let this node's state diverge.
				f.logger.Error("apply failed: stopping", "index", l.Index, "error", err)
				panic(fmt.Sprintf("replication: apply of entry %d failed: %v", l.Index, err))
			}
			out[i] = res
		}
		last = l.Index
	}
	f.commit(txn, last)
	f.metrics.observeApply(len(logs), time.Since(start))
	if f.sitesChanged {
		f.sitesChanged = false
		if f.onSitesChanged != nil {
			f.onSitesChanged()
		}
	}
	if f.feedAppended {
		f.feedAppended = false
		f.feedMu.Lock()
		if f.feedCh != nil {
			close(f.feedCh)
			f.feedCh = nil
		}
		f.feedMu.Unlock()
	}
	if len(f.outboxAdded) > 0 || len(f.outboxRemoved) > 0 {
		added, removed := f.outboxAdded, f.outboxRemoved
		f.outboxAdded, f.outboxRemoved = nil, nil
		if f.onOutboxChanged != nil {
			f.onOutboxChanged(added, removed)
		}
	}
	return out
}

// redo applies logs again into txn after a transaction that held them was thrown away.
func (f *fsm) redo(txn *badger.Txn, logs []*raft.Log, out []any, committed uint64) {
	for j, l := range logs {
		if l.Index <= committed || l.Type != raft.LogCommand {
			continue
		}
		res, err := f.applyCommand(txn, l)
		if err != nil {
			f.logger.Error("apply failed: stopping", "index", l.Index, "error", err)
			panic(fmt.Sprintf("replication: apply of entry %d failed on its second try: %v", l.Index, err))
		}
		out[j] = res
	}
}

// batchStats counts what a transaction did, for the metrics once it commits.
type batchStats struct {
	accepted, handoffsIn, handoffsRefused int
}

// commit writes the applied index into txn and commits it. A failed commit stops the node, for
// the same reason as a failed apply.
func (f *fsm) commit(txn *badger.Txn, last uint64) {
	if last == f.applied.Load() {
		return
	}
	if err := txn.Set(keyApplied, u64(last)); err != nil {
		panic(fmt.Sprintf("replication: write applied index %d: %v", last, err))
	}
	if err := txn.Commit(); err != nil {
		panic(fmt.Sprintf("replication: commit up to entry %d: %v", last, err))
	}
	f.applied.Store(last)
	f.metrics.casesAccepted.Add(float64(f.stats.accepted))
	f.metrics.handoffsApplied.Add(float64(f.stats.handoffsIn))
	f.metrics.handoffsRefused.Add(float64(f.stats.handoffsRefused))
	f.stats = batchStats{}
}

// applyCommand decodes and applies one command. A refusal (bad input, wrong state) is returned
// as a result with Err set and leaves txn untouched; only storage failures return an error.
func (f *fsm) applyCommand(txn *badger.Txn, l *raft.Log) (*result, error) {
	t, at, body, err := decodeCommand(l.Data)
	if err != nil {
		f.logger.Error("undecodable log entry", "index", l.Index, "error", err)
		return &result{Err: refusal(err)}, nil
	}
	switch t &^ ignoreUnknownFlag {
	case cmdSubmitCase:
		var c submitCommand
		if err := json.Unmarshal(body, &c); err != nil {
			f.logger.Error("undecodable submit command", "index", l.Index, "error", err)
			return &result{Err: refusal(fmt.Errorf("%w: %v", ErrCorruptCommand, err))}, nil
		}
		c.At = at
		return f.applySubmit(txn, &c)
	case cmdRegisterSites:
		var c registerCommand
		if err := decodeBody(body, &c); err != nil {
			return err, nil
		}
		return f.applyRegister(txn, &c, at)
	case cmdDepart:
		var c departCommand
		if err := decodeBody(body, &c); err != nil {
			return err, nil
		}
		return f.applyDepart(txn, &c, at)
	case cmdArrive:
		var c arriveCommand
		if err := decodeBody(body, &c); err != nil {
			return err, nil
		}
		return f.applyArrive(txn, &c, at)
	case cmdSettle:
		var c settleCommand
		if err := decodeBody(body, &c); err != nil {
			return err, nil
		}
		return f.applySettle(txn, &c, at)
	case cmdRetire:
		var c retireCommand
		if err := decodeBody(body, &c); err != nil {
			return err, nil
		}
		return f.applyRetire(txn, &c, at)
	case cmdMirror:
		var c mirrorCommand
		if err := decodeBody(body, &c); err != nil {
			return err, nil
		}
		return f.applyMirror(txn, &c, at)
	case cmdTrimFeed:
		var c trimFeedCommand
		if err := decodeBody(body, &c); err != nil {
			return err, nil
		}
		return f.applyTrimFeed(txn, &c)
	case cmdConfigPut:
		var c configPutCommand
		if err := decodeBody(body, &c); err != nil {
			return err, nil
		}
		return f.applyConfigPut(txn, &c, at)
	case cmdRestore:
		var c restoreCommand
		if err := decodeBody(body, &c); err != nil {
			return err, nil
		}
		return f.applyRestore(txn, &c, at)
	case cmdConfigSync:
		var c configSyncCommand
		if err := decodeBody(body, &c); err != nil {
			return err, nil
		}
		return f.applyConfigSync(txn, &c)
	default:
		if t&ignoreUnknownFlag != 0 {
			f.logger.Warn("skipping unknown command from a newer version", "index", l.Index, "type", t)
			return &result{}, nil
		}
		// Written by a newer version without the ignore flag: this node must not go on
		// with a state that differs from its peers'. Stop loudly so the operator upgrades it.
		panic(fmt.Sprintf("replication: entry %d has unknown command type %d: upgrade this node", l.Index, uint8(t)))
	}
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
	if err := loadSnapshot(rc, tmp, f.logger); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("restore snapshot: close state: %w", err)
	}
	if err := swapInRestored(f.dir); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	db, err := openStateDB(f.dir, f.logger)
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

// feedSignal returns a channel closed when the feed next grows.
func (f *fsm) feedSignal() <-chan struct{} {
	f.feedMu.Lock()
	defer f.feedMu.Unlock()
	if f.feedCh == nil {
		f.feedCh = make(chan struct{})
	}
	return f.feedCh
}

// decodeBody decodes a command's JSON payload; a failure is answered as a refusal.
func decodeBody(body []byte, v any) *result {
	if err := json.Unmarshal(body, v); err != nil {
		return &result{Err: refusal(fmt.Errorf("%w: %v", ErrCorruptCommand, err))}
	}
	return nil
}

func sprintf(format string, args ...any) string {
	return strings.TrimRight(fmt.Sprintf(format, args...), "\n")
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
