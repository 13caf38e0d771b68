package netfault

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// sendBuffer is how many bytes a connection whose sends are silent accepts before its writes
// block: about what a socket's send buffer holds unacknowledged.
const sendBuffer = 256 << 10

// orphanLinger is how long the real socket of a closed connection whose sends were silent stays
// open, so that its peer is not told of the close (a FIN that is dropped tells no one), until
// about when Linux stops resending an orphaned connection's FIN. Then the peer sees it close.
const orphanLinger = 2 * time.Minute

// Conn is a dialled connection that obeys its link's State: it fails once the link is cut,
// and falls silent, for good, in each direction a silent link dropped while it was used (see
// the package doc). Deadlines and Close work on it as on a real connection, silent or not.
type Conn struct {
	net.Conn
	addr  string
	allow Allow

	mu sync.Mutex
	// sendDead and recvDead are set for good once a write or read met a link silent in that
	// direction (or the dial completed into one).
	sendDead, recvDead bool // guarded by mu
	// unsent counts the bytes written into a silent link: the send buffer they fill.
	unsent                      int       // guarded by mu
	readDeadline, writeDeadline time.Time // guarded by mu
	closed                      bool      // guarded by mu: Close was called
	// wake is closed (and replaced) when the connection is closed or a deadline changes, so
	// that a read or write waiting on a silent link looks again.
	wake chan struct{} // guarded by mu
}

func newConn(c net.Conn, addr string, a Allow, st State) *Conn {
	conn := &Conn{Conn: c, addr: addr, allow: a, wake: make(chan struct{})}
	conn.mark(st)
	return conn
}

// mark records the directions a link in state st drops.
func (c *Conn) mark(st State) {
	if !st.Silent() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sendDead = c.sendDead || st.dropsSend()
	c.recvDead = c.recvDead || st.dropsReceive()
}

// observe looks at the link now: a cut closes the connection and returns ErrCut; a silent
// state is marked.
func (c *Conn) observe() error {
	st := c.allow.State(c.addr)
	if st == Cut {
		c.Conn.Close()
		return &net.OpError{Op: "io", Net: "tcp", Addr: tcpAddr(c.addr), Err: ErrCut}
	}
	c.mark(st)
	return nil
}

// status reports whether Close was called and which directions are silent.
func (c *Conn) status() (closed, sendDead, recvDead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed, c.sendDead, c.recvDead
}

// Read reads from the connection: ErrCut over a cut link; over a silent one, nothing, until
// the read deadline passes or the connection is closed. Data that arrives while the link
// turns silent (or cut) is lost with it.
func (c *Conn) Read(b []byte) (int, error) {
	for {
		if closed, _, _ := c.status(); closed {
			return 0, c.opError("read", net.ErrClosed)
		}
		if err := c.observe(); err != nil {
			return 0, err
		}
		if _, _, silent := c.status(); silent {
			return 0, c.wait("read")
		}
		n, err := c.Conn.Read(b)
		if closed, _, _ := c.status(); closed {
			return 0, c.opError("read", net.ErrClosed)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return n, err // the caller's own deadline
		}
		// The read may have blocked across a change of the link: what crossed it then is lost.
		if err := c.observe(); err != nil {
			return 0, err
		}
		if _, _, silent := c.status(); silent {
			continue
		}
		return n, err
	}
}

// Write writes to the connection: ErrCut over a cut link; over a silent one the bytes vanish
// and the write succeeds, until sendBuffer bytes are outstanding; then it blocks until the
// write deadline passes or the connection is closed.
func (c *Conn) Write(b []byte) (int, error) {
	if closed, _, _ := c.status(); closed {
		return 0, c.opError("write", net.ErrClosed)
	}
	if err := c.observe(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	if !c.sendDead {
		c.mu.Unlock()
		return c.Conn.Write(b)
	}
	n := min(len(b), max(0, sendBuffer-c.unsent))
	c.unsent += n
	c.mu.Unlock()
	if n == len(b) {
		return n, nil
	}
	return n, c.wait("write")
}

// wait blocks a read or write on a silent link until its deadline passes or the connection is
// closed, and returns the error a real connection would.
func (c *Conn) wait(op string) error {
	for {
		c.mu.Lock()
		closed, wake, deadline := c.closed, c.wake, c.readDeadline
		if op == "write" {
			deadline = c.writeDeadline
		}
		c.mu.Unlock()
		if closed {
			return c.opError(op, net.ErrClosed)
		}
		if deadline.IsZero() {
			<-wake
			continue
		}
		d := time.Until(deadline)
		if d <= 0 {
			return c.opError(op, os.ErrDeadlineExceeded)
		}
		t := time.NewTimer(d)
		select {
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// wakeLocked wakes every read and write waiting on a silent link.
func (c *Conn) wakeLocked() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// SetDeadline sets the read and write deadlines, for silent links too.
func (c *Conn) SetDeadline(t time.Time) error { return c.setDeadlines(t, true, true) }

// SetReadDeadline sets the read deadline, for silent links too.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.setDeadlines(t, true, false) }

// SetWriteDeadline sets the write deadline, for silent links too.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.setDeadlines(t, false, true) }

func (c *Conn) setDeadlines(t time.Time, read, write bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("set", net.ErrClosed)
	}
	if read {
		c.readDeadline = t
	}
	if write {
		c.writeDeadline = t
	}
	c.wakeLocked()
	// Under the lock: Close's past deadline must not be overwritten by a late caller's.
	switch {
	case read && write:
		return c.Conn.SetDeadline(t)
	case read:
		return c.Conn.SetReadDeadline(t)
	default:
		return c.Conn.SetWriteDeadline(t)
	}
}

// Close closes the connection: reads and writes waiting on it return net.ErrClosed. If its
// sends are silent, the peer is not told: the real socket stays open for orphanLinger.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.closed = true
	c.wakeLocked()
	orphan := c.sendDead
	if orphan {
		// Wake a read or write blocked in the real socket without closing it.
		_ = c.Conn.SetDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
	if orphan {
		time.AfterFunc(orphanLinger, func() { c.Conn.Close() })
		return nil
	}
	return c.Conn.Close()
}
