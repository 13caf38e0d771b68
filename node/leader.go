package node

import (
	"context"
	"sync"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/pki"
	"github.com/hashicorp/raft"
)

// bootstrapSite forms this node's site when it is new: once BootstrapExpect nodes of the site
// are alive in gossip and none of them already has Raft state, every one of them bootstraps the
// same configuration (Consul's bootstrap_expect). A node with state, or one whose site already
// runs, never bootstraps: the site leader adds it instead.
func (n *Node) bootstrapSite() {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		done, err := n.tryBootstrap()
		if err != nil {
			n.logger.Warn("bootstrap attempt failed", "error", err)
		}
		if done {
			return
		}
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
	}
}

func (n *Node) tryBootstrap() (bool, error) {
	has, err := n.raft.HasState()
	if err != nil || has {
		return has, err
	}
	var peers []Member
	for _, m := range n.gossip.members() {
		if m.Meta.Site == n.cfg.Site && m.Status == "alive" {
			peers = append(peers, m)
		}
	}
	// A lone node that was told to join someone waits until gossip shows more than itself,
	// so a second node of a running site never bootstraps a site of its own.
	if len(n.cfg.Join) > 0 && n.cfg.BootstrapExpect == 1 && len(n.gossip.members()) < 2 {
		return false, nil
	}
	var servers []raft.Server
	for _, p := range peers {
		if p.Name != n.cfg.Name {
			has, leader, err := n.askRaftStatus(p)
			if err != nil {
				return false, err
			}
			if has || leader != "" {
				n.logger.Info("site already formed: waiting for its leader to add this node", "peer", p.Name)
				return true, nil
			}
		}
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raftID(p.Name), Address: raft.ServerAddress(p.Meta.Raft)})
	}
	if len(servers) < n.cfg.BootstrapExpect {
		return false, nil
	}
	n.logger.Info("bootstrapping the site", "servers", len(servers))
	return true, n.raft.Bootstrap(servers)
}

func (n *Node) askRaftStatus(m Member) (has bool, leader string, err error) {
	st, err := n.raftStatusOf(m)
	return st.GetHasState(), st.GetLeader(), err
}

// raftStatusOf asks m's node about its Raft state, within 2 s.
func (n *Node) raftStatusOf(m Member) (*pb.RaftStatusResponse, error) {
	conn, err := n.peers.conn(m.Meta.GRPC)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return pb.NewClusterClient(conn).RaftStatus(ctx, &pb.RaftStatusRequest{})
}

// monitorLeadership runs the site's leader-only work while this node leads: establish on
// gaining leadership, revoke on losing it.
func (n *Node) monitorLeadership() {
	var stopLeader chan struct{}
	var leaderDone chan struct{}
	revoke := func() {
		if stopLeader != nil {
			close(stopLeader)
			<-leaderDone
			stopLeader = nil
			n.healthSrv.SetServingStatus("", n.servingStatus())
		}
	}
	defer revoke()
	ready := time.NewTicker(500 * time.Millisecond)
	defer ready.Stop()
	for {
		select {
		case <-n.stop:
			return
		case isLeader := <-n.raft.LeaderCh():
			if isLeader && stopLeader == nil {
				stopLeader, leaderDone = make(chan struct{}), make(chan struct{})
				go func(stop, done chan struct{}) {
					defer close(done)
					n.leaderLoop(stop)
				}(stopLeader, leaderDone)
				n.logger.Info("leading the site")
			} else if !isLeader {
				revoke()
			}
		case <-ready.C:
		}
		n.healthSrv.SetServingStatus("", n.servingStatus())
	}
}

// leaderLoop is the leader-only work (establish; it returns on revoke). The site's Raft
// membership is kept in line with gossip from the start (keepMembers), so the other nodes of a
// site being restored join it and can finish the restore if this leader is lost. Then it
// finishes a restore of the site if one is due, and keeps the site registered with its parent,
// while the workers deliver its handoffs (runOutbox), mirror its children's feeds (runMirror),
// trim its feed at the district (trimFeed), pull configuration from its parent (syncConfig),
// prune its tables (pruneTables) and set up the site's signing key (publishSiteKey).
func (n *Node) leaderLoop(stop <-chan struct{}) {
	// Like Consul's leader: first apply everything the previous leaders committed, so that
	// reads here and the workers below see the whole state.
	for n.raft.Barrier(10*time.Second) != nil {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	n.caughtUp.Store(true)
	defer n.caughtUp.Store(false)
	defer n.links.reset() // what a leader heard of its links goes with its leadership
	var workers sync.WaitGroup
	defer workers.Wait()
	run := func(work func(<-chan struct{})) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			work(stop)
		}()
	}
	membersChanged := make(chan struct{}, 1)
	run(func(stop <-chan struct{}) { n.keepMembers(stop, membersChanged) })
	if n.restoring() && !n.restoreFromParent(stop) {
		return
	}
	for _, work := range []func(<-chan struct{}){n.runOutbox, n.runMirror, n.trimFeed, n.syncConfig, n.pruneTables, n.publishSiteKey} {
		run(work)
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	var acked [32]byte
	var sent time.Time
	var sealKeys string
	for {
		if n.restoring() && !n.restoreFromParent(stop) {
			return // a backup was restored meanwhile: finish it first
		}
		acked, sent = n.registerUpward(acked, sent)
		var err error
		if sealKeys, err = n.publishSealKeys(sealKeys); err != nil {
			n.logger.Warn("could not publish the grid's seal keys", "error", err)
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		case <-membersChanged:
		case <-n.registryChanged:
		}
	}
}

// keepMembers reconciles the site's Raft membership with gossip whenever gossip changes (every
// 2 s, or every 500 ms while a new node waits to be promoted), and nudges changed when it added,
// promoted or removed a node.
func (n *Node) keepMembers(stop <-chan struct{}, changed chan struct{}) {
	for {
		didChange, pending := n.reconcileMembers()
		if didChange {
			nudge(changed)
		}
		wait := 2 * time.Second
		if pending {
			wait = 500 * time.Millisecond
		}
		select {
		case <-stop:
			return
		case <-time.After(wait):
		case <-n.gossip.changed:
		}
	}
}

// promoteLag is how many entries behind the leader's applied index a non-voter may be when it is
// promoted to voter: about four full batches.
const promoteLag = 1024

// reconcileMembers adds every alive node of this site that Raft lacks, first as a non-voter, and
// promotes it to voter once it follows this leader and has caught up; it removes nodes that left
// the grid or stayed failed longer than ReapAfter. It reports whether it changed anything, and
// whether a non-voter is still waiting to be promoted.
//
// Adding a voter at once (as before) let one node that gossip saw but Raft could not reach (a
// firewalled Raft port, a wrong advertise address, a node that died a moment later) stop its
// site: a one-node site that adds an unreachable voter needs two votes of two to commit, and
// never again has a leader to remove it. A non-voter that never catches up costs nothing.
func (n *Node) reconcileMembers() (changed, pending bool) {
	servers, err := n.raft.Servers()
	if err != nil {
		return false, false
	}
	inRaft := map[string]raft.Server{}
	for _, s := range servers {
		inRaft[string(s.ID)] = s
	}
	for _, m := range n.gossip.members() {
		if m.Meta.Site != n.cfg.Site || m.Name == n.cfg.Name {
			continue
		}
		s, known := inRaft[m.Name]
		if known && n.peerTLS != nil && n.peerTLS.revoked(pki.Identity{Grid: n.cfg.GridName, Site: n.cfg.Site, Node: m.Name}) {
			n.logger.Warn("removing a node whose certificate the district revoked", "member", m.Name)
			if err := n.raft.RemoveServer(raftID(m.Name)); err != nil {
				n.logger.Warn("could not remove node", "member", m.Name, "error", err)
			} else {
				changed = true
			}
			continue
		}
		switch {
		case m.Status == "alive" && known && s.Suffrage == raft.Voter && string(s.Address) != m.Meta.Raft:
			// A voter back at a new address (its data kept) stays a voter.
			n.logger.Info("moving node to its new address", "member", m.Name, "raft", m.Meta.Raft)
			if err := n.raft.AddVoter(raftID(m.Name), raft.ServerAddress(m.Meta.Raft)); err != nil {
				n.logger.Warn("could not move node", "member", m.Name, "error", err)
			} else {
				changed = true
			}
		case m.Status == "alive" && (!known || string(s.Address) != m.Meta.Raft):
			if err := n.checkMemberCert(m); err != nil {
				n.logger.Warn("not adding a node whose certificate does not name it a node of this site", "member", m.Name, "error", err)
				continue
			}
			n.logger.Info("adding node to the site as a non-voter until it catches up", "member", m.Name, "raft", m.Meta.Raft)
			if err := n.raft.AddNonvoter(raftID(m.Name), raft.ServerAddress(m.Meta.Raft)); err != nil {
				n.logger.Warn("could not add node", "member", m.Name, "error", err)
			} else {
				changed, pending = true, true
			}
		case m.Status == "alive" && s.Suffrage == raft.Nonvoter:
			pending = true
			if !n.nonvoterCaughtUp(m) {
				continue
			}
			n.logger.Info("promoting node to voter", "member", m.Name)
			if err := n.raft.AddVoter(raftID(m.Name), s.Address); err != nil {
				n.logger.Warn("could not promote node", "member", m.Name, "error", err)
			} else {
				changed = true
			}
		case known && m.Status == "left",
			known && m.Status == "dead" && time.Since(m.Since) > n.cfg.ReapAfter:
			n.logger.Info("removing node from the site", "member", m.Name, "status", m.Status)
			if err := n.raft.RemoveServer(raftID(m.Name)); err != nil {
				n.logger.Warn("could not remove node", "member", m.Name, "error", err)
			} else {
				changed = true
			}
		}
	}
	return changed, pending
}

// checkMemberCert checks, over a TLS handshake with m's Raft address, that m's certificate names
// m and this site (a no-op without certificates).
func (n *Node) checkMemberCert(m Member) error {
	if n.peerTLS == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.timings.raftTransport)
	defer cancel()
	return n.peerTLS.checkMember(ctx, n.dialContext, m.Meta.Raft, m.Name)
}

// nonvoterCaughtUp tells whether m's node follows this node and has applied the log to within promoteLag
// entries of this node's applied index.
func (n *Node) nonvoterCaughtUp(m Member) bool {
	st, err := n.raftStatusOf(m)
	if err != nil {
		n.logger.Debug("non-voter did not answer", "member", m.Name, "error", err)
		return false
	}
	if st.GetLeader() != n.cfg.Name {
		return false
	}
	return st.GetAppliedIndex()+promoteLag >= n.raft.AppliedIndex()
}
