package loadgen

import (
	"math"
	"slices"
	"time"
)

// Summary holds order statistics of a set of latencies.
type Summary struct {
	Count int
	P50   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// Summarise sorts lat in place and returns its median, 99th percentile and maximum. An empty
// slice gives a zero Summary.
func Summarise(lat []time.Duration) Summary {
	slices.Sort(lat)
	if len(lat) == 0 {
		return Summary{}
	}
	return Summary{
		Count: len(lat),
		P50:   Percentile(lat, 50),
		P99:   Percentile(lat, 99),
		Max:   lat[len(lat)-1],
	}
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the nearest-rank method: the
// smallest value such that at least p percent of the values are less than or equal to it. p <= 0
// gives the minimum; an empty slice gives 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// A small tolerance keeps e.g. 0.99*100 (=98.99999999999999) from rounding up to rank 100.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}
