package node

import (
	"context"
	"net"

	"github.com/hashicorp/memberlist"
)

// Network is how a node reaches its peers, for Config.Network. The host's network is the
// default; a test harness supplies its own to cut, black-hole or slow the links between
// in-process nodes (package testgrid).
type Network interface {
	// Dial opens a TCP connection to a peer's Raft or gRPC address.
	Dial(ctx context.Context, addr string) (net.Conn, error)
	// GossipTransport makes memberlist's transport, bound to host:port (port 0: any), and
	// returns it with the port it bound.
	GossipTransport(host string, port int) (memberlist.Transport, int, error)
}
