// Package benchkit holds what the in-process grid benchmarks (handoffbench, mirrorbench) share:
// latency summaries, progress lines, waiting on in-process nodes, and the number formats of the
// printed tables.
package benchkit

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/govgrid/govgrid/bench/loadgen"
	"github.com/govgrid/govgrid/node"
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

// Until calls cond every interval until it returns nil, ctx ends or timeout passes (then it
// returns cond's last error).
func Until(ctx context.Context, timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// Listed checks that n's committed registry lists every site of want with a leader.
func Listed(n *node.Node, want map[string]bool) error {
	recs, err := n.State().Sites()
	if err != nil {
		return err
	}
	found := 0
	for _, r := range recs {
		if want[r.Code] && r.Leader != "" {
			found++
		}
	}
	if found < len(want) {
		return fmt.Errorf("%s's registry lists %d of the %d sites expected", n.Site(), found, len(want))
	}
	return nil
}

// PollApplied calls scan every interval until stop is closed, telling it whether applied (a
// node's applied index) moved since the previous tick. A watcher waiting for entries to be
// applied scans only when moved is true or it has something new to look for.
func PollApplied(stop <-chan struct{}, interval time.Duration, applied func() uint64, scan func(moved bool)) {
	var last uint64
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		idx := applied()
		scan(idx != last)
		last = idx
	}
}
