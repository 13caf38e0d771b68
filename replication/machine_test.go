package replication

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// kv is a small state machine for testing the frame: set and delete keys, with commands that
// refuse, panic, scan, or write more than one command may.
type kv struct {
	committed [][]string // each OnCommit call's effects
	restored  int
}

const (
	kvSet      CommandType = 1 // payload "k=v,k=v": set keys; "" keys are refused
	kvDel      CommandType = 2 // payload "k": delete
	kvPanic    CommandType = 3 // writes, then panics
	kvBig      CommandType = 4 // payload n: writes n keys of 100 bytes
	kvCountDir CommandType = 5 // payload prefix: writes "count/<prefix>" = keys under prefix (a scan)
)

type kvAnswer struct {
	Err string `json:"err,omitempty"`
	N   int    `json:"n,omitempty"`
}

func (a *kvAnswer) Refused() bool { return a.Err != "" }

type kvCodec struct{}

func (kvCodec) EncodeAnswer(a any) ([]byte, error) { return json.Marshal(a) }
func (kvCodec) DecodeAnswer(b []byte) (any, error) {
	a := new(kvAnswer)
	return a, json.Unmarshal(b, a)
}

func (m *kv) config() Config {
	var cs Commands
	cs.Register(kvSet, "set", func(tx *Tx, p []byte) (any, error) {
		for _, pair := range strings.Split(string(p), ",") {
			k, v, _ := strings.Cut(pair, "=")
			if k == "" {
				return &kvAnswer{Err: "empty key"}, nil
			}
			tx.Set([]byte("k/"+k), []byte(v))
			tx.Emit("set " + k)
		}
		return &kvAnswer{}, nil
	})
	cs.Register(kvDel, "del", func(tx *Tx, p []byte) (any, error) {
		tx.Delete([]byte("k/" + string(p)))
		return &kvAnswer{}, nil
	})
	cs.Register(kvPanic, "panic", func(tx *Tx, p []byte) (any, error) {
		tx.Set([]byte("k/panicked"), []byte("yes"))
		var nilMap map[string]int
		//lint:ignore SA5000 the applier must fail at run time, as a real bug would: the frame recovers it
		nilMap["boom"]++
		return &kvAnswer{}, nil
	})
	cs.Register(kvBig, "big", func(tx *Tx, p []byte) (any, error) {
		var n int
		fmt.Sscan(string(p), &n)
		for i := range n {
			tx.Set([]byte(fmt.Sprintf("big/%08d", i)), bytes.Repeat([]byte{'x'}, 100))
		}
		return &kvAnswer{N: n}, nil
	})
	cs.Register(kvCountDir, "count", func(tx *Tx, p []byte) (any, error) {
		n := 0
		err := tx.Scan([]byte("k/"+string(p)), func(k, v []byte) (bool, error) { n++; return true, nil })
		if err != nil {
			return nil, err
		}
		tx.Set([]byte("count/"+string(p)), []byte(fmt.Sprint(n)))
		return &kvAnswer{N: n}, nil
	})
	return Config{
		Commands: &cs, Answers: kvCodec{}, Logger: slog.New(slog.DiscardHandler),
		Refuse: func(err error) any { return &kvAnswer{Err: err.Error()} },
		OnCommit: func(effects []any) {
			var names []string
			for _, e := range effects {
				names = append(names, e.(string))
			}
			m.committed = append(m.committed, names)
		},
		OnRestore: func() { m.restored++ },
	}
}

var kvClock = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func kvEntry(index uint64, t CommandType, payload string) *raft.Log {
	cmd := NewCommand(t, []byte(payload))
	stampCommand(cmd, kvClock.Add(time.Duration(index)*time.Second))
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: cmd}
}

func mustOpenLocal(t *testing.T, m *kv) *Local {
	t.Helper()
	l, err := OpenLocal(t.TempDir(), m.config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustExportLocal(t *testing.T, l *Local) map[string][]byte {
	t.Helper()
	m, err := l.ExportState()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// kvLog is a log of sets, deletes, refusals and panics.
func kvLog(n int) []*raft.Log {
	var logs []*raft.Log
	for i := 1; i <= n; i++ {
		idx := uint64(i)
		switch {
		case i%11 == 0:
			logs = append(logs, kvEntry(idx, kvPanic, ""))
		case i%7 == 0:
			logs = append(logs, kvEntry(idx, kvSet, fmt.Sprintf("a%d=1,=bad", i)))
		case i%5 == 0:
			logs = append(logs, kvEntry(idx, kvDel, fmt.Sprintf("a%d", i-3)))
		case i%13 == 0:
			logs = append(logs, kvEntry(idx, kvCountDir, "a"))
		default:
			logs = append(logs, kvEntry(idx, kvSet, fmt.Sprintf("a%d=%d,b%d=%d", i, i, i%4, i)))
		}
	}
	// Raft hands configuration entries to a batching FSM too.
	return append(logs, &raft.Log{Index: uint64(n + 1), Term: 1, Type: raft.LogConfiguration})
}

func TestFrameIsDeterministicAcrossBatchings(t *testing.T) {
	logs := kvLog(150)
	one := mustOpenLocal(t, &kv{})
	for _, l := range logs {
		one.Apply([]*raft.Log{l})
	}
	big := mustOpenLocal(t, &kv{})
	big.Apply(logs)
	uneven := mustOpenLocal(t, &kv{})
	for i := 0; i < len(logs); i += 13 {
		uneven.Apply(logs[i:min(i+13, len(logs))])
	}
	want := mustExportLocal(t, one)
	for name, l := range map[string]*Local{"one batch": big, "batches of 13": uneven} {
		if got := mustExportLocal(t, l); !maps.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("%s: state differs from entry-by-entry application (%d keys vs %d)", name, len(got), len(want))
		}
	}
	if got := one.AppliedIndex(); got != uint64(len(logs)) {
		t.Errorf("applied index = %d, want %d", got, len(logs))
	}
}

func TestFrameRefusalAndPanicChangeNothing(t *testing.T) {
	m := &kv{}
	l := mustOpenLocal(t, m)
	l.Apply([]*raft.Log{kvEntry(1, kvSet, "x=1")})
	before := mustExportLocal(t, l)
	out := l.Apply([]*raft.Log{
		kvEntry(2, kvSet, "y=2,=refused"),                                         // refused after writing y
		kvEntry(3, kvPanic, ""),                                                   // panics after writing
		{Index: 4, Type: raft.LogCommand, Data: []byte{1, 2}},                     // not a command
		{Index: 5, Type: raft.LogCommand, Data: NewCommand(kvSet, []byte("z=3"))}, // no time
	})
	for i, a := range out {
		if r, ok := a.(*kvAnswer); !ok || !r.Refused() {
			t.Errorf("entry %d answered %#v, want a refusal", i+2, a)
		}
	}
	after := mustExportLocal(t, l)
	delete(before, string(KeyApplied))
	delete(after, string(KeyApplied))
	if !maps.EqualFunc(after, before, bytes.Equal) {
		t.Fatalf("refused commands changed the state: %q", keysOf(after))
	}
	if l.AppliedIndex() != 5 {
		t.Fatalf("applied index %d: refused entries must still be applied (as no-ops)", l.AppliedIndex())
	}
	if len(m.committed) != 1 || len(m.committed[0]) != 1 {
		t.Fatalf("effects committed: %v, want only the first set's", m.committed)
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestFrameRefusesACommandOverItsWriteLimit(t *testing.T) {
	l := mustOpenLocal(t, &kv{})
	// 10,000 writes of ~112 bytes: over both limits, alone.
	out := l.Apply([]*raft.Log{kvEntry(1, kvBig, "10000"), kvEntry(2, kvSet, "after=1")})
	a := out[0].(*kvAnswer)
	if !a.Refused() || !strings.Contains(a.Err, ErrCommandTooLarge.Error()) {
		t.Fatalf("oversized command answered %+v", a)
	}
	state := mustExportLocal(t, l)
	if _, ok := state["big/00000000"]; ok {
		t.Fatal("the oversized command wrote something")
	}
	if string(state["k/after"]) != "1" {
		t.Fatal("the entry after the oversized one was not applied")
	}
}

// TestFrameSplitsABatchTooBigForOneTransaction applies more entries in one batch than a badger
// transaction takes (36 entries of 3,000 writes each, against badger's 13,107 writes a
// transaction): the frame commits whole-entry prefixes, ends with exactly the state of applying
// them one by one, and hands over the effects of every part (none lost to a split).
func TestFrameSplitsABatchTooBigForOneTransaction(t *testing.T) {
	var logs []*raft.Log
	for i := 1; i <= 40; i++ {
		if i%10 == 0 {
			logs = append(logs, kvEntry(uint64(i), kvSet, fmt.Sprintf("marker%d=1", i)))
			continue
		}
		logs = append(logs, kvEntry(uint64(i), kvBig, "3000")) // ~350 KB each
	}
	m := &kv{}
	whole := mustOpenLocal(t, m)
	out := whole.Apply(logs)
	for i, a := range out {
		if r := a.(*kvAnswer); r.Refused() {
			t.Fatalf("entry %d refused: %s", i+1, r.Err)
		}
	}
	var effects []string
	for _, c := range m.committed {
		effects = append(effects, c...)
	}
	if want := []string{"set marker10", "set marker20", "set marker30", "set marker40"}; strings.Join(effects, ";") != strings.Join(want, ";") {
		t.Fatalf("effects handed over: %v, want %v", effects, want)
	}
	single := mustOpenLocal(t, &kv{})
	for _, l := range logs {
		single.Apply([]*raft.Log{l})
	}
	if a, b := mustExportLocal(t, whole), mustExportLocal(t, single); !maps.EqualFunc(a, b, bytes.Equal) {
		t.Fatalf("state after one oversized batch (%d keys) differs from one entry at a time (%d keys)", len(a), len(b))
	}
}

func TestFrameScanSeesTheCommandsOwnWrites(t *testing.T) {
	l := mustOpenLocal(t, &kv{})
	l.Apply([]*raft.Log{kvEntry(1, kvSet, "a1=1,a2=2,a3=3"), kvEntry(2, kvDel, "a2")})
	out := l.Apply([]*raft.Log{kvEntry(3, kvCountDir, "a")})
	if n := out[0].(*kvAnswer).N; n != 2 {
		t.Fatalf("scan counted %d keys under k/a, want 2", n)
	}
}

func TestFrameSkipsUnknownCommandsOnlyWithFlag(t *testing.T) {
	l := mustOpenLocal(t, &kv{})
	if a := l.Apply([]*raft.Log{kvEntry(1, IgnoreUnknown|0x33, "{}")})[0]; a != nil {
		t.Fatalf("flagged unknown command answered %v", a)
	}
	if l.AppliedIndex() != 1 {
		t.Fatal("flagged unknown command did not advance the applied index")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an unknown command without the ignore flag did not stop the FSM")
		}
	}()
	l.Apply([]*raft.Log{kvEntry(2, 0x33, "{}")})
}

func TestFrameReplayIsHarmless(t *testing.T) {
	dir := t.TempDir()
	logs := kvLog(60)
	l, err := OpenLocal(dir, (&kv{}).config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Apply(logs[:40])
	before := mustExportLocal(t, l)
	l.Apply(logs[:40])
	if !maps.EqualFunc(mustExportLocal(t, l), before, bytes.Equal) {
		t.Fatal("replaying applied entries changed the state")
	}
	l.Close()
	l2, err := OpenLocal(dir, (&kv{}).config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got := l2.AppliedIndex(); got != 40 {
		t.Fatalf("applied index after reopen = %d, want 40", got)
	}
	l2.Apply(logs)
	ref := mustOpenLocal(t, &kv{})
	ref.Apply(logs)
	if !maps.EqualFunc(mustExportLocal(t, l2), mustExportLocal(t, ref), bytes.Equal) {
		t.Fatal("state after crash-and-replay differs from a clean application")
	}
}

func TestCommandTimeIsUTC(t *testing.T) {
	cmd := NewCommand(kvSet, nil)
	stampCommand(cmd, time.Date(2026, 11, 25, 23, 0, 0, 0, time.FixedZone("CST", 8*3600)))
	_, at, _, err := parseCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if at.Location() != time.UTC || at.Hour() != 15 {
		t.Fatalf("command time %v: want 15:00 UTC, whatever the node's zone", at)
	}
	if binary.BigEndian.Uint64(cmd[1:9]) == 0 {
		t.Fatal("stamp left the time empty")
	}
}

func TestProposingAnUnknownCommandIsAnError(t *testing.T) {
	l := mustOpenLocal(t, &kv{})
	if _, err := l.Propose(t.Context(), NewCommand(0x40, nil)); !errors.Is(err, ErrCorruptCommand) {
		t.Fatalf("proposing an unknown type: %v", err)
	}
}
