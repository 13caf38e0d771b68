package benchkit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/node"
)

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

// SleepUntil waits until t or until ctx ends, and returns ctx's error if it has one.
func SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Ready checks that every node of nodes is ready (node.Node.Ready: its site has a leader the
// node can reach), and says which is not.
func Ready(nodes ...*node.Node) error {
	for _, n := range nodes {
		if ok, why := n.Ready(); !ok {
			return fmt.Errorf("%s not ready: %s", n.Name(), why)
		}
	}
	return nil
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

// HeldBy reports whether c is held by site and not in transit.
func HeldBy(c *casework.Case, site string) bool {
	return c != nil && c.HolderSite == site && c.Transit == nil
}

// PollApplied calls scan every interval until stop is closed, whenever applied (a node's
// applied index) moved since the previous tick or woken was set (it is cleared then). A
// watcher waiting for entries to be applied sets woken when it has something new to look for,
// and so scans only when an answer may have come.
func PollApplied(stop <-chan struct{}, interval time.Duration, applied func() uint64, woken *atomic.Bool, scan func()) {
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
		if woke := woken.Swap(false); woke || idx != last {
			scan()
		}
		last = idx
	}
}

// Background runs f in a goroutine of its own until the stop it returns is called: stop closes
// f's stop channel and waits until f has returned. Call stop once.
func Background(f func(stop <-chan struct{})) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f(done)
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
