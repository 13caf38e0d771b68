package testgrid

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/govgrid/govgrid/netfault"
	"github.com/govgrid/govgrid/node"
	"github.com/hashicorp/memberlist"
)

// network is one node's view of the grid's links (node.Network): its Raft and gRPC dials and
// its gossip transport all consult the grid's table of cut links.
type network struct{ allow netfault.Allow }

func (n network) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return n.allow.Dial(ctx, addr)
}

func (n network) GossipTransport(host string, port int) (memberlist.Transport, int, error) {
	return newFaultTransport(host, port, n.allow)
}

// faultTransport is memberlist's network transport with packets and streams to or from a cut
// peer dropped, for tests that partition in-process nodes. UDP packets carry their sender's
// gossip address, so both directions are filtered; streams are cut at the dialling end.
type faultTransport struct {
	*memberlist.NetTransport
	allow   netfault.Allow
	packets chan *memberlist.Packet
	stop    chan struct{}
	once    sync.Once
}

func newFaultTransport(host string, port int, allow netfault.Allow) (*faultTransport, int, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port})
	if err != nil {
		return nil, 0, err
	}
	t := &faultTransport{NetTransport: nt, allow: allow, packets: make(chan *memberlist.Packet), stop: make(chan struct{})}
	go t.filterPackets()
	return t, nt.GetAutoBindPort(), nil
}

func (t *faultTransport) filterPackets() {
	for {
		select {
		case <-t.stop:
			return
		case p := <-t.NetTransport.PacketCh():
			if !t.allow.State(p.From.String()).Receives() {
				continue
			}
			select {
			case t.packets <- p:
			case <-t.stop:
				return
			}
		}
	}
}

func (t *faultTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if !t.allow.State(addr).Sends() {
		return time.Now(), nil // lost on the wire
	}
	return t.NetTransport.WriteTo(b, addr)
}

func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.allow.DialTimeout(addr, timeout)
}

// WriteToAddress and DialAddressTimeout override the embedded NetTransport's: memberlist uses
// these node-aware forms when the transport has them, bypassing WriteTo and DialTimeout.
func (t *faultTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, addr.Addr)
}

func (t *faultTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(addr.Addr, timeout)
}

func (t *faultTransport) Shutdown() error {
	t.once.Do(func() { close(t.stop) })
	// The inner transport's UDP reader may be blocked handing over a packet that the stopped
	// filter will never take: drain until it has shut down, or Shutdown waits for it forever.
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.NetTransport.PacketCh():
			case <-done:
				return
			}
		}
	}()
	err := t.NetTransport.Shutdown()
	close(done)
	return err
}

// Network is a node.Network whose links (Raft and gRPC dials, the gossip transport) all consult
// allow: what a test grid gives each of its nodes, for harnesses that start nodes themselves.
func Network(allow netfault.Allow) node.Network { return network{allow: allow} }
