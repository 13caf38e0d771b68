package replication

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

var testLoc = time.FixedZone("CST", 8*3600)

func mustNewFSM(t *testing.T, dir string) *fsm {
	t.Helper()
	f, err := newFSM(dir, testLoc, slog.New(slog.DiscardHandler), newMetrics(prometheus.NewRegistry(), func() float64 { return 0 }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.close() })
	return f
}

func testSubmission(i int) casework.Submission {
	return casework.Submission{
		Kind: casework.KindApplication, ItemCode: "GA-001", Title: fmt.Sprintf("户籍证明 %d", i),
		Applicant: &casework.Applicant{Name: "张三", IDNumber: "630102199001011234", Phone: "13800000000"},
		Materials: []casework.Material{{Name: "身份证复印件"}},
		RequestID: fmt.Sprintf("req-%d", i),
	}
}

// testLog builds the i-th command entry of a test log: submissions spread over two days, with
// every tenth one a retry of an earlier request and every seventh one invalid.
func testLog(t *testing.T, i int) *raft.Log {
	t.Helper()
	sub := testSubmission(i)
	if i%10 == 9 {
		sub.RequestID = fmt.Sprintf("req-%d", i-5)
	}
	if i%7 == 6 {
		sub.Applicant = nil
	}
	at := time.Date(2026, 11, 25, 15, 59, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	data, err := encodeCommand(cmdSubmitCase, &submitCommand{Submission: sub, Site: "cd", QueryCodeHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	stampCommand(data, at)
	return &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data}
}

func testLogs(t *testing.T, n int) []*raft.Log {
	logs := make([]*raft.Log, n)
	for i := range logs {
		logs[i] = testLog(t, i)
	}
	// Raft hands the FSM configuration and no-op entries too.
	logs = append(logs, &raft.Log{Index: uint64(n + 1), Term: 2, Type: raft.LogNoop})
	return logs
}

func mustExport(t *testing.T, f *fsm) map[string][]byte {
	t.Helper()
	m, err := f.exportState()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFSMIsDeterministicAcrossBatchings(t *testing.T) {
	logs := testLogs(t, 120)
	one := mustNewFSM(t, t.TempDir())
	for _, l := range logs {
		one.ApplyBatch([]*raft.Log{l})
	}
	big := mustNewFSM(t, t.TempDir())
	big.ApplyBatch(logs)
	uneven := mustNewFSM(t, t.TempDir())
	for i := 0; i < len(logs); i += 13 {
		uneven.ApplyBatch(logs[i:min(i+13, len(logs))])
	}
	want := mustExport(t, one)
	for name, f := range map[string]*fsm{"one batch": big, "batches of 13": uneven} {
		if got := mustExport(t, f); !maps.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("%s: state differs from entry-by-entry application (%d keys vs %d)", name, len(got), len(want))
		}
	}
	if got := one.applied.Load(); got != uint64(len(logs)) {
		t.Errorf("applied index = %d, want %d", got, len(logs))
	}
}

func TestFSMReplayIsHarmless(t *testing.T) {
	dir := t.TempDir()
	logs := testLogs(t, 60)
	f := mustNewFSM(t, dir)
	f.ApplyBatch(logs[:40])
	before := mustExport(t, f)
	// Replay of what is already applied, as after a crash: nothing changes.
	f.ApplyBatch(logs[:40])
	if got := mustExport(t, f); !maps.EqualFunc(got, before, bytes.Equal) {
		t.Fatal("replaying applied entries changed the state")
	}
	// Reopen: the applied index survived; replaying everything applies only the rest.
	f.close()
	f2 := mustNewFSM(t, dir)
	if got := f2.applied.Load(); got != 40 {
		t.Fatalf("applied index after reopen = %d, want 40", got)
	}
	f2.ApplyBatch(logs)
	ref := mustNewFSM(t, t.TempDir())
	ref.ApplyBatch(logs)
	if !maps.EqualFunc(mustExport(t, f2), mustExport(t, ref), bytes.Equal) {
		t.Fatal("state after crash-and-replay differs from a clean application")
	}
}

func TestFSMSubmitRules(t *testing.T) {
	f := mustNewFSM(t, t.TempDir())
	res := f.ApplyBatch(testLogs(t, 12))
	first := res[0].(*result)
	if first.Err != nil || first.Case.Number != "cd-20261125-000001" {
		t.Fatalf("first case: %+v", first)
	}
	// Entry 1 is at 15:59:01 UTC = 23:59:01 in Shanghai; 61 s later the day has turned there.
	if got := res[1].(*result).Case.Number; got != "cd-20261125-000002" {
		t.Errorf("second case number = %s", got)
	}
	if r := res[6].(*result); r.Err == nil || r.Err.Code != CodeInvalid || r.Case != nil {
		t.Errorf("invalid submission: %+v", r)
	}
	dup := res[9].(*result)
	if !dup.Duplicate || dup.Case.Number != res[4].(*result).Case.Number {
		t.Errorf("retry of req-4 answered %+v, want the case of req-4", dup)
	}
	if res[12] != nil {
		t.Errorf("no-op entry answered %v", res[12])
	}
	// Sequences are dense per day: the invalid and duplicate entries used none.
	page, err := f.listCases(Filter{Limit: MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Cases) != 10 {
		t.Fatalf("listed %d cases, want 10", len(page.Cases))
	}
	for _, c := range page.Cases {
		if err := c.VerifyHistory(); err != nil {
			t.Errorf("%s: %v", c.Number, err)
		}
	}
}

func TestFSMDayTurnsInGridTimeZone(t *testing.T) {
	f := mustNewFSM(t, t.TempDir())
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC) // midnight in Shanghai
	sub := testSubmission(1)
	data, _ := encodeCommand(cmdSubmitCase, &submitCommand{Submission: sub, Site: "cd"})
	stampCommand(data, at)
	r := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}).(*result)
	if r.Err != nil || r.Case.Number != "cd-20261126-000001" {
		t.Fatalf("got %+v, want number cd-20261126-000001", r)
	}
}

func TestFSMSkipsUnknownCommandsOnlyWithFlag(t *testing.T) {
	f := mustNewFSM(t, t.TempDir())
	r := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: append([]byte{byte(ignoreUnknownFlag | 0x33), 0, 0, 0, 0, 0, 0, 0, 1}, '{', '}')})
	if res := r.(*result); res.Err != nil {
		t.Fatalf("flagged unknown command: %+v", res)
	}
	if f.applied.Load() != 1 {
		t.Fatal("flagged unknown command did not advance the applied index")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an unknown command without the ignore flag did not stop the FSM")
		}
	}()
	f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: append([]byte{0x33, 0, 0, 0, 0, 0, 0, 0, 1}, '{', '}')})
}

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
	if err := loadSnapshot(bytes.NewReader(sink.Bytes()), other+restoreSuffix, slog.New(slog.DiscardHandler)); err != nil {
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

func TestListCasesPagingAndFilters(t *testing.T) {
	f := mustNewFSM(t, t.TempDir())
	f.ApplyBatch(testLogs(t, 100))
	all := map[string]bool{}
	token := ""
	var last time.Time
	for pages := 0; ; pages++ {
		p, err := f.listCases(Filter{Limit: 7, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Cases {
			if all[c.Number] {
				t.Fatalf("%s listed twice", c.Number)
			}
			if !last.IsZero() && c.CreatedAt.After(last) {
				t.Fatalf("listing is not newest first at %s", c.Number)
			}
			last = c.CreatedAt
			all[c.Number] = true
		}
		if p.NextPageToken == "" {
			break
		}
		token = p.NextPageToken
	}
	// One case per distinct request id among the valid entries (see testLog).
	ids := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("req-%d", i)
		if i%10 == 9 {
			id = fmt.Sprintf("req-%d", i-5)
		}
		if i%7 != 6 {
			ids[id] = true
		}
	}
	want := len(ids)
	if len(all) != want {
		t.Fatalf("paged through %d cases, want %d", len(all), want)
	}
	from := time.Date(2026, 11, 25, 16, 0, 30, 0, time.UTC)
	p, err := f.listCases(Filter{Status: casework.StatusSubmitted, From: from, Limit: MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Cases {
		if c.CreatedAt.Before(from) {
			t.Fatalf("%s is before the from bound", c.Number)
		}
	}
	if len(p.Cases) == 0 || len(p.Cases) >= want {
		t.Fatalf("from filter kept %d of %d", len(p.Cases), want)
	}
	if p, _ := f.listCases(Filter{Kind: casework.KindGrievance}); len(p.Cases) != 0 {
		t.Fatal("kind filter matched applications")
	}
	if _, err := f.listCases(Filter{PageToken: "not-a-token!"}); err == nil || !strings.Contains(err.Error(), "page_token") {
		t.Fatalf("bad token: %v", err)
	}
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add([]byte(snapshotMagic))
	f.Add([]byte(snapshotMagic + "\x02a\x02b\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00"))
	dir := f.TempDir()
	db, err := openStateDB(filepath.Join(dir, "fuzz"), slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = readSnapshot(bytes.NewReader(data), db) // must not panic or hang
	})
}

// TestFSMSplitsABatchTooBigForOneTransaction applies more entries in one batch than a badger
// transaction takes: the FSM must split it into whole-entry prefixes, never committing part of
// an entry, and end with exactly the state of applying them one by one.
func TestFSMSplitsABatchTooBigForOneTransaction(t *testing.T) {
	const n = 4000 // each submission writes ~8 keys: well over one transaction's limit
	logs := make([]*raft.Log, n)
	for i := range logs {
		sub := testSubmission(i)
		data, err := encodeCommand(cmdSubmitCase, &submitCommand{Submission: sub, Site: "cd", QueryCodeHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		stampCommand(data, time.Date(2026, 11, 25, 9, 0, 0, 0, testLoc).Add(time.Duration(i)*time.Millisecond))
		logs[i] = &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data}
	}
	whole := mustNewFSM(t, t.TempDir())
	out := whole.ApplyBatch(logs)
	for i, r := range out {
		res, ok := r.(*result)
		if !ok || res.Err != nil || res.Case == nil || res.Case.Number == "" {
			t.Fatalf("entry %d: answer %+v", i+1, r)
		}
		if want := fmt.Sprintf("cd-20261125-%06d", i+1); res.Case.Number != want {
			t.Fatalf("entry %d answered %s, want %s: an entry was applied twice or skipped", i+1, res.Case.Number, want)
		}
	}
	single := mustNewFSM(t, t.TempDir())
	for _, l := range logs {
		single.ApplyBatch([]*raft.Log{l})
	}
	a, b := mustExport(t, whole), mustExport(t, single)
	if !maps.EqualFunc(a, b, bytes.Equal) {
		t.Fatalf("state after one oversized batch (%d keys) differs from one entry at a time (%d keys)", len(a), len(b))
	}
}
