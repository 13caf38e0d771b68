package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
)

// checkPlacement refuses a node whose place in the tree contradicts what the grid already shows:
// a second district, a parent of the wrong tier, or a site code already used with another tier.
// It runs at start, after joining gossip; a parent not visible yet is checked again by the
// parent itself when this site registers.
func (n *Node) checkPlacement() error {
	for _, m := range n.gossip.members() {
		if m.Name == n.cfg.Name || m.Status == "left" {
			continue
		}
		switch {
		case m.Meta.Site == n.cfg.Site && m.Meta.Tier != n.cfg.Tier:
			return fmt.Errorf("site %q is already a %s in this grid (node %s), not a %s", n.cfg.Site, m.Meta.Tier, m.Name, n.cfg.Tier)
		case m.Meta.Site == n.cfg.Site && m.Meta.Parent != n.cfg.Parent:
			return fmt.Errorf("site %q already hangs under %q in this grid (node %s), not under %q", n.cfg.Site, m.Meta.Parent, m.Name, n.cfg.Parent)
		case n.cfg.Tier == tier.District && m.Meta.Tier == tier.District && m.Meta.Site != n.cfg.Site:
			return fmt.Errorf("this grid already has a district, %q (node %s): a grid has one district", m.Meta.Site, m.Name)
		case m.Meta.Site == n.cfg.Parent:
			if err := tier.ValidatePlacement(n.cfg.Tier, n.cfg.Parent, m.Meta.Tier); err != nil {
				return err
			}
		}
	}
	return nil
}

// registerUpward is leader work: keep this site's record in its own registry, and send the
// registry (this site and everything beneath it) to the parent site whenever it changed, or
// every minute in case the parent lost it. It returns the hash last acknowledged.
func (n *Node) registerUpward(lastAcked [32]byte, lastSent time.Time) ([32]byte, time.Time) {
	if err := n.registerSelf(); err != nil {
		n.logger.Warn("could not record this site in its registry", "error", err)
		return lastAcked, lastSent
	}
	if n.cfg.Parent == "" {
		return lastAcked, lastSent
	}
	recs, err := n.state.Sites()
	if err != nil {
		return lastAcked, lastSent
	}
	for i := range recs {
		recs[i].RegisteredAt = time.Time{} // the parent stamps its own time
	}
	b, _ := json.Marshal(recs)
	sum := sha256.Sum256(b)
	if sum == lastAcked && time.Since(lastSent) < time.Minute {
		return lastAcked, lastSent
	}
	req := &pb.RegisterSitesRequest{FromSite: n.cfg.Site}
	for _, r := range recs {
		req.Sites = append(req.Sites, &pb.SiteRecord{Code: r.Code, Tier: r.Tier, Parent: r.Parent, Nodes: r.Nodes, Leader: r.Leader,
			Retired: r.Retired, RetiredReason: r.RetiredReason, PublicKey: r.PublicKey})
	}
	for _, m := range n.gossip.members() {
		if m.Meta.Site != n.cfg.Parent || m.Status != "alive" {
			continue
		}
		conn, err := n.peers.conn(m.Meta.GRPC)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = pb.NewClusterClient(conn).RegisterSites(ctx, req)
		cancel()
		if err != nil {
			n.logger.Warn("parent site refused or missed the registration", "parent", n.cfg.Parent, "via", m.Name, "error", err)
			continue
		}
		return sum, time.Now()
	}
	return lastAcked, lastSent
}

// registerSelf commits this site's own record (its nodes from the Raft configuration) when it
// is missing or out of date.
func (n *Node) registerSelf() error {
	servers, err := n.raft.Servers()
	if err != nil {
		return err
	}
	var nodes []string
	for _, s := range servers {
		nodes = append(nodes, string(s.ID))
	}
	slices.Sort(nodes)
	recs, err := n.state.Sites()
	if err != nil {
		return err
	}
	retired, err := n.state.Retired()
	if err != nil {
		return err
	}
	self := sitestate.SiteRecord{Code: n.cfg.Site, Tier: string(n.cfg.Tier), Parent: n.cfg.Parent, Nodes: nodes, Leader: n.cfg.Name,
		Retired: retired.Retired, RetiredReason: retired.Reason}
	if key, ok, err := n.state.SiteKey(); err == nil && ok {
		self.PublicKey = key.Public().(ed25519.PublicKey)
	}
	for _, r := range recs {
		if r.Code == self.Code && r.Tier == self.Tier && r.Parent == self.Parent && r.Leader == self.Leader && slices.Equal(r.Nodes, self.Nodes) &&
			r.Retired == self.Retired && r.RetiredReason == self.RetiredReason && bytes.Equal(r.PublicKey, self.PublicKey) {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.state.RegisterSites(ctx, []sitestate.SiteRecord{self})
}
