package testgrid

import (
	"sync"

	"github.com/govgrid/govgrid/netfault"
)

// links is the grid's table of broken links between nodes, consulted by every node's dialer,
// Raft stream layer and gossip transport.
type links struct {
	mu    sync.RWMutex
	owner map[string]string // guarded by mu: listen address -> node name
	// state is each broken link's netfault.State, seen from its first node toward its second
	// (a one-way cut is drop-send one way and drop-receive the other); absent means open.
	state map[[2]string]netfault.State // guarded by mu: (from, to) node names
	// faults is each node's message-fault injector, kept across restarts.
	faults map[string]*netfault.Faults // guarded by mu
	policy netfault.Policy             // guarded by mu: what SetFaults last set
}

func newLinks() *links {
	return &links{owner: map[string]string{}, state: map[[2]string]netfault.State{}, faults: map[string]*netfault.Faults{}}
}

// allowFor returns the policy of node from: the state of its link to the node owning addr.
func (l *links) allowFor(from string) netfault.Allow {
	return netfault.Links(func(addr string) netfault.State {
		l.mu.RLock()
		defer l.mu.RUnlock()
		to, ok := l.owner[addr]
		if !ok {
			return netfault.Open
		}
		return l.state[[2]string{from, to}]
	}).Allow()
}

func (l *links) register(name string, addrs ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range addrs {
		l.owner[a] = name
	}
}

// set puts the link from -> to in state s; a silent state adds to the directions already
// silent (drop-send then drop-receive is a black hole); Cut and Blackhole replace what was.
func (l *links) set(from, to string, s netfault.State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]string{from, to}
	old := l.state[k]
	switch {
	case s == netfault.Open:
		delete(l.state, k)
		return
	case old == netfault.DropSend && s == netfault.DropReceive, old == netfault.DropReceive && s == netfault.DropSend:
		s = netfault.Blackhole
	case (old == netfault.Blackhole || old == netfault.BlackholeConnected) && (s == netfault.DropSend || s == netfault.DropReceive):
		s = old
	}
	l.state[k] = s
}

// setBoth puts the link between a and b in state s, both ways.
func (l *links) setBoth(a, b string, s netfault.State) {
	l.set(a, b, s)
	l.set(b, a, s)
}

func (l *links) healAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.state)
}

// Partition cuts every link between nodes a and b, both ways, loudly: Raft, gossip and gRPC
// fail at once (netfault.Cut).
func (g *Grid) Partition(a, b string) { g.links.setBoth(a, b, netfault.Cut) }

// Isolate cuts, loudly, every link between node name and every other node of the grid.
func (g *Grid) Isolate(name string) {
	g.eachOther(name, func(o string) { g.links.setBoth(name, o, netfault.Cut) })
}

// Blackhole makes every link between nodes a and b silent, both ways (netfault.Blackhole): no
// packet arrives and nothing fails; dials hang until their timeout, open connections hear
// nothing and accept writes that never arrive, and stay so after Heal (only new dials recover).
// It is iptables -j DROP between two hosts.
func (g *Grid) Blackhole(a, b string) { g.links.setBoth(a, b, netfault.Blackhole) }

// BlackholeNode makes every link between node name and every other node of the grid silent:
// a site whose uplink is lost without a word (a village's 4G router).
func (g *Grid) BlackholeNode(name string) {
	g.eachOther(name, func(o string) { g.links.setBoth(name, o, netfault.Blackhole) })
}

// BlackholeOneWay drops, silently, what node from sends to node to, and lets what to sends to
// from arrive: on a connection between them, one direction falls silent; new connections
// between them hang (TCP's handshake needs both ways). Gossip's UDP is dropped both ways
// until the node's gossip transport asks netfault.State for the direction.
func (g *Grid) BlackholeOneWay(from, to string) {
	g.links.set(from, to, netfault.DropSend)
	g.links.set(to, from, netfault.DropReceive)
}

// eachOther calls f with the name of every other node of the grid, running or not.
func (g *Grid) eachOther(name string, f func(other string)) {
	g.mu.Lock()
	others := append([]string{}, g.order...)
	g.mu.Unlock()
	for _, o := range others {
		if o != name {
			f(o)
		}
	}
}

// Heal restores every broken link, loud or silent. Connections that a silent link caught stay
// dead (netfault's model); new dials get through.
func (g *Grid) Heal() { g.links.healAll() }

func (l *links) faultsFor(name string) *netfault.Faults {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.faults[name]
	if !ok {
		f = new(netfault.Faults)
		f.Set(l.policy)
		l.faults[name] = f
	}
	return f
}

// SetFaults applies p to the gRPC calls every node makes to other nodes (nodes started later
// too); the zero Policy stops injecting. It returns how many faults were injected before.
func (g *Grid) SetFaults(p netfault.Policy) int64 {
	g.links.mu.Lock()
	defer g.links.mu.Unlock()
	g.links.policy = p
	var n int64
	for _, f := range g.links.faults {
		n += f.Injected.Load()
		f.Set(p)
	}
	return n
}

// FaultsInjected is how many message faults the grid's nodes have injected so far, and how
// many calls the policy applied to.
func (g *Grid) FaultsInjected() (faults, calls int64) {
	g.links.mu.Lock()
	defer g.links.mu.Unlock()
	for _, f := range g.links.faults {
		faults += f.Injected.Load()
		calls += f.Calls.Load()
	}
	return faults, calls
}
