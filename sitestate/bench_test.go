package sitestate

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/tier"
	"github.com/hashicorp/raft"
)

// The write path layer by layer (issue 12): a regression shows here without running a grid.
// `go test -run '^$' -bench . ./sitestate ./replication`.

// benchSubmission is a case of about 1 KiB, as the systems benchmark submits.
func benchSubmission(i int) casework.Submission {
	sub := testSubmission(i)
	sub.Description = strings.Repeat("申请人因户籍迁移需办理相关证明，材料齐全，请予受理。", 12)
	sub.RequestID = fmt.Sprintf("bench-%d", i)
	return sub
}

// BenchmarkApplySubmitBatch applies batches of 256 submissions to a district's state on disk,
// as a leader's FSM does under load: per case, the numbering, the record, its indexes, the
// request id, the mirror reference and the feed entry.
func BenchmarkApplySubmitBatch(b *testing.B) {
	st, err := OpenLocal(Config{Site: "cd", Tier: tier.District, Location: testLoc, Logger: slog.New(slog.DiscardHandler)}, b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	local := st.b.(*replication.Local)
	const batch = 256
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	index, n := local.AppliedIndex(), 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		logs := make([]*raft.Log, batch)
		for j := range logs {
			body, _ := encodeSubmitCommand(&submitCommand{Submission: benchSubmission(n), Site: "cd", Tier: tier.District, QueryCode: "123456"})
			index++
			n++
			logs[j] = &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: replication.StampedCommand(cmdSubmitCasePB, body, at)}
		}
		b.StartTimer()
		for _, a := range local.Apply(logs) {
			if ans, ok := a.(*Answer); !ok || ans.Err != nil {
				b.Fatalf("apply: %v", a)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch)/1000, "µs/case")
}

// BenchmarkCaseRecordJSON encodes and decodes a stored case record (a new case: one event).
func BenchmarkCaseRecordJSON(b *testing.B) {
	sub := benchSubmission(1)
	c, err := casework.Accept(&sub, casework.Acceptance{Number: "cd-20261128-000001", Site: "cd", At: time.Now(), QueryCodeHash: "x"})
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := json.Marshal(c)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := json.Marshal(c); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(raw)), "bytes")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var out casework.Case
			if err := json.Unmarshal(raw, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
