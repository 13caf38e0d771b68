package netfault

import (
	"strconv"
	"strings"
)

// State is what a link lets through, as seen from the end that dials and asks. The zero State
// is Open.
type State uint8

const (
	// Open lets everything through.
	Open State = iota
	// Cut refuses loudly, as a router answering with resets does: a dial fails at once with
	// ErrCut, and an existing connection fails with ErrCut and closes on its next read or write.
	Cut
	// Blackhole drops every packet both ways and tells no one, as when a village's 4G router
	// loses its uplink (iptables -j DROP): a dial hangs as if its SYN were lost; on an existing
	// connection every write seems to succeed and nothing is ever read again.
	Blackhole
	// BlackholeConnected is Blackhole for a peer behind a middlebox that completes the TCP
	// handshake itself (a carrier's proxy): a dial succeeds, then the connection hears nothing.
	BlackholeConnected
	// DropSend drops this end's packets to the peer and lets the peer's packets arrive: one
	// half of a one-way cut. A dial hangs (the handshake needs both ways); on an existing
	// connection writes vanish and reads go on.
	DropSend
	// DropReceive drops the peer's packets to this end and lets this end's arrive: the other
	// half of a one-way cut. A dial hangs; on an existing connection reads hear nothing and
	// writes go on.
	DropReceive

	// probeControl is never a link's state: an Allow that answers true when asked whether a
	// link is in it does not understand the state questions (see Allow.State).
	probeControl State = 255
)

// silentStates are the states Allow.State asks an Allow about, in this order.
var silentStates = []State{Blackhole, BlackholeConnected, DropSend, DropReceive}

// String names the state as its constant does.
func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case Cut:
		return "cut"
	case Blackhole:
		return "blackhole"
	case BlackholeConnected:
		return "blackhole-connected"
	case DropSend:
		return "drop-send"
	case DropReceive:
		return "drop-receive"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Sends reports whether this end's packets reach the peer: a gossip transport asks it before
// it writes a UDP packet.
func (s State) Sends() bool { return s == Open || s == DropReceive }

// Receives reports whether the peer's packets reach this end: a gossip transport asks it of
// each UDP packet it reads.
func (s State) Receives() bool { return s == Open || s == DropSend }

// Silent reports whether the link drops packets without telling either end.
func (s State) Silent() bool {
	return s == Blackhole || s == BlackholeConnected || s == DropSend || s == DropReceive
}

// dialHangs reports whether a dial over the link waits for a handshake that never completes.
func (s State) dialHangs() bool { return s == Blackhole || s == DropSend || s == DropReceive }

// dropsSend reports whether the state kills this end's sends on an existing connection.
func (s State) dropsSend() bool { return s == Blackhole || s == BlackholeConnected || s == DropSend }

// dropsReceive reports whether the state kills this end's receives on an existing connection.
func (s State) dropsReceive() bool {
	return s == Blackhole || s == BlackholeConnected || s == DropReceive
}

// Links is a link policy with every State, not only open or cut: the state of this node's link
// to addr now. Convert it with Allow to hand it to a node (node.Config.Links takes an Allow).
type Links func(addr string) State

// Allow returns the Allow a node is given for l. It answers whether a link is Open, as every
// Allow does, and also answers the state questions that Allow.State asks, so that Dial,
// DialTimeout and the connections they return honour black holes and one-way cuts, and so
// that code holding only the Allow (a gossip transport) can ask State for the whole truth.
func (l Links) Allow() Allow {
	return func(addr string) bool {
		if q, target, ok := parseProbe(addr); ok {
			return q != probeControl && l(target) == q
		}
		return l(addr) == Open
	}
}

// State is the state of the link to addr. An Allow made by Links.Allow reports every State;
// any other Allow (a plain function of an address) reports Open when it allows addr and Cut
// when it does not, so existing policies keep their loud cuts.
//
// The question travels through the Allow function itself, as a string no address can be
// (it starts with a NUL byte): node.Config.Links is an Allow, and a black hole must reach the
// dialers inside the node without changing its type. A plain Allow answers every question
// alike (it ignores the address, or does not know it), and a Links Allow answers false to the
// control question, which is how the two are told apart.
func (a Allow) State(addr string) State {
	if a == nil || a(addr) {
		return Open
	}
	if a(probe(probeControl, addr)) {
		return Cut // it allows an address no one dials: it does not know the questions
	}
	for _, s := range silentStates {
		if a(probe(s, addr)) {
			return s
		}
	}
	return Cut
}

// probePrefix starts a state question: a NUL byte cannot start a host:port.
const probePrefix = "\x00netfault-state:"

// probe asks "is the link to addr in state s?".
func probe(s State, addr string) string {
	return probePrefix + strconv.Itoa(int(s)) + "\x00" + addr
}

func parseProbe(q string) (State, string, bool) {
	rest, ok := strings.CutPrefix(q, probePrefix)
	if !ok {
		return 0, "", false
	}
	num, addr, ok := strings.Cut(rest, "\x00")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > 255 {
		return 0, "", false
	}
	return State(n), addr, true
}
