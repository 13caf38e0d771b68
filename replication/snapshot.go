package replication

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
)

// Snapshot stream format: a magic line, then for each key/value pair uvarint(len key), key,
// uvarint(len value), value; then uvarint(0) as the end mark... followed by the pair count and
// a CRC-32C of everything before it, both uint64/uint32 BE.
//
// badger's own Backup is not used: its Stream reads each key range in a separate transaction,
// so under concurrent applies the result is not one point in time, and the applied index could
// disagree with the cases beside it. One pinned read transaction is.
//
// Snapshots and backups are written compressed: snapshotMagicZstd, then the whole stream above
// (its own magic included) compressed with zstd. A site's records are JSON text that compresses
// several times over, and a node keeps two snapshots beside its state. Uncompressed streams (of
// earlier versions) are still read.
const (
	snapshotMagic     = "govgrid-state-snapshot-v1\n"
	snapshotMagicZstd = "govgrid-state-snapshot-v2\n" // the same length as snapshotMagic
)

// restoreSuffix names the directory a restore is built in; a complete one holds restoreDone.
const (
	restoreSuffix = ".restore"
	oldSuffix     = ".old"
	restoreDone   = "RESTORE-COMPLETE"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type fsmSnapshot struct {
	txn     *badger.Txn
	release func()
	metrics *metrics
}

// Persist streams every key of the pinned transaction to sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(s.txn, sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release ends the pinned transaction and lets a Restore go ahead.
func (s *fsmSnapshot) Release() {
	s.txn.Discard()
	s.release()
}

// writeSnapshot writes every key of txn to w, compressed.
func writeSnapshot(txn *badger.Txn, w io.Writer) error {
	if _, err := io.WriteString(w, snapshotMagicZstd); err != nil {
		return err
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	if err := writeSnapshotStream(txn, zw); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

// writeSnapshotStream writes every key of txn to w, uncompressed.
func writeSnapshotStream(txn *badger.Txn, w io.Writer) error {
	crc := crc32.New(crcTable)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 256<<10)
	if _, err := bw.WriteString(snapshotMagic); err != nil {
		return err
	}
	var count uint64
	var lenBuf [binary.MaxVarintLen64]byte
	writeBytes := func(b []byte) error {
		n := binary.PutUvarint(lenBuf[:], uint64(len(b))+1)
		if _, err := bw.Write(lenBuf[:n]); err != nil {
			return err
		}
		_, err := bw.Write(b)
		return err
	}
	it := txn.NewIterator(badger.DefaultIteratorOptions)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		if err := writeBytes(item.Key()); err != nil {
			return err
		}
		if err := item.Value(writeBytes); err != nil {
			return err
		}
		count++
	}
	if err := bw.WriteByte(0); err != nil { // end mark: no key has length-plus-one 0
		return err
	}
	var tail [8]byte
	binary.BigEndian.PutUint64(tail[:], count)
	if _, err := bw.Write(tail[:]); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	_, err := w.Write(sum[:])
	return err
}

// loadSnapshot reads a snapshot stream into a new state database at dir, verifies its count
// and checksum, and marks it complete. Whatever was at dir before is removed first.
func loadSnapshot(r io.Reader, dir string, logger *slog.Logger, key []byte) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	db, err := openStateDB(dir, logger, key)
	if err != nil {
		return err
	}
	if err := readSnapshot(r, db); err != nil {
		db.Close()
		os.RemoveAll(dir)
		return err
	}
	if err := db.Sync(); err != nil {
		db.Close()
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	return writeMarker(dir)
}

func readSnapshot(r io.Reader, db *badger.DB) error {
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	if err := readSnapshotPairs(r, wb.Set); err != nil {
		return err
	}
	return wb.Flush()
}

// checkSnapshot reads a snapshot stream through and checks its count and checksum.
func checkSnapshot(r io.Reader) error {
	return readSnapshotPairs(r, func(k, v []byte) error { return nil })
}

// readSnapshotPairs hands every key and value of a snapshot stream to fn, then checks the
// stream's count and checksum: fn has seen everything only if it returns nil.
func readSnapshotPairs(r io.Reader, fn func(key, value []byte) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	if head, err := br.Peek(len(snapshotMagicZstd)); err == nil && string(head) == snapshotMagicZstd {
		br.Discard(len(head))
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return err
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 256<<10)
	}
	crc := crc32.New(crcTable)
	tr := io.TeeReader(br, crc)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(tr, magic); err != nil || string(magic) != snapshotMagic {
		return errors.New("not a govgrid state snapshot")
	}
	byteReader := teeByteReader{tr}
	var count uint64
	for {
		key, end, err := readField(byteReader, tr)
		if err != nil {
			return err
		}
		if end {
			break
		}
		val, end, err := readField(byteReader, tr)
		if err != nil || end {
			return errors.New("snapshot truncated inside a pair")
		}
		if err := fn(key, val); err != nil {
			return err
		}
		count++
	}
	var tail [8]byte
	if _, err := io.ReadFull(tr, tail[:]); err != nil {
		return errors.New("snapshot truncated before its count")
	}
	want := crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(br, sum[:]); err != nil {
		return errors.New("snapshot truncated before its checksum")
	}
	if binary.BigEndian.Uint64(tail[:]) != count {
		return fmt.Errorf("snapshot holds %d pairs, its trailer says %d", count, binary.BigEndian.Uint64(tail[:]))
	}
	if binary.BigEndian.Uint32(sum[:]) != want {
		return errors.New("snapshot checksum mismatch")
	}
	return nil
}

// maxSnapshotField bounds one key or value so that a corrupt length cannot exhaust memory.
const maxSnapshotField = 64 << 20

func readField(br io.ByteReader, r io.Reader) ([]byte, bool, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, false, fmt.Errorf("snapshot truncated: %w", err)
	}
	if n == 0 {
		return nil, true, nil
	}
	n--
	if n > maxSnapshotField {
		return nil, false, fmt.Errorf("snapshot field of %d bytes is too large", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, false, fmt.Errorf("snapshot truncated: %w", err)
	}
	return b, false, nil
}

type teeByteReader struct{ r io.Reader }

func (t teeByteReader) ReadByte() (byte, error) {
	var b [1]byte
	_, err := io.ReadFull(t.r, b[:])
	return b[0], err
}

func writeMarker(dir string) error {
	f, err := os.Create(dir + "/" + restoreDone)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// swapInRestored replaces dir with the complete restore built beside it. Each step is a
// rename, and finishInterruptedRestore completes the swap after a crash at any point.
func swapInRestored(dir string) error {
	if err := os.RemoveAll(dir + oldSuffix); err != nil {
		return err
	}
	if err := os.Rename(dir, dir+oldSuffix); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.Rename(dir+restoreSuffix, dir); err != nil {
		return err
	}
	if err := os.Remove(dir + "/" + restoreDone); err != nil {
		return err
	}
	return os.RemoveAll(dir + oldSuffix)
}

// finishInterruptedRestore is called before opening the state: a complete restore directory
// left by a crash is swapped in; an incomplete one is thrown away.
func finishInterruptedRestore(dir string) error {
	restore := dir + restoreSuffix
	if _, err := os.Stat(restore); err == nil {
		if _, err := os.Stat(restore + "/" + restoreDone); err == nil {
			return swapInRestored(dir)
		}
		if err := os.RemoveAll(restore); err != nil {
			return err
		}
	}
	if _, err := os.Stat(dir + "/" + restoreDone); err == nil {
		// Crashed after the final rename but before removing the marker.
		if err := os.Remove(dir + "/" + restoreDone); err != nil {
			return err
		}
	}
	return os.RemoveAll(dir + oldSuffix)
}
