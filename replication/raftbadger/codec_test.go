package raftbadger

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestEncodeLogSize(t *testing.T) {
	for i := uint64(1); i < 200; i++ {
		l := makeLog(i * 0x0102030405)
		if got, want := len(encodeLog(l)), encodedLogSize(l); got != want {
			t.Fatalf("log %d: encoded %d bytes, encodedLogSize says %d", i, got, want)
		}
	}
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, 1 << 62, -1 << 63, 1<<63 - 1} {
		l := &raft.Log{AppendedAt: time.Unix(0, v)}
		if got, want := len(encodeLog(l)), encodedLogSize(l); got != want {
			t.Fatalf("nanos %d: encoded %d bytes, encodedLogSize says %d", v, got, want)
		}
	}
}

func TestDecodeLogRejects(t *testing.T) {
	good := encodeLog(&raft.Log{Index: 1, Term: 2, Data: []byte("abc"), AppendedAt: time.Unix(5, 6)})
	tests := map[string][]byte{
		"empty":           nil,
		"header only":     {logFormatV1, 0},
		"bad version":     append([]byte{2}, good[1:]...),
		"unknown flags":   append([]byte{logFormatV1, 0x80}, good[2:]...),
		"truncated":       good[:len(good)-1],
		"trailing bytes":  append(append([]byte{}, good...), 0),
		"huge length":     {logFormatV1, 0, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"varint overflow": {logFormatV1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	for name, b := range tests {
		var l raft.Log
		if err := decodeLog(b, &l); !errors.Is(err, ErrCorruptLog) {
			t.Errorf("%s: decodeLog error = %v, want ErrCorruptLog", name, err)
		}
	}
}

// TestDecodeLogDoesNotAlias checks that decoded slices do not share memory
// with the input (badger's buffers are only valid inside a transaction) and
// that appending to Data cannot clobber Extensions.
func TestDecodeLogDoesNotAlias(t *testing.T) {
	b := encodeLog(&raft.Log{Index: 1, Data: []byte("data"), Extensions: []byte("ext")})
	var l raft.Log
	if err := decodeLog(b, &l); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	l.Data = append(l.Data, "more"...)
	if string(l.Data) != "datamore" || string(l.Extensions) != "ext" {
		t.Fatalf("decoded = %q / %q", l.Data, l.Extensions)
	}
}

// FuzzDecodeLog feeds arbitrary bytes to decodeLog: it must never panic,
// and whatever it accepts must survive an encode/decode round trip.
func FuzzDecodeLog(f *testing.F) {
	for i := uint64(1); i < 30; i++ {
		f.Add(encodeLog(makeLog(i)))
	}
	f.Add([]byte{})
	f.Add([]byte{logFormatV1, flagAppendedAt})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err != nil {
			if !errors.Is(err, ErrCorruptLog) {
				t.Fatalf("decodeLog error %v does not wrap ErrCorruptLog", err)
			}
			return
		}
		enc := encodeLog(&l)
		if len(enc) > len(b) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(enc))
		}
		var l2 raft.Log
		if err := decodeLog(enc, &l2); err != nil {
			t.Fatalf("decode of re-encoded log: %v", err)
		}
		if !logsEqual(&l, &l2) {
			t.Fatalf("round trip changed log: %+v -> %+v", l, l2)
		}
	})
}

// FuzzLogRoundTrip builds logs from fuzzed fields and checks that
// encodeLog followed by decodeLog reproduces them.
func FuzzLogRoundTrip(f *testing.F) {
	f.Add(uint64(1), uint64(1), uint8(0), []byte("cmd"), []byte(nil), true, time.Now().UnixNano())
	f.Add(^uint64(0), ^uint64(0), uint8(255), []byte{}, []byte("ext"), false, int64(0))
	f.Add(uint64(0), uint64(0), uint8(5), []byte(nil), []byte(nil), true, int64(-1))
	f.Fuzz(func(t *testing.T, index, term uint64, typ uint8, data, ext []byte, hasTime bool, nanos int64) {
		in := raft.Log{Index: index, Term: term, Type: raft.LogType(typ), Data: data, Extensions: ext}
		if hasTime {
			in.AppendedAt = time.Unix(0, nanos)
		}
		enc := encodeLog(&in)
		if len(enc) != encodedLogSize(&in) {
			t.Fatalf("encoded %d bytes, encodedLogSize says %d", len(enc), encodedLogSize(&in))
		}
		var out raft.Log
		if err := decodeLog(enc, &out); err != nil {
			t.Fatalf("decodeLog: %v", err)
		}
		if !logsEqual(&in, &out) || in.AppendedAt.IsZero() != out.AppendedAt.IsZero() {
			t.Fatalf("round trip: %+v -> %+v", in, out)
		}
		if !bytes.Equal(enc, encodeLog(&out)) {
			t.Fatal("re-encoding differs")
		}
	})
}

func BenchmarkEncodeLog(b *testing.B) {
	l := &raft.Log{Index: 123456, Term: 7, Data: bytes.Repeat([]byte("x"), 1024), AppendedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		_ = encodeLog(l)
	}
}

func BenchmarkDecodeLog(b *testing.B) {
	enc := encodeLog(&raft.Log{Index: 123456, Term: 7, Data: bytes.Repeat([]byte("x"), 1024), AppendedAt: time.Now()})
	var l raft.Log
	b.ReportAllocs()
	for b.Loop() {
		if err := decodeLog(enc, &l); err != nil {
			b.Fatal(err)
		}
	}
}
