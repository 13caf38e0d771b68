package replication

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/replication/raftbadger"
	"github.com/hashicorp/raft"
)

// TestEarlierLogIsConverted: a data directory of an earlier version keeps its Raft log in badger
// (<data-dir>/raft). The first start converts it into the write-ahead log: every entry with its
// term, type and bytes, and Raft's term and vote; the badger log is removed, and a second start
// finds the converted log. A conversion cut short (a wal.tmp left behind) is done again.
func TestEarlierLogIsConverted(t *testing.T) {
	dir := t.TempDir()
	old, err := raftbadger.New(raftbadger.DefaultConfig(filepath.Join(dir, badgerLogDir)))
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(5); i <= 300; i++ { // a log compacted up to 4, as after a snapshot
		logs = append(logs, &raft.Log{Index: i, Term: 1 + i/100, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, int(i))})
	}
	if err := old.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := errors2(old.SetUint64([]byte("CurrentTerm"), 4), old.SetUint64([]byte("LastVoteTerm"), 4), old.Set([]byte("LastVoteCand"), []byte("n2"))); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	// A conversion that was cut short left a partial copy: it is thrown away and done again.
	if err := os.MkdirAll(filepath.Join(dir, walDir+".tmp"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, walDir+".tmp", "junk"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}

	for start := 1; start <= 2; start++ {
		w, err := openLogStore(dir, DefaultConfig().MaxLogBytes, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatalf("start %d: %v", start, err)
		}
		if err := sameLog(w, logs); err != nil {
			t.Fatalf("start %d: %v", start, err)
		}
		term, err := w.GetUint64([]byte("CurrentTerm"))
		cand, err2 := w.Get([]byte("LastVoteCand"))
		if err != nil || err2 != nil || term != 4 || string(cand) != "n2" {
			t.Fatalf("start %d: term %d (%v), vote %q (%v)", start, term, err, cand, err2)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for _, gone := range []string{badgerLogDir, walDir + ".tmp"} {
			if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
				t.Fatalf("start %d: %s is still there (%v)", start, gone, err)
			}
		}
	}
}

// TestEarlierEmptyLogIsConverted: a node of an earlier version that never joined a site has an
// empty badger log and no vote: it converts to an empty log.
func TestEarlierEmptyLogIsConverted(t *testing.T) {
	dir := t.TempDir()
	old, err := raftbadger.New(raftbadger.DefaultConfig(filepath.Join(dir, badgerLogDir)))
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	w, err := openLogStore(dir, DefaultConfig().MaxLogBytes, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if last, err := w.LastIndex(); err != nil || last != 0 {
		t.Fatalf("last index %d (%v)", last, err)
	}
}

func sameLog(w raft.LogStore, want []*raft.Log) error {
	first, err1 := w.FirstIndex()
	last, err2 := w.LastIndex()
	if err := errors2(err1, err2); err != nil || first != want[0].Index || last != want[len(want)-1].Index {
		return fmt.Errorf("log spans %d..%d (%v), want %d..%d", first, last, err, want[0].Index, want[len(want)-1].Index)
	}
	for _, l := range want {
		var got raft.Log
		if err := w.GetLog(l.Index, &got); err != nil {
			return fmt.Errorf("entry %d: %v", l.Index, err)
		}
		if got.Term != l.Term || got.Type != l.Type || !bytes.Equal(got.Data, l.Data) {
			return fmt.Errorf("entry %d: term %d type %v %d bytes, want term %d type %v %d bytes", l.Index, got.Term, got.Type, len(got.Data), l.Term, l.Type, len(l.Data))
		}
	}
	return nil
}

func errors2(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// TestLogIsBoundedByBytes: Raft compacts its log by entry counts, so large entries could fill the
// disk long before SnapshotThreshold. With a budget of 16 MiB, 48 MiB of 64 KiB commands leave a
// log within the budget: the node snapshots early and keeps fewer trailing entries. Every key is
// still in the state.
func TestLogIsBoundedByBytes(t *testing.T) {
	defer func(old time.Duration) { boundLogEvery = old }(boundLogEvery)
	boundLogEvery = 50 * time.Millisecond
	dir := t.TempDir()
	s := openKVStoreWith(t, dir, func(c *Config) { c.MaxLogBytes = 16 << 20 })
	defer s.Close()
	value := strings.Repeat("v", 64<<10)
	for i := range 768 {
		a, err := s.Propose(context.Background(), NewCommand(kvSet, []byte(fmt.Sprintf("key%d=%s", i, value))))
		if err != nil || a.(*kvAnswer).Refused() {
			t.Fatalf("set %d: %v %v", i, a, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for logBytes(dir) > 16<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the log is %d bytes, over its budget of %d", logBytes(dir), 16<<20)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := len(kvState(t, s)); got != 768 {
		t.Fatalf("the state holds %d keys, want 768", got)
	}
}

// TestLogReopensAfterItsTailWasTruncated drops the log's tail, as a follower does when a new
// leader lacks its last entries, in the active segment and across segment files, with and without
// appending after it, then closes and reopens the log. raft-wal v0.4.0 sealed the tail segment
// without its index there, and the node could not start again ("sealed segment has no index
// block": hashicorp/raft-wal#31; the chaos run met it).
func TestLogReopensAfterItsTailWasTruncated(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from     uint64 // the tail [from, 44] is dropped
		appendTo uint64 // then entries are appended up to here (0: none)
	}{
		{"last entry", 44, 0},
		{"last entry, then more", 44, 47},
		{"across segments", 20, 0},
		{"across segments, then more", 20, 23},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logger := slog.New(slog.DiscardHandler)
			const maxLogBytes = 16 << 10 // 4 KiB segments: 44 entries of 256 bytes fill several
			w, err := openWAL(dir, maxLogBytes, logger, nil)
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Repeat([]byte("x"), 256)
			store := func(from, to, term uint64) {
				t.Helper()
				for i := from; i <= to; i += 4 {
					var batch []*raft.Log
					for j := i; j <= min(i+3, to); j++ {
						batch = append(batch, &raft.Log{Index: j, Term: term, Type: raft.LogCommand, Data: data})
					}
					if err := w.StoreLogs(batch); err != nil {
						t.Fatal(err)
					}
				}
			}
			store(1, 44, 1)
			if err := w.DeleteRange(tc.from, 44); err != nil {
				t.Fatal(err)
			}
			last := tc.from - 1
			if tc.appendTo > 0 {
				store(tc.from, tc.appendTo, 2)
				last = tc.appendTo
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			w, err = openWAL(dir, maxLogBytes, logger, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			gotFirst, _ := w.FirstIndex()
			gotLast, _ := w.LastIndex()
			if gotFirst != 1 || gotLast != last {
				t.Fatalf("log holds [%d, %d] after reopening, want [1, %d]", gotFirst, gotLast, last)
			}
			for i := uint64(1); i <= last; i++ {
				var l raft.Log
				if err := w.GetLog(i, &l); err != nil {
					t.Fatalf("entry %d after reopening: %v", i, err)
				}
				if want := uint64(1 + min(1, i/tc.from)); l.Term != want {
					t.Fatalf("entry %d has term %d, want %d", i, l.Term, want)
				}
			}
		})
	}
}

// BenchmarkLogStoreAppend appends batches of 64 entries of 1 KiB to the site's log (raft-wal, one
// fsync per batch), as a leader under load does; raftbadger's BenchmarkStoreLogs is the same on
// the badger log it replaced (issue 12: both figures, same machine).
func BenchmarkLogStoreAppend(b *testing.B) {
	ls, err := openLogStore(b.TempDir(), 256<<20, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ls.Close()
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
		if err := ls.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
	}
}
