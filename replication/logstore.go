package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/govgrid/govgrid/replication/raftbadger"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/migrate"
)

// The Raft log and stable store live in hashicorp/raft-wal (<data-dir>/wal), as Consul's do:
// append-only segment files, one fsync per appended batch, truncation by dropping whole
// segments. Earlier versions kept them in a synced badger database (<data-dir>/raft, package
// raftbadger); badger syncs a write with an msync of its value log and another of its memtable's
// log, and every entry went through its LSM tree and compactions, which cost a commit twice the
// latency and a sixth of the node's CPU (replication/DESIGN.md, "The log"). A data directory of
// an earlier version is converted on the first start (migrateBadgerLog).

// logStore is the Raft log and stable store.
type logStore interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

// Directories of the log in the data directory.
const (
	walDir       = "wal"
	badgerLogDir = "raft" // the log of earlier versions, converted on the first start
)

// segmentBytes is the size of the log's segment files for a log of at most maxLogBytes: the log
// is truncated a whole segment at a time, so a segment is at most a quarter of the budget (and
// raft-wal's default, 64 MiB).
func segmentBytes(maxLogBytes int64) int {
	return int(min(maxLogBytes/4, 64<<20))
}

// openWAL opens (or creates) the WAL in dir. raft-wal v0.4.1 or later: v0.4.0 left its metadata
// database open on Close (a node restarted in the same process waited forever for the file's
// lock) and could seal a segment without its index when Raft truncated the log's tail (a
// follower dropping entries a new leader did not have), after which the node could not start
// ("sealed segment has no index block", hashicorp/raft-wal#31; seen in the chaos run).
//
// With keys, the entries' data is encrypted (encryptedLog).
func openWAL(dir string, maxLogBytes int64, logger *slog.Logger, keys *dataKeys) (logStore, error) {
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithMetaStore(meta), wal.WithSegmentSize(segmentBytes(maxLogBytes)), wal.WithLogger(newHCLogger(logger, "wal")))
	if err != nil {
		meta.Close()
		return nil, fmt.Errorf("replication: open the raft log in %s: %w", dir, err)
	}
	if keys != nil {
		return &encryptedLog{WAL: w, aead: keys.log}, nil
	}
	return w, nil
}

// openLogStore opens the node's Raft log, converting an earlier version's first.
func openLogStore(dataDir string, maxLogBytes int64, logger *slog.Logger, keys *dataKeys) (logStore, error) {
	dir := filepath.Join(dataDir, walDir)
	if err := migrateBadgerLog(dataDir, maxLogBytes, logger, keys); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	return openWAL(dir, maxLogBytes, logger, keys)
}

// migrateBadgerLog converts the badger log of an earlier version (<data-dir>/raft) into the WAL:
// every entry and the stable values Raft keeps (term, vote), written into <data-dir>/wal.tmp,
// which is renamed into place only when complete; then the badger log is removed. A crash at any
// point leaves either the badger log (converted again on the next start) or the WAL.
//
// The badger log is read as it is (earlier versions did not encrypt); with keys, the WAL it is
// converted to is encrypted.
func migrateBadgerLog(dataDir string, maxLogBytes int64, logger *slog.Logger, keys *dataKeys) error {
	old := filepath.Join(dataDir, badgerLogDir)
	dir := filepath.Join(dataDir, walDir)
	if _, err := os.Stat(old); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(dir); err == nil {
		// Converted before; the removal of the old log did not finish.
		return os.RemoveAll(old)
	}
	start := time.Now()
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	src, err := raftbadger.New(raftbadger.DefaultConfig(old))
	if err != nil {
		return fmt.Errorf("replication: open the raft log of an earlier version in %s: %w", old, err)
	}
	dst, err := openWAL(tmp, maxLogBytes, logger, keys)
	if err != nil {
		src.Close()
		return err
	}
	copied, err := copyLog(dst, src)
	err = errors.Join(err, dst.Close(), src.Close())
	if err != nil {
		return fmt.Errorf("replication: convert the raft log of %s: %w", old, err)
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	if err := syncDir(dataDir); err != nil {
		return err
	}
	logger.Info("converted the raft log of an earlier version (badger) to the write-ahead log",
		"entries", copied, "took", time.Since(start).Round(time.Millisecond), "from", old, "to", dir)
	return os.RemoveAll(old)
}

// copyLog copies every entry and Raft's stable values from src to the empty dst, and reports
// how many entries it copied.
func copyLog(dst, src logStore) (uint64, error) {
	first, err := src.FirstIndex()
	if err != nil {
		return 0, err
	}
	last, err := src.LastIndex()
	if err != nil {
		return 0, err
	}
	if last > 0 {
		if err := migrate.CopyLogs(context.Background(), dst, src, 4<<20, nil); err != nil {
			return 0, err
		}
	}
	// The keys hashicorp/raft keeps in its stable store. One never set (a node that never
	// voted) is left unset.
	for _, k := range []string{"CurrentTerm", "LastVoteTerm"} {
		v, err := src.GetUint64([]byte(k))
		if notFound(err) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if err := dst.SetUint64([]byte(k), v); err != nil {
			return 0, err
		}
	}
	v, err := src.Get([]byte("LastVoteCand"))
	if err != nil && !notFound(err) {
		return 0, err
	}
	if err == nil {
		if err := dst.Set([]byte("LastVoteCand"), v); err != nil {
			return 0, err
		}
	}
	if last == 0 {
		return 0, nil
	}
	return last - first + 1, nil
}

// notFound reports whether a stable store said a key was never set (Raft's convention: the
// message "not found").
func notFound(err error) bool {
	return err != nil && (errors.Is(err, raftbadger.ErrKeyNotFound) || strings.Contains(err.Error(), "not found"))
}

// logBytes is the size of the log's files on disk.
func logBytes(dataDir string) int64 {
	var n int64
	entries, err := os.ReadDir(filepath.Join(dataDir, walDir))
	if err != nil {
		return 0
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && !e.IsDir() {
			n += info.Size()
		}
	}
	return n
}

// HasLog reports whether dataDir holds a node's Raft log (of this version or an earlier one): a
// node has run there.
func HasLog(dataDir string) bool {
	for _, d := range []string{walDir, badgerLogDir} {
		if entries, err := os.ReadDir(filepath.Join(dataDir, d)); err == nil && len(entries) > 0 {
			return true
		}
	}
	return false
}
