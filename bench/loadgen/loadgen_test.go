package loadgen

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

func ms(vals ...int) []time.Duration {
	out := make([]time.Duration, len(vals))
	for i, v := range vals {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func seqMs(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", ms(7), 50, 7 * time.Millisecond},
		{"single p99", ms(7), 99, 7 * time.Millisecond},
		{"p0 is min", ms(1, 2, 3), 0, 1 * time.Millisecond},
		{"negative is min", ms(1, 2, 3), -5, 1 * time.Millisecond},
		{"p100 is max", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"over 100 is max", ms(1, 2, 3), 150, 3 * time.Millisecond},
		{"two values p50", ms(1, 2), 50, 1 * time.Millisecond},
		{"two values p51", ms(1, 2), 51, 2 * time.Millisecond},
		{"odd median", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"even median lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"1..100 p50", seqMs(100), 50, 50 * time.Millisecond},
		{"1..100 p99", seqMs(100), 99, 99 * time.Millisecond},
		{"1..100 p99.9", seqMs(100), 99.9, 100 * time.Millisecond},
		{"1..1000 p99", seqMs(1000), 99, 990 * time.Millisecond},
		{"1..1000 p99.9", seqMs(1000), 99.9, 999 * time.Millisecond},
		{"1..10 p99", seqMs(10), 99, 10 * time.Millisecond},
		{"1..10 p90", seqMs(10), 90, 9 * time.Millisecond},
		{"1..200 p99", seqMs(200), 99, 198 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(n=%d, %v) = %v, want %v", len(tt.sorted), tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarise(t *testing.T) {
	shuffled := seqMs(1000)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

	tests := []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", ms(4), Summary{Count: 1, P50: 4 * time.Millisecond, P99: 4 * time.Millisecond, Max: 4 * time.Millisecond}},
		{"unsorted", ms(9, 1, 5, 3, 7), Summary{Count: 5, P50: 5 * time.Millisecond, P99: 9 * time.Millisecond, Max: 9 * time.Millisecond}},
		{"shuffled 1..1000", shuffled, Summary{Count: 1000, P50: 500 * time.Millisecond, P99: 990 * time.Millisecond, Max: 1000 * time.Millisecond}},
		{"outlier", append(seqMs(99), time.Second), Summary{Count: 100, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarise(tt.in); got != tt.want {
				t.Errorf("Summarise = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSummariseMergesWorkers(t *testing.T) {
	ws := []worker{
		{lat: ms(1, 3, 5)},
		{lat: ms(2, 4), errors: 2, firstErr: errors.New("boom")},
		{},
	}
	got := summarise(ws, 2*time.Second)
	want := Result{Ops: 5, Errors: 2, FirstError: "boom", Elapsed: 2 * time.Second, OpsPerSec: 2.5,
		P50: 3 * time.Millisecond, P99: 5 * time.Millisecond, Max: 5 * time.Millisecond}
	if got != want {
		t.Errorf("summarise = %+v, want %+v", got, want)
	}
}

// TestRunCounts checks the bookkeeping of Run (not its timing): every recorded op is a distinct
// (worker, seq) pair and errors are counted separately.
func TestRunCounts(t *testing.T) {
	seen := make([]map[int]bool, 4)
	for i := range seen {
		seen[i] = map[int]bool{}
	}
	res := Run(context.Background(), Config{Concurrency: 4, Duration: 50 * time.Millisecond}, func(ctx context.Context, w, seq int) error {
		if seen[w][seq] {
			t.Errorf("worker %d seq %d issued twice", w, seq)
		}
		seen[w][seq] = true
		time.Sleep(time.Millisecond)
		if seq%2 == 1 {
			return errors.New("odd")
		}
		return nil
	})
	if res.Ops == 0 || res.Errors == 0 {
		t.Fatalf("expected some ops and errors, got %+v", res)
	}
	if res.FirstError != "odd" {
		t.Errorf("FirstError = %q", res.FirstError)
	}
	if res.Elapsed != 50*time.Millisecond {
		t.Errorf("Elapsed = %v, want the configured duration", res.Elapsed)
	}
}

func TestRunCount(t *testing.T) {
	var calls atomic.Int64
	res := RunCount(context.Background(), 8, 1000, func(ctx context.Context, w, seq int) error {
		if calls.Add(1) == 1 {
			return errors.New("first")
		}
		return nil
	})
	if res.Ops+res.Errors != 1000 || res.Errors != 1 {
		t.Fatalf("RunCount issued %d ok + %d errors, want 999 + 1", res.Ops, res.Errors)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	res := Run(ctx, Config{Concurrency: 2, Duration: time.Hour}, func(ctx context.Context, w, seq int) error {
		if seq == 10 {
			cancel()
		}
		return ctx.Err()
	})
	if res.Elapsed >= time.Hour {
		t.Fatalf("Run did not stop on cancel: %+v", res)
	}
}
