package node

import (
	"encoding/json"
	"os"
	"slices"
	"time"
)

// peersFileName, in the data dir, remembers the gossip addresses of the grid's other nodes, so a
// restarted node finds the grid again even when it was started without --join (the first node
// of a grid usually is). Serf keeps a snapshot for the same reason.
const peersFileName = "gossip-peers.json"

func (n *Node) loadPeers() []string {
	b, err := os.ReadFile(n.DataPath(peersFileName))
	if err != nil {
		return nil
	}
	var addrs []string
	if err := json.Unmarshal(b, &addrs); err != nil {
		n.logger.Warn("ignoring unreadable peers file", "error", err)
		return nil
	}
	return addrs
}

// joinAddrs is --join plus the remembered peers, without duplicates.
func (n *Node) joinAddrs() []string {
	out := slices.Clone(n.cfg.Join)
	for _, a := range n.loadPeers() {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// persistPeers rewrites the peers file whenever the set of live peers changes, until Close.
func (n *Node) persistPeers() {
	var last []string
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-n.gossip.saved:
		case <-tick.C:
		}
		var addrs []string
		for _, m := range n.gossip.members() {
			if m.Name != n.cfg.Name && m.Status == "alive" {
				addrs = append(addrs, m.Addr)
			}
		}
		if len(addrs) == 0 || slices.Equal(addrs, last) {
			continue
		}
		if err := writeFileAtomic(n.DataPath(peersFileName), addrs); err != nil {
			n.logger.Warn("could not save gossip peers", "error", err)
			continue
		}
		last = addrs
	}
}

func writeFileAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
