package node

import "time"

// reconnect tries, every ReconnectInterval, to join again the members gossip last saw dead (not
// those that left). memberlist stops gossiping to a dead node after half a minute, so without
// this two sides of a healed partition, or a village whose uplink came back after an hour,
// would never merge again. Serf has the same loop for the same reason.
func (n *Node) reconnect() {
	tick := time.NewTicker(n.cfg.ReconnectInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		var dead []string
		for _, m := range n.gossip.members() {
			if m.Status == "dead" && m.Name != n.cfg.Name {
				dead = append(dead, m.Addr)
			}
		}
		if len(dead) > 0 {
			if joined, err := n.gossip.join(dead); err == nil {
				n.logger.Info("reconnected to members seen dead", "joined", joined)
			}
		}
	}
}
