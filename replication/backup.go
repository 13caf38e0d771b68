package replication

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// A backup is a file an operator keeps: a consistent point-in-time copy of one site's state,
// taken at its leader after a barrier (so it holds everything committed before it was asked
// for), with what it is of and a checksum:
//
//	"govgrid-backup-v1\n"
//	uvarint length, BackupInfo as JSON
//	the state, in the snapshot stream format (snapshot.go: its own count and CRC-32C)
//	SHA-256 of everything before it (32 bytes)
//
// Restoring one into a running site installs it through Raft (Raft.Restore), like a snapshot
// sent to a follower, on every node of the site.
const backupMagic = "govgrid-backup-v1\n"

// BackupInfo describes a backup.
type BackupInfo struct {
	// Index is the last Raft index the copy holds; TakenAt when, Node by which node.
	Index   uint64    `json:"index"`
	TakenAt time.Time `json:"taken_at"`
	Node    string    `json:"node"`
	// Of is what the state machine says the copy is of (for a site: its code, tier, parent).
	Of json.RawMessage `json:"of,omitempty"`
	// StateBytes is the length of the state stream.
	StateBytes int64 `json:"state_bytes"`
}

// ErrNotABackup is returned for a file that is not a whole, intact backup.
var ErrNotABackup = errors.New("replication: not a govgrid backup, or a damaged one")

// Backup writes a backup of the state to w. This node must lead its site: it first applies
// everything committed (a barrier), then copies the state from one pinned read transaction.
func (s *Store) Backup(w io.Writer, of json.RawMessage) (*BackupInfo, error) {
	if !s.IsLeader() {
		return nil, ErrNotLeader
	}
	if err := s.Barrier(30 * time.Second); err != nil {
		return nil, mapRaftError(err)
	}
	snap, err := s.fsm.Snapshot()
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	txn := snap.(*fsmSnapshot).txn
	index, err := appliedIn(txn)
	if err != nil {
		return nil, err
	}
	// The state goes to a temporary file first: its length leads the file. The file is
	// encrypted under a key of its own that only this call knows, so that the site's records
	// never lie on the node's disk in the clear, whether or not the data directory is
	// encrypted.
	tmp, err := os.CreateTemp("", "govgrid-backup-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	tmpKey := make([]byte, 32)
	if _, err := rand.Read(tmpKey); err != nil {
		return nil, err
	}
	sw, err := newStreamWriter(tmp, tmpKey)
	if err != nil {
		return nil, err
	}
	if err := writeSnapshot(txn, sw); err != nil {
		return nil, err
	}
	if err := sw.Close(); err != nil {
		return nil, err
	}
	size := sw.plain
	info := &BackupInfo{Index: index, TakenAt: time.Now().UTC(), Node: s.cfg.NodeID, Of: of, StateBytes: size}
	head, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	sum := sha256.New()
	out := io.MultiWriter(w, sum)
	var lenBuf [binary.MaxVarintLen64]byte
	if _, err := io.WriteString(out, backupMagic); err != nil {
		return nil, err
	}
	if _, err := out.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(head)))]); err != nil {
		return nil, err
	}
	if _, err := out.Write(head); err != nil {
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	sr, err := newStreamReader(tmp, tmpKey)
	if err != nil {
		return nil, err
	}
	if n, err := io.Copy(out, sr); err != nil {
		return nil, err
	} else if n != size {
		return nil, fmt.Errorf("replication: backup's state is %d bytes, wrote %d", size, n)
	}
	_, err = w.Write(sum.Sum(nil))
	return info, err
}

// ReadBackupInfo checks a whole backup (its checksum, and that its state stream reads) and
// returns what it is, with the offset of its state stream. It reads the file twice.
func ReadBackupInfo(f io.ReadSeeker) (*BackupInfo, int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	sum := sha256.New()
	tr := io.TeeReader(br, sum)
	magic := make([]byte, len(backupMagic))
	if _, err := io.ReadFull(tr, magic); err != nil || string(magic) != backupMagic {
		return nil, 0, fmt.Errorf("%w: no backup header", ErrNotABackup)
	}
	n, err := binary.ReadUvarint(teeByteReader{tr})
	if err != nil || n > 1<<20 {
		return nil, 0, fmt.Errorf("%w: bad header length", ErrNotABackup)
	}
	head := make([]byte, n)
	if _, err := io.ReadFull(tr, head); err != nil {
		return nil, 0, fmt.Errorf("%w: truncated header", ErrNotABackup)
	}
	info := new(BackupInfo)
	if err := json.Unmarshal(head, info); err != nil || info.StateBytes <= 0 {
		return nil, 0, fmt.Errorf("%w: unreadable header", ErrNotABackup)
	}
	offset := int64(len(backupMagic)) + int64(uvarintLen(n)) + int64(n)
	if _, err := io.CopyN(io.Discard, tr, info.StateBytes); err != nil {
		return nil, 0, fmt.Errorf("%w: truncated state", ErrNotABackup)
	}
	want := sum.Sum(nil)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != string(want) {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", ErrNotABackup)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, 0, fmt.Errorf("%w: bytes after the checksum", ErrNotABackup)
	}
	// The state stream has its own count and CRC: read it through once more.
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, 0, err
	}
	if err := checkSnapshot(io.LimitReader(f, info.StateBytes)); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrNotABackup, err)
	}
	return info, offset, nil
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

// RestoreBackup replaces the site's state with a backup's, on every node of the site, through
// Raft (this node must lead). f must have been checked with ReadBackupInfo.
func (s *Store) RestoreBackup(f io.ReadSeeker, info *BackupInfo, offset int64) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	// Raft gives the restored state an index past both its log and this one, so that the
	// entries after it are above the applied index the state carries.
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: info.Index, Size: info.StateBytes}
	return mapRaftError(s.raft.Restore(meta, io.LimitReader(f, info.StateBytes), 5*time.Minute))
}

// ScanBackup hands every key and value of a checked backup's state to fn, in key order.
func ScanBackup(f io.ReadSeeker, info *BackupInfo, offset int64, fn func(key, value []byte) error) error {
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	return readSnapshotPairs(io.LimitReader(f, info.StateBytes), fn)
}

// appliedIn reads the applied index a pinned transaction sees.
func appliedIn(txn *badger.Txn) (uint64, error) {
	item, err := txn.Get(KeyApplied)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var idx uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("%w: applied index of %d bytes", ErrCorruptCommand, len(v))
		}
		idx = binary.BigEndian.Uint64(v)
		return nil
	})
	return idx, err
}
