// Package netfault lets tests break links between nodes running in one process. A node given
// an Allow function dials through it and wraps what it dials, so every connection it opens
// to a peer obeys the link's State at each read and write:
//
//   - Cut, the loud failure: new dials fail with ErrCut, and every read or write on an existing
//     connection fails with ErrCut and closes it, so both ends see the link drop at once.
//   - Blackhole, the silent one (a village's 4G router losing its uplink, iptables -j DROP):
//     nothing is refused and nothing arrives. A dial hangs as if its SYN were lost, until its
//     context ends (or the link opens at one of the SYN's resend times, or after Linux's 127 s);
//     on an existing connection writes succeed and vanish (until a send buffer's worth is
//     outstanding, then they block, as a real socket's do) and reads block, until the caller's
//     deadline passes (SetDeadline, SetReadDeadline) or the connection is closed.
//   - BlackholeConnected: the same, but dials complete (a middlebox answers the handshake) and
//     then hear nothing.
//   - DropSend and DropReceive, the two halves of a one-way cut: one direction of an existing
//     connection is silent and the other works; new dials hang (a handshake needs both ways).
//
// The model of a silent link is the worst case of real TCP: a connection that was ever caught
// by a silent link (a read or write happened on it while the link was silent) stays dead in
// that direction for good, even after the link opens again, as when the peer gave up on it
// meanwhile and only a fresh dial gets through. Only the caller's own timers get it out: read
// deadlines, keepalives that time out and close the connection. A connection that was idle
// across the whole black hole (nothing sent, nothing due) lives on, as a real one does. When a
// caller closes a connection whose sends are silent, its peer is not told: the real socket is
// closed only after orphanLinger, when a kernel would have stopped resending the FIN.
//
// Links describes every state per peer address; its Allow method makes the Allow a node takes.
// A plain Allow (a function of an address to a bool) still works and knows only Open and Cut.
//
// Production nodes have no Allow function and never touch this package's wrappers.
package netfault

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// Allow reports whether this node may talk to addr now. An Allow made by Links.Allow also
// carries the link's full State (see Allow.State); Dial and DialTimeout honour it.
type Allow func(addr string) bool

// ErrCut is returned for traffic over a cut link.
var ErrCut = errors.New("netfault: link cut")

// synResends are the times after a dial's first SYN when Linux sends it again if no answer
// came (initial RTO 1 s, doubling; net.ipv4.tcp_syn_retries = 6); at the last it gives up with
// ETIMEDOUT. A dial over a silent link looks at the link again at each.
var synResends = []time.Duration{1 * time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second,
	31 * time.Second, 63 * time.Second, 127 * time.Second}

// Dial dials addr over TCP as the link to addr allows, and wraps the connection: a cut link
// fails at once with ErrCut, a silent one hangs (see the package doc).
func (a Allow) Dial(ctx context.Context, addr string) (net.Conn, error) {
	st := a.State(addr)
	if st.dialHangs() {
		return a.dialUnanswered(ctx, addr)
	}
	return a.dialAs(ctx, addr, st)
}

// DialTimeout is Dial with a timeout instead of a context.
func (a Allow) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return a.Dial(ctx, addr)
}

// dialAs dials over a link in state st, which does not hang a dial.
func (a Allow) dialAs(ctx context.Context, addr string, st State) (net.Conn, error) {
	if st == Cut {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: tcpAddr(addr), Err: ErrCut}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return newConn(c, addr, a, st), nil
}

// dialUnanswered is a dial whose SYNs get no answer: it waits until ctx ends, or gives up as
// Linux does, or dials for real once the link no longer hangs dials at a SYN's resend time.
func (a Allow) dialUnanswered(ctx context.Context, addr string) (net.Conn, error) {
	start := time.Now()
	for i, at := range synResends {
		t := time.NewTimer(time.Until(start.Add(at)))
		select {
		case <-ctx.Done():
			t.Stop()
			err := ctx.Err()
			if errors.Is(err, context.DeadlineExceeded) {
				err = dialTimeout{err}
			}
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: tcpAddr(addr), Err: err}
		case <-t.C:
		}
		if i == len(synResends)-1 {
			break
		}
		if st := a.State(addr); !st.dialHangs() {
			return a.dialAs(ctx, addr, st)
		}
	}
	return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: tcpAddr(addr), Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}
}

// dialTimeout is a dial whose context's deadline passed: "i/o timeout", as net's own dialer
// says, a timeout to net.Error, and both os.ErrDeadlineExceeded and the context's error to
// errors.Is.
type dialTimeout struct{ cause error }

func (e dialTimeout) Error() string   { return "i/o timeout" }
func (e dialTimeout) Timeout() bool   { return true }
func (e dialTimeout) Temporary() bool { return true }
func (e dialTimeout) Unwrap() []error { return []error{os.ErrDeadlineExceeded, e.cause} }

// tcpAddr is a peer address as given, for errors.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
