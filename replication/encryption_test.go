package replication

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// secretID is a recognisable identity-card number in the test records.
const secretID = "110101199003074512"

func testKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, EncryptionKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// filesContaining lists the files under dir that hold needle.
func filesContaining(t *testing.T, dir, needle string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			rel, _ := filepath.Rel(dir, path)
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// writeCaseRecords sets n case-like records that hold secretID, each over badger's value
// threshold (so they go to its value log) as well as small ones (kept in its tree).
func writeCaseRecords(t *testing.T, s *Store, n int) {
	t.Helper()
	filler := strings.Repeat("village service point application ", 6)
	for i := range n {
		setKeysRaw(t, s, fmt.Sprintf("case%d={\"applicant_id\":\"%s\";\"note\":\"%s\"},small%d=%s", i, secretID, filler, i, secretID))
	}
}

func setKeysRaw(t *testing.T, s *Store, payload string) {
	t.Helper()
	a, err := s.Propose(t.Context(), NewCommand(kvSet, []byte(payload)))
	if err != nil || a.(*kvAnswer).Refused() {
		t.Fatalf("set: %v %v", a, err)
	}
}

// TestEncryptedDataDirHoldsNoPlaintext writes records holding an ID number through a store,
// snapshots, stops it, and reads every file under the data directory (the WAL's segments and
// metadata, badger's tables, value log and manifest, the snapshots): with a key no file holds
// the number; without one the same run finds it (so the search works). The encrypted store
// then reopens and reads its records back.
func TestEncryptedDataDirHoldsNoPlaintext(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypted), func(t *testing.T) {
			dir := t.TempDir()
			var key []byte
			if encrypted {
				key = testKey(t)
			}
			withKey := func(c *Config) { c.EncryptionKey = key }
			s := openKVStoreWith(t, dir, withKey)
			writeCaseRecords(t, s, 50)
			if err := s.Snapshot(); err != nil {
				t.Fatal(err)
			}
			writeCaseRecords(t, s, 10) // after the snapshot: only in the log and the state
			want := kvState(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "snapshots", "*", "state.bin"))
			if len(snaps) == 0 {
				t.Fatal("no snapshot was written")
			}
			found := filesContaining(t, dir, secretID)
			if !encrypted {
				inWAL := false
				for _, f := range found {
					inWAL = inWAL || strings.HasPrefix(f, walDir+string(filepath.Separator))
				}
				if !inWAL {
					t.Fatalf("without a key the ID number should be in the clear in the WAL; found in %v", found)
				}
				return
			}
			if len(found) > 0 {
				t.Fatalf("the ID number is in the clear in %v (of %d files)", found, countFiles(t, dir))
			}
			for _, f := range snaps {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(b, []byte(streamMagic)) {
					t.Fatalf("snapshot %s is not an encrypted stream", f)
				}
			}
			s = openKVStoreWith(t, dir, withKey)
			defer s.Close()
			if got := kvState(t, s); !maps.EqualFunc(got, want, bytes.Equal) {
				t.Fatalf("after a restart the encrypted state holds %d keys, want %d", len(got), len(want))
			}
		})
	}
}

// TestDataDirOpensOnlyWithItsKey: an encrypted directory refuses another key and no key; a
// directory written in the clear refuses a key; each refusal changes nothing on disk.
func TestDataDirOpensOnlyWithItsKey(t *testing.T) {
	key := testKey(t)
	encDir, clearDir := t.TempDir(), t.TempDir()
	for _, d := range []struct {
		dir string
		key []byte
	}{{encDir, key}, {clearDir, nil}} {
		s := openKVStoreWith(t, d.dir, func(c *Config) { c.EncryptionKey = d.key })
		setKeys(t, s, 0, 5)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		dir  string
		key  []byte
		says string
	}{
		{"another key", encDir, testKey(t), "another key"},
		{"no key for an encrypted directory", encDir, nil, "no encryption key was given"},
		{"a key for a directory in the clear", clearDir, key, "written without encryption"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := countFiles(t, c.dir)
			cfg := DefaultConfig()
			kvc := (&kv{}).config()
			cfg.NodeID, cfg.DataDir, cfg.RaftAddr = "n1", c.dir, "127.0.0.1:0"
			cfg.Commands, cfg.Answers, cfg.Refuse, cfg.Logger = kvc.Commands, kvc.Answers, kvc.Refuse, kvc.Logger
			cfg.EncryptionKey = c.key
			s, err := Open(cfg)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, ErrEncryptionKey) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %q, want ErrEncryptionKey saying %q", err, c.says)
			}
			if after := countFiles(t, c.dir); after != before {
				t.Fatalf("the refused open left %d files, there were %d", after, before)
			}
		})
	}
	// badger's own check stands behind encryption.json: without it, the state still refuses.
	if err := os.Remove(filepath.Join(encDir, encryptionFile)); err != nil {
		t.Fatal(err)
	}
	_, err := newFSM(filepath.Join(encDir, "state"), nil, discardLogger(), newMetrics(nil, func() float64 { return 0 }), machineOf((&kv{}).config()))
	if !errors.Is(err, ErrEncryptionKey) {
		t.Fatalf("the encrypted state opened without its key: %v", err)
	}
}

// TestEncryptedSnapshotRoundTrip: the snapshot on disk is an encrypted stream, Raft is told
// the plaintext's size, and a node whose state was lost restores it from the snapshot.
func TestEncryptedSnapshotRoundTrip(t *testing.T) {
	dir, key := t.TempDir(), testKey(t)
	withKey := func(c *Config) { c.EncryptionKey = key }
	s := openKVStoreWith(t, dir, withKey)
	setKeys(t, s, 0, 300)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	want := kvState(t, s)
	metas, err := s.snapshots.List()
	if err != nil || len(metas) == 0 {
		t.Fatalf("list: %v %v", metas, err)
	}
	meta, rc, err := s.snapshots.Open(metas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(plain)) != meta.Size || metas[0].Size != meta.Size {
		t.Fatalf("snapshot of %d plaintext bytes, meta says %d (list %d)", len(plain), meta.Size, metas[0].Size)
	}
	if err := checkSnapshot(bytes.NewReader(plain)); err != nil {
		t.Fatalf("decrypted snapshot: %v", err)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "snapshots", "snapshots", metas[0].ID, "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(onDisk, []byte(streamMagic)) || plainStreamSize(int64(len(onDisk))) != meta.Size {
		t.Fatalf("snapshot on disk: %d bytes, not an encrypted stream of %d", len(onDisk), meta.Size)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The state is lost: the node restores the (encrypted) snapshot before Raft starts.
	if err := os.RemoveAll(filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}
	s = openKVStoreWith(t, dir, withKey)
	defer s.Close()
	if got := kvState(t, s); !maps.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("restored %d keys, want %d", len(got), len(want))
	}
}

// TestEncryptedSnapshotInstalledOnAFollower: a follower that joins after the log was compacted
// gets the snapshot over Raft's transport (in the clear to Raft, each node's disk encrypted
// under its own key) and ends with the leader's state.
func TestEncryptedSnapshotInstalledOnAFollower(t *testing.T) {
	leaderDir := t.TempDir()
	configure := func(c *Config) {
		c.TrailingLogs = 10
		// Segments of 4 MiB: raft-wal drops the head of the log a whole segment at a time, and
		// serves entries of a segment it keeps even below the first index.
		c.MaxLogBytes = 16 << 20
	}
	leader := openKVStoreWith(t, leaderDir, func(c *Config) {
		configure(c)
		c.EncryptionKey = testKey(t)
	})
	defer leader.Close()
	big := strings.Repeat("x", 300<<10)
	for i := range 40 { // 12 MiB: the first segments are dropped after the snapshot
		setKeysRaw(t, leader, fmt.Sprintf("big%d=%s %s", i, secretID, big))
	}
	if err := leader.Snapshot(); err != nil {
		t.Fatal(err)
	}
	setKeys(t, leader, 0, 20)
	want := kvState(t, leader)

	cfg := DefaultConfig()
	kvc := (&kv{}).config()
	followerDir := t.TempDir()
	cfg.NodeID, cfg.DataDir, cfg.RaftAddr = "n2", followerDir, "127.0.0.1:0"
	cfg.Commands, cfg.Answers, cfg.Refuse, cfg.Logger = kvc.Commands, kvc.Answers, kvc.Refuse, kvc.Logger
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	configure(&cfg)
	cfg.EncryptionKey = testKey(t) // not the leader's
	follower, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close()
	if err := leader.raft.AddVoter("n2", raft.ServerAddress(follower.RaftAddr()), 0, 10*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := follower.ExportState()
		if err == nil {
			delete(m, string(KeyApplied))
			if maps.EqualFunc(m, want, bytes.Equal) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follower holds %d keys, want %d", len(m), len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if metas, err := follower.snapshots.List(); err != nil || len(metas) == 0 {
		t.Fatalf("the follower was caught up without a snapshot (%v): the test does not test what it says", err)
	}
	if found := filesContaining(t, followerDir, secretID); len(found) > 0 {
		t.Fatalf("the follower's files hold a record in the clear: %v", found)
	}
}

func TestEncryptedStreamRoundTrip(t *testing.T) {
	key := testKey(t)
	for _, n := range []int{0, 1, streamChunk - 1, streamChunk, streamChunk + 1, 3 * streamChunk, 3*streamChunk + 7} {
		plain := make([]byte, n)
		rand.Read(plain)
		var buf bytes.Buffer
		w, err := newStreamWriter(&buf, key)
		if err != nil {
			t.Fatal(err)
		}
		// Odd write sizes cross the chunks' boundaries.
		for p := plain; len(p) > 0; {
			k := min(len(p), 1000+len(p)%7919)
			if _, err := w.Write(p[:k]); err != nil {
				t.Fatal(err)
			}
			p = p[k:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		enc := buf.Bytes()
		if got := plainStreamSize(int64(len(enc))); got != int64(n) || w.plain != int64(n) {
			t.Fatalf("%d bytes: size from the stream %d, counted %d", n, got, w.plain)
		}
		if got, err := decryptAll(enc, key); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: round trip: %v", n, err)
		}
		if _, err := decryptAll(enc, testKey(t)); !errors.Is(err, ErrNotDecrypted) {
			t.Fatalf("%d bytes: another key: %v", n, err)
		}
		damaged := bytes.Clone(enc)
		damaged[len(damaged)/2+streamHead/2] ^= 1
		if _, err := decryptAll(damaged, key); !errors.Is(err, ErrNotDecrypted) {
			t.Fatalf("%d bytes: a flipped bit: %v", n, err)
		}
		if n > streamChunk {
			// Cut after a whole chunk: the chunk before the cut was not sealed as the last.
			if _, err := decryptAll(enc[:streamHead+streamChunk+streamTag], key); !errors.Is(err, ErrNotDecrypted) {
				t.Fatalf("%d bytes: truncated at a chunk's end: %v", n, err)
			}
		}
	}
	if _, err := decryptAll([]byte(snapshotMagicZstd+"whatever"), key); !errors.Is(err, ErrNotDecrypted) {
		t.Fatalf("a stream in the clear: %v", err)
	}
}

func decryptAll(enc, key []byte) ([]byte, error) {
	r, err := newStreamReader(bytes.NewReader(enc), key)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// TestEncryptedLogEntries: the WAL holds sealed fields, Raft reads the entries back whole, and a
// field moved to another entry does not open.
func TestEncryptedLogEntries(t *testing.T) {
	dir := t.TempDir()
	keys := newDataKeys(testKey(t), []byte("salt"))
	ls, err := openWAL(dir, DefaultConfig().MaxLogBytes, discardLogger(), keys)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	logs := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("id " + secretID), Extensions: []byte("ext " + secretID)},
		{Index: 2, Term: 1, Type: raft.LogNoop},
		{Index: 3, Term: 2, Type: raft.LogCommand, Data: []byte("other")},
	}
	if err := ls.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if string(logs[0].Data) != "id "+secretID {
		t.Fatal("StoreLogs changed the caller's entry")
	}
	for _, want := range logs {
		var got raft.Log
		if err := ls.GetLog(want.Index, &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) || got.Term != want.Term {
			t.Fatalf("entry %d read back as %+v", want.Index, got)
		}
	}
	var raw raft.Log
	if err := ls.(*encryptedLog).WAL.GetLog(1, &raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Data, []byte(secretID)) || bytes.Contains(raw.Extensions, []byte(secretID)) {
		t.Fatal("the WAL holds the entry in the clear")
	}
	moved := raft.Log{Index: 3, Term: 2, Type: raft.LogCommand}
	if _, err := ls.(*encryptedLog).open(&moved, fieldData, raw.Data); !errors.Is(err, ErrNotDecrypted) {
		t.Fatalf("entry 1's data opened as entry 3's: %v", err)
	}
	if found := filesContaining(t, dir, secretID); len(found) > 0 {
		t.Fatalf("in the clear in %v", found)
	}
}

func TestEncryptionKeyFile(t *testing.T) {
	key, file, err := NewEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEncryptionKey(file)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("parse of a new key file: %v", err)
	}
	for _, bad := range []string{"", "not base64!", "c2hvcnQ=", string(key)} {
		if _, err := ParseEncryptionKey([]byte(bad)); err == nil {
			t.Fatalf("%q accepted as a key file", bad)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestBackupOfAnEncryptedStoreRestores: a backup leaves the node in the clear (DESIGN.md,
// "Encryption at rest"), and restoring it goes through Raft.Restore into the encrypted snapshot
// store and state.
func TestBackupOfAnEncryptedStoreRestores(t *testing.T) {
	dir := t.TempDir()
	s := openKVStoreWith(t, dir, func(c *Config) { c.EncryptionKey = testKey(t) })
	defer s.Close()
	setKeysRaw(t, s, "applicant="+secretID)
	setKeys(t, s, 0, 50)
	want := kvState(t, s)
	var buf bytes.Buffer
	if _, err := s.Backup(&buf, nil); err != nil {
		t.Fatal(err)
	}
	setKeys(t, s, 50, 80)
	f := bytes.NewReader(buf.Bytes())
	info, offset, err := ReadBackupInfo(f)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	if err := ScanBackup(f, info, offset, func(k, v []byte) error {
		found = found || bytes.Contains(v, []byte(secretID))
		return nil
	}); err != nil || !found {
		t.Fatalf("the backup does not read in the clear: %v (found %v)", err, found)
	}
	if err := s.RestoreBackup(f, info, offset); err != nil {
		t.Fatal(err)
	}
	if got := kvState(t, s); !maps.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("restored %d keys, want %d", len(got), len(want))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if found := filesContaining(t, dir, secretID); len(found) > 0 {
		t.Fatalf("after the restore the ID number is in the clear in %v", found)
	}
}
