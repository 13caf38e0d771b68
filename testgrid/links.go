package testgrid

import (
	"sync"

	"github.com/govgrid/govgrid/netfault"
)

// links is the grid's table of cut links between nodes, consulted by every node's dialer,
// Raft stream layer and gossip transport.
type links struct {
	mu    sync.RWMutex
	owner map[string]string  // guarded by mu: listen address -> node name
	cut   map[[2]string]bool // guarded by mu: (from, to) node names
	// faults is each node's message-fault injector, kept across restarts.
	faults map[string]*netfault.Faults // guarded by mu
	policy netfault.Policy             // guarded by mu: what SetFaults last set
}

func newLinks() *links {
	return &links{owner: map[string]string{}, cut: map[[2]string]bool{}, faults: map[string]*netfault.Faults{}}
}

// allowFor returns the policy of node from: may it reach addr now?
func (l *links) allowFor(from string) netfault.Allow {
	return func(addr string) bool {
		l.mu.RLock()
		defer l.mu.RUnlock()
		to, ok := l.owner[addr]
		return !ok || !l.cut[[2]string{from, to}]
	}
}

func (l *links) register(name string, addrs ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range addrs {
		l.owner[a] = name
	}
}

func (l *links) setCut(a, b string, cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range [][2]string{{a, b}, {b, a}} {
		if cut {
			l.cut[k] = true
		} else {
			delete(l.cut, k)
		}
	}
}

func (l *links) healAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.cut)
}

// Partition cuts every link between nodes a and b, both ways: Raft, gossip and gRPC.
func (g *Grid) Partition(a, b string) { g.links.setCut(a, b, true) }

// Isolate cuts every link between node name and every other node of the grid.
func (g *Grid) Isolate(name string) {
	g.mu.Lock()
	others := append([]string{}, g.order...)
	g.mu.Unlock()
	for _, o := range others {
		if o != name {
			g.links.setCut(name, o, true)
		}
	}
}

// Heal restores every cut link.
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
