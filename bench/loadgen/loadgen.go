// Package loadgen is a small closed-loop load generator: each of N workers issues one request at a
// time and starts the next one as soon as the previous one returns. Every latency is recorded in a
// per-worker slice; the slices are merged and sorted once at the end, which is exact and cheap
// enough for the run lengths used by the govgrid benchmarks.
package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one request. worker is the worker's index in [0, Concurrency) and seq counts that worker's
// requests from 0, so (worker, seq) is unique within a run.
type Op func(ctx context.Context, worker int, seq int) error

// Config describes one run.
type Config struct {
	// Concurrency is the number of workers, each with one request in flight. Values below 1 mean 1.
	Concurrency int
	// Duration is the length of the measured window, which starts after Warmup.
	Duration time.Duration
	// Warmup is run before the measured window; its requests are not recorded.
	Warmup time.Duration
}

// Result summarises a run. Ops, Errors and the latencies count requests that completed inside the
// measured window; a request still in flight when the window closes is waited for but discarded.
type Result struct {
	// Ops is the number of successful requests.
	Ops int64 `json:"ops"`
	// Errors is the number of failed requests.
	Errors int64 `json:"errors"`
	// FirstError is the text of the first error seen in the measured window, if any.
	FirstError string `json:"first_error,omitempty"`
	// Elapsed is the length of the measured window: Config.Duration, or less if ctx ended early.
	Elapsed time.Duration `json:"elapsed_ns"`
	// OpsPerSec is Ops divided by Elapsed.
	OpsPerSec float64 `json:"ops_per_sec"`
	// P50, P99 and Max are latencies of successful requests (nearest-rank percentiles).
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// Run drives op with cfg.Concurrency workers for cfg.Warmup plus cfg.Duration and returns what was
// measured after the warmup. It returns early (with the window shortened accordingly) if ctx ends;
// ctx is passed to every op unchanged.
func Run(ctx context.Context, cfg Config, op Op) Result {
	n := max(cfg.Concurrency, 1)
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)

	workers := make([]worker, n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			workers[w].loop(ctx, w, op, func(done time.Time) (record, more bool) {
				if ctx.Err() != nil {
					return false, false
				}
				return !done.Before(measureFrom) && !done.After(end), done.Before(end)
			})
		}()
	}
	wg.Wait()

	stop := end
	if now := time.Now(); ctx.Err() != nil && now.Before(end) {
		stop = now
	}
	return summarise(workers, stop.Sub(measureFrom))
}

// RunCount drives op with concurrency workers until total requests have been issued (or ctx ends)
// and returns every request's outcome; Elapsed is the wall time of the whole run. It is meant for
// loading a fixed amount of data as fast as possible.
func RunCount(ctx context.Context, concurrency int, total int, op Op) Result {
	n := max(concurrency, 1)
	var next atomic.Int64
	workers := make([]worker, n)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			workers[w].loopTickets(ctx, w, op, &next, int64(total))
		}()
	}
	wg.Wait()
	return summarise(workers, time.Since(start))
}

// worker holds one worker's recordings.
type worker struct {
	lat      []time.Duration
	errors   int64
	firstErr error
}

// loop runs ops until decide says to stop; decide is asked after every op, with the time it
// completed, whether to record it and whether to go on.
func (w *worker) loop(ctx context.Context, id int, op Op, decide func(done time.Time) (record, more bool)) {
	for seq := 0; ; seq++ {
		t0 := time.Now()
		err := op(ctx, id, seq)
		t1 := time.Now()
		record, more := decide(t1)
		if record {
			w.observe(t1.Sub(t0), err)
		}
		if !more {
			return
		}
	}
}

// loopTickets runs ops while tickets (shared by all workers) remain.
func (w *worker) loopTickets(ctx context.Context, id int, op Op, next *atomic.Int64, total int64) {
	for seq := 0; ctx.Err() == nil; seq++ {
		if next.Add(1) > total {
			return
		}
		t0 := time.Now()
		err := op(ctx, id, seq)
		w.observe(time.Since(t0), err)
	}
}

func (w *worker) observe(d time.Duration, err error) {
	if err != nil {
		w.errors++
		if w.firstErr == nil {
			w.firstErr = err
		}
		return
	}
	w.lat = append(w.lat, d)
}

func summarise(workers []worker, elapsed time.Duration) Result {
	var all []time.Duration
	var res Result
	for i := range workers {
		all = append(all, workers[i].lat...)
		res.Errors += workers[i].errors
		if res.FirstError == "" && workers[i].firstErr != nil {
			res.FirstError = workers[i].firstErr.Error()
		}
	}
	res.Ops = int64(len(all))
	res.Elapsed = elapsed
	if elapsed > 0 {
		res.OpsPerSec = float64(res.Ops) / elapsed.Seconds()
	}
	s := Summarise(all)
	res.P50, res.P99, res.Max = s.P50, s.P99, s.Max
	return res
}
