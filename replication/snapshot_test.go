package replication

import (
	"bytes"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

func mustNewFSM(t *testing.T, dir string) *fsm {
	t.Helper()
	f, err := newFSM(dir, nil, slog.New(slog.DiscardHandler), newMetrics(nil, func() float64 { return 0 }), machineOf((&kv{}).config()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.close() })
	return f
}

func machineOf(c Config) machine {
	return machine{commands: c.Commands, refuse: c.Refuse, onCommit: c.OnCommit, onRestore: c.OnRestore}
}

func mustExport(t *testing.T, f *fsm) map[string][]byte {
	t.Helper()
	m, err := f.exportState()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testLogs(_ *testing.T, n int) []*raft.Log { return kvLog(n) }

type bufferSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *bufferSink) ID() string    { return "test" }
func (s *bufferSink) Close() error  { return nil }
func (s *bufferSink) Cancel() error { s.cancelled = true; return nil }

func TestSnapshotRestoreIntoEmptyNode(t *testing.T) {
	src := mustNewFSM(t, t.TempDir())
	logs := testLogs(t, 200)
	src.ApplyBatch(logs[:150])
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := mustExport(t, src)
	// Entries applied after Snapshot() must not leak into the snapshot: it is pinned.
	done := make(chan struct{})
	go func() { src.ApplyBatch(logs[150:]); close(done) }()
	var sink bufferSink
	if err := snap.(*fsmSnapshot).Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	<-done

	dst := mustNewFSM(t, filepath.Join(t.TempDir(), "state"))
	dst.ApplyBatch(testLogs(t, 3)) // whatever was there is replaced
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := mustExport(t, dst); !maps.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("restored state differs: %d keys, want %d", len(got), len(want))
	}
	if dst.applied.Load() != 150 {
		t.Fatalf("applied after restore = %d, want 150", dst.applied.Load())
	}
	// The restored node goes on from the log like the source did.
	dst.ApplyBatch(logs)
	if !maps.EqualFunc(mustExport(t, dst), mustExport(t, src), bytes.Equal) {
		t.Fatal("restored node diverged after applying the rest of the log")
	}
}

func TestRestoreRefusesDamagedSnapshots(t *testing.T) {
	src := mustNewFSM(t, t.TempDir())
	src.ApplyBatch(testLogs(t, 30))
	snap, _ := src.Snapshot()
	var sink bufferSink
	if err := snap.(*fsmSnapshot).Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	good := sink.Bytes()

	dst := mustNewFSM(t, filepath.Join(t.TempDir(), "state"))
	dst.ApplyBatch(testLogs(t, 5))
	before := mustExport(t, dst)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	for name, data := range map[string][]byte{
		"empty":     nil,
		"not ours":  []byte("hello"),
		"truncated": good[:len(good)-9],
		"bit flip":  flipped,
	} {
		if err := dst.Restore(io.NopCloser(bytes.NewReader(data))); err == nil {
			t.Errorf("%s snapshot was accepted", name)
		}
		if !maps.EqualFunc(mustExport(t, dst), before, bytes.Equal) {
			t.Fatalf("%s snapshot changed the state", name)
		}
	}
	if _, err := os.Stat(dst.dir + restoreSuffix); !os.IsNotExist(err) {
		t.Errorf("a failed restore left %s behind", dst.dir+restoreSuffix)
	}
}

func TestInterruptedRestoreIsFinishedOrDiscarded(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "state")
	f := mustNewFSM(t, dir)
	f.ApplyBatch(testLogs(t, 20))
	snap, _ := f.Snapshot()
	var sink bufferSink
	if err := snap.(*fsmSnapshot).Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	want := mustExport(t, f)
	f.close()

	// A complete restore directory left by a crash before the swap is swapped in at open.
	other := filepath.Join(base, "other")
	o := mustNewFSM(t, other)
	o.ApplyBatch(testLogs(t, 3))
	o.close()
	if err := loadSnapshot(bytes.NewReader(sink.Bytes()), other+restoreSuffix, slog.New(slog.DiscardHandler), nil); err != nil {
		t.Fatal(err)
	}
	o2 := mustNewFSM(t, other)
	if !maps.EqualFunc(mustExport(t, o2), want, bytes.Equal) {
		t.Fatal("complete restore was not swapped in")
	}
	o2.close()

	// An incomplete one (no marker) is thrown away and the old state kept.
	if err := os.MkdirAll(dir+restoreSuffix, 0o750); err != nil {
		t.Fatal(err)
	}
	f2 := mustNewFSM(t, dir)
	if !maps.EqualFunc(mustExport(t, f2), want, bytes.Equal) {
		t.Fatal("incomplete restore replaced the state")
	}
	if _, err := os.Stat(dir + restoreSuffix); !os.IsNotExist(err) {
		t.Fatal("incomplete restore directory was not removed")
	}
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add([]byte(snapshotMagic))
	f.Add([]byte(snapshotMagicZstd + "\x28\xb5\x2f\xfd"))
	f.Add([]byte(snapshotMagic + "\x02a\x02b\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00"))
	dir := f.TempDir()
	db, err := openStateDB(filepath.Join(dir, "fuzz"), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = readSnapshot(bytes.NewReader(data), db) // must not panic or hang
	})
}

// TestUncompressedSnapshotsStillRestore: snapshots and backups of earlier versions were written
// without compression; they restore as before, to the same state as a compressed one, which is
// several times smaller.
func TestUncompressedSnapshotsStillRestore(t *testing.T) {
	src := mustNewFSM(t, t.TempDir())
	src.ApplyBatch(testLogs(t, 200))
	want := mustExport(t, src)
	var plain, packed bytes.Buffer
	txn := src.db.NewTransaction(false)
	defer txn.Discard()
	if err := writeSnapshotStream(txn, &plain); err != nil {
		t.Fatal(err)
	}
	if err := writeSnapshot(txn, &packed); err != nil {
		t.Fatal(err)
	}
	if packed.Len() >= plain.Len() {
		t.Fatalf("compressed %d bytes, uncompressed %d", packed.Len(), plain.Len())
	}
	for name, stream := range map[string][]byte{"uncompressed": plain.Bytes(), "compressed": packed.Bytes()} {
		dst := mustNewFSM(t, t.TempDir())
		if err := dst.Restore(io.NopCloser(bytes.NewReader(stream))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := mustExport(t, dst); !maps.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("%s: restored %d keys, want %d", name, len(got), len(want))
		}
	}
}
