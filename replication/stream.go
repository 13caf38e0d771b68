package replication

import (
	"fmt"
	"net"
	"time"

	"github.com/govgrid/govgrid/netfault"
	"github.com/hashicorp/raft"
)

// faultStream is Raft's TCP stream layer with dials going through a netfault.Allow, for tests
// that cut links between in-process nodes.
type faultStream struct {
	net.Listener
	allow netfault.Allow
}

func (s *faultStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.allow.DialTimeout(string(addr), timeout)
}

func newFaultTransport(cfg Config, hcl *hclogAdapter) (*raft.NetworkTransport, error) {
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("replication: listen for raft on %s: %w", cfg.RaftAddr, err)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &faultStream{Listener: ln, allow: cfg.Links},
		MaxPool: 4,
		Timeout: 10 * time.Second,
		Logger:  hcl,
	}), nil
}
