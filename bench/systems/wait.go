package systems

import (
	"context"
	"fmt"
	"time"
)

// pollInterval is the pause between readiness checks.
const pollInterval = 100 * time.Millisecond

// waitUntil calls check until it succeeds, ctx ends or timeout passes. Each check gets a context
// bounded by a few seconds. If one of procs exits meanwhile, waitUntil fails at once with the tail
// of its log. The error on timeout carries the last check error.
func waitUntil(ctx context.Context, timeout time.Duration, what string, procs []*process, check func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		for _, p := range procs {
			if done, err := p.exited(); done {
				return errExited(p, err)
			}
		}
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			tail := ""
			if len(procs) > 0 {
				tail = "\n" + procs[0].logTail(20)
			}
			return fmt.Errorf("waiting for %s: %w (last error: %v)%s", what, ctx.Err(), last, tail)
		case <-time.After(pollInterval):
		}
	}
}
