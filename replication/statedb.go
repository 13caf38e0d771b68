package replication

import (
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// openStateDB opens the FSM's badger database, tuned for a small PC at a village service point.
// SyncWrites stays off: the Raft log is the durable record, every change is written with the
// applied index in the same transaction, and replay after a crash skips what is already there.
// The DB is synced before each snapshot, because Raft then forgets the log below it.
//
// An empty dir opens a state in memory, for tests and fuzzing (OpenLocal with no directory).
//
// A key (32 bytes, derived from the master key: encryption.go) turns on badger's encryption:
// AES-256 of every table and value-log file under data keys that badger keeps in its
// KEYREGISTRY, encrypted under this key, and replaces every stateDataKeyRotation. Opening an
// encrypted state without its key, or one in the clear with a key, fails (badger's
// ErrEncryptionKeyMismatch); encryption.json catches both earlier.
func openStateDB(dir string, logger *slog.Logger, key []byte) (*badger.DB, error) {
	opts := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{logger}).
		WithSyncWrites(false).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(6).
		WithBaseTableSize(4 << 20).
		WithValueLogFileSize(128 << 20).
		// Case records (about 1 KiB of JSON) go to the value log and the LSM tree holds
		// keys, index entries and pointers: compactions stay small and cheap, which is
		// what keeps a village PC's memory low. RunValueLogGC reclaims replaced records.
		WithValueThreshold(128).
		// Case records are small JSON: no compression saves CPU on every compaction, and
		// uncompressed blocks are read straight from the mapped tables without a block cache.
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(16 << 20).
		WithNumCompactors(2).
		WithDetectConflicts(false)
	if key != nil {
		// Badger needs caches with encryption: the decrypted table indexes live in the index
		// cache (set above), and blocks, which are no longer read straight from the mapped
		// tables, in a block cache of their own.
		opts = opts.WithEncryptionKey(key).WithEncryptionKeyRotationDuration(stateDataKeyRotation).
			WithBlockCacheSize(stateBlockCacheEncrypted)
	}
	if dir == "" {
		// In memory there is no value log: every value stays in the tree.
		opts = opts.WithInMemory(true).WithValueThreshold(1 << 20)
	}
	return badger.Open(opts)
}

// stateBlockCacheEncrypted is the block cache of an encrypted state.
const stateBlockCacheEncrypted = 8 << 20

// stateDataKeyRotation is how often badger starts a new data key for the files it writes.
const stateDataKeyRotation = 10 * 24 * time.Hour

// badgerLogger sends badger's log lines to slog; its chatty info lines go to debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(sprintf(f, a...), "component", "badger") }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(sprintf(f, a...), "component", "badger") }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug(sprintf(f, a...), "component", "badger") }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Debug(sprintf(f, a...), "component", "badger") }
