package sitestate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
)

// mirroredRecord is the stored mirror record of a descendant's new case, as a district keeps it.
func mirroredRecord(t testing.TB, i int) *storedMirror {
	sub := testSubmission(i)
	sub.RequestID = fmt.Sprintf("req-%d", i)
	at := time.Date(2026, 11, 28, 9, 0, i, 0, time.UTC)
	c, err := casework.Accept(&sub, casework.Acceptance{Number: casework.FormatNumber("c01", "20261128", uint32(i+1)), Site: "c01", At: at,
		QueryCodeHash: casework.HashQueryCode(sub.RequestID, "123456")})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return &storedMirror{Case: raw, Origin: "c01", At: at, MirroredAt: at.Add(time.Second), Via: "t01"}
}

// TestMirrorRecordCompresses: a record that carries its case is stored compressed and reads back
// the same; a held reference and a record of the JSON format read as they always did.
func TestMirrorRecordCompresses(t *testing.T) {
	var plain, stored int
	for i := range 200 {
		rec := mirroredRecord(t, i)
		want, _ := json.Marshal(rec)
		b, err := encodeStoredMirror(rec)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != mirrorFormatS2Dict1 {
			t.Fatalf("record %d stored as %q...", i, b[:8])
		}
		plain, stored = plain+len(want), stored+len(b)
		var got storedMirror
		if err := decodeStoredMirror(b, &got); err != nil {
			t.Fatal(err)
		}
		if again, _ := json.Marshal(&got); !bytes.Equal(again, want) {
			t.Fatalf("record %d reads back as\n%s\nwant\n%s", i, again, want)
		}
	}
	if ratio := float64(plain) / float64(stored); ratio < 1.6 {
		t.Fatalf("records stored in %d bytes for %d of JSON: %.2f×, want at least 1.6×", stored, plain, ratio)
	}

	held := &storedMirror{Held: true, Number: "c01-20261128-000001", Origin: "c01"}
	b, err := encodeStoredMirror(held)
	if err != nil || b[0] != '{' {
		t.Fatalf("a held reference is stored as %q (%v), want its JSON", b, err)
	}
	old, _ := json.Marshal(mirroredRecord(t, 7))
	var got storedMirror
	if err := decodeStoredMirror(old, &got); err != nil || got.Origin != "c01" || got.Via != "t01" || !json.Valid(got.Case) {
		t.Fatalf("a record of the JSON format reads as %+v (%v)", got, err)
	}
	if err := decodeStoredMirror([]byte{mirrorFormatS2Dict1, 0xff, 0xff}, &got); err == nil {
		t.Fatal("a damaged compressed record decoded without an error")
	}
}

// BenchmarkMirrorRecord encodes and decodes a stored mirror record of a descendant's case.
func BenchmarkMirrorRecord(b *testing.B) {
	rec := mirroredRecord(b, 1)
	stored, _ := encodeStoredMirror(rec)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := encodeStoredMirror(rec); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(stored)), "bytes")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var out storedMirror
			if err := decodeStoredMirror(stored, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
