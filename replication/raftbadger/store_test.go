package raftbadger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// discardLogger drops everything; badger is noisy even at warn level in
// tests that deliberately misuse it.
var discardLogger = slog.New(slog.DiscardHandler)

// testConfig returns the default config for dir with logging discarded.
func testConfig(dir string) Config {
	cfg := DefaultConfig(dir)
	cfg.Logger = discardLogger
	return cfg
}

// mustOpen opens a Store with cfg and closes it when the test ends.
func mustOpen(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// mustNewStore opens a Store in a fresh temporary directory.
func mustNewStore(t testing.TB) *Store {
	t.Helper()
	return mustOpen(t, testConfig(t.TempDir()))
}

// makeLog returns a log entry with every field populated from index.
func makeLog(index uint64) *raft.Log {
	l := &raft.Log{
		Index:      index,
		Term:       index/10 + 1,
		Type:       raft.LogType(index % 6),
		Data:       []byte(fmt.Sprintf("data-%d", index)),
		AppendedAt: time.Unix(1700000000, int64(index)*1001).Add(time.Duration(index) * time.Second),
	}
	if index%3 == 0 {
		l.Extensions = []byte(fmt.Sprintf("ext-%d", index))
	}
	if index%7 == 0 {
		l.Data = nil
	}
	if index%11 == 0 {
		l.AppendedAt = time.Time{}
	}
	return l
}

// makeLogs returns makeLog(i) for i in [from, to].
func makeLogs(from, to uint64) []*raft.Log {
	logs := make([]*raft.Log, 0, to-from+1)
	for i := from; i <= to; i++ {
		logs = append(logs, makeLog(i))
	}
	return logs
}

func mustStoreLogs(t testing.TB, s *Store, logs []*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs: %v", err)
	}
}

// logsEqual compares two entries field by field (AppendedAt with Equal,
// byte slices ignoring nil versus empty).
func logsEqual(a, b *raft.Log) bool {
	return a.Index == b.Index &&
		a.Term == b.Term &&
		a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) &&
		bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

func assertBounds(t testing.TB, s *Store, wantFirst, wantLast uint64) {
	t.Helper()
	first, err := s.FirstIndex()
	if err != nil {
		t.Fatalf("FirstIndex: %v", err)
	}
	last, err := s.LastIndex()
	if err != nil {
		t.Fatalf("LastIndex: %v", err)
	}
	if first != wantFirst || last != wantLast {
		t.Fatalf("bounds = [%d, %d], want [%d, %d]", first, last, wantFirst, wantLast)
	}
	// The cached bounds must agree with what is on disk.
	dFirst, dLast, err := s.diskBounds()
	if err != nil {
		t.Fatalf("diskBounds: %v", err)
	}
	if dFirst != wantFirst || dLast != wantLast {
		t.Fatalf("disk bounds = [%d, %d], want [%d, %d]", dFirst, dLast, wantFirst, wantLast)
	}
}

// assertLogs checks that exactly the entries makeLog(i), i in [from, to],
// are present and that from-1 (if > 0) and to+1 are missing.
func assertLogs(t testing.TB, s *Store, from, to uint64) {
	t.Helper()
	for i := from; i <= to; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		if want := makeLog(i); !logsEqual(&got, want) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", i, got, *want)
		}
	}
	for _, i := range []uint64{from - 1, to + 1} {
		if i == 0 {
			continue
		}
		var got raft.Log
		if err := s.GetLog(i, &got); err != raft.ErrLogNotFound {
			t.Fatalf("GetLog(%d) error = %v, want raft.ErrLogNotFound", i, err)
		}
	}
}

func TestEmptyStore(t *testing.T) {
	s := mustNewStore(t)
	assertBounds(t, s, 0, 0)

	var l raft.Log
	if err := s.GetLog(1, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog(1) error = %v, want raft.ErrLogNotFound (unwrapped)", err)
	}

	v, err := s.GetUint64([]byte("CurrentTerm"))
	if v != 0 || err == nil || err.Error() != "not found" || !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("GetUint64(missing) = %d, %v; want 0, %q", v, err, "not found")
	}
	b, err := s.Get([]byte("LastVoteCand"))
	if b != nil || err == nil || err.Error() != "not found" {
		t.Fatalf("Get(missing) = %q, %v; want nil, %q", b, err, "not found")
	}

	// DeleteRange on an empty store is a no-op.
	if err := s.DeleteRange(1, 100); err != nil {
		t.Fatalf("DeleteRange on empty store: %v", err)
	}
	assertBounds(t, s, 0, 0)
}

// TestHasExistingState checks the "not found" contract from Raft's side:
// Raft must see a fresh store as empty, and as non-empty once a term is set.
func TestHasExistingState(t *testing.T) {
	s := mustNewStore(t)
	snaps := raft.NewInmemSnapshotStore()
	has, err := raft.HasExistingState(s, s, snaps)
	if err != nil || has {
		t.Fatalf("HasExistingState(fresh) = %v, %v; want false, nil", has, err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	has, err = raft.HasExistingState(s, s, snaps)
	if err != nil || !has {
		t.Fatalf("HasExistingState(term set) = %v, %v; want true, nil", has, err)
	}
}

func TestStoreAndGetLogs(t *testing.T) {
	s := mustNewStore(t)
	mustStoreLogs(t, s, makeLogs(1, 100))
	assertBounds(t, s, 1, 100)
	assertLogs(t, s, 1, 100)

	// StoreLog of a single entry extends the log.
	if err := s.StoreLog(makeLog(101)); err != nil {
		t.Fatalf("StoreLog: %v", err)
	}
	assertBounds(t, s, 1, 101)
	assertLogs(t, s, 1, 101)

	// Overwriting an entry replaces it.
	over := makeLog(50)
	over.Term, over.Data = 99, []byte("overwritten")
	if err := s.StoreLog(over); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := s.GetLog(50, &got); err != nil || !logsEqual(&got, over) {
		t.Fatalf("GetLog(50) = %+v, %v; want %+v", got, err, *over)
	}

	// Storing an empty batch is a no-op.
	if err := s.StoreLogs(nil); err != nil {
		t.Fatalf("StoreLogs(nil): %v", err)
	}
	assertBounds(t, s, 1, 101)
}

func TestGetLogFieldsExact(t *testing.T) {
	s := mustNewStore(t)
	want := &raft.Log{
		Index:      7,
		Term:       3,
		Type:       raft.LogConfiguration,
		Data:       []byte{0, 1, 2, 255},
		Extensions: []byte("ext"),
		AppendedAt: time.Date(2025, 5, 6, 7, 8, 9, 123456789, time.UTC),
	}
	mustStoreLogs(t, s, []*raft.Log{want})
	// got starts dirty to check that GetLog overwrites every field.
	got := raft.Log{Index: 1, Term: 1, Data: []byte("stale"), Extensions: []byte("stale"), AppendedAt: time.Now()}
	if err := s.GetLog(7, &got); err != nil {
		t.Fatal(err)
	}
	if !got.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("AppendedAt = %v, want %v", got.AppendedAt, want.AppendedAt)
	}
	got.AppendedAt = want.AppendedAt // only the location may differ
	if !logsIdentical(&got, want) {
		t.Fatalf("GetLog = %+v, want %+v", got, *want)
	}
}

// logsIdentical compares with == on scalars and bytes.Equal on slices,
// requiring nil-ness to match too.
func logsIdentical(a, b *raft.Log) bool {
	return logsEqual(a, b) && (a.Data == nil) == (b.Data == nil) && (a.Extensions == nil) == (b.Extensions == nil)
}

func TestDeleteRange(t *testing.T) {
	s := mustNewStore(t)
	mustStoreLogs(t, s, makeLogs(1, 100))

	// Prefix compaction, as after a snapshot.
	if err := s.DeleteRange(1, 50); err != nil {
		t.Fatal(err)
	}
	assertBounds(t, s, 51, 100)
	assertLogs(t, s, 51, 100)

	// Suffix truncation, as a follower does on a conflicting entry.
	if err := s.DeleteRange(91, 100); err != nil {
		t.Fatal(err)
	}
	assertBounds(t, s, 51, 90)
	assertLogs(t, s, 51, 90)

	// Then the follower appends the leader's entries.
	mustStoreLogs(t, s, makeLogs(91, 95))
	assertBounds(t, s, 51, 95)
	assertLogs(t, s, 51, 95)

	// A hole in the middle leaves the bounds alone.
	if err := s.DeleteRange(60, 70); err != nil {
		t.Fatal(err)
	}
	assertBounds(t, s, 51, 95)
	var l raft.Log
	if err := s.GetLog(65, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog(65) after delete: %v", err)
	}

	// Ranges beyond the log, and inverted ranges, are harmless.
	if err := s.DeleteRange(1000, 2000); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(80, 10); err != nil {
		t.Fatal(err)
	}
	assertBounds(t, s, 51, 95)

	// Deleting everything empties the log, then it can start over.
	if err := s.DeleteRange(0, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	assertBounds(t, s, 0, 0)
	mustStoreLogs(t, s, makeLogs(500, 510))
	assertBounds(t, s, 500, 510)
}

// TestDeleteRangeSparse mirrors a follower that installed a snapshot: the
// log has a gap, and compaction's range covers the gap.
func TestDeleteRangeSparse(t *testing.T) {
	s := mustNewStore(t)
	mustStoreLogs(t, s, makeLogs(1, 10))
	mustStoreLogs(t, s, makeLogs(5000, 5010))
	assertBounds(t, s, 1, 5010)
	if err := s.DeleteRange(1, 5004); err != nil {
		t.Fatal(err)
	}
	assertBounds(t, s, 5005, 5010)
	assertLogs(t, s, 5005, 5010)
}

// TestLargeBatches forces badger.ErrTxnTooBig in StoreLogs (a 1 MiB
// memtable allows ~150 KiB per transaction) and needs several transactions
// in DeleteRange.
func TestLargeBatches(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MemTableSize = minMemTableSize
	s := mustOpen(t, cfg)

	const n = 3000
	logs := makeLogs(1, n)
	for _, l := range logs {
		l.Data = bytes.Repeat([]byte{byte(l.Index)}, 1000) // below valueThreshold: stays in the LSM tree
	}
	mustStoreLogs(t, s, logs)
	assertBounds(t, s, 1, n)
	for _, i := range []uint64{1, 150, 151, 1500, n} {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil || !logsEqual(&got, logs[i-1]) {
			t.Fatalf("GetLog(%d) = %v", i, err)
		}
	}

	if err := s.DeleteRange(1, n-1); err != nil {
		t.Fatal(err)
	}
	assertBounds(t, s, n, n)
}

// TestLargeValues stores entries above the value threshold, which badger
// keeps in its value log, and exercises RunGC after deleting them.
func TestLargeValues(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.ValueLogFileSize = 1 << 20
	s := mustOpen(t, cfg)
	logs := makeLogs(1, 40)
	for _, l := range logs {
		l.Data = bytes.Repeat([]byte{byte(l.Index)}, 64<<10)
	}
	mustStoreLogs(t, s, logs)
	var got raft.Log
	if err := s.GetLog(17, &got); err != nil || !logsEqual(&got, logs[16]) {
		t.Fatalf("GetLog(17): %v", err)
	}
	if err := s.DeleteRange(1, 39); err != nil {
		t.Fatal(err)
	}
	if err := s.RunGC(); err != nil {
		t.Fatalf("RunGC: %v", err)
	}
	if err := s.GetLog(40, &got); err != nil || !logsEqual(&got, logs[39]) {
		t.Fatalf("GetLog(40) after GC: %v", err)
	}
}

func TestStableStore(t *testing.T) {
	s := mustNewStore(t)

	if err := s.Set([]byte("k"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("k"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get([]byte("k")); err != nil || string(v) != "v2" {
		t.Fatalf("Get(k) = %q, %v", v, err)
	}

	// The caller may reuse the buffer it passed to Set.
	buf := []byte("original")
	if err := s.Set([]byte("buf"), buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXX")
	if v, err := s.Get([]byte("buf")); err != nil || string(v) != "original" {
		t.Fatalf("Get(buf) = %q, %v", v, err)
	}

	// An empty value is distinguishable from a missing one.
	if err := s.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get([]byte("empty")); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get(empty) = %#v, %v; want non-nil empty slice", v, err)
	}

	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("GetUint64 = %d, %v", v, err)
	}
	if err := s.SetUint64([]byte("max"), ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("max")); err != nil || v != ^uint64(0) {
		t.Fatalf("GetUint64(max) = %d, %v", v, err)
	}

	// A uint64 read of a non-8-byte value is an error, not a "not found".
	if _, err := s.GetUint64([]byte("k")); err == nil || errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("GetUint64 of a 2-byte value: err = %v", err)
	}

	// Stable keys and log keys do not collide: a stable key that looks
	// like a log key stays in its own namespace.
	if err := s.Set(logKey(1), []byte("x")); err != nil {
		t.Fatal(err)
	}
	assertBounds(t, s, 0, 0)
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := New(testConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	mustStoreLogs(t, s, makeLogs(1, 100))
	if err := s.DeleteRange(1, 20); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(91, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 9); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, testConfig(dir))
	assertBounds(t, s, 21, 90)
	assertLogs(t, s, 21, 90)
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node-2" {
		t.Fatalf("Get after reopen = %q, %v", v, err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 9 {
		t.Fatalf("GetUint64 after reopen = %d, %v", v, err)
	}
}

func TestClosed(t *testing.T) {
	s, err := New(testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var l raft.Log
	checks := map[string]error{
		"StoreLog":    s.StoreLog(makeLog(1)),
		"GetLog":      s.GetLog(1, &l),
		"DeleteRange": s.DeleteRange(1, 2),
		"Set":         s.Set([]byte("k"), nil),
		"SetUint64":   s.SetUint64([]byte("k"), 1),
		"Sync":        s.Sync(),
		"RunGC":       s.RunGC(),
	}
	_, checks["FirstIndex"] = s.FirstIndex()
	_, checks["LastIndex"] = s.LastIndex()
	_, checks["Get"] = s.Get([]byte("k"))
	_, checks["GetUint64"] = s.GetUint64([]byte("k"))
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
}

func TestSync(t *testing.T) {
	s := mustNewStore(t)
	mustStoreLogs(t, s, makeLogs(1, 3))
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := s.RunGC(); err != nil {
		t.Fatalf("RunGC with nothing to collect: %v", err)
	}
}

// TestCorruptEntries writes bad values under log keys directly.
func TestCorruptEntries(t *testing.T) {
	s := mustNewStore(t)
	wrongIndex := encodeLog(makeLog(2))
	err := s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(logKey(1), []byte{9, 9, 9}); err != nil {
			return err
		}
		return txn.Set(logKey(3), wrongIndex)
	})
	if err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	for _, i := range []uint64{1, 3} {
		if err := s.GetLog(i, &l); !errors.Is(err, ErrCorruptLog) {
			t.Errorf("GetLog(%d) error = %v, want ErrCorruptLog", i, err)
		}
	}
}

// TestConcurrentStoreAndCompact runs StoreLogs and DeleteRange at the same
// time, as Raft's main loop and snapshot goroutine do, and checks that the
// cached bounds end up equal to the bounds on disk.
func TestConcurrentStoreAndCompact(t *testing.T) {
	s := mustNewStore(t)
	const (
		batches   = 100
		batchSize = 10
		trailing  = 25
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(done)
		for b := uint64(0); b < batches; b++ {
			if err := s.StoreLogs(makeLogs(b*batchSize+1, (b+1)*batchSize)); err != nil {
				t.Errorf("StoreLogs: %v", err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			first, _ := s.FirstIndex()
			last, _ := s.LastIndex()
			if first > 0 && last > first+trailing {
				if err := s.DeleteRange(first, last-trailing); err != nil {
					t.Errorf("DeleteRange: %v", err)
					return
				}
			}
			var l raft.Log
			if err := s.GetLog(last, &l); last > 0 && err != nil {
				t.Errorf("GetLog(last=%d): %v", last, err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()

	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if last != batches*batchSize {
		t.Fatalf("last = %d, want %d", last, batches*batchSize)
	}
	assertBounds(t, s, first, last)
	assertLogs(t, s, first, last)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"zero sizes use defaults", func(c *Config) { *c = Config{Dir: c.Dir} }, ""},
		{"empty dir", func(c *Config) { c.Dir = "" }, "Dir is empty"},
		{"tiny memtable", func(c *Config) { c.MemTableSize = 1024 }, "MemTableSize"},
		{"tiny vlog", func(c *Config) { c.ValueLogFileSize = 1024 }, "ValueLogFileSize"},
		{"huge vlog", func(c *Config) { c.ValueLogFileSize = 2 << 30 }, "ValueLogFileSize"},
		{"negative block cache", func(c *Config) { c.BlockCacheSize = -1 }, "BlockCacheSize"},
		{"negative index cache", func(c *Config) { c.IndexCacheSize = -1 }, "IndexCacheSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig("/some/dir")
			tt.mutate(&cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig mentioning %q", err, tt.wantErr)
			}
		})
	}
	if _, err := New(Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New(Config{}) error = %v, want ErrInvalidConfig", err)
	}
}

// TestNewZeroConfig opens a store with only Dir set and a nil Logger.
func TestNewZeroConfig(t *testing.T) {
	s := mustOpen(t, Config{Dir: t.TempDir()})
	mustStoreLogs(t, s, makeLogs(1, 2))
	assertBounds(t, s, 1, 2)
}

// TestDirLocked checks that a second Store cannot open a directory in use.
func TestDirLocked(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, testConfig(dir))
	if s, err := New(testConfig(dir)); err == nil {
		_ = s.Close()
		t.Fatal("second New on the same dir succeeded")
	}
}

// recordHandler collects log records for TestBadgerLogger.
type recordHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}

func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h *recordHandler) WithGroup(string) slog.Handler { return h }

func TestBadgerLogger(t *testing.T) {
	h := &recordHandler{}
	bl := badgerLogger{l: slog.New(h)}
	bl.Errorf("e %d\n", 1)
	bl.Warningf("w %d", 2)
	bl.Infof("i %d", 3)
	bl.Debugf("d %d", 4)
	want := []struct {
		level slog.Level
		msg   string
	}{
		{slog.LevelError, "e 1"},
		{slog.LevelWarn, "w 2"},
		{slog.LevelDebug, "i 3"},
		{slog.LevelDebug, "d 4"},
	}
	if len(h.records) != len(want) {
		t.Fatalf("got %d records, want %d", len(h.records), len(want))
	}
	for i, w := range want {
		if r := h.records[i]; r.Level != w.level || r.Message != w.msg {
			t.Errorf("record %d = %v %q, want %v %q", i, r.Level, r.Message, w.level, w.msg)
		}
	}
}

// countingFSM counts applied commands; its snapshot is the count.
type countingFSM struct {
	mu sync.Mutex
	n  uint64
}

func (f *countingFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Type == raft.LogCommand {
		f.n++
	}
	return f.n
}

func (f *countingFSM) count() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) {
	return countSnapshot(f.count()), nil
}

func (f *countingFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	f.mu.Lock()
	f.n = binary.BigEndian.Uint64(b[:])
	f.mu.Unlock()
	return nil
}

type countSnapshot uint64

func (c countSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(binary.BigEndian.AppendUint64(nil, uint64(c))); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (countSnapshot) Release() {}

// raftNode is a single-node Raft cluster on a badger Store.
type raftNode struct {
	raft  *raft.Raft
	store *Store
	fsm   *countingFSM
	trans *raft.InmemTransport
}

// startRaftNode opens the Store in dir and starts Raft on it (wrapped in a
// LogCache, as in production), bootstrapping if the store is fresh, and
// waits until the node is leader.
func startRaftNode(t *testing.T, dir string, snaps raft.SnapshotStore) *raftNode {
	t.Helper()
	store, err := New(testConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		t.Fatal(err)
	}
	addr, trans := raft.NewInmemTransport("")

	conf := raft.DefaultConfig()
	conf.LocalID = "node1"
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = 1 << 30 // snapshots only when the test asks
	conf.SnapshotInterval = time.Hour
	conf.TrailingLogs = 50
	conf.LogOutput = io.Discard

	has, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		t.Fatalf("HasExistingState: %v", err)
	}
	if !has {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}
		if err := raft.BootstrapCluster(conf, logs, store, snaps, trans, cfg); err != nil {
			t.Fatalf("BootstrapCluster: %v", err)
		}
	}
	fsm := &countingFSM{}
	r, err := raft.NewRaft(conf, fsm, logs, store, snaps, trans)
	if err != nil {
		t.Fatalf("NewRaft: %v", err)
	}
	n := &raftNode{raft: r, store: store, fsm: fsm, trans: trans}
	t.Cleanup(n.stop)

	deadline := time.Now().Add(5 * time.Second)
	for r.State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatalf("no leader after 5s (state %v)", r.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// stop shuts Raft down and closes the store; it is idempotent.
func (n *raftNode) stop() {
	_ = n.raft.Shutdown().Error()
	_ = n.trans.Close()
	_ = n.store.Close()
}

func (n *raftNode) apply(t *testing.T, count int) {
	t.Helper()
	futures := make([]raft.ApplyFuture, count)
	for i := range futures {
		futures[i] = n.raft.Apply([]byte("cmd"), 5*time.Second)
	}
	for i, f := range futures {
		if err := f.Error(); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
}

// TestRaftIntegration runs a real single-node Raft on the store: it
// bootstraps, applies commands, snapshots (so Raft compacts the log through
// DeleteRange), restarts on the same directory and keeps going.
func TestRaftIntegration(t *testing.T) {
	dir := t.TempDir()
	snaps := raft.NewInmemSnapshotStore() // outlives the restart, like a disk snapshot store

	n := startRaftNode(t, dir, snaps)
	n.apply(t, 200)
	if got := n.fsm.count(); got != 200 {
		t.Fatalf("FSM count = %d, want 200", got)
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	lastIndex := n.raft.LastIndex()
	first, _ := n.store.FirstIndex()
	last, _ := n.store.LastIndex()
	if last != lastIndex {
		t.Fatalf("store LastIndex = %d, raft LastIndex = %d", last, lastIndex)
	}
	// TrailingLogs = 50: compaction must have removed the older entries.
	if first <= 1 || last-first+1 != 50 {
		t.Fatalf("after snapshot the store holds [%d, %d], want the last 50 entries", first, last)
	}
	term, err := n.store.GetUint64([]byte("CurrentTerm"))
	if err != nil || term == 0 {
		t.Fatalf("CurrentTerm = %d, %v", term, err)
	}
	n.stop()

	n = startRaftNode(t, dir, snaps)
	if got := n.raft.LastIndex(); got < lastIndex {
		t.Fatalf("after restart raft LastIndex = %d, want >= %d", got, lastIndex)
	}
	n.apply(t, 10)
	if err := n.raft.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	// 200 from the snapshot plus 10 new commands.
	if got := n.fsm.count(); got != 210 {
		t.Fatalf("FSM count after restart = %d, want 210", got)
	}
	if got, _ := n.store.LastIndex(); got != n.raft.LastIndex() {
		t.Fatalf("store LastIndex = %d, raft LastIndex = %d", got, n.raft.LastIndex())
	}
	if term2, _ := n.store.GetUint64([]byte("CurrentTerm")); term2 <= term {
		t.Fatalf("CurrentTerm after restart = %d, want > %d", term2, term)
	}
}

func BenchmarkStoreLogs(b *testing.B) {
	s := mustNewStore(b)
	const batch = 64
	data := bytes.Repeat([]byte("x"), 1024)
	logs := make([]*raft.Log, batch)
	now := time.Now()
	var next uint64 = 1
	b.SetBytes(batch * 1024)
	b.ReportAllocs()
	for b.Loop() {
		for i := range logs {
			logs[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: now}
			next++
		}
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetLog(b *testing.B) {
	s := mustNewStore(b)
	const n = 10000
	data := bytes.Repeat([]byte("x"), 1024)
	for start := uint64(1); start <= n; start += 1000 {
		logs := make([]*raft.Log, 0, 1000)
		for i := start; i < start+1000; i++ {
			logs = append(logs, &raft.Log{Index: i, Term: 1, Data: data, AppendedAt: time.Now()})
		}
		mustStoreLogs(b, s, logs)
	}
	var l raft.Log
	var i uint64
	b.ReportAllocs()
	for b.Loop() {
		if err := s.GetLog(i%n+1, &l); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
