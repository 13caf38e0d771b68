package testgrid

import (
	"testing"

	"github.com/govgrid/govgrid/netfault"
)

func TestLinkStates(t *testing.T) {
	l := newLinks()
	l.register("a", "127.0.0.1:1", "127.0.0.1:2")
	l.register("b", "127.0.0.1:3")
	l.register("c", "127.0.0.1:4")
	fromA, fromB, fromC := l.allowFor("a"), l.allowFor("b"), l.allowFor("c")
	check := func(what string, allow netfault.Allow, addr string, want netfault.State) {
		t.Helper()
		if got := allow.State(addr); got != want {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
	check("unknown address", fromA, "10.0.0.1:1", netfault.Open)
	check("open", fromA, "127.0.0.1:3", netfault.Open)

	l.setBoth("a", "b", netfault.Blackhole)
	check("a to b, black hole", fromA, "127.0.0.1:3", netfault.Blackhole)
	check("b to a, black hole", fromB, "127.0.0.1:2", netfault.Blackhole)
	check("c to b, untouched", fromC, "127.0.0.1:3", netfault.Open)
	if fromA("127.0.0.1:3") {
		t.Fatal("a plain question about a black-holed link answered: allowed")
	}

	l.healAll()
	l.set("a", "c", netfault.DropSend)
	l.set("c", "a", netfault.DropReceive)
	check("one way, sender", fromA, "127.0.0.1:4", netfault.DropSend)
	check("one way, receiver", fromC, "127.0.0.1:1", netfault.DropReceive)
	// The other way too: both directions drop, a black hole.
	l.set("a", "c", netfault.DropReceive)
	check("both ways dropped", fromA, "127.0.0.1:4", netfault.Blackhole)
	l.set("a", "c", netfault.DropSend)
	check("a one-way cut inside a black hole", fromA, "127.0.0.1:4", netfault.Blackhole)
	l.setBoth("a", "c", netfault.Cut)
	check("a loud cut replaces a silent one", fromA, "127.0.0.1:4", netfault.Cut)

	l.healAll()
	check("healed", fromA, "127.0.0.1:4", netfault.Open)
	check("healed", fromC, "127.0.0.1:1", netfault.Open)
}
