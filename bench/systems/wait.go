package systems

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// pollInterval is the pause between readiness checks.
const pollInterval = 100 * time.Millisecond

// permanent is a check's error that trying again cannot mend: waitUntil returns it at once.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// waitUntil calls check until it succeeds, ctx ends or timeout passes. Each check gets a context
// bounded by a few seconds. If one of procs exits meanwhile, waitUntil fails at once with the tail
// of its log. The error on timeout carries the last check error; a permanent one ends the wait
// at once.
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
		if p := (permanent{}); errors.As(last, &p) {
			return fmt.Errorf("%s: %w", what, p.error)
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
