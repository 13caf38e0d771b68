package node

import (
	"context"
	"time"
)

// pruneEvery is how often the leader drops request ids, stubs and handoff records past their
// windows (sitestate/prune.go).
const pruneEvery = time.Hour

// pruneTables is leader work: now and then, drop what no retry or late message can still need,
// a command of at most a few thousand entries at a time.
func (n *Node) pruneTables(stop <-chan struct{}) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			pruned, err := n.state.Prune(ctx)
			cancel()
			if err != nil {
				n.logger.Warn("could not prune the site's tables; trying again later", "error", err)
			}
			if err != nil || pruned == 0 {
				break
			}
			n.logger.Info("pruned entries past their window", "entries", pruned)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
