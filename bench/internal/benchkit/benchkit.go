// Package benchkit holds what the in-process grid benchmarks (handoffbench, mirrorbench,
// convergebench, joinbench) share: latency summaries, progress lines, running a benchmark's
// phases, starting and waiting on in-process grids, and the number formats of the printed
// tables.
package benchkit

import (
	"fmt"
	"io"
	"time"

	"github.com/govgrid/govgrid/bench/loadgen"
)

// Dist is a latency distribution (nearest-rank percentiles).
type Dist struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summarise sorts lat in place and summarises it.
func Summarise(lat []time.Duration) Dist {
	s := loadgen.Summarise(lat)
	return Dist{Count: s.Count, P50: s.P50, P99: s.P99, Max: s.Max}
}

// Progress writes one line to w, prefixed with the time of day; a nil w discards it.
func Progress(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
}
