package raftbadger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/hashicorp/raft"
)

// Compile-time checks that *Store satisfies Raft's storage interfaces.
var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Sentinel errors returned by Store. Errors from Validate wrap
// ErrInvalidConfig, errors about undecodable log entries wrap ErrCorruptLog;
// use errors.Is to test for them.
var (
	// ErrKeyNotFound is returned by Get and GetUint64 for a key that was
	// never set. Its message is exactly "not found": Raft detects a missing
	// key by comparing err.Error() with that string (see NewRaft and
	// HasExistingState in raft v1.8.0), the same convention as raft-boltdb's
	// ErrKeyNotFound and raft.InmemStore. It is therefore never wrapped.
	ErrKeyNotFound = errors.New("not found")

	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("raftbadger: store is closed")

	// ErrCorruptLog is wrapped by errors about stored log entries that
	// cannot be decoded or whose index does not match their key.
	ErrCorruptLog = errors.New("raftbadger: corrupt log entry")

	// ErrInvalidConfig is wrapped by the errors Config.Validate returns.
	ErrInvalidConfig = errors.New("raftbadger: invalid config")
)

// Key prefixes; see the package documentation for the full layout.
const (
	prefixLog    byte = 'l'
	prefixStable byte = 's'

	// logKeyLen is the length of a log key: prefix plus big-endian index.
	logKeyLen = 1 + 8
)

// Fixed badger tuning for a small machine. Only the sizes most worth
// adjusting are exposed in Config.
const (
	numMemtables            = 2
	numLevelZeroTables      = 2
	numLevelZeroTablesStall = 4
	baseTableSize           = 2 << 20 // 2 MiB
	// valueThreshold sends every real entry to the value log: compactions then move only
	// small pointers, not each entry again (less CPU, and far less memory in table
	// builders); RunGC reclaims the value-log files that log truncation leaves behind.
	valueThreshold = 64
	numCompactors  = 2 // badger rejects exactly 1

	// gcDiscardRatio is the fraction of a value-log file that must be
	// garbage before RunGC rewrites it.
	gcDiscardRatio = 0.5
)

// Limits enforced by Config.Validate.
const (
	minMemTableSize     = 1 << 20 // keeps badger's max batch size (15%) above valueThreshold
	minValueLogFileSize = 1 << 20 // badger requires [1 MiB, 2 GiB)
	maxValueLogFileSize = 2<<30 - 1
)

// Config configures a Store. Zero sizes are replaced by the DefaultConfig
// values, so Config{Dir: dir} is a valid configuration.
type Config struct {
	// Dir is the directory holding the badger database. It is created if
	// missing. It must not be shared with any other badger database.
	Dir string

	// Logger receives badger's log output: errors and warnings at their own
	// level, badger's info and debug messages at slog.LevelDebug. Nil means
	// slog.Default().
	Logger *slog.Logger

	// MemTableSize is the size in bytes of each of the two memtables, and
	// also bounds a single badger transaction (to 15% of it). Zero means
	// 8 MiB; otherwise at least 1 MiB.
	MemTableSize int64

	// ValueLogFileSize is the maximum size in bytes of one value-log file.
	// Zero means 64 MiB; otherwise in [1 MiB, 2 GiB).
	ValueLogFileSize int64

	// BlockCacheSize is the size in bytes of badger's block cache. Zero
	// means 8 MiB. It cannot be disabled because blocks are compressed.
	BlockCacheSize int64

	// IndexCacheSize is the size in bytes of badger's table-index cache.
	// Zero means 4 MiB.
	IndexCacheSize int64
}

// DefaultConfig returns a Config for dir with settings suited to a small
// machine: 8 MiB memtables, 64 MiB value-log files, an 8 MiB block cache and
// a 4 MiB index cache. Raft's log is mostly written sequentially and read
// back recently written, so large caches buy little.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:              dir,
		MemTableSize:     8 << 20,
		ValueLogFileSize: 64 << 20,
		BlockCacheSize:   0,
		IndexCacheSize:   4 << 20,
	}
}

// Validate reports whether c can be used to open a Store. The returned
// error wraps ErrInvalidConfig.
func (c Config) Validate() error {
	var problems []string
	if c.Dir == "" {
		problems = append(problems, "Dir is empty")
	}
	if c.MemTableSize != 0 && c.MemTableSize < minMemTableSize {
		problems = append(problems, fmt.Sprintf("MemTableSize %d is below %d", c.MemTableSize, minMemTableSize))
	}
	if c.ValueLogFileSize != 0 && (c.ValueLogFileSize < minValueLogFileSize || c.ValueLogFileSize > maxValueLogFileSize) {
		problems = append(problems, fmt.Sprintf("ValueLogFileSize %d is outside [%d, %d]",
			c.ValueLogFileSize, minValueLogFileSize, maxValueLogFileSize))
	}
	if c.BlockCacheSize < 0 {
		problems = append(problems, fmt.Sprintf("BlockCacheSize %d is negative", c.BlockCacheSize))
	}
	if c.IndexCacheSize < 0 {
		problems = append(problems, fmt.Sprintf("IndexCacheSize %d is negative", c.IndexCacheSize))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(problems, "; "))
	}
	return nil
}

// withDefaults returns c with zero sizes and a nil Logger filled in.
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Dir)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MemTableSize == 0 {
		c.MemTableSize = d.MemTableSize
	}
	if c.ValueLogFileSize == 0 {
		c.ValueLogFileSize = d.ValueLogFileSize
	}
	if c.BlockCacheSize == 0 {
		c.BlockCacheSize = d.BlockCacheSize
	}
	if c.IndexCacheSize == 0 {
		c.IndexCacheSize = d.IndexCacheSize
	}
	return c
}

// badgerOptions translates c (with defaults applied) into badger options.
func (c Config) badgerOptions() badger.Options {
	return badger.DefaultOptions(c.Dir).
		WithLogger(badgerLogger{l: c.Logger.With(slog.String("component", "badger"))}).
		// Raft requires every write to be durable before the call returns.
		WithSyncWrites(true).
		WithMemTableSize(c.MemTableSize).
		WithNumMemtables(numMemtables).
		WithNumLevelZeroTables(numLevelZeroTables).
		WithNumLevelZeroTablesStall(numLevelZeroTablesStall).
		WithBaseTableSize(baseTableSize).
		WithValueLogFileSize(c.ValueLogFileSize).
		WithValueThreshold(valueThreshold).
		// Raft entries live briefly and are read back mostly from raft's LogCache:
		// compressing them costs CPU on every compaction and buys nothing. Without
		// compression badger reads blocks straight from the mapped tables, so the
		// block cache can be off too.
		WithCompression(options.None).
		WithBlockCacheSize(c.BlockCacheSize).
		WithIndexCacheSize(c.IndexCacheSize).
		WithNumCompactors(numCompactors).
		// All writers touch disjoint keys or are serialised by Raft.
		WithDetectConflicts(false)
}

// Store is a raft.LogStore and raft.StableStore backed by badger. It is safe
// for concurrent use; Raft calls StoreLogs from its main loop and
// DeleteRange from its snapshot goroutine at the same time.
type Store struct {
	db *badger.DB

	// first and last cache the lowest and highest stored log index (0 when
	// the log is empty). They are loaded from disk by New and kept current
	// by StoreLogs and DeleteRange, so FirstIndex and LastIndex are O(1).
	first atomic.Uint64
	last  atomic.Uint64

	// boundsMu makes "commit log writes, then update first/last" atomic with
	// respect to DeleteRange's recomputation of the bounds from disk.
	boundsMu sync.Mutex

	// closeMu guards closed; every method holds it for reading while it uses
	// db so that Close cannot pull the database out from under it.
	closeMu sync.RWMutex
	closed  bool
}

// New opens (creating if needed) the badger database in cfg.Dir and returns
// a Store on it. Writes are always synchronous (badger SyncWrites).
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	db, err := badger.Open(cfg.badgerOptions())
	if err != nil {
		return nil, fmt.Errorf("raftbadger: open %s: %w", cfg.Dir, err)
	}
	s := &Store{db: db}
	first, last, err := s.diskBounds()
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("raftbadger: read log bounds: %w", err)
	}
	s.first.Store(first)
	s.last.Store(last)
	return s, nil
}

// acquire marks the start of an operation on s.db; it fails after Close.
// Every successful acquire must be paired with release. Never nest them: a
// pending Close would deadlock a nested read lock.
func (s *Store) acquire() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) release() { s.closeMu.RUnlock() }

// Close closes the database. It waits for in-flight calls to finish; later
// calls return ErrClosed. Closing twice is a no-op.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("raftbadger: close: %w", err)
	}
	return nil
}

// Sync flushes badger's write-ahead and value logs to disk. Writes made
// through Store are already synchronous, so this is rarely needed.
func (s *Store) Sync() error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	return s.db.Sync()
}

// RunGC runs one pass of badger's value-log garbage collection, rewriting at
// most one value-log file if at least half of it is garbage. It returns nil
// when there was nothing to rewrite (badger.ErrNoRewrite). The store does not
// schedule GC itself: call RunGC periodically, e.g. after log compaction.
func (s *Store) RunGC() error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	err := s.db.RunValueLogGC(gcDiscardRatio)
	if err == nil || errors.Is(err, badger.ErrNoRewrite) {
		return nil
	}
	return fmt.Errorf("raftbadger: value log GC: %w", err)
}

// logKey returns the badger key of the log entry at index.
func logKey(index uint64) []byte {
	return appendLogKey(make([]byte, 0, logKeyLen), index)
}

// appendLogKey appends the badger key of the log entry at index to dst.
func appendLogKey(dst []byte, index uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefixLog), index)
}

// stableKey returns the badger key of the stable-store key k.
func stableKey(k []byte) []byte {
	return append(append(make([]byte, 0, 1+len(k)), prefixStable), k...)
}

// diskBounds reads the first and last log index from disk (0, 0 if there
// are no log entries).
func (s *Store) diskBounds() (first, last uint64, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		opts := badger.IteratorOptions{Prefix: []byte{prefixLog}}
		it := txn.NewIterator(opts)
		it.Seek(logKey(0))
		found := it.Valid()
		if found {
			first, err = indexFromKey(it.Item().Key())
		}
		it.Close()
		if err != nil || !found {
			return err
		}

		opts.Reverse = true
		it = txn.NewIterator(opts)
		defer it.Close()
		// In reverse mode Seek finds the largest key <= its argument.
		it.Seek(logKey(math.MaxUint64))
		if it.Valid() {
			last, err = indexFromKey(it.Item().Key())
		}
		return err
	})
	return first, last, err
}

// indexFromKey parses a log key.
func indexFromKey(k []byte) (uint64, error) {
	if len(k) != logKeyLen || k[0] != prefixLog {
		return 0, fmt.Errorf("%w: malformed log key %x", ErrCorruptLog, k)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}

// FirstIndex returns the lowest stored log index, or 0 if the log is empty.
func (s *Store) FirstIndex() (uint64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	return s.first.Load(), nil
}

// LastIndex returns the highest stored log index, or 0 if the log is empty.
func (s *Store) LastIndex() (uint64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	return s.last.Load(), nil
}

// GetLog reads the log entry at index into log. It returns
// raft.ErrLogNotFound (unwrapped, as Raft compares it with ==) if there is
// no such entry.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	var keyBuf [logKeyLen]byte
	key := appendLogKey(keyBuf[:0], index)
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		return item.Value(func(val []byte) error {
			return decodeLog(val, log)
		})
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return raft.ErrLogNotFound
	case err != nil:
		return fmt.Errorf("raftbadger: get log %d: %w", index, err)
	case log.Index != index:
		return fmt.Errorf("raftbadger: get log %d: %w: entry holds index %d", index, ErrCorruptLog, log.Index)
	}
	return nil
}

// StoreLog stores a single log entry.
func (s *Store) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores logs, overwriting entries with the same index, and
// returns once they are durable.
//
// All entries are written in one badger transaction. Only if badger reports
// badger.ErrTxnTooBig is the call split into several consecutive
// transactions. That is safe: Raft relies only on the whole call being
// durable when it returns successfully. If it fails part-way, a prefix of
// logs may be stored, which Raft tolerates (it treats the call as failed
// and later overwrites or truncates those entries).
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()

	// Encode every key and value into one buffer. badger keeps references
	// to them until the transaction commits, so they must not be reused.
	size := 0
	for _, l := range logs {
		size += logKeyLen + encodedLogSize(l)
	}
	buf := make([]byte, 0, size)

	s.boundsMu.Lock()
	defer s.boundsMu.Unlock()

	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()            // txn is replaced when a batch is split.
	lo, hi := uint64(math.MaxUint64), uint64(0) // index range of txn's writes
	for _, l := range logs {
		start := len(buf)
		buf = appendLogKey(buf, l.Index)
		key := buf[start:len(buf):len(buf)]
		start = len(buf)
		buf = appendLog(buf, l)
		val := buf[start:len(buf):len(buf)]

		err := txn.Set(key, val)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return fmt.Errorf("raftbadger: store logs: %w", err)
			}
			s.noteStored(lo, hi)
			txn = s.db.NewTransaction(true)
			lo, hi = math.MaxUint64, 0
			err = txn.Set(key, val)
		}
		if err != nil {
			return fmt.Errorf("raftbadger: store log %d: %w", l.Index, err)
		}
		lo, hi = min(lo, l.Index), max(hi, l.Index)
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("raftbadger: store logs: %w", err)
	}
	s.noteStored(lo, hi)
	return nil
}

// noteStored widens the cached bounds to include [lo, hi] after a commit.
// s.boundsMu must be held.
func (s *Store) noteStored(lo, hi uint64) {
	if lo > hi {
		return // nothing was written
	}
	if first := s.first.Load(); first == 0 || lo < first {
		s.first.Store(lo)
	}
	if hi > s.last.Load() {
		s.last.Store(hi)
	}
}

// DeleteRange deletes the log entries with minIndex <= index <= maxIndex and returns
// once the deletion is durable. Only entries that exist are touched, so a
// huge range over a sparse log is cheap; the deletes are committed in as
// many badger transactions as needed through a badger.WriteBatch.
func (s *Store) DeleteRange(minIndex, maxIndex uint64) error {
	if minIndex > maxIndex {
		return nil
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()

	wb := s.db.NewWriteBatch()
	defer wb.Cancel() // no-op after a successful Flush
	maxKey := logKey(maxIndex)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}})
		defer it.Close()
		var slab []byte // keys must outlive the iterator until Flush
		for it.Seek(logKey(minIndex)); it.Valid(); it.Next() {
			k := it.Item().Key()
			if bytes.Compare(k, maxKey) > 0 {
				break
			}
			if cap(slab)-len(slab) < logKeyLen {
				slab = make([]byte, 0, 1024*logKeyLen)
			}
			start := len(slab)
			slab = append(slab, k...)
			if err := wb.Delete(slab[start:len(slab):len(slab)]); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = wb.Flush()
	}

	// Recompute the bounds even on error: some deletes may have committed.
	// The deletes themselves ran without boundsMu so that concurrent
	// StoreLogs calls are not blocked; any StoreLogs that committed before
	// this point is visible to diskBounds, any later one builds on the
	// bounds stored here.
	s.boundsMu.Lock()
	first, last, berr := s.diskBounds()
	if berr == nil {
		s.first.Store(first)
		s.last.Store(last)
	}
	s.boundsMu.Unlock()

	if err != nil {
		return fmt.Errorf("raftbadger: delete logs [%d, %d]: %w", minIndex, maxIndex, err)
	}
	if berr != nil {
		return fmt.Errorf("raftbadger: delete logs [%d, %d]: read log bounds: %w", minIndex, maxIndex, berr)
	}
	return nil
}

// Set stores val under key and returns once it is durable.
func (s *Store) Set(key, val []byte) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	// badger holds on to val until commit; copy so callers may reuse it.
	v := append(make([]byte, 0, len(val)), val...)
	err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(stableKey(key), v)
	})
	if err != nil {
		return fmt.Errorf("raftbadger: set %q: %w", key, err)
	}
	return nil
}

// Get returns a copy of the value stored under key, or ErrKeyNotFound (whose
// message is "not found", as Raft expects) if key was never set. A stored
// empty value is returned as a non-nil empty slice.
func (s *Store) Get(key []byte) ([]byte, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	var val []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(stableKey(key))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			val = append(make([]byte, 0, len(v)), v...)
			return nil
		})
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return nil, ErrKeyNotFound
	case err != nil:
		return nil, fmt.Errorf("raftbadger: get %q: %w", key, err)
	}
	return val, nil
}

// SetUint64 stores val under key as 8 big-endian bytes.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the integer stored under key by SetUint64. For a key
// that was never set it returns 0 and ErrKeyNotFound, like raft-boltdb;
// Raft treats that error as "no value" (it compares err.Error() with
// "not found"), so a fresh store starts at term 0.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	val, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("raftbadger: get uint64 %q: value has %d bytes, want 8", key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}

// badgerLogger adapts a *slog.Logger to badger.Logger. Badger is chatty at
// info level, so its info and debug messages are logged at debug level.
type badgerLogger struct {
	l *slog.Logger
}

var _ badger.Logger = badgerLogger{}

func (b badgerLogger) Errorf(format string, args ...any) { b.log(slog.LevelError, format, args) }

func (b badgerLogger) Warningf(format string, args ...any) { b.log(slog.LevelWarn, format, args) }

func (b badgerLogger) Infof(format string, args ...any) { b.log(slog.LevelDebug, format, args) }

func (b badgerLogger) Debugf(format string, args ...any) { b.log(slog.LevelDebug, format, args) }

func (b badgerLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !b.l.Enabled(ctx, level) {
		return
	}
	b.l.Log(ctx, level, strings.TrimSpace(fmt.Sprintf(format, args...)))
}
