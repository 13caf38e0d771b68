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
}

func newLinks() *links {
	return &links{owner: map[string]string{}, cut: map[[2]string]bool{}}
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
