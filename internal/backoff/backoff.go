// Package backoff spaces out retries: exponential delays with jitter, shared by every loop
// that retries a peer or a proposal (handoff delivery, feed pulls, restore, joining the grid,
// proposals without a leader).
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff gives exponentially growing delays between Min and Max, each spread by ±Jitter (a
// fraction: 0.5 gives 0.5x to 1.5x) so that many retrying clients do not move in step. The zero
// value is not useful: set Min and Max. A Backoff is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	Jitter   float64
	cur      time.Duration
}

// Next returns the delay before the next attempt and doubles the one after it, up to Max.
func (b *Backoff) Next() time.Duration {
	b.cur = min(max(2*b.cur, b.Min), b.Max)
	if b.Jitter <= 0 {
		return b.cur
	}
	return time.Duration(float64(b.cur) * (1 - b.Jitter + 2*b.Jitter*rand.Float64()))
}

// Reset starts again from Min: the last attempt succeeded.
func (b *Backoff) Reset() { b.cur = 0 }
